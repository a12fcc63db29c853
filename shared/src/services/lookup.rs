//! The look-ups every request starts with: the caller's session, and a file
//! of it. Missing and not owned are the same 404: existence is never
//! revealed.

use uuid::Uuid;

use crate::auth::User;
use crate::error::ApiError;
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

/// The caller's session and a file of it, read in one round trip (one
/// transaction, so both come from the same moment). The file's answer is
/// the caller's to use once the session is known to be the caller's.
pub async fn owned_session_and_file(
    db: &crate::db::Db,
    session_id: Uuid,
    file_id: Uuid,
    user: &User,
) -> Result<(SessionRow, Result<FileRow, ApiError>), ApiError> {
    let tx = db.begin().await?;
    let (session, file, ()) = futures::try_join!(
        store::sessions::owned(&tx, session_id, &user.id),
        store::files::in_session(&tx, session_id, file_id),
        tx.committing(),
    )?;
    let session = session.ok_or(ApiError::NotFound("upload session"))?;
    Ok((session, file.ok_or(ApiError::NotFound("file"))))
}
