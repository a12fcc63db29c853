//! What the lifecycle lets a request do to a session or file now, and the
//! contract's answers to its refusals: the helpers every route's service
//! asks before it changes anything. The rules themselves are
//! `domain::lifecycle`'s; this module applies them to the rows a request
//! read and turns a refusal into an [`ApiError`].

use chrono::NaiveDateTime;
use serde_json::{Value, json};

use crate::domain::{FileAction, FileRefusal, Permit, Refusal, SessionAction, SessionState};
use crate::error::ApiError;
use crate::services::expired;
use crate::state::AppState;
use crate::store::{Executor, FileRow, SessionRow};
use crate::time;

/// The session as the lifecycle sees it now.
pub fn lifecycle_of(state: &AppState, session: &SessionRow, now: NaiveDateTime) -> SessionState {
    SessionState::new(
        session.status,
        session.expires_at,
        session.finalized_at,
        session.finalizing_at,
        now,
        state.config().finalize_lock_ttl,
    )
}

/// The contract's answer to a refusal: 410 for expiry (with its context),
/// 409 for a finalized, finalizing or cancelled session.
pub async fn refusal_error(
    db: impl Executor,
    session: &SessionRow,
    refusal: Refusal,
    now: NaiveDateTime,
) -> ApiError {
    let conflict = |message: &str, details: Value| ApiError::Conflict {
        message: message.to_owned(),
        details,
    };
    match refusal {
        Refusal::Expired => expired::gone(db, session, now).await,
        Refusal::Finalized => conflict(
            "The upload session is finalized; its files belong to the MOC",
            json!({"status": "completed", "mocId": session.moc_instruction_id}),
        ),
        Refusal::Finalizing => conflict(
            "The upload session is being finalized",
            json!({"status": "finalizing", "retryStrategy": "RETRY"}),
        ),
        Refusal::Cancelled => conflict(
            "The upload session was cancelled",
            json!({"status": "cancelled"}),
        ),
        Refusal::Live => ApiError::internal("the sweeper's refusal reached a user route"),
    }
}

/// Asks the lifecycle whether `action` may happen to `session` now.
pub async fn permit(
    state: &AppState,
    session: &SessionRow,
    action: SessionAction,
) -> Result<Permit, ApiError> {
    let now = time::now();
    match lifecycle_of(state, session, now).permits(action) {
        Ok(permit) => Ok(permit),
        Err(refusal) => Err(refusal_error(state.db(), session, refusal, now).await),
    }
}

pub fn file_permit(file: &FileRow, action: FileAction) -> Result<Permit, ApiError> {
    file.status
        .permits(action)
        .map_err(|refusal| file_refusal_error(file, refusal))
}

/// Finalize locks taken before this are stale.
pub fn lock_stale_before(state: &AppState, now: NaiveDateTime) -> NaiveDateTime {
    now - chrono::Duration::from_std(state.config().finalize_lock_ttl).unwrap_or_default()
}

/// Registration's answers to the lifecycle's refusals (docs/contract.md §4.2):
/// 410 EXPIRED_SESSION with the expiry context when the session expired, as
/// every route answers it; 400 for a session that is not active.
///
/// `db` is the caller's transaction when it holds one: a request never
/// acquires a second connection while it holds the first.
pub async fn ensure_registrable(
    state: &AppState,
    db: impl Executor,
    session: &SessionRow,
) -> Result<(), ApiError> {
    let now = time::now();
    match lifecycle_of(state, session, now).permits(SessionAction::RegisterFile) {
        Ok(_) => Ok(()),
        Err(Refusal::Expired) => Err(expired::gone(db, session, now).await),
        Err(_) => Err(ApiError::bad_request_with(
            "The upload session is not active",
            json!({"status": session.status}),
        )),
    }
}

/// 409 for a file action the file's status refuses.
pub fn file_refusal_error(file: &FileRow, refusal: FileRefusal) -> ApiError {
    match refusal {
        FileRefusal::Completed => ApiError::Conflict {
            message: "This file is already completed; it takes no more parts".into(),
            details: json!({"fileId": file.id, "fileUrl": file.file_url}),
        },
    }
}
