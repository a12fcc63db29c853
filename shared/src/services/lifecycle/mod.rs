//! The upload lifecycle routes (docs/contract.md §4.8–§4.13, §4.15), one
//! module each: session status, the caller's sessions, cancel, abort one
//! file, extend, fresh part URLs, and the expiry sweeper.
//!
//! Whether a change is allowed is decided by `domain::lifecycle` only; this
//! module turns its refusals into the contract's answers and does the work.
//!
//! Storage cleanup follows one discipline (no transaction is held across
//! an S3 call):
//! 1. claim, with one guarded statement that commits at once: the session's
//!    new status plus `cleanup_claimed_at` (cancel, sweep), or the file row's
//!    deletion (abort one file);
//! 2. abort the multipart uploads and delete the completed objects;
//! 3. delete the file rows (their parts cascade) and clear the claim.
//!
//! A run that dies between 1 and 3 leaves a claim that goes stale after
//! [`CLEANUP_LEASE`]; the sweeper then finishes it. An upload left open by a
//! failure after an abort's row deletion has no row any more, so the
//! sweeper's orphan pass aborts it after the grace period.

mod abort_file;
mod cancel;
mod cleanup;
mod extend;
mod fresh_urls;
mod listing;
mod status;
mod sweep;

use std::time::Duration;

use chrono::NaiveDateTime;
use serde_json::{Value, json};
use uuid::Uuid;

pub use abort_file::abort_file;
pub use cancel::cancel;
pub use cleanup::Released;
pub use extend::{Extended, extend};
pub use fresh_urls::{FreshUrls, fresh_urls};
pub use listing::{ListQuery, SessionList, list};
pub use status::{FileView, SessionView, status};
pub use sweep::{SweepReport, authorize_cron, sweep};

use crate::auth::User;
use crate::domain::{FileAction, FileRefusal, Permit, Refusal, SessionAction, SessionState};
use crate::error::ApiError;
use crate::services::{expired, lookup};
use crate::state::AppState;
use crate::store::{Executor, FileRow, SessionRow};
use crate::time;

/// How long a cleanup claim protects a session from other runs. Longer than
/// any function's `maxDuration` (60 s), so only a dead run's claim expires.
pub const CLEANUP_LEASE: Duration = Duration::from_secs(5 * 60);

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

/// 409 for a file action the file's status refuses.
pub fn file_refusal_error(file: &FileRow, refusal: FileRefusal) -> ApiError {
    match refusal {
        FileRefusal::Completed => ApiError::Conflict {
            message: "This file is already completed; it takes no more parts".into(),
            details: json!({"fileId": file.id, "fileUrl": file.file_url}),
        },
    }
}

pub fn file_permit(file: &FileRow, action: FileAction) -> Result<Permit, ApiError> {
    file.status
        .permits(action)
        .map_err(|refusal| file_refusal_error(file, refusal))
}

/// Asks the lifecycle again on the session read afresh, after a guarded
/// statement matched nothing: a refusal now is the answer; a permit means
/// the session changed in between, and the caller says what that means.
async fn permit_again(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    action: SessionAction,
) -> Result<Permit, ApiError> {
    let current = lookup::owned_session(state.db(), session_id, user).await?;
    permit(state, &current, action).await
}

/// The guarded statement matched nothing although the lifecycle, asked
/// again, allows the action: the session changed between the two (a
/// finalize lock taken and released). Retrying is safe.
fn changed_meanwhile() -> ApiError {
    ApiError::Conflict {
        message: "The upload session changed while this request ran; retry".into(),
        details: json!({"retryStrategy": "RETRY"}),
    }
}

fn lease_expired_before(now: NaiveDateTime) -> NaiveDateTime {
    now - chrono::Duration::from_std(CLEANUP_LEASE).unwrap_or_default()
}

/// Finalize locks taken before this are stale.
pub(crate) fn lock_stale_before(state: &AppState, now: NaiveDateTime) -> NaiveDateTime {
    now - chrono::Duration::from_std(state.config().finalize_lock_ttl).unwrap_or_default()
}
