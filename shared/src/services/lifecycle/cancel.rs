//! Cancelling a session (docs/contract.md §4.9).

use uuid::Uuid;

use super::cleanup::{claim_leftover, release_session};
use super::{changed_meanwhile, permit_again};
use crate::auth::User;
use crate::domain::{Permit, SessionAction};
use crate::error::ApiError;
use crate::services::lookup;
use crate::services::permits::{lock_stale_before, permit};
use crate::state::AppState;
use crate::store;
use crate::time;

/// Cancels a session (§4.9): its uploads aborted, its completed objects
/// deleted, its file and part rows deleted, its status `cancelled`. The
/// daily quota is not refunded. Repeating it answers success.
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id))]
pub async fn cancel(state: &AppState, user: &User, session_id: Uuid) -> Result<(), ApiError> {
    let session = lookup::owned_session(state.db(), session_id, user).await?;
    let claimed = match permit(state, &session, SessionAction::Cancel).await? {
        Permit::Proceed => cancel_and_claim(state, user, session_id).await?,
        Permit::AlreadyDone => claim_leftover(state, session_id).await?,
    };
    if claimed {
        let released = release_session(state, session_id).await?;
        tracing::info!(
            uploads_aborted = released.uploads_aborted,
            objects_deleted = released.objects_deleted,
            "upload session cancelled"
        );
    }
    Ok(())
}

/// Cancels the session and claims its cleanup in one guarded statement
/// (`store::sessions::cancel_and_claim`). Whether there is storage to
/// release.
async fn cancel_and_claim(
    state: &AppState,
    user: &User,
    session_id: Uuid,
) -> Result<bool, ApiError> {
    let now = time::now();
    let stale_before = lock_stale_before(state, now);
    if store::sessions::cancel_and_claim(state.db(), session_id, now, stale_before).await? {
        return Ok(true);
    }
    // Something changed since the read: decide again on fresh data.
    match permit_again(state, user, session_id, SessionAction::Cancel).await? {
        Permit::AlreadyDone => claim_leftover(state, session_id).await,
        Permit::Proceed => Err(changed_meanwhile()),
    }
}
