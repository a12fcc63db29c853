//! Extending a session (docs/contract.md §4.11).

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{changed_meanwhile, permit_again};
use crate::auth::User;
use crate::domain::SessionAction;
use crate::error::ApiError;
use crate::services::lookup;
use crate::services::permits::{lock_stale_before, permit};
use crate::state::AppState;
use crate::store;
use crate::time;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Extended {
    pub session_id: Uuid,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// Extends an active session (§4.11): `expires_at` = now + the session TTL,
/// capped at `created_at` + `UPLOAD_SESSION_MAX_LIFETIME_MINUTES`, and never
/// moved earlier.
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id))]
pub async fn extend(state: &AppState, user: &User, session_id: Uuid) -> Result<Extended, ApiError> {
    let config = state.config();
    let session = lookup::owned_session(state.db(), session_id, user).await?;
    permit(state, &session, SessionAction::Extend).await?;
    let now = time::now();
    let cap = time::add(session.created_at, config.session_max_lifetime);
    let wanted = time::add(now, config.session_ttl).min(cap);
    let stale_before = lock_stale_before(state, now);
    let updated =
        store::sessions::extend(state.db(), session_id, wanted, now, stale_before).await?;
    let Some(expires_at) = updated else {
        permit_again(state, user, session_id, SessionAction::Extend).await?;
        return Err(changed_meanwhile());
    };
    tracing::info!(
        expires_at = %time::rfc3339(expires_at),
        capped = wanted == cap,
        "upload session extended"
    );
    Ok(Extended {
        session_id,
        expires_at: time::rfc3339(expires_at),
    })
}
