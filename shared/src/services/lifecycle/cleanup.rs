//! Releasing the storage of files and sessions (steps 2 and 3 of the
//! cleanup discipline in the module above).

use chrono::NaiveDateTime;
use serde::Serialize;
use uuid::Uuid;

use super::lease_expired_before;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{self, FileRow};
use crate::time;

/// What a cleanup released in S3.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Released {
    pub uploads_aborted: u64,
    pub objects_deleted: u64,
}

impl std::ops::AddAssign for Released {
    fn add_assign(&mut self, other: Self) {
        self.uploads_aborted += other.uploads_aborted;
        self.objects_deleted += other.objects_deleted;
    }
}

/// Aborts the file's upload and deletes its object.
///
/// An upload S3 no longer knows is not an error. It may have been completed
/// by a complete racing this abort, so its object is deleted then too:
/// either way nothing of the file is left in S3.
pub(super) async fn release_file(state: &AppState, file: &FileRow) -> Result<Released, ApiError> {
    let mut released = Released::default();
    let Some(key) = file.s3_key.as_deref() else {
        return Ok(released);
    };
    let status = file.status;
    let mut delete_object = !status.has_open_upload();
    if let (true, Some(upload_id)) = (status.has_open_upload(), file.upload_id.as_deref()) {
        if state.s3().abort_upload_if_open(key, upload_id).await? {
            released.uploads_aborted += 1;
        } else {
            delete_object = true;
        }
    }
    if delete_object {
        state.s3().delete_object(key).await?;
        if !status.has_open_upload() {
            released.objects_deleted += 1;
        }
    }
    tracing::info!(file_id = %file.id, key, ?released, "file storage released");
    Ok(released)
}

/// Releases the storage of every file of a claimed session, then deletes
/// the file rows (parts cascade) and clears the claim. Only rows whose
/// storage was released are deleted; a row that appeared meanwhile (a
/// registration that committed before the claim) is picked up by the next
/// round.
pub(super) async fn release_session(
    state: &AppState,
    session_id: Uuid,
) -> Result<Released, ApiError> {
    let mut released = Released::default();
    for _ in 0..3 {
        let files = store::files::of_session(state.db(), session_id).await?;
        if files.is_empty() {
            break;
        }
        for file in &files {
            released += release_file(state, file).await?;
        }
        let ids: Vec<Uuid> = files.iter().map(|f| f.id).collect();
        store::files::delete_of_session(state.db(), session_id, &ids).await?;
    }
    store::sessions::clear_cleanup_claim(state.db(), session_id).await?;
    Ok(released)
}

/// Takes over the leftover cleanup of a cancelled or expired session, unless
/// another run holds a fresh claim on it or nothing is left.
pub(super) async fn claim_leftover(state: &AppState, session_id: Uuid) -> Result<bool, ApiError> {
    let now: NaiveDateTime = time::now();
    Ok(
        store::sessions::claim_leftover(state.db(), session_id, now, lease_expired_before(now))
            .await?,
    )
}
