//! Registering a file again with its `fileId`: a client that lost its
//! presigned URLs gets fresh ones for the same S3 upload, and one that
//! declared a wrong CRC32C (complete answered 422) declares the right one.

use serde_json::json;
use uuid::Uuid;

use crate::domain::{Crc32c, FileAction, FileMetadata};
use crate::error::ApiError;
use crate::services::{lifecycle, lookup};
use crate::state::AppState;
use crate::store::{self, FileRow, SessionRow};
use crate::time;

/// The file registered as `file_id`, if the metadata sent is what was
/// registered (409 otherwise) and the file still takes parts.
pub(super) async fn reregister(
    state: &AppState,
    session: &SessionRow,
    file_id: Uuid,
    file: &FileMetadata,
    crc32c: Option<Crc32c>,
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
    let row = redeclare_crc32c(state, row, crc32c).await?;
    tracing::info!(file_id = %row.id, "file re-registered: issuing fresh part URLs");
    Ok(row)
}

/// The row with the CRC32C the re-registration declares. Left out, the
/// registered one stands (a client that only lost its URLs). A file
/// registered without one cannot take one now: its S3 upload was opened
/// without CRC32C, so S3 could not check it (409; abort and register anew).
async fn redeclare_crc32c(
    state: &AppState,
    row: FileRow,
    crc32c: Option<Crc32c>,
) -> Result<FileRow, ApiError> {
    let Some(crc32c) = crc32c else {
        return Ok(row);
    };
    match row.crc32c() {
        Some(registered) if registered == crc32c => Ok(row),
        Some(registered) => {
            let updated = store::files::set_crc32c(state.db(), row.id, crc32c, time::now())
                .await?
                .ok_or_else(|| completed_meanwhile(row.id))?;
            tracing::info!(file_id = %row.id, %registered, declared = %crc32c, "file re-registered with another CRC32C");
            Ok(updated)
        }
        None => Err(ApiError::Conflict {
            message: "the file was registered without crc32c; abort it and register it again \
                      to declare one"
                .into(),
            details: json!({"fileId": row.id}),
        }),
    }
}

fn completed_meanwhile(file_id: Uuid) -> ApiError {
    ApiError::Conflict {
        message: "the file was completed meanwhile; its CRC32C can no longer change".into(),
        details: json!({"fileId": file_id}),
    }
}
