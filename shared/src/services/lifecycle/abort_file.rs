//! Aborting one file (docs/contract.md §4.10).

use uuid::Uuid;

use super::cleanup::release_file;
use super::permit_again;
use crate::auth::User;
use crate::domain::SessionAction;
use crate::error::ApiError;
use crate::services::lookup;
use crate::services::permits::{lock_stale_before, permit};
use crate::state::AppState;
use crate::store;
use crate::time;

/// Aborts one file (§4.10): its upload aborted, its object deleted, its row
/// and parts deleted; its name and count slot are free again.
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id, %file_id))]
pub async fn abort_file(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    file_id: Uuid,
) -> Result<(), ApiError> {
    let session = lookup::owned_session(state.db(), session_id, user).await?;
    permit(state, &session, SessionAction::AbortFile).await?;
    let now = time::now();
    // The claim is the row's deletion (see the store function for why it
    // cannot race a finalize).
    let deleted = store::files::delete_if_abortable(
        state.db(),
        session_id,
        file_id,
        now,
        lock_stale_before(state, now),
    )
    .await?;
    let Some(file) = deleted else {
        // Either no such file (404), or the session changed under us.
        permit_again(state, user, session_id, SessionAction::AbortFile).await?;
        return Err(ApiError::NotFound("file"));
    };
    // The row is gone; a failure from here leaves at most an open upload
    // with no row, which the sweeper's orphan pass aborts.
    let released = release_file(state, &file).await.inspect_err(|error| {
        tracing::error!(%error, key = ?file.s3_key, upload_id = ?file.upload_id,
            "file row deleted but its storage was not released; the sweeper's orphan pass aborts an open upload");
    })?;
    tracing::info!(?released, "file aborted");
    Ok(())
}
