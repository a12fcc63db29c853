//! Finalize's one write: the MOC, its files, its thumbnail and the
//! session's completion commit together or not at all, retried on
//! serialization conflicts and slug races.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use serde_json::json;
use uuid::Uuid;

use super::input::FinalizeInput;
use super::verify::verify_files;
use super::view::{MocView, read_moc};
use crate::auth::User;
use crate::db;
use crate::domain::{FileCategory, FileStatus, slug_candidate, slugify, unique_name};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::mocs::{NewMoc, NewMocFile, UNIQUE_SLUG_CONSTRAINT, UNIQUE_TITLE_CONSTRAINT};
use crate::store::{self, FileRow, SessionRow};
use crate::time;

/// Serialization failures and deadlocks are retried this many times.
const TRANSACTION_ATTEMPTS: u32 = 3;
/// How far down `base`, `base-2`, … a free slug is looked for.
const SLUG_CANDIDATES: u32 = 1000;

/// Verifies the session's completed files and writes the MOC; the caller
/// holds the finalize lock taken at `lock`.
pub(super) async fn finalize_locked(
    state: &AppState,
    user: &User,
    session: &SessionRow,
    input: &FinalizeInput,
    lock: NaiveDateTime,
) -> Result<(MocView, Vec<FileRow>), ApiError> {
    // The files and the slugs already taken, in one round trip.
    let base = slugify(&input.title);
    let tx = state.db().begin().await?;
    let (files, taken, ()) = futures::try_join!(
        store::files::of_session(&tx, session.id),
        store::mocs::slugs_like(&tx, &user.id, slug_prefix(&base)),
        tx.committing(),
    )?;
    drop(tx);
    let mut files: Vec<FileRow> = files
        .into_iter()
        .filter(|f| f.status == FileStatus::Completed)
        .collect();
    if !files
        .iter()
        .any(|f| f.category() == Some(FileCategory::Instruction))
    {
        return Err(ApiError::bad_request(
            "The session has no completed instruction file",
        ));
    }
    let verified = verify_files(state, &files).await?;
    for file in files.iter_mut().filter(|f| verified.contains(&f.id)) {
        file.checksum_verified = true;
    }
    let written = Written {
        files: &files,
        verified: &verified,
    };
    let moc_id =
        write_with_retries(state, user, session, input, written, &base, taken, lock).await?;
    let view = read_moc(state, moc_id).await?;
    Ok((view, files))
}

/// What finalize writes besides the MOC: its files, and those whose
/// stored CRC32C it verified.
#[derive(Clone, Copy)]
struct Written<'a> {
    files: &'a [FileRow],
    verified: &'a [Uuid],
}

#[allow(clippy::too_many_arguments)]
async fn write_with_retries(
    state: &AppState,
    user: &User,
    session: &SessionRow,
    input: &FinalizeInput,
    written: Written<'_>,
    base: &str,
    taken: Vec<Option<String>>,
    lock: NaiveDateTime,
) -> Result<Uuid, ApiError> {
    let mut last_error = None;
    let mut taken = Some(taken);
    for attempt in 1..=TRANSACTION_ATTEMPTS {
        // The slugs read with the files at first; read again after a
        // conflict (another finalize of the user took one meanwhile).
        let taken = match taken.take() {
            Some(taken) => taken,
            None => store::mocs::slugs_like(state.db(), &user.id, slug_prefix(base)).await?,
        };
        let slug = first_free_slug(base, taken)?;
        match write_moc(state, user, session, input, written, &slug, lock).await {
            Ok(moc_id) => return Ok(moc_id),
            Err(WriteError::TitleTaken) => {
                return Err(title_taken(state, &user.id, base, input).await);
            }
            Err(WriteError::LockLost) => {
                return Err(ApiError::Conflict {
                    message: "Another request took over this finalization".into(),
                    details: json!({"retryStrategy": "RETRY"}),
                });
            }
            Err(WriteError::Retryable(error)) => {
                tracing::warn!(attempt, %error, "finalize transaction conflict; retrying");
                last_error = Some(error);
            }
            Err(WriteError::Other(error)) => return Err(error.into()),
        }
    }
    Err(ApiError::internal(last_error.map_or_else(
        || "finalize transaction retries exhausted".to_string(),
        |e| e.to_string(),
    )))
}

/// 409 DUPLICATE_SLUG for a title the user already has, suggesting a free
/// slug.
async fn title_taken(
    state: &AppState,
    user_id: &str,
    base: &str,
    input: &FinalizeInput,
) -> ApiError {
    match free_slug(state, user_id, base).await {
        Ok(suggested) => ApiError::TitleTaken {
            message: "You already have a MOC with this title".into(),
            details: json!({
                "title": input.title,
                "suggestedSlug": suggested,
                "retryStrategy": "AUTO_APPEND",
            }),
        },
        Err(error) => error,
    }
}

/// The first free slug of `base` for the user.
async fn free_slug(state: &AppState, user_id: &str, base: &str) -> Result<String, ApiError> {
    let taken = store::mocs::slugs_like(state.db(), user_id, slug_prefix(base)).await?;
    first_free_slug(base, taken)
}

/// What the user's slugs that may collide with `base`'s candidates start with.
fn slug_prefix(base: &str) -> &str {
    base.char_indices()
        .nth(60)
        .map_or(base, |(end, _)| &base[..end])
}

/// The first candidate of `base` not among `taken`.
fn first_free_slug(base: &str, taken: Vec<Option<String>>) -> Result<String, ApiError> {
    let taken: HashSet<String> = taken.into_iter().flatten().collect();
    (1..=SLUG_CANDIDATES)
        .map(|n| slug_candidate(base, n))
        .find(|candidate| !taken.contains(candidate))
        .ok_or_else(|| ApiError::TitleTaken {
            message: "No free slug is left for this title".into(),
            details: json!({"retryStrategy": "PROMPT_USER"}),
        })
}

enum WriteError {
    TitleTaken,
    LockLost,
    Retryable(crate::db::Error),
    Other(crate::db::Error),
}

impl From<crate::db::Error> for WriteError {
    fn from(error: crate::db::Error) -> Self {
        match db::sqlstate(&error) {
            Some(db::SERIALIZATION_FAILURE | db::DEADLOCK_DETECTED) => WriteError::Retryable(error),
            Some(db::UNIQUE_VIOLATION)
                if db::constraint(&error) == Some(UNIQUE_TITLE_CONSTRAINT) =>
            {
                WriteError::TitleTaken
            }
            // Another finalize of the same user took the slug between our
            // look-up and our insert: look again.
            Some(db::UNIQUE_VIOLATION)
                if db::constraint(&error) == Some(UNIQUE_SLUG_CONSTRAINT) =>
            {
                WriteError::Retryable(error)
            }
            _ => WriteError::Other(error),
        }
    }
}

/// The one transaction of finalize: the MOC, its files, its thumbnail and
/// the session's completion commit together or not at all.
///
/// Every statement leaves in one write (the files' rows after the MOC's, as
/// their key needs); the COMMIT follows once the session's completion is
/// known to have held the lock: two round trips.
async fn write_moc(
    state: &AppState,
    user: &User,
    session: &SessionRow,
    input: &FinalizeInput,
    written: Written<'_>,
    slug: &str,
    lock: NaiveDateTime,
) -> Result<Uuid, WriteError> {
    let files = written.files;
    let tx = state
        .db()
        .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await?;
    let moc = NewMoc {
        id: Uuid::new_v4(),
        user_id: &user.id,
        title: &input.title,
        description: input.description.as_deref(),
        slug,
        theme: input.theme.as_deref(),
        tags: &input.tags,
        created_at: time::now(),
    };
    let thumbnail = files
        .iter()
        .filter(|f| f.category().is_some_and(FileCategory::is_image))
        .find_map(|f| f.file_url.as_deref());
    let named = named_files(files);
    let moc_files: Vec<NewMocFile> = named
        .iter()
        .map(|(file, category, name)| NewMocFile {
            original_filename: name,
            ..moc_file(moc.id, *category, file, moc.created_at)
        })
        .collect();
    let (_, (), _, (), finalized) = futures::try_join!(
        store::files::mark_checksum_verified(&tx, written.verified),
        store::mocs::insert(&tx, &moc),
        futures::future::try_join_all(
            moc_files
                .iter()
                .map(|row| store::mocs::insert_file(&tx, row))
        ),
        async {
            match thumbnail {
                Some(thumbnail) => store::mocs::set_thumbnail(&tx, moc.id, thumbnail).await,
                None => Ok(()),
            }
        },
        store::sessions::mark_finalized(&tx, session.id, moc.id, lock, moc.created_at),
    )?;
    if !finalized {
        return Err(WriteError::LockLost);
    }
    tx.commit().await?;
    Ok(moc.id)
}

/// The files of a known category, each with a name unique within the MOC.
fn named_files(files: &[FileRow]) -> Vec<(&FileRow, FileCategory, String)> {
    let mut names = HashSet::new();
    files
        .iter()
        .filter_map(|f| Some((f, f.category()?, unique_name(&mut names, &f.name))))
        .collect()
}

/// The `moc_files` row of a file of a known category; its name is made
/// unique within the MOC by the caller.
fn moc_file<'a>(
    moc_id: Uuid,
    category: FileCategory,
    file: &'a FileRow,
    now: NaiveDateTime,
) -> NewMocFile<'a> {
    NewMocFile {
        moc_id,
        file_type: category.moc_file_type(),
        file_url: file.file_url.as_deref(),
        original_filename: &file.name,
        mime_type: &file.mime_type,
        created_at: now,
        crc32c: file.crc32c.as_deref(),
        checksum_verified: file.checksum_verified,
    }
}
