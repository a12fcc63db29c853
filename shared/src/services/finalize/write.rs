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
use crate::db::{self, Tx};
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
    let mut files: Vec<FileRow> = store::files::of_session(state.db(), session.id)
        .await?
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
    store::files::mark_checksum_verified(state.db(), &verified).await?;
    for file in files.iter_mut().filter(|f| verified.contains(&f.id)) {
        file.checksum_verified = true;
    }
    let moc_id = write_with_retries(state, user, session, input, &files, lock).await?;
    let view = read_moc(state, moc_id).await?;
    Ok((view, files))
}

async fn write_with_retries(
    state: &AppState,
    user: &User,
    session: &SessionRow,
    input: &FinalizeInput,
    files: &[FileRow],
    lock: NaiveDateTime,
) -> Result<Uuid, ApiError> {
    let base = slugify(&input.title);
    let mut last_error = None;
    for attempt in 1..=TRANSACTION_ATTEMPTS {
        let slug = free_slug(state, &user.id, &base).await?;
        match write_moc(state, user, session, input, files, &slug, lock).await {
            Ok(moc_id) => return Ok(moc_id),
            Err(WriteError::TitleTaken) => {
                return Err(title_taken(state, &user.id, &base, input).await);
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
    let prefix: String = base.chars().take(60).collect();
    let taken: HashSet<String> = store::mocs::slugs_like(state.db(), user_id, &prefix)
        .await?
        .into_iter()
        .flatten()
        .collect();
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
    Retryable(sqlx::Error),
    Other(sqlx::Error),
}

impl From<sqlx::Error> for WriteError {
    fn from(error: sqlx::Error) -> Self {
        match db::sqlstate(&error).as_deref() {
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
async fn write_moc(
    state: &AppState,
    user: &User,
    session: &SessionRow,
    input: &FinalizeInput,
    files: &[FileRow],
    slug: &str,
    lock: NaiveDateTime,
) -> Result<Uuid, WriteError> {
    let mut tx = state
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
    store::mocs::insert(&mut tx, &moc).await?;
    insert_files(&mut tx, moc.id, files, moc.created_at).await?;
    let thumbnail = files
        .iter()
        .filter(|f| f.category().is_some_and(FileCategory::is_image))
        .find_map(|f| f.file_url.as_deref());
    if let Some(thumbnail) = thumbnail {
        store::mocs::set_thumbnail(&mut tx, moc.id, thumbnail).await?;
    }
    if !store::sessions::mark_finalized(&mut tx, session.id, moc.id, lock, moc.created_at).await? {
        return Err(WriteError::LockLost);
    }
    tx.commit().await?;
    Ok(moc.id)
}

/// One `moc_files` row per file of a known category, under a name unique
/// within the MOC.
async fn insert_files(
    tx: &mut Tx,
    moc_id: Uuid,
    files: &[FileRow],
    now: NaiveDateTime,
) -> Result<(), sqlx::Error> {
    let mut names = HashSet::new();
    for file in files {
        let Some(category) = file.category() else {
            continue;
        };
        let row = NewMocFile {
            moc_id,
            file_type: category.moc_file_type(),
            file_url: file.file_url.as_deref(),
            original_filename: &unique_name(&mut names, &file.name),
            mime_type: &file.mime_type,
            created_at: now,
            crc32c: file.crc32c.as_deref(),
            checksum_verified: file.checksum_verified,
        };
        store::mocs::insert_file(&mut *tx, &row).await?;
    }
    Ok(())
}
