//! What a request on an expired session answers, and the expiration event
//! it logs (STORY-01721 AC-10).
//!
//! Cleanup: a session left `active` past `expires_at` is swept, with its S3
//! multipart uploads aborted, by the expiry sweeper (`lifecycle::sweep`);
//! nothing here deletes it. Clients should re-create a session when less
//! than 10 minutes remain rather than race the expiry: re-create,
//! re-register files, upload, complete.

use chrono::NaiveDateTime;

use crate::error::ApiError;
use crate::store::{self, Executor, SessionRow};
use crate::time;

/// Logs the expiration event; returns `expires_at` and `now` as the answer
/// shows them.
///
/// `db` is the caller's transaction when it holds one: a request never
/// acquires a second connection while it holds the first.
async fn expiration(
    db: impl Executor,
    session: &SessionRow,
    now: NaiveDateTime,
) -> (String, String) {
    let files_registered = store::files::count_in_session(db, session.id)
        .await
        .unwrap_or(-1);
    tracing::warn!(
        session_id = %session.id,
        expired_for_ms = (now - session.expires_at).num_milliseconds(),
        session_age_ms = (now - session.created_at).num_milliseconds(),
        files_registered,
        "upload session expired"
    );
    (time::rfc3339(session.expires_at), time::rfc3339(now))
}

/// 410 EXPIRED_SESSION (reason GONE) for an expired session: the one answer
/// of every route to it (registration, part upload, complete, finalize, …).
pub async fn gone(db: impl Executor, session: &SessionRow, now: NaiveDateTime) -> ApiError {
    let (expires_at, now) = expiration(db, session, now).await;
    ApiError::Gone { expires_at, now }
}
