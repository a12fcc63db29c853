//! Bringing the recorded parts of a file up to what S3 holds.

use crate::error::ApiError;
use crate::s3::{S3Error, StoredPart};
use crate::state::AppState;
use crate::store::parts::NewPart;
use crate::store::{self, Executor, FileRow, SessionRow};
use crate::time;

/// Reads what S3 holds for the file's upload (following ListParts
/// pagination). Parts PUT straight to S3 through presigned URLs never pass
/// through this service, so S3 is the truth and the table is brought up to
/// it ([`record_stored`]); a re-uploaded part's new ETag replaces the old
/// one.
///
/// `None` when S3 no longer knows the upload although the row has it open:
/// an earlier complete completed it in S3 and died before its COMMIT
/// (docs/adr/0010-complete-after-a-lost-commit.md).
pub async fn stored_parts(
    state: &AppState,
    file: &FileRow,
) -> Result<Option<Vec<StoredPart>>, ApiError> {
    let (key, upload_id) = file.upload()?;
    match state.s3().list_parts(key, upload_id).await {
        Ok(stored) => Ok(Some(stored)),
        Err(S3Error::NoSuchUpload { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Records what [`stored_parts`] found, on `db`: the caller's transaction
/// when it holds one, so the write shares its round trip with the rest.
pub async fn record_stored(
    db: impl Executor,
    session: &SessionRow,
    file: &FileRow,
    stored: &[StoredPart],
) -> crate::db::Result<()> {
    if stored.is_empty() {
        return Ok(());
    }
    let now = time::now();
    let parts: Vec<NewPart> = stored
        .iter()
        .map(|p| NewPart {
            number: p.part_number,
            etag: &p.etag,
            size: crate::domain::ByteSize::new(p.size).to_column_saturating(),
            uploaded_at: p.last_modified.map(|t| t.naive_utc()).unwrap_or(now),
        })
        .collect();
    store::parts::record(db, session.id, file.id, &parts, now).await
}
