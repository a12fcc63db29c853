//! Registering up to `MAX_BATCH_SIZE` files in one request (docs/contract.md §4.3).

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::register::{RegisterInput, Registration, register_one, registrable_session};
use crate::auth::User;
use crate::error::{ApiError, ErrorObject};
use crate::state::AppState;

/// The answer of a batch registration: one item per file, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResults {
    pub results: Vec<BatchItem>,
}

/// One file's outcome in a batch: its registration, or its error.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    pub index: usize,
    #[serde(flatten)]
    pub outcome: BatchOutcome,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchOutcome {
    Registered(Registration),
    Failed { error: ErrorObject },
}

/// Registers up to `MAX_BATCH_SIZE` files (docs/contract.md §4.3).
///
/// Partial commit: each item is registered on its own, in request order, as
/// a single registration would be. A failed item does not undo the ones
/// before it and does not stop the ones after it; the answer reports each
/// item's outcome at its index, so a client retries only the failures.
/// Rolling back instead would abort S3 uploads the client may already be
/// using and turn one bad file into N lost registrations.
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id))]
pub async fn register_batch(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    body: Value,
) -> Result<BatchResults, ApiError> {
    let items = batch_items(&body, state.config().max_batch_size)?;
    let session = registrable_session(state, user, session_id).await?;

    let mut results = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let outcome = match RegisterInput::from_json("", item) {
            Ok(input) => register_one(state, user, &session, input).await,
            Err(error) => Err(error),
        };
        let outcome = match outcome {
            Ok(registration) => BatchOutcome::Registered(registration),
            Err(error) => {
                error.log();
                BatchOutcome::Failed {
                    error: error.to_item(),
                }
            }
        };
        results.push(BatchItem { index, outcome });
    }
    let failed = results
        .iter()
        .filter(|r| matches!(r.outcome, BatchOutcome::Failed { .. }))
        .count();
    tracing::info!(items = results.len(), failed, "batch registration done");
    Ok(BatchResults { results })
}

/// `files`: an array of 1 to `max` items.
fn batch_items(body: &Value, max: usize) -> Result<&Vec<Value>, ApiError> {
    match body.get("files") {
        Some(Value::Array(items)) if items.len() > max => Err(ApiError::BatchTooLarge {
            size: items.len(),
            max_batch_size: max,
        }),
        Some(Value::Array(items)) if !items.is_empty() => Ok(items),
        _ => Err(ApiError::invalid_field(
            "files",
            &format!("must be an array of 1 to {max} files"),
        )),
    }
}
