//! Registering a new file, race-safe.
//!
//! The session row is locked while the file is counted and inserted, so
//! concurrent registrations of one session queue and each counts the ones
//! committed before it; the unique `(session_id, category, name)` index
//! backs the duplicate check. N identical concurrent registrations leave
//! one row and one S3 multipart upload: each opens an upload while its row
//! is decided, and a refused row aborts its own.
//! Clients should give files unique names within a session.

use serde_json::json;
use uuid::Uuid;

use crate::auth::User;
use crate::config::Config;
use crate::db;
use crate::domain::{Crc32c, FileCategory, FileMetadata, ObjectKey};
use crate::error::ApiError;
use crate::services::permits::ensure_registrable;
use crate::state::AppState;
use crate::store::files::{NewFile, UNIQUE_NAME_CONSTRAINT};
use crate::store::{self, FileRow, SessionRow};
use crate::time;

/// A new file's row and S3 upload, made at once. The upload needs only its
/// key, which the request alone names (the caller, the session ID from the
/// path, the category and extension, a fresh file ID), so it opens while
/// the session is read under its lock, the file checked against it
/// (`check`, whose result is handed back) and the row committed: the
/// request waits for the slower of S3 and the database, not their sum, and
/// the lock is never held across the S3 call. A refusal aborts the upload;
/// a failed upload gives the row back.
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
    let decided = insert_row(state, &new_file, check);
    let (inserted, created) = tokio::join!(
        decided,
        state
            .s3()
            .create_multipart_upload(key.as_str(), &file.mime_type, crc32c.is_some()),
    );
    let (checked, upload_id) = match (inserted, created) {
        (Ok(checked), Ok(upload_id)) => (checked, upload_id),
        (Ok(_), Err(error)) => {
            // Give the name back so the client can simply retry.
            let _ = store::files::delete(state.db(), file_id).await;
            return Err(error.into());
        }
        (Err(refused), Ok(upload_id)) => {
            // Even a row committed without an answer names no upload yet.
            abort_unrecorded(state, key.as_str(), &upload_id).await;
            return Err(refused);
        }
        (Err(refused), Err(_)) => return Err(refused),
    };
    match store::files::set_upload_id(state.db(), file_id, &upload_id, time::now()).await {
        Ok(row) => {
            tracing::info!(%file_id, category = %file.category, size = file.size.bytes(), verified = crc32c.is_some(), "file registered");
            Ok((row, checked))
        }
        Err(error) => {
            abort_unless_recorded(state, key.as_str(), &upload_id, &error).await;
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

/// The file's row, `pending`, committed under the session lock once the
/// session is the caller's and still takes files, `check` passes, the name
/// is free and the category has room; in that order, so the session's own
/// refusals come first (§4.2). Returns what `check` returned.
async fn insert_row<T>(
    state: &AppState,
    new_file: &NewFileOf<'_>,
    check: impl FnOnce(&SessionRow) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let &NewFileOf {
        user,
        session_id,
        file,
        file_id,
        key,
        crc32c,
    } = new_file;
    // The session read under its lock, then the name and the category's
    // count read under it: one round trip (the second statement runs, with
    // a snapshot of its own, once the lock is granted), and the request's
    // first.
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

    let row = NewFile {
        id: file_id,
        session_id,
        category: file.category,
        name: &file.name,
        size: file.size.to_column()?,
        mime_type: &file.mime_type,
        extension: file.ext.as_str(),
        s3_key: key.as_str(),
        crc32c,
        created_at: time::now(),
    };
    // The insert and the COMMIT in one round trip: a refused insert turns
    // the COMMIT into a rollback.
    if let Err(error) = futures::try_join!(store::files::insert_pending(&tx, &row), tx.committing())
    {
        if db::constraint(&error) == Some(UNIQUE_NAME_CONSTRAINT) {
            // Only reachable if a writer bypassed the session lock (e.g. the
            // old service); the index still keeps the name unique.
            drop(tx);
            let existing =
                store::files::id_by_name(state.db(), session_id, file.category, &file.name).await?;
            return Err(duplicate(existing.unwrap_or_default(), file));
        }
        return Err(error.into());
    }
    Ok(checked)
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
