//! Registering a new file, race-safe.
//!
//! The session row is locked while the file is counted and inserted, so
//! concurrent registrations of one session queue and each counts the ones
//! committed before it; the unique `(session_id, category, name)` index
//! backs the duplicate check. N identical concurrent registrations leave
//! one row and one S3 multipart upload: each opens an upload while its row
//! is decided, and a refused row aborts its own.
//! Clients should give files unique names within a session.

use std::future::Future;
use std::pin::{Pin, pin};
use std::time::Duration;

use futures::future::{self, Either};
use serde_json::json;
use uuid::Uuid;

use crate::auth::User;
use crate::config::Config;
use crate::db::{self, Tx};
use crate::domain::{Crc32c, FileCategory, FileMetadata, ObjectKey};
use crate::error::ApiError;
use crate::s3::S3Error;
use crate::services::permits::ensure_registrable;
use crate::state::AppState;
use crate::store::files::{NewFile, UNIQUE_NAME_CONSTRAINT};
use crate::store::{self, FileRow, SessionRow};
use crate::time;

/// How long a registration that holds its session's lock waits for S3 to
/// open the file's upload, so that the row names it from its INSERT: the
/// S3 call started with the request, so this is only what is left of it.
/// A slower S3 does not hold the session (and the registrations, cancels
/// and finalizes queued on it) any longer: the row commits without the
/// upload, which is recorded once S3 answers.
const S3_WAIT_UNDER_LOCK: Duration = Duration::from_millis(250);

/// A new file's row and S3 upload, made at once. The upload needs only its
/// key, which the request alone names (the caller, the session ID from the
/// path, the category and extension, a fresh file ID), so it opens while
/// the session is read under its lock and the file checked against it
/// (`check`, whose result is handed back). The row is then inserted with
/// the upload and committed: two round trips, the request waiting for the
/// slower of S3 and the checks, not their sum. The lock waits for S3 at
/// most [`S3_WAIT_UNDER_LOCK`]. A refusal aborts the upload; a failed
/// upload inserts nothing.
pub(super) async fn register_new<T>(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    check: impl FnOnce(&SessionRow) -> Result<T, ApiError>,
    file: &FileMetadata,
    crc32c: Option<Crc32c>,
) -> Result<(FileRow, T), ApiError> {
    let file_id = Uuid::new_v4();
    let key = ObjectKey::new(
        state.config().stage.as_str(),
        &user.id,
        session_id,
        file.category,
        file_id,
        &file.ext,
    );
    let new_file = NewFileOf {
        user,
        session_id,
        file,
        file_id,
        key: &key,
        crc32c,
    };
    let mut create = pin!(state.s3().create_multipart_upload(
        key.as_str(),
        &file.mime_type,
        crc32c.is_some()
    ));
    let mut checks = pin!(lock_and_check(state, &new_file, check));
    let (decided, created) = match future::select(checks.as_mut(), create.as_mut()).await {
        // Under the lock, S3 gets a little longer; a refusal waits for the
        // upload so as to abort it.
        Either::Left((Ok(decided), _)) => {
            let created = tokio::time::timeout(S3_WAIT_UNDER_LOCK, create.as_mut()).await;
            (Ok(decided), created.ok())
        }
        Either::Left((refused, _)) => (refused, Some(create.as_mut().await)),
        Either::Right((created, _)) => (checks.await, Some(created)),
    };
    let decided = match decided {
        Ok(decided) => decided,
        Err(refused) => {
            if let Some(created) = created {
                abort_if_opened(state, key.as_str(), created).await;
            }
            return Err(refused);
        }
    };
    let registered = match created {
        Some(Ok(upload_id)) => insert_with_upload(state, decided, &new_file, &upload_id).await?,
        // The transaction rolls back as it drops: nothing was written.
        Some(Err(error)) => return Err(error.into()),
        None => insert_then_record(state, decided, &new_file, create).await?,
    };
    tracing::info!(%file_id, category = %file.category, size = file.size.bytes(), verified = crc32c.is_some(), "file registered");
    Ok(registered)
}

/// Aborts the upload S3 opened for a registration that was refused.
async fn abort_if_opened(state: &AppState, key: &str, created: Result<String, S3Error>) {
    if let Ok(upload_id) = created {
        abort_unrecorded(state, key, &upload_id).await;
    }
}

/// The row naming its upload, inserted and committed in one round trip. A
/// write that fails aborts the upload, unless it may have committed.
async fn insert_with_upload<T>(
    state: &AppState,
    decided: Decided<T>,
    new_file: &NewFileOf<'_>,
    upload_id: &str,
) -> Result<(FileRow, T), ApiError> {
    let key = new_file.key.as_str();
    match commit_row(state, decided.tx, new_file, decided.size, Some(upload_id)).await {
        Ok(Ok(row)) => Ok((row, decided.checked)),
        Ok(Err(refused)) => {
            abort_unrecorded(state, key, upload_id).await;
            Err(refused)
        }
        Err(error) => {
            abort_unless_recorded(state, key, upload_id, &error).await;
            Err(error.into())
        }
    }
}

/// S3 is slow: the row commits without its upload (the session's lock goes
/// with the COMMIT) while S3 finishes opening it, and the upload is then
/// recorded on its own. A failed upload gives the name back.
async fn insert_then_record<T>(
    state: &AppState,
    decided: Decided<T>,
    new_file: &NewFileOf<'_>,
    create: Pin<&mut impl Future<Output = Result<String, S3Error>>>,
) -> Result<(FileRow, T), ApiError> {
    let key = new_file.key.as_str();
    let (committed, created) = tokio::join!(
        commit_row(state, decided.tx, new_file, decided.size, None),
        create
    );
    // Even a row committed without an answer names no upload yet.
    if let Err(error) = committed
        .map_err(ApiError::from)
        .and_then(|inserted| inserted)
    {
        abort_if_opened(state, key, created).await;
        return Err(error);
    }
    let upload_id = match created {
        Ok(upload_id) => upload_id,
        Err(error) => {
            let _ = store::files::delete(state.db(), new_file.file_id).await;
            return Err(error.into());
        }
    };
    match store::files::set_upload_id(state.db(), new_file.file_id, &upload_id, time::now()).await {
        Ok(row) => Ok((row, decided.checked)),
        Err(error) => {
            abort_unless_recorded(state, key, &upload_id, &error).await;
            Err(error.into())
        }
    }
}

/// Aborts the S3 upload a failed write was recording, unless the write may
/// have committed all the same ([`db::outcome_unknown`]): the row would then
/// name an upload that is gone, and every part and complete of the file
/// would fail (found by `scripts/chaos`: a reset that lost only the answer
/// to the COMMIT). An upload kept that no row names is aborted by the
/// sweeper's orphan pass.
pub(super) async fn abort_unless_recorded(
    state: &AppState,
    key: &str,
    upload_id: &str,
    error: &db::Error,
) {
    if db::outcome_unknown(error) {
        tracing::warn!(%error, upload_id, "recording the S3 upload got no answer; the upload is kept (the row may name it; if not, the sweeper aborts it)");
        return;
    }
    abort_unrecorded(state, key, upload_id).await;
}

/// Aborts an S3 upload no row names; one left open is the sweeper's.
pub(super) async fn abort_unrecorded(state: &AppState, key: &str, upload_id: &str) {
    if let Err(error) = state.s3().abort_multipart_upload(key, upload_id).await {
        tracing::warn!(%error, upload_id, "could not abort an upload no row names; the sweeper's orphan pass aborts it");
    }
}

/// What a new file's row is made of: the request's alone.
struct NewFileOf<'a> {
    user: &'a User,
    session_id: Uuid,
    file: &'a FileMetadata,
    file_id: Uuid,
    key: &'a ObjectKey,
    crc32c: Option<Crc32c>,
}

/// A registration its session let through: the transaction that holds the
/// session's lock, the file's size as its column holds it, and what `check`
/// returned.
struct Decided<T> {
    tx: Tx,
    size: i32,
    checked: T,
}

/// The session read under its lock, then the file checked against it: the
/// session is the caller's and still takes files, `check` passes, the name
/// is free and the category has room; in that order, so the session's own
/// refusals come first (§4.2). One round trip, the request's first.
async fn lock_and_check<T>(
    state: &AppState,
    new_file: &NewFileOf<'_>,
    check: impl FnOnce(&SessionRow) -> Result<T, ApiError>,
) -> Result<Decided<T>, ApiError> {
    let &NewFileOf {
        user,
        session_id,
        file,
        ..
    } = new_file;
    let size = file.size.to_column()?;
    // The second statement runs, with a snapshot of its own, once the lock
    // is granted.
    let tx = state.db().begin().await?;
    let (locked, category) = futures::try_join!(
        store::sessions::lock_owned(&tx, session_id, &user.id),
        store::files::check_category(&tx, session_id, file.category, &file.name),
    )?;
    let locked = locked.ok_or(ApiError::NotFound("upload session"))?;
    ensure_registrable(state, &tx, &locked).await?;
    let checked = check(&locked)?;
    if let Some(existing_file_id) = category.existing {
        return Err(duplicate(existing_file_id, file));
    }
    check_room(state.config(), &locked, file, category.registered)?;
    Ok(Decided { tx, size, checked })
}

/// Inserts the row (naming `upload_id` when S3 opened it in time) and
/// commits, in one round trip: a refused insert turns the COMMIT into a
/// rollback. The outer error is the database's (the row may have committed:
/// [`db::outcome_unknown`]); the inner one a refusal, which wrote nothing.
async fn commit_row(
    state: &AppState,
    tx: Tx,
    new_file: &NewFileOf<'_>,
    size: i32,
    upload_id: Option<&str>,
) -> Result<Result<FileRow, ApiError>, db::Error> {
    let &NewFileOf {
        session_id,
        file,
        file_id,
        key,
        crc32c,
        ..
    } = new_file;
    let row = NewFile {
        id: file_id,
        session_id,
        category: file.category,
        name: &file.name,
        size,
        mime_type: &file.mime_type,
        extension: file.ext.as_str(),
        s3_key: key.as_str(),
        upload_id,
        crc32c,
        created_at: time::now(),
    };
    match futures::try_join!(store::files::insert_pending(&tx, &row), tx.committing()) {
        Ok((row, ())) => Ok(Ok(row)),
        Err(error) if db::constraint(&error) == Some(UNIQUE_NAME_CONSTRAINT) => {
            // Only reachable if a writer bypassed the session lock (e.g. the
            // old service); the index still keeps the name unique.
            drop(tx);
            let existing =
                store::files::id_by_name(state.db(), session_id, file.category, &file.name).await?;
            Ok(Err(duplicate(existing.unwrap_or_default(), file)))
        }
        Err(error) => Err(error),
    }
}

/// 400 VALIDATION_ERROR (reason FILE_COUNT_EXCEEDED) unless one more file
/// of its category fits the counts declared at create (or, for old
/// sessions, the configured maxima).
fn check_room(
    config: &Config,
    locked: &SessionRow,
    file: &FileMetadata,
    registered: i64,
) -> Result<(), ApiError> {
    let max_files = match locked.metadata().declared_files {
        Some(declared) => declared.of(file.category),
        None => fallback_max(config, file.category),
    };
    // The current attempt counts: with 2 declared and 1 registered, one more fits.
    if registered.saturating_add(1) > i64::from(max_files) {
        return Err(ApiError::FileCountExceeded {
            category: file.category,
            max_files,
            registered: u32::try_from(registered).unwrap_or(u32::MAX),
        });
    }
    Ok(())
}

fn duplicate(existing_file_id: Uuid, file: &FileMetadata) -> ApiError {
    ApiError::Conflict {
        message: format!(
            "A {} file named {:?} is already registered in this session",
            file.category, file.name
        ),
        details: json!({"existingFileId": existing_file_id, "category": file.category, "name": file.name}),
    }
}

fn fallback_max(config: &Config, category: FileCategory) -> u32 {
    match category {
        FileCategory::Instruction => u32::MAX,
        FileCategory::PartsList => config.limits.parts_list_max_count,
        FileCategory::Image | FileCategory::Thumbnail => config.limits.image_max_count,
    }
}
