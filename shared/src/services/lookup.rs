//! The look-ups every request starts with: the caller's session, and a file
//! of it. Missing and not owned are the same 404: existence is never
//! revealed.

use uuid::Uuid;

use crate::auth::User;
use crate::error::ApiError;
use crate::store::files::SessionAndFile;
use crate::store::{self, Executor, FileRow, SessionRow};

/// The caller's session. Another user's session is 404 too.
pub async fn owned_session(
    db: impl Executor,
    session_id: Uuid,
    user: &User,
) -> Result<SessionRow, ApiError> {
    store::sessions::owned(db, session_id, &user.id)
        .await?
        .ok_or(ApiError::NotFound("upload session"))
}

/// A file of the session.
pub async fn session_file(
    db: impl Executor,
    session_id: Uuid,
    file_id: Uuid,
) -> Result<FileRow, ApiError> {
    store::files::in_session(db, session_id, file_id)
        .await?
        .ok_or(ApiError::NotFound("file"))
}

/// The caller's session and a file of it, read in one statement (so both
/// come from the same moment). The file's answer is the caller's to use
/// once the session is known to be the caller's.
pub async fn owned_session_and_file(
    db: impl Executor,
    session_id: Uuid,
    file_id: Uuid,
    user: &User,
) -> Result<(SessionRow, Result<FileRow, ApiError>), ApiError> {
    let read = store::files::owned_session_and_file(db, session_id, file_id, &user.id).await?;
    session_then_file(read)
}

/// 404 for a session that is not the caller's; the file's own 404 for the
/// caller to answer once the session has passed its checks.
pub fn session_then_file(
    read: Option<SessionAndFile>,
) -> Result<(SessionRow, Result<FileRow, ApiError>), ApiError> {
    let read = read.ok_or(ApiError::NotFound("upload session"))?;
    Ok((read.session, read.file.ok_or(ApiError::NotFound("file"))))
}
