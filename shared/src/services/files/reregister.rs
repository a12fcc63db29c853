//! Registering a file again with its `fileId`: a client that lost its
//! presigned URLs gets fresh ones for the same S3 upload.

use serde_json::json;
use uuid::Uuid;

use crate::domain::{FileAction, FileMetadata};
use crate::error::ApiError;
use crate::services::{lifecycle, lookup};
use crate::state::AppState;
use crate::store::{FileRow, SessionRow};

/// The file registered as `file_id`, if the metadata sent is what was
/// registered (409 otherwise) and the file still takes parts.
pub(super) async fn reregister(
    state: &AppState,
    session: &SessionRow,
    file_id: Uuid,
    file: &FileMetadata,
) -> Result<FileRow, ApiError> {
    let row = lookup::session_file(state.db(), session.id, file_id).await?;
    lifecycle::file_permit(&row, FileAction::Reregister)?;
    let same = row.category == file.category.as_str()
        && row.name == file.name
        && row.size as u64 == file.size.bytes()
        && row.mime_type == file.mime_type
        && row.extension == file.ext.as_str();
    if !same {
        return Err(ApiError::Conflict {
            message: "fileId belongs to a file registered with different metadata".into(),
            details: json!({"fileId": row.id}),
        });
    }
    tracing::info!(file_id = %row.id, "file re-registered: issuing fresh part URLs");
    Ok(row)
}
