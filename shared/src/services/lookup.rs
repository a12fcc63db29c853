//! The look-ups every request starts with: the caller's session, and a file
//! of it. Missing and not owned are the same 404: existence is never
//! revealed.

use uuid::Uuid;

use crate::auth::User;
use crate::error::ApiError;
use crate::store::{self, Executor, FileRow, SessionRow};

/// The caller's session. Another user's session is 404 too.
pub async fn owned_session(
    db: impl Executor<'_>,
    session_id: Uuid,
    user: &User,
) -> Result<SessionRow, ApiError> {
    store::sessions::owned(db, session_id, &user.id)
        .await?
        .ok_or(ApiError::NotFound("upload session"))
}

/// A file of the session.
pub async fn session_file(
    db: impl Executor<'_>,
    session_id: Uuid,
    file_id: Uuid,
) -> Result<FileRow, ApiError> {
    store::files::in_session(db, session_id, file_id)
        .await?
        .ok_or(ApiError::NotFound("file"))
}
