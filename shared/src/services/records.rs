//! Rows of the upload tables, and the lookups every service starts with.

use chrono::NaiveDateTime;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

use crate::auth::User;
use crate::domain::{ByteSize, DeclaredFiles, FileCategory, PartPlan};
use crate::error::ApiError;
use crate::time;

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: String,
    pub status: String,
    pub part_size_bytes: i32,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub finalized_at: Option<NaiveDateTime>,
    pub finalizing_at: Option<NaiveDateTime>,
    pub moc_instruction_id: Option<Uuid>,
    pub metadata: Option<Json<Value>>,
}

pub const SESSION_COLUMNS: &str = "id, user_id, status, part_size_bytes, expires_at, created_at, \
     finalized_at, finalizing_at, moc_instruction_id, metadata";

impl SessionRow {
    pub fn part_size(&self) -> ByteSize {
        ByteSize::new(self.part_size_bytes.max(1) as u64)
    }

    pub fn is_expired(&self, now: NaiveDateTime) -> bool {
        self.expires_at <= now
    }

    /// The per-category file counts declared at create. Sessions created by
    /// the old service have none; they are held to the configured maxima.
    pub fn declared_files(&self) -> Option<DeclaredFiles> {
        let metadata = self.metadata.as_ref()?;
        serde_json::from_value(metadata.0.get("declaredFiles")?.clone()).ok()
    }

    /// The context of a 410 / expired 400, logged as the expiration event of
    /// STORY-01721 AC-10.
    ///
    /// Cleanup: a session left `active` past `expires_at` is swept, with its
    /// S3 multipart uploads aborted, by the STORY-018 background job; nothing
    /// here deletes it. Clients should re-create a session when less than 10
    /// minutes remain rather than race the expiry: re-create, re-register
    /// files, upload, complete.
    pub async fn expiration(
        &self,
        db: impl PgExecutor<'_>,
        now: NaiveDateTime,
    ) -> (String, String) {
        let files_registered: i64 =
            sqlx::query_scalar("SELECT count(*) FROM upload_session_files WHERE session_id = $1")
                .bind(self.id)
                .fetch_one(db)
                .await
                .unwrap_or(-1);
        tracing::warn!(
            session_id = %self.id,
            expired_for_ms = (now - self.expires_at).num_milliseconds(),
            session_age_ms = (now - self.created_at).num_milliseconds(),
            files_registered,
            "upload session expired"
        );
        (time::rfc3339(self.expires_at), time::rfc3339(now))
    }

    /// 410 GONE for an expired session (complete, part upload, finalize).
    pub async fn gone(&self, db: impl PgExecutor<'_>, now: NaiveDateTime) -> ApiError {
        let (expires_at, now) = self.expiration(db, now).await;
        ApiError::Gone { expires_at, now }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct FileRow {
    pub id: Uuid,
    pub session_id: Uuid,
    pub category: String,
    pub name: String,
    pub size: i32,
    pub mime_type: String,
    pub extension: String,
    pub s3_key: Option<String>,
    pub upload_id: Option<String>,
    pub status: String,
    pub file_url: Option<String>,
}

pub const FILE_COLUMNS: &str = "id, session_id, category, name, size, mime_type, extension, s3_key, \
     upload_id, status, file_url";

impl FileRow {
    pub fn category(&self) -> Option<FileCategory> {
        FileCategory::parse(&self.category)
    }

    pub fn is_completed(&self) -> bool {
        self.status == "completed"
    }

    pub fn plan(&self, session: &SessionRow) -> PartPlan {
        PartPlan::new(ByteSize::new(self.size.max(0) as u64), session.part_size())
    }

    /// The S3 key and upload ID; a file without them never got its S3 upload
    /// and cannot take parts.
    pub fn upload(&self) -> Result<(&str, &str), ApiError> {
        match (&self.s3_key, &self.upload_id) {
            (Some(key), Some(upload_id)) => Ok((key, upload_id)),
            _ => Err(ApiError::bad_request(
                "This file has no S3 upload; register it again",
            )),
        }
    }
}

/// The caller's session. Another user's session is 404 too: existence is
/// never revealed.
pub async fn owned_session(
    db: impl PgExecutor<'_>,
    session_id: Uuid,
    user: &User,
) -> Result<SessionRow, ApiError> {
    sqlx::query_as::<_, SessionRow>(&format!(
        "SELECT {SESSION_COLUMNS} FROM upload_sessions WHERE id = $1 AND user_id = $2"
    ))
    .bind(session_id)
    .bind(&user.id)
    .fetch_optional(db)
    .await?
    .ok_or(ApiError::NotFound("upload session"))
}

pub async fn session_file(
    db: impl PgExecutor<'_>,
    session_id: Uuid,
    file_id: Uuid,
) -> Result<FileRow, ApiError> {
    sqlx::query_as::<_, FileRow>(&format!(
        "SELECT {FILE_COLUMNS} FROM upload_session_files WHERE id = $1 AND session_id = $2"
    ))
    .bind(file_id)
    .bind(session_id)
    .fetch_optional(db)
    .await?
    .ok_or(ApiError::NotFound("file"))
}
