//! Registering up to `MAX_BATCH_SIZE` files in one request (docs/contract.md §4.3).
//! The body is [`BatchRegisterRequest`], which the handler reads and the
//! OpenAPI document describes; each item is then read as the
//! `RegisterFileRequest` it should be, on its own.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Array, Object, SchemaType};
use uuid::Uuid;

use super::register::{RegisterInput, Registration, register_one, registrable_session};
use crate::auth::User;
use crate::domain::{FieldErrors, Raw, read_body};
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
        let outcome = match RegisterInput::read(item) {
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

/// POST …/files/batch (contract §4.3). More than `MAX_BATCH_SIZE` files
/// (default 10) is 400 BAD_REQUEST (`details.reason` BATCH_TOO_LARGE).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"files": [{
    "category": "instruction", "name": "castle-instructions.pdf",
    "size": 12582912, "type": "application/pdf", "ext": "pdf", "partCount": 3
}]}))]
pub struct BatchRegisterRequest {
    /// Each item is a `RegisterFileRequest`, checked on its own: an item
    /// that is not one fails alone, as its result's `error` (422
    /// VALIDATION_ERROR), and the others still register. So the request
    /// itself accepts any items.
    #[schema(schema_with = any_items)]
    pub files: Raw,
}

fn any_items() -> Array {
    let any_item = Object::builder().schema_type(SchemaType::AnyValue);
    Array::builder().items(any_item).min_items(Some(1)).build()
}

/// `files`: an array of 1 to `max` items. A body that is not an object has
/// no `files`.
fn batch_items(body: &Value, max: usize) -> Result<Vec<Value>, ApiError> {
    let request = match body.is_object() {
        true => read_body::<BatchRegisterRequest>("", body, &mut FieldErrors::default()),
        false => None,
    };
    match request.unwrap_or_default().files.value() {
        Some(Value::Array(items)) if items.len() > max => Err(ApiError::BatchTooLarge {
            size: items.len(),
            max_batch_size: max,
        }),
        Some(Value::Array(items)) if !items.is_empty() => Ok(items.clone()),
        _ => Err(ApiError::invalid_field(
            "files",
            &format!("must be an array of 1 to {max} files"),
        )),
    }
}
