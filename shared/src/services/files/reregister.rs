//! Registering a file again with its `fileId`: a client that lost its
//! presigned URLs gets fresh ones for the same S3 upload, and one that
//! declared a wrong CRC32C (complete answered 422) declares the right one.

use serde_json::json;
use uuid::Uuid;

use super::register_new::{abort_unless_recorded, abort_unrecorded};
use crate::domain::{Crc32c, FileAction, FileMetadata};
use crate::error::ApiError;
use crate::services::{lookup, permits};
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
    permits::file_permit(&row, FileAction::Reregister)?;
    let same = row.category == file.category.as_str()
        && row.name == file.name
        && crate::domain::ByteSize::from_column(row.size) == file.size
        && row.mime_type == file.mime_type
        && row.extension == file.ext.as_str();
    if !same {
        return Err(ApiError::Conflict {
            message: "fileId belongs to a file registered with different metadata".into(),
            details: json!({"fileId": row.id}),
        });
    }
    let row = redeclare_crc32c(state, row, crc32c).await?;
    let row = open_missing_upload(state, row).await?;
    tracing::info!(file_id = %row.id, "file re-registered: issuing fresh part URLs");
    Ok(row)
}

/// A file whose registration died after committing its row and before
/// recording its S3 upload has a key but no upload: its name is taken, so a
/// retried registration lands here (409 `existingFileId`, then `fileId`).
/// The upload is opened now, as the first registration would have (found
/// by `scripts/chaos`: this answered 400 "register it again" for ever).
/// Of two concurrent re-registrations one records its upload; the other
/// aborts its own and answers with the recorded one.
async fn open_missing_upload(state: &AppState, row: FileRow) -> Result<FileRow, ApiError> {
    let (Some(key), None) = (row.s3_key.clone(), &row.upload_id) else {
        return Ok(row);
    };
    let upload_id = state
        .s3()
        .create_multipart_upload(&key, &row.mime_type, row.crc32c().is_some())
        .await?;
    let recorded =
        store::files::set_missing_upload_id(state.db(), row.id, &upload_id, time::now()).await;
    match recorded {
        Ok(Some(updated)) => {
            tracing::warn!(file_id = %row.id, "re-registration opened the S3 upload its registration never recorded");
            Ok(updated)
        }
        Ok(None) => {
            // Another re-registration recorded its upload first.
            abort_unrecorded(state, &key, &upload_id).await;
            Ok(lookup::session_file(state.db(), row.session_id, row.id).await?)
        }
        Err(error) => {
            abort_unless_recorded(state, &key, &upload_id, &error).await;
            Err(error.into())
        }
    }
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
