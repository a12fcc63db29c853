//! Finalizing a session into a MOC record (docs/contract.md §4.7). See
//! `docs/adr/0001-finalize-transaction.md` for the transaction boundary.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::User;
use crate::db::{self, Tx};
use crate::domain::SessionAction;
use crate::domain::{
    FieldErrors, FileCategory, FileVerificationProblem, JsonObject, SNIFF_LEN, TextKind,
    VerificationFailure, content_matches, slug_candidate, slugify, text_problem,
};
use crate::error::ApiError;
use crate::rate_limit;
use crate::services::lifecycle;
use crate::services::records::{self, FILE_COLUMNS, FileRow, SessionRow};
use crate::state::AppState;
use crate::time;

/// Serialization failures and deadlocks are retried this many times.
const TRANSACTION_ATTEMPTS: u32 = 3;
/// How often a finalize waiting for a concurrent one looks again. Each look
/// is two short queries on a pooled connection that goes straight back.
const LOCK_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How far down `base`, `base-2`, … a free slug is looked for.
const SLUG_CANDIDATES: u32 = 1000;

#[derive(Debug, Clone)]
pub struct FinalizeInput {
    pub session_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub theme: Option<String>,
}

impl FinalizeInput {
    pub fn from_json(body: &Value) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let obj = JsonObject::new("", body, &mut errors);
        if obj.is_object() && body.get("uploadSessionId").is_none_or(Value::is_null) {
            errors.add("uploadSessionId", "is required");
        }
        let session_id = obj.optional_uuid("uploadSessionId", &mut errors);
        let title = obj.string("title", 1..=200, &mut errors);
        let description =
            obj.optional_text("description", 0..=5000, TextKind::Multiline, &mut errors);
        let theme = obj.optional_string("theme", 0..=100, &mut errors);
        let tags = match body.get("tags") {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(_) => obj.array("tags", 0..=20, &mut errors, |path, value, errors| {
                let tag = value.as_str();
                let problem = tag.and_then(|tag| text_problem(tag, TextKind::Line));
                match (tag, problem) {
                    (_, Some(problem)) => {
                        errors.add(path, problem);
                        None
                    }
                    (Some(tag), None) if (1..=50).contains(&tag.chars().count()) => {
                        Some(tag.to_owned())
                    }
                    _ => {
                        errors.add(path, "must be a string of 1 to 50 characters");
                        None
                    }
                }
            }),
        };
        match (session_id, title, tags) {
            (Some(session_id), Some(title), Some(tags)) if errors.is_empty() => {
                let title = title.trim().to_owned();
                if title.is_empty() {
                    return Err(ApiError::invalid_field("title", "must not be blank"));
                }
                Ok(Self {
                    session_id,
                    title,
                    description,
                    tags,
                    theme,
                })
            }
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// The MOC a session became (contract §4.7).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MocView {
    pub id: Uuid,
    pub title: String,
    pub slug: Option<String>,
    pub description: Option<String>,
    /// `private` for a MOC finalized here.
    #[schema(example = "private")]
    pub status: String,
    /// The `fileUrl` of the first instruction file.
    pub pdf_key: Option<String>,
    /// The `fileUrl`s of the images and thumbnails.
    pub image_keys: Vec<String>,
    /// The `fileUrl`s of the parts lists.
    pub parts_keys: Vec<String>,
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Value,
    pub theme: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Present (true) when the session was finalized before this request.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(required = false)]
    pub idempotent: bool,
}

/// The 200 answer while another request finalizes the same session and the
/// wait for it ran out; sent with `Retry-After: 2`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FinalizeInProgress {
    #[schema(value_type = String, example = "finalizing")]
    pub status: &'static str,
    #[schema(value_type = bool, example = true)]
    pub idempotent: bool,
    #[schema(value_type = String, example = "Finalization in progress")]
    pub message: &'static str,
}

impl Default for FinalizeInProgress {
    fn default() -> Self {
        Self {
            status: "finalizing",
            idempotent: true,
            message: "Finalization in progress",
        }
    }
}

#[derive(Debug)]
pub enum FinalizeOutcome {
    /// 201: the MOC was created now.
    Created(MocView),
    /// 200: the session was finalized before; the stored MOC, `idempotent`.
    Replayed(MocView),
    /// 200: another request holds a fresh lock.
    InProgress,
}

#[tracing::instrument(skip_all, fields(user_id = %user.id, session_id = tracing::field::Empty))]
pub async fn finalize(
    state: &AppState,
    user: &User,
    body: Value,
) -> Result<FinalizeOutcome, ApiError> {
    let started = Instant::now();
    let input = FinalizeInput::from_json(&body)?;
    tracing::Span::current().record("session_id", tracing::field::display(input.session_id));
    rate_limit::count_finalize(state.redis(), state.config(), user).await?;

    // Step 7: a fresh lock held by another finalize (a double click, a
    // retried request) is waited out by polling, so the caller gets the MOC
    // it can parse rather than the "finalizing" body. No transaction stays
    // open while waiting: every look is two short statements on a pooled
    // connection. If the holder gives up and releases the lock, this request
    // takes it and does the work.
    let deadline = Instant::now() + state.config().finalize_wait;
    let mut session = records::owned_session(state.db(), input.session_id, user).await?;
    let lock = loop {
        if let Some(view) = replay(state, &session).await? {
            return Ok(FinalizeOutcome::Replayed(view));
        }
        lifecycle::permit(state, &session, SessionAction::Finalize).await?;
        if let Some(lock) = acquire_lock(state, &session).await? {
            break lock;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            tracing::info!(session_id = %session.id, "finalize still in progress elsewhere; answering finalizing");
            return Ok(FinalizeOutcome::InProgress);
        }
        tokio::time::sleep(remaining.min(LOCK_POLL_INTERVAL)).await;
        session = records::owned_session(state.db(), input.session_id, user).await?;
    };

    let result = finalize_locked(state, user, &session, &input, lock).await;
    match result {
        Ok((view, files)) => {
            tracing::info!(
                session_id = %session.id,
                moc_id = %view.id,
                file_count = files.len(),
                total_size_bytes = files.iter().map(|f| f.size.max(0) as u64).sum::<u64>(),
                duration_ms = started.elapsed().as_millis() as u64,
                "session finalized"
            );
            Ok(FinalizeOutcome::Created(view))
        }
        Err(error) => {
            release_lock(state, session.id, lock).await;
            Err(error)
        }
    }
}

/// The stored MOC of an already finalized session, with `idempotent: true`.
/// Answered even after expiry: the work is done.
async fn replay(state: &AppState, session: &SessionRow) -> Result<Option<MocView>, ApiError> {
    match (session.finalized_at, session.moc_instruction_id) {
        (Some(_), Some(moc_id)) => {
            let mut view = read_moc(state, moc_id).await?;
            view.idempotent = true;
            Ok(Some(view))
        }
        _ => Ok(None),
    }
}

/// Takes the `finalizing_at` lock when it is free or stale. Returns the lock
/// timestamp, or `None` when another finalize holds a fresh lock.
async fn acquire_lock(
    state: &AppState,
    session: &SessionRow,
) -> Result<Option<NaiveDateTime>, ApiError> {
    let now = time::now();
    let stale_before =
        now - chrono::Duration::from_std(state.config().finalize_lock_ttl).unwrap_or_default();
    let taken: Option<(Option<NaiveDateTime>,)> = sqlx::query_as(
        "WITH previous AS (
             SELECT id, finalizing_at FROM upload_sessions WHERE id = $1 FOR UPDATE
         )
         UPDATE upload_sessions s SET finalizing_at = $2, updated_at = $2
           FROM previous
          WHERE s.id = previous.id
            AND s.status = ANY($4)
            AND s.finalized_at IS NULL
            AND (previous.finalizing_at IS NULL OR previous.finalizing_at < $3)
         RETURNING previous.finalizing_at",
    )
    .bind(session.id)
    .bind(now)
    .bind(stale_before)
    .bind(SessionAction::Finalize.from_statuses())
    .fetch_optional(state.db())
    .await?;
    match taken {
        None => Ok(None),
        Some((Some(previous),)) => {
            tracing::warn!(
                session_id = %session.id,
                lock_age_ms = (now - previous).num_milliseconds(),
                "stale finalize lock taken over"
            );
            Ok(Some(now))
        }
        Some((None,)) => Ok(Some(now)),
    }
}

async fn release_lock(state: &AppState, session_id: Uuid, lock: NaiveDateTime) {
    let released = sqlx::query(
        "UPDATE upload_sessions SET finalizing_at = NULL WHERE id = $1 AND finalizing_at = $2",
    )
    .bind(session_id)
    .bind(lock)
    .execute(state.db())
    .await;
    if let Err(error) = released {
        tracing::error!(%error, %session_id, "could not release the finalize lock; it goes stale after FINALIZE_LOCK_TTL_MINUTES");
    }
}

async fn finalize_locked(
    state: &AppState,
    user: &User,
    session: &SessionRow,
    input: &FinalizeInput,
    lock: NaiveDateTime,
) -> Result<(MocView, Vec<FileRow>), ApiError> {
    let files: Vec<FileRow> = sqlx::query_as(&format!(
        "SELECT {FILE_COLUMNS} FROM upload_session_files
          WHERE session_id = $1 AND status = 'completed' ORDER BY created_at, id"
    ))
    .bind(session.id)
    .fetch_all(state.db())
    .await?;
    if !files
        .iter()
        .any(|f| f.category() == Some(FileCategory::Instruction))
    {
        return Err(ApiError::bad_request(
            "The session has no completed instruction file",
        ));
    }
    verify_files(state, &files).await?;

    let base = slugify(&input.title);
    let mut last_error = None;
    for attempt in 1..=TRANSACTION_ATTEMPTS {
        let slug = free_slug(state, &user.id, &base).await?;
        match write_moc(state, user, session, input, &files, &slug, lock).await {
            Ok(moc_id) => {
                let view = read_moc(state, moc_id).await?;
                return Ok((view, files));
            }
            Err(WriteError::TitleTaken) => {
                let suggested = free_slug(state, &user.id, &base).await?;
                return Err(ApiError::Conflict {
                    message: "You already have a MOC with this title".into(),
                    details: json!({
                        "title": input.title,
                        "suggestedSlug": suggested,
                        "retryStrategy": "AUTO_APPEND",
                    }),
                });
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

/// Checks every file in S3: the object exists, its size is the declared
/// size, its type is allowed for its category, and its first bytes carry the
/// declared format's signature. All problems are reported together.
async fn verify_files(state: &AppState, files: &[FileRow]) -> Result<(), ApiError> {
    let checks = files.iter().map(|file| verify_file(state, file));
    let results = futures::future::join_all(checks).await;
    let mut problems = Vec::new();
    for result in results {
        if let Some(problem) = result? {
            problems.push(problem);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::FileValidationFailed { files: problems })
    }
}

async fn verify_file(
    state: &AppState,
    file: &FileRow,
) -> Result<Option<FileVerificationProblem>, ApiError> {
    let problem = |reason, message: String| {
        Ok(Some(FileVerificationProblem {
            file_id: file.id,
            filename: file.name.clone(),
            reason,
            message,
        }))
    };
    let Some(category) = file.category() else {
        return problem(
            VerificationFailure::Type,
            format!("unknown category {}", file.category),
        );
    };
    if !category.allowed_types().contains(&file.mime_type.as_str()) {
        return problem(
            VerificationFailure::Type,
            format!("{} is not allowed for {category} files", file.mime_type),
        );
    }
    let Some(key) = file.s3_key.as_deref() else {
        return problem(
            VerificationFailure::Missing,
            "the file has no stored object".into(),
        );
    };
    match state.s3().object_size(key).await? {
        None => {
            return problem(
                VerificationFailure::Missing,
                "no object was found in storage".into(),
            );
        }
        Some(size) if size != file.size as u64 => {
            return problem(
                VerificationFailure::Size,
                format!("stored size {size} differs from the declared {}", file.size),
            );
        }
        Some(_) => {}
    }
    if category == FileCategory::Instruction || category.is_image() {
        let head = state.s3().read_head(key, SNIFF_LEN).await?;
        if !content_matches(&file.mime_type, &head) {
            // The declared type was only advisory until now (docs/contract.md §4.1).
            tracing::warn!(file_id = %file.id, declared = %file.mime_type, "stored content does not match the declared type");
            return problem(
                VerificationFailure::MagicBytes,
                format!("the content is not {}", file.mime_type),
            );
        }
    }
    Ok(None)
}

/// The first free slug of `base` for the user.
async fn free_slug(state: &AppState, user_id: &str, base: &str) -> Result<String, ApiError> {
    let taken: HashSet<String> = sqlx::query_scalar::<_, Option<String>>(
        "SELECT slug FROM moc_instructions WHERE user_id = $1 AND slug LIKE $2 || '%'",
    )
    .bind(user_id)
    .bind(base.chars().take(60).collect::<String>())
    .fetch_all(state.db())
    .await?
    .into_iter()
    .flatten()
    .collect();
    (1..=SLUG_CANDIDATES)
        .map(|n| slug_candidate(base, n))
        .find(|candidate| !taken.contains(candidate))
        .ok_or_else(|| ApiError::Conflict {
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
                if db::constraint(&error) == Some("moc_instructions_user_id_title_key") =>
            {
                WriteError::TitleTaken
            }
            // Another finalize of the same user took the slug between our
            // look-up and our insert: look again.
            Some(db::UNIQUE_VIOLATION)
                if db::constraint(&error) == Some("moc_instructions_user_id_slug_key") =>
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

    let moc_id = Uuid::new_v4();
    let now = time::now();
    sqlx::query(
        "INSERT INTO moc_instructions
            (id, user_id, title, description, type, slug, theme, tags, status, visibility,
             created_at, updated_at, finalized_at, added_by_user_id, last_updated_by_user_id)
         VALUES ($1, $2, $3, $4, 'moc', $5, $6, $7, 'private', 'private', $8, $8, $8, $2, $2)",
    )
    .bind(moc_id)
    .bind(&user.id)
    .bind(&input.title)
    .bind(&input.description)
    .bind(slug)
    .bind(&input.theme)
    .bind(sqlx::types::Json(&input.tags))
    .bind(now)
    .execute(&mut tx)
    .await?;

    let mut names = HashSet::new();
    for file in files {
        let Some(category) = file.category() else {
            continue;
        };
        sqlx::query(
            "INSERT INTO moc_files (id, moc_id, file_type, file_url, original_filename, mime_type, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(Uuid::new_v4())
        .bind(moc_id)
        .bind(category.moc_file_type())
        .bind(&file.file_url)
        .bind(unique_name(&mut names, &file.name))
        .bind(&file.mime_type)
        .bind(now)
        .execute(&mut tx)
        .await?;
    }

    let thumbnail = files
        .iter()
        .filter(|f| f.category().is_some_and(FileCategory::is_image))
        .find_map(|f| f.file_url.clone());
    if thumbnail.is_some() {
        sqlx::query("UPDATE moc_instructions SET thumbnail_url = $2 WHERE id = $1")
            .bind(moc_id)
            .bind(&thumbnail)
            .execute(&mut tx)
            .await?;
    }

    let completed = sqlx::query(
        "UPDATE upload_sessions
            SET status = 'completed', finalized_at = $2, moc_instruction_id = $3,
                finalizing_at = NULL, updated_at = $2
          WHERE id = $1 AND finalizing_at = $4 AND finalized_at IS NULL",
    )
    .bind(session.id)
    .bind(now)
    .bind(moc_id)
    .bind(lock)
    .execute(&mut tx)
    .await?;
    if completed.rows_affected() != 1 {
        return Err(WriteError::LockLost);
    }
    tx.commit().await?;
    Ok(moc_id)
}

/// `moc_files` is unique on `(moc_id, original_filename)`, yet a session
/// may hold an image and a thumbnail of the same name: later ones become
/// `name (2).ext`, `name (3).ext`, …
fn unique_name(seen: &mut HashSet<String>, name: &str) -> String {
    if seen.insert(name.to_owned()) {
        return name.to_owned();
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    (2..)
        .map(|n| format!("{stem} ({n}){ext}"))
        .find(|candidate| seen.insert(candidate.clone()))
        .unwrap_or_else(|| name.to_owned())
}

/// The MOC and its files, read in one transaction.
async fn read_moc(state: &AppState, moc_id: Uuid) -> Result<MocView, ApiError> {
    let mut tx = state.db().begin().await?;
    let view = load_moc(&mut tx, moc_id).await?;
    tx.commit().await?;
    Ok(view)
}

async fn load_moc(db: &mut Tx, moc_id: Uuid) -> Result<MocView, ApiError> {
    #[derive(sqlx::FromRow)]
    struct MocRow {
        id: Uuid,
        title: String,
        slug: Option<String>,
        description: Option<String>,
        status: String,
        tags: Option<sqlx::types::Json<Value>>,
        theme: Option<String>,
        created_at: NaiveDateTime,
    }
    let moc: MocRow = sqlx::query_as(
        "SELECT id, title, slug, description, status, tags, theme, created_at
           FROM moc_instructions WHERE id = $1",
    )
    .bind(moc_id)
    .fetch_optional(&mut *db)
    .await?
    .ok_or(ApiError::NotFound("MOC"))?;
    let files: Vec<(String, String)> = sqlx::query_as(
        "SELECT file_type, file_url FROM moc_files
          WHERE moc_id = $1 AND deleted_at IS NULL ORDER BY created_at, id",
    )
    .bind(moc_id)
    .fetch_all(&mut *db)
    .await?;
    let urls_of = |types: &[&str]| -> Vec<String> {
        files
            .iter()
            .filter(|(t, _)| types.contains(&t.as_str()))
            .map(|(_, url)| url.clone())
            .collect()
    };
    Ok(MocView {
        id: moc.id,
        title: moc.title,
        slug: moc.slug,
        description: moc.description,
        status: moc.status,
        pdf_key: urls_of(&["instruction"]).into_iter().next(),
        image_keys: urls_of(&["gallery-image", "thumbnail"]),
        parts_keys: urls_of(&["parts-list"]),
        tags: moc.tags.map_or_else(|| json!([]), |t| t.0),
        theme: moc.theme,
        created_at: time::rfc3339(moc.created_at),
        idempotent: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_file_names_are_numbered() {
        let mut seen = HashSet::new();
        assert_eq!(unique_name(&mut seen, "a.png"), "a.png");
        assert_eq!(unique_name(&mut seen, "a.png"), "a (2).png");
        assert_eq!(unique_name(&mut seen, "a.png"), "a (3).png");
        assert_eq!(unique_name(&mut seen, "README"), "README");
        assert_eq!(unique_name(&mut seen, "README"), "README (2)");
    }

    #[test]
    fn finalize_input_is_validated_field_by_field() {
        let err = FinalizeInput::from_json(&json!({"title": "", "tags": ["ok", 3]})).unwrap_err();
        let ApiError::Validation(errors) = err else {
            panic!("expected a validation error");
        };
        assert!(errors.0.contains_key("uploadSessionId"));
        assert!(errors.0.contains_key("title"));
        assert!(errors.0.contains_key("tags[1]"));
    }
}
