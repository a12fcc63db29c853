//! `user_daily_uploads`: the daily session quota's counters.

use chrono::{NaiveDate, NaiveDateTime};

use crate::db::Tx;

/// Counts one session creation of `user_id` on `day`, in one upsert (why:
/// `rate_limit::count_session_create`).
///
/// Returns the new count, or `None` when `limit` was already reached (and
/// `bypass` is off): nothing was counted.
pub async fn count_session_create(
    tx: &Tx,
    user_id: &str,
    day: NaiveDate,
    limit: i32,
    bypass: bool,
    now: NaiveDateTime,
) -> crate::db::Result<Option<i32>> {
    query_scalar!(
        "INSERT INTO user_daily_uploads (user_id, day, count, updated_at)
         VALUES ($1, $2, 1, $4)
         ON CONFLICT (user_id, day) DO UPDATE
            SET count = user_daily_uploads.count + 1, updated_at = $4
            WHERE user_daily_uploads.count < $3 OR $5
         RETURNING count",
        user_id,
        day,
        limit,
        now,
        bypass,
    )
    .fetch_optional(tx)
    .await
}
