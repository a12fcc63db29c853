//! The upload lifecycle routes (docs/contract.md §4.8–§4.13, §4.15), one
//! module each: session status, the caller's sessions, cancel, abort one
//! file, extend, and the expiry sweeper.
//!
//! Whether a change is allowed is decided by `domain::lifecycle` only
//! (`services::permits` applies it); these modules do the work.
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
mod listing;
mod status;
mod sweep;

use std::time::Duration;

use chrono::NaiveDateTime;
use serde_json::json;
use uuid::Uuid;

pub use abort_file::abort_file;
pub use cancel::cancel;
pub use cleanup::Released;
pub use extend::{Extended, extend};
pub use listing::{ListQuery, SessionList, list};
pub use status::{FileView, SessionView, status};
pub use sweep::{SweepReport, authorize_cron, sweep};

use crate::auth::User;
use crate::domain::{Permit, SessionAction};
use crate::error::ApiError;
use crate::services::lookup;
use crate::services::permits::permit;
use crate::state::AppState;

/// How long a cleanup claim protects a session from other runs. Longer than
/// any function's `maxDuration` (60 s), so only a dead run's claim expires.
pub const CLEANUP_LEASE: Duration = Duration::from_secs(5 * 60);

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
