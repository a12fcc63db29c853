//! `user_daily_uploads`: the daily session quota's counters, counted as a
//! session is inserted.

use chrono::NaiveDate;

use crate::db::Tx;
use crate::store::sessions::NewSession;

/// Today's session quota as a create counts against it.
#[derive(Debug, Clone, Copy)]
pub struct DailyQuota {
    pub day: NaiveDate,
    pub limit: i32,
    /// Count, but never refuse (`RATE_LIMIT_BYPASS`).
    pub bypass: bool,
}

/// Counts one session creation of the session's user on `quota.day` and
/// inserts the session, in one statement (why the count is an upsert:
/// `rate_limit::create_session_counted`).
///
/// Returns the new count, or `None` when the limit was already reached
/// (and `quota.bypass` is off): then nothing was counted and no session
/// inserted, since the insert reads its row from the count's `RETURNING`.
pub async fn insert_session_counted(
    tx: &Tx,
    session: &NewSession<'_>,
    quota: DailyQuota,
) -> crate::db::Result<Option<i32>> {
    query_scalar!(
        "WITH counted AS (
            INSERT INTO user_daily_uploads (user_id, day, count, updated_at)
            VALUES ($2, $7, 1, $5)
            ON CONFLICT (user_id, day) DO UPDATE
               SET count = user_daily_uploads.count + 1, updated_at = $5
             WHERE user_daily_uploads.count < $8 OR $9
            RETURNING count
         ), created AS (
            INSERT INTO upload_sessions
                (id, user_id, status, part_size_bytes, expires_at, created_at, updated_at, metadata)
            SELECT $1, $2, 'active', $3, $4, $5, $5, $6 FROM counted
         )
         SELECT count FROM counted",
        session.id,
        session.user_id,
        session.part_size_bytes,
        session.expires_at,
        session.created_at,
        session.metadata,
        quota.day,
        quota.limit,
        quota.bypass,
    )
    .fetch_optional(tx)
    .await
}
