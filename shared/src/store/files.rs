//! `upload_session_files`: a session's files, from registration to their
//! deletion by cancel, abort or the sweeper.

use chrono::NaiveDateTime;
use uuid::Uuid;

use super::sessions::session_statuses;
use super::{Executor, SessionRow};
use crate::db::Tx;
use crate::domain::{
    ByteSize, Crc32c, FileCategory, FileStatus, PartPlan, SessionAction, SessionStatus,
};
use crate::error::ApiError;

#[derive(Debug, Clone)]
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
    pub status: FileStatus,
    pub file_url: Option<String>,
    /// The full-object CRC32C the client declared (S3's base64); `None`
    /// for a file registered without one, which is never verified.
    pub crc32c: Option<String>,
    /// Whether the stored object was found to carry `crc32c`.
    pub checksum_verified: bool,
}

crate::from_row!(FileRow {
    id,
    session_id,
    category,
    name,
    size,
    mime_type,
    extension,
    s3_key,
    upload_id,
    status,
    file_url,
    crc32c,
    checksum_verified,
});

impl FileRow {
    pub fn category(&self) -> Option<FileCategory> {
        FileCategory::parse(&self.category)
    }

    pub fn plan(&self, session: &SessionRow) -> PartPlan {
        PartPlan::new(ByteSize::from_column(self.size), session.part_size())
    }

    /// The declared full-object CRC32C. Only ever written from a
    /// [`Crc32c`], so a value that does not parse reads as none declared.
    pub fn crc32c(&self) -> Option<Crc32c> {
        self.crc32c.as_deref().and_then(|raw| raw.parse().ok())
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

/// `query_as!(FileRow, ..)`: one column list for every statement that
/// loads whole files, between `$select` and the rest of the statement.
macro_rules! file_rows {
    ($select:literal, $rest:literal $(, $arg:expr)* $(,)?) => {
        query_as!(
            FileRow,
            $select
                + " id, session_id, category, name, size, mime_type, extension, s3_key, \
                   upload_id, status AS \"status: FileStatus\", file_url, crc32c, \
                   checksum_verified "
                + $rest
            $(, $arg)*
        )
    };
}

/// The caller's session and, when the session holds it, one of its files:
/// what every file route reads first.
#[derive(Debug, Clone)]
pub struct SessionAndFile {
    pub session: SessionRow,
    pub file: Option<FileRow>,
}

impl crate::db::FromRow for SessionAndFile {
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
        let file_id: Option<Uuid> = crate::db::column(row, "f_id")?;
        Ok(Self {
            session: SessionRow::from_row_prefixed(row, "")?,
            file: match file_id {
                Some(_) => Some(FileRow::from_row_prefixed(row, "f_")?),
                None => None,
            },
        })
    }
}

/// One statement for [`owned_session_and_file`] and
/// [`owned_session_and_locked_file`]: the session's columns as
/// `SessionRow` reads them, the file's as `FileRow` does, each prefixed
/// `f_`, the file's read (and locked, with `$lock`) only if the session is
/// the caller's.
macro_rules! session_and_file {
    ($lock:literal $(, $arg:expr)* $(,)?) => {
        query!(
            "SELECT s.id, s.user_id, s.status AS \"status: SessionStatus\", s.part_size_bytes,
                    s.expires_at, s.created_at, s.finalized_at, s.finalizing_at,
                    s.moc_instruction_id, s.metadata,
                    f.id AS f_id, f.session_id AS f_session_id, f.category AS f_category,
                    f.name AS f_name, f.size AS f_size, f.mime_type AS f_mime_type,
                    f.extension AS f_extension, f.s3_key AS f_s3_key,
                    f.upload_id AS f_upload_id, f.status AS \"f_status: FileStatus\",
                    f.file_url AS f_file_url, f.crc32c AS f_crc32c,
                    f.checksum_verified AS f_checksum_verified
               FROM upload_sessions s
               LEFT JOIN LATERAL (
                    SELECT * FROM upload_session_files
                     WHERE id = $2 AND session_id = s.id "
                + $lock
                + ") f ON true
              WHERE s.id = $1 AND s.user_id = $3"
            $(, $arg)*
        )
        .reading::<SessionAndFile>()
    };
}

/// The caller's session and the file, in one statement. `None` when the
/// session is not the caller's.
pub async fn owned_session_and_file(
    db: impl Executor,
    session_id: Uuid,
    file_id: Uuid,
    user_id: &str,
) -> crate::db::Result<Option<SessionAndFile>> {
    session_and_file!("", session_id, file_id, user_id)
        .fetch_optional(db)
        .await
}

/// [`owned_session_and_file`], the file locked until `tx` ends: of two
/// concurrent completes, the second waits here for the first one's
/// outcome. Another user's session locks nothing.
pub async fn owned_session_and_locked_file(
    tx: &Tx,
    session_id: Uuid,
    file_id: Uuid,
    user_id: &str,
) -> crate::db::Result<Option<SessionAndFile>> {
    session_and_file!("FOR NO KEY UPDATE", session_id, file_id, user_id)
        .fetch_optional(tx)
        .await
}

/// The file, if it belongs to the session.
pub async fn in_session(
    db: impl Executor,
    session_id: Uuid,
    file_id: Uuid,
) -> crate::db::Result<Option<FileRow>> {
    file_rows!(
        "SELECT",
        "FROM upload_session_files WHERE id = $1 AND session_id = $2",
        file_id,
        session_id,
    )
    .fetch_optional(db)
    .await
}

/// The session's files, in registration order.
pub async fn of_session(db: impl Executor, session_id: Uuid) -> crate::db::Result<Vec<FileRow>> {
    file_rows!(
        "SELECT",
        "FROM upload_session_files WHERE session_id = $1 ORDER BY created_at, id",
        session_id,
    )
    .fetch_all(db)
    .await
}

/// The files of several sessions (a page of a listing), each session's in
/// registration order.
pub async fn of_sessions(
    db: impl Executor,
    session_ids: &[Uuid],
) -> crate::db::Result<Vec<FileRow>> {
    file_rows!(
        "SELECT",
        "FROM upload_session_files WHERE session_id = ANY($1) ORDER BY created_at, id",
        session_ids,
    )
    .fetch_all(db)
    .await
}

pub async fn count_in_session(db: impl Executor, session_id: Uuid) -> crate::db::Result<i64> {
    query_scalar!(
        r#"SELECT count(*) AS "count!" FROM upload_session_files WHERE session_id = $1"#,
        session_id,
    )
    .fetch_one(db)
    .await
}

/// What a registration checks under its session's lock, in one statement:
/// the file already registered under this category and name, if any, and
/// how many files the category holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CategoryCheck {
    pub existing: Option<Uuid>,
    pub registered: i64,
}

crate::from_row!(CategoryCheck {
    existing,
    registered
});

pub async fn check_category(
    tx: &Tx,
    session_id: Uuid,
    category: FileCategory,
    name: &str,
) -> crate::db::Result<CategoryCheck> {
    query_as!(
        CategoryCheck,
        r#"SELECT (SELECT id FROM upload_session_files
                    WHERE session_id = $1 AND category = $2 AND name = $3) AS existing,
                  (SELECT count(*) FROM upload_session_files
                    WHERE session_id = $1 AND category = $2) AS "registered!""#,
        session_id,
        category.as_str(),
        name,
    )
    .fetch_one(tx)
    .await
}

/// The file registered under this category and name, if any.
pub async fn id_by_name(
    db: impl Executor,
    session_id: Uuid,
    category: FileCategory,
    name: &str,
) -> crate::db::Result<Option<Uuid>> {
    query_scalar!(
        "SELECT id FROM upload_session_files WHERE session_id = $1 AND category = $2 AND name = $3",
        session_id,
        category.as_str(),
        name,
    )
    .fetch_optional(db)
    .await
}

/// A file being registered: its row, `pending`, with its S3 upload when S3
/// opened it in time (`upload_id`), else without it until
/// [`set_upload_id`] records it.
pub struct NewFile<'a> {
    pub id: Uuid,
    pub session_id: Uuid,
    pub category: FileCategory,
    pub name: &'a str,
    pub size: i32,
    pub mime_type: &'a str,
    pub extension: &'a str,
    pub s3_key: &'a str,
    pub upload_id: Option<&'a str>,
    pub crc32c: Option<Crc32c>,
    pub created_at: NaiveDateTime,
}

/// The unique index that keeps a name to one file per category and session.
pub const UNIQUE_NAME_CONSTRAINT: &str = "upload_session_files_session_category_name_key";

pub async fn insert_pending(tx: &Tx, file: &NewFile<'_>) -> crate::db::Result<FileRow> {
    file_rows!(
        "INSERT INTO upload_session_files
            (id, session_id, category, name, size, mime_type, extension, s3_key, upload_id,
             crc32c, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $11, 'pending', $10, $10)
         RETURNING",
        "",
        file.id,
        file.session_id,
        file.category.as_str(),
        file.name,
        file.size,
        file.mime_type,
        file.extension,
        file.s3_key,
        file.upload_id,
        file.created_at,
        file.crc32c.map(|crc| crc.to_string()),
    )
    .fetch_one(tx)
    .await
}

/// Records the file's S3 multipart upload.
pub async fn set_upload_id(
    db: impl Executor,
    file_id: Uuid,
    upload_id: &str,
    now: NaiveDateTime,
) -> crate::db::Result<FileRow> {
    file_rows!(
        "UPDATE upload_session_files SET upload_id = $2, updated_at = $3 WHERE id = $1 RETURNING",
        "",
        file_id,
        upload_id,
        now,
    )
    .fetch_one(db)
    .await
}

/// Records the S3 upload a re-registration opened for a file that has none
/// (its registration died between its row's COMMIT and recording the
/// upload): only while it still has none, so of two concurrent
/// re-registrations one records its upload and the other aborts its own.
pub async fn set_missing_upload_id(
    db: impl Executor,
    file_id: Uuid,
    upload_id: &str,
    now: NaiveDateTime,
) -> crate::db::Result<Option<FileRow>> {
    file_rows!(
        "UPDATE upload_session_files SET upload_id = $2, updated_at = $3 WHERE id = $1 AND upload_id IS NULL AND status = 'pending' RETURNING",
        "",
        file_id,
        upload_id,
        now,
    )
    .fetch_optional(db)
    .await
}

/// A re-registration's new declared CRC32C, while the file is not
/// completed: a client that declared a wrong one fixes it and completes again.
pub async fn set_crc32c(
    db: impl Executor,
    file_id: Uuid,
    crc32c: Crc32c,
    now: NaiveDateTime,
) -> crate::db::Result<Option<FileRow>> {
    file_rows!(
        "UPDATE upload_session_files SET crc32c = $2, checksum_verified = false, updated_at = $3
          WHERE id = $1 AND status <> 'completed' RETURNING",
        "",
        file_id,
        crc32c.to_string(),
        now,
    )
    .fetch_optional(db)
    .await
}

/// Marks the file completed (`parts::record_listed_and_complete` does the
/// same with the parts a client listed).
pub async fn mark_completed(
    tx: &Tx,
    file_id: Uuid,
    file_url: &str,
    now: NaiveDateTime,
) -> crate::db::Result<()> {
    query!(
        "UPDATE upload_session_files SET status = 'completed', file_url = $2, updated_at = $3
         WHERE id = $1 AND status <> 'completed'",
        file_id,
        file_url,
        now,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Records that these files' stored objects carry their declared CRC32C.
pub async fn mark_checksum_verified(db: impl Executor, file_ids: &[Uuid]) -> crate::db::Result<()> {
    if file_ids.is_empty() {
        return Ok(());
    }
    query!(
        "UPDATE upload_session_files SET checksum_verified = true
          WHERE id = ANY($1) AND crc32c IS NOT NULL",
        file_ids,
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn delete(db: impl Executor, file_id: Uuid) -> crate::db::Result<()> {
    query!("DELETE FROM upload_session_files WHERE id = $1", file_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes these files of the session (their parts cascade).
pub async fn delete_of_session(
    db: impl Executor,
    session_id: Uuid,
    file_ids: &[Uuid],
) -> crate::db::Result<()> {
    query!(
        "DELETE FROM upload_session_files WHERE session_id = $1 AND id = ANY($2)",
        session_id,
        file_ids,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes the file, in one statement that share-locks its session row,
/// if the session is one the lifecycle lets files be aborted from: live,
/// unfinalized, without a fresh finalize lock. It cannot interleave with
/// finalize taking its lock (which needs that row exclusively), so a
/// finalize either sees the file with its object or does not see it at
/// all. `None`: no such file, or the session changed since it was read.
pub async fn delete_if_abortable(
    db: impl Executor,
    session_id: Uuid,
    file_id: Uuid,
    now: NaiveDateTime,
    lock_stale_before: NaiveDateTime,
) -> crate::db::Result<Option<FileRow>> {
    let statuses = session_statuses(SessionAction::AbortFile);
    file_rows!(
        "WITH live AS (
             SELECT id AS live_session_id FROM upload_sessions
              WHERE id = $2 AND status = ANY($3) AND finalized_at IS NULL
                AND (finalizing_at IS NULL OR finalizing_at < $4) AND expires_at > $5
              FOR SHARE
         )
         DELETE FROM upload_session_files f USING live
          WHERE f.id = $1 AND f.session_id = live.live_session_id
         RETURNING",
        "",
        file_id,
        session_id,
        statuses.as_slice(),
        lock_stale_before,
        now,
    )
    .fetch_optional(db)
    .await
}

/// Which of these S3 upload IDs a file row refers to.
pub async fn referenced_upload_ids(
    db: impl Executor,
    upload_ids: &[&str],
) -> crate::db::Result<Vec<String>> {
    let upload_ids: Vec<String> = upload_ids.iter().map(|id| (*id).to_owned()).collect();
    query_scalar!(
        r#"SELECT upload_id AS "upload_id!" FROM upload_session_files WHERE upload_id = ANY($1)"#,
        upload_ids.as_slice(),
    )
    .fetch_all(db)
    .await
}
