//! The session's status (docs/contract.md §4.8): what a client resumes from.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::User;
use crate::domain::{Crc32c, FileStatus, SessionAction, SessionStatus};
use crate::error::ApiError;
use crate::services::permits::{lifecycle_of, permit};
use crate::state::AppState;
use crate::store::{self, FileRow, SessionRow};
use crate::time;

/// What a client resumes from (contract §4.8).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub session_id: Uuid,
    pub status: SessionStatus,
    /// The title given at create, when one was (§4.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Castle on the hill")]
    pub title: Option<String>,
    pub part_size_bytes: i32,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The files declared at create, as sent.
    #[schema(value_type = Vec<crate::domain::FileMetadataBody>)]
    pub declared_files: Vec<Value>,
    pub files: Vec<FileView>,
    /// Set once the session is finalized.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moc_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileView {
    pub file_id: Uuid,
    /// As stored; only the four categories are ever written.
    #[schema(value_type = crate::domain::FileCategory)]
    pub category: String,
    pub name: String,
    pub size: i32,
    #[serde(rename = "type")]
    pub mime_type: String,
    pub status: FileStatus,
    pub part_count: u64,
    /// The part numbers the database has recorded, ascending. Parts PUT
    /// straight to S3 appear once the parts route (§4.5) reconciled them.
    pub uploaded_parts: Vec<i32>,
    /// Set once the file is completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
    /// The full-object CRC32C declared at registration (S3's base64);
    /// absent for a file registered without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "yZRlqg==")]
    pub crc32c: Option<Crc32c>,
    /// True once finalize found the stored object carrying `crc32c`; a file
    /// without one is never verified.
    pub checksum_verified: bool,
}

/// What a client resumes from after a reload (§4.8). Read-only: an expired
/// session is still readable, its status says so.
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id))]
pub async fn status(
    state: &AppState,
    user: &User,
    session_id: Uuid,
) -> Result<SessionView, ApiError> {
    // The session, its files and their parts in one round trip, from one
    // snapshot; the files and parts are dropped unread unless the session
    // is the caller's.
    let tx = state
        .db()
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let session_ids = [session_id];
    let (session, files, parts, ()) = futures::try_join!(
        store::sessions::owned(&tx, session_id, &user.id),
        store::files::of_session(&tx, session_id),
        store::parts::numbers_in_sessions(&tx, &session_ids),
        tx.committing(),
    )?;
    drop(tx);
    let session = session.ok_or(ApiError::NotFound("upload session"))?;
    permit(state, &session, SessionAction::Read).await?;
    Ok(session_view(state, session, files, &parts, time::now()))
}

/// The session with its files (`files` and `parts` may hold other
/// sessions' too: only this one's are taken), as it shows at `now`.
pub(super) fn session_view(
    state: &AppState,
    session: SessionRow,
    files: impl IntoIterator<Item = FileRow>,
    parts: &[(Uuid, i32)],
    now: chrono::NaiveDateTime,
) -> SessionView {
    let lifecycle = lifecycle_of(state, &session, now);
    let files = files
        .into_iter()
        .filter(|file| file.session_id == session.id)
        .map(|file| file_view(&session, file, parts))
        .collect();
    let kept = session.metadata();
    SessionView {
        session_id: session.id,
        status: lifecycle.visible_status(),
        title: kept.title,
        part_size_bytes: session.part_size_bytes,
        expires_at: time::rfc3339(session.expires_at),
        created_at: time::rfc3339(session.created_at),
        declared_files: kept.files,
        files,
        moc_id: session.moc_instruction_id,
    }
}

/// The file with the part numbers recorded for it (`parts` holds
/// `(file_id, part_number)` of the whole session, or more).
fn file_view(session: &SessionRow, file: FileRow, parts: &[(Uuid, i32)]) -> FileView {
    FileView {
        crc32c: file.crc32c(),
        checksum_verified: file.checksum_verified,
        part_count: file.plan(session).part_count(),
        uploaded_parts: parts
            .iter()
            .filter(|(id, _)| *id == file.id)
            .map(|(_, n)| *n)
            .collect(),
        file_id: file.id,
        category: file.category,
        name: file.name,
        size: file.size,
        mime_type: file.mime_type,
        status: file.status,
        file_url: file.file_url,
    }
}
