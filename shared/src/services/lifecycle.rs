//! The upload lifecycle routes (docs/contract.md §4.8–§4.13): session status,
//! cancel, abort one file, extend, fresh part URLs, and the expiry sweeper.
//!
//! Whether a change is allowed is decided by `domain::lifecycle` only; this
//! module turns its refusals into the contract's answers and does the work.
//!
//! Storage cleanup follows one discipline (no transaction is held across
//! an S3 call):
//! 1. claim, with one guarded statement that commits at once: the session's
//!    new status plus `cleanup_claimed_at` (cancel, sweep), or the file row's
//!    deletion (abort one file);
//! 2. abort the multipart uploads and delete the completed objects;
//! 3. delete the file rows (their parts cascade) and clear the claim.
//!
//! A run that dies between 1 and 3 leaves a claim that goes stale after
//! [`CLEANUP_LEASE`]; the sweeper then finishes it. An upload left open by a
//! failure after an abort's row deletion has no row any more, so the
//! sweeper's orphan pass aborts it after the grace period.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use futures::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::User;
use crate::domain::{
    FieldErrors, FileAction, FileRefusal, FileStatus, JsonObject, PartNumber, Permit, Refusal,
    SessionAction, SessionState, SessionStatus,
};
use crate::error::ApiError;
use crate::services::files::{self, PresignedPartUrl};
use crate::services::parts;
use crate::services::records::{self, FILE_COLUMNS, FileRow, SessionRow};
use crate::state::AppState;
use crate::time;

/// How long a cleanup claim protects a session from other runs. Longer than
/// any function's `maxDuration` (60 s), so only a dead run's claim expires.
pub const CLEANUP_LEASE: Duration = Duration::from_secs(5 * 60);
/// The sweeper stops starting new work after this much of its 60 s budget.
const SWEEP_BUDGET: Duration = Duration::from_secs(40);
/// Sessions cleaned in parallel by one sweeper run. Each holds a database
/// connection only for single statements, never across S3 calls, so this
/// stays within the pool of 5.
const SWEEP_CONCURRENCY: usize = 4;
/// Most open uploads one run reads from ListMultipartUploads.
const ORPHAN_SCAN_LIMIT: usize = 10_000;

/// The session as the lifecycle sees it now.
pub fn lifecycle_of(state: &AppState, session: &SessionRow, now: NaiveDateTime) -> SessionState {
    SessionState::new(
        &session.status,
        session.expires_at,
        session.finalized_at,
        session.finalizing_at,
        now,
        state.config().finalize_lock_ttl,
    )
}

/// The contract's answer to a refusal: 410 for expiry (with its context),
/// 409 for a finalized, finalizing or cancelled session.
pub async fn refusal_error(
    db: impl sqlx::PgExecutor<'_>,
    session: &SessionRow,
    refusal: Refusal,
    now: NaiveDateTime,
) -> ApiError {
    let conflict = |message: &str, details: Value| ApiError::Conflict {
        message: message.to_owned(),
        details,
    };
    match refusal {
        Refusal::Expired => session.gone(db, now).await,
        Refusal::Finalized => conflict(
            "The upload session is finalized; its files belong to the MOC",
            json!({"status": "completed", "mocId": session.moc_instruction_id}),
        ),
        Refusal::Finalizing => conflict(
            "The upload session is being finalized",
            json!({"status": "finalizing", "retryStrategy": "RETRY"}),
        ),
        Refusal::Cancelled => conflict(
            "The upload session was cancelled",
            json!({"status": "cancelled"}),
        ),
        Refusal::Live => ApiError::internal("the sweeper's refusal reached a user route"),
    }
}

/// Asks the lifecycle whether `action` may happen to `session` now.
pub async fn permit(
    state: &AppState,
    session: &SessionRow,
    action: SessionAction,
) -> Result<Permit, ApiError> {
    let now = time::now();
    match lifecycle_of(state, session, now).permits(action) {
        Ok(permit) => Ok(permit),
        Err(refusal) => Err(refusal_error(state.db(), session, refusal, now).await),
    }
}

/// 409 for a file action the file's status refuses.
pub fn file_refusal_error(file: &FileRow, refusal: FileRefusal) -> ApiError {
    match refusal {
        FileRefusal::Completed => ApiError::Conflict {
            message: "This file is already completed; it takes no more parts".into(),
            details: json!({"fileId": file.id, "fileUrl": file.file_url}),
        },
    }
}

pub fn file_permit(file: &FileRow, action: FileAction) -> Result<Permit, ApiError> {
    FileStatus::parse(&file.status)
        .permits(action)
        .map_err(|refusal| file_refusal_error(file, refusal))
}

// ------------------------------------------------------------------ §4.8

/// What a client resumes from (contract §4.8).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub session_id: Uuid,
    pub status: SessionStatus,
    pub part_size_bytes: i32,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The files declared at create, as sent.
    #[schema(value_type = Vec<crate::openapi::requests::FileMetadataBody>)]
    pub declared_files: Vec<Value>,
    pub files: Vec<FileView>,
    /// Set once the session is finalized.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moc_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileView {
    pub file_id: Uuid,
    /// As stored; only the four categories are ever written.
    #[schema(value_type = crate::domain::FileCategory)]
    pub category: String,
    pub name: String,
    pub size: i32,
    #[serde(rename = "type")]
    pub mime_type: String,
    pub status: FileStatus,
    pub part_count: u64,
    /// The part numbers the database has recorded, ascending. Parts PUT
    /// straight to S3 appear once the parts route (§4.5) reconciled them.
    pub uploaded_parts: Vec<i32>,
    /// Set once the file is completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
}

/// What a client resumes from after a reload (§4.8). Read-only: an expired
/// session is still readable, its status says so.
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id))]
pub async fn status(
    state: &AppState,
    user: &User,
    session_id: Uuid,
) -> Result<SessionView, ApiError> {
    let session = records::owned_session(state.db(), session_id, user).await?;
    permit(state, &session, SessionAction::Read).await?;
    let files: Vec<FileRow> = sqlx::query_as(&format!(
        "SELECT {FILE_COLUMNS} FROM upload_session_files WHERE session_id = $1 ORDER BY created_at, id"
    ))
    .bind(session_id)
    .fetch_all(state.db())
    .await?;
    let parts: Vec<(Uuid, i32)> = sqlx::query_as(
        "SELECT p.file_id, p.part_number FROM upload_session_parts p
           JOIN upload_session_files f ON f.id = p.file_id
          WHERE f.session_id = $1 ORDER BY p.file_id, p.part_number",
    )
    .bind(session_id)
    .fetch_all(state.db())
    .await?;
    let lifecycle = lifecycle_of(state, &session, time::now());
    let declared_files = session
        .metadata
        .as_ref()
        .and_then(|m| m.0.get("files"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let files = files
        .into_iter()
        .map(|file| FileView {
            part_count: file.plan(&session).part_count(),
            uploaded_parts: parts
                .iter()
                .filter(|(id, _)| *id == file.id)
                .map(|(_, n)| *n)
                .collect(),
            file_id: file.id,
            category: file.category,
            name: file.name,
            size: file.size,
            mime_type: file.mime_type,
            status: FileStatus::parse(&file.status),
            file_url: file.file_url,
        })
        .collect();
    Ok(SessionView {
        session_id,
        status: lifecycle.visible_status(),
        part_size_bytes: session.part_size_bytes,
        expires_at: time::rfc3339(session.expires_at),
        created_at: time::rfc3339(session.created_at),
        declared_files,
        files,
        moc_id: session.moc_instruction_id,
    })
}

// ------------------------------------------------------------------ storage cleanup

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Released {
    pub uploads_aborted: u64,
    pub objects_deleted: u64,
}

impl std::ops::AddAssign for Released {
    fn add_assign(&mut self, other: Self) {
        self.uploads_aborted += other.uploads_aborted;
        self.objects_deleted += other.objects_deleted;
    }
}

/// Aborts the file's upload and deletes its object.
///
/// An upload S3 no longer knows is not an error. It may have been completed
/// by a complete racing this abort, so its object is deleted then too:
/// either way nothing of the file is left in S3.
async fn release_file(state: &AppState, file: &FileRow) -> Result<Released, ApiError> {
    let mut released = Released::default();
    let Some(key) = file.s3_key.as_deref() else {
        return Ok(released);
    };
    let status = FileStatus::parse(&file.status);
    let mut delete_object = !status.has_open_upload();
    if let (true, Some(upload_id)) = (status.has_open_upload(), file.upload_id.as_deref()) {
        if state.s3().abort_upload_if_open(key, upload_id).await? {
            released.uploads_aborted += 1;
        } else {
            delete_object = true;
        }
    }
    if delete_object {
        state.s3().delete_object(key).await?;
        if !status.has_open_upload() {
            released.objects_deleted += 1;
        }
    }
    tracing::info!(file_id = %file.id, key, ?released, "file storage released");
    Ok(released)
}

/// Releases the storage of every file of a claimed session, then deletes
/// the file rows (parts cascade) and clears the claim. Only rows whose
/// storage was released are deleted; a row that appeared meanwhile (a
/// registration that committed before the claim) is picked up by the next
/// round.
async fn release_session(state: &AppState, session_id: Uuid) -> Result<Released, ApiError> {
    let mut released = Released::default();
    for _ in 0..3 {
        let files: Vec<FileRow> = sqlx::query_as(&format!(
            "SELECT {FILE_COLUMNS} FROM upload_session_files WHERE session_id = $1"
        ))
        .bind(session_id)
        .fetch_all(state.db())
        .await?;
        if files.is_empty() {
            break;
        }
        for file in &files {
            released += release_file(state, file).await?;
        }
        let ids: Vec<Uuid> = files.iter().map(|f| f.id).collect();
        sqlx::query("DELETE FROM upload_session_files WHERE session_id = $1 AND id = ANY($2)")
            .bind(session_id)
            .bind(&ids)
            .execute(state.db())
            .await?;
    }
    sqlx::query("UPDATE upload_sessions SET cleanup_claimed_at = NULL WHERE id = $1")
        .bind(session_id)
        .execute(state.db())
        .await?;
    Ok(released)
}

/// Takes over the leftover cleanup of a cancelled or expired session, unless
/// another run holds a fresh claim on it or nothing is left.
async fn claim_leftover(state: &AppState, session_id: Uuid) -> Result<bool, ApiError> {
    let now = time::now();
    let claimed = sqlx::query(
        "UPDATE upload_sessions s SET cleanup_claimed_at = $2
          WHERE s.id = $1 AND s.status IN ('cancelled', 'expired') AND s.finalized_at IS NULL
            AND (s.cleanup_claimed_at IS NULL OR s.cleanup_claimed_at < $3)
            AND EXISTS (SELECT 1 FROM upload_session_files f WHERE f.session_id = s.id)",
    )
    .bind(session_id)
    .bind(now)
    .bind(lease_expired_before(now))
    .execute(state.db())
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// The guarded statement matched nothing although the lifecycle, asked
/// again, allows the action: the session changed between the two (a
/// finalize lock taken and released). Retrying is safe.
fn changed_meanwhile() -> ApiError {
    ApiError::Conflict {
        message: "The upload session changed while this request ran; retry".into(),
        details: json!({"retryStrategy": "RETRY"}),
    }
}

fn lease_expired_before(now: NaiveDateTime) -> NaiveDateTime {
    now - chrono::Duration::from_std(CLEANUP_LEASE).unwrap_or_default()
}

fn lock_stale_before(state: &AppState, now: NaiveDateTime) -> NaiveDateTime {
    now - chrono::Duration::from_std(state.config().finalize_lock_ttl).unwrap_or_default()
}

// ------------------------------------------------------------------ §4.9

/// Cancels a session (§4.9): its uploads aborted, its completed objects
/// deleted, its file and part rows deleted, its status `cancelled`. The
/// daily quota is not refunded. Repeating it answers success.
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id))]
pub async fn cancel(state: &AppState, user: &User, session_id: Uuid) -> Result<(), ApiError> {
    let session = records::owned_session(state.db(), session_id, user).await?;
    let proceed = permit(state, &session, SessionAction::Cancel).await? == Permit::Proceed;
    let claimed = if proceed {
        let now = time::now();
        // The guard repeats the lifecycle's rule in SQL, so a finalize that
        // took its lock after our read cannot lose its files to us (and
        // finalize's lock requires `active`, so it cannot take ours).
        let claimed = sqlx::query(
            "UPDATE upload_sessions
                SET status = 'cancelled', cleanup_claimed_at = $2, updated_at = $2
              WHERE id = $1 AND status = ANY($3) AND finalized_at IS NULL
                AND (finalizing_at IS NULL OR finalizing_at < $4)",
        )
        .bind(session_id)
        .bind(now)
        .bind(SessionAction::Cancel.from_statuses())
        .bind(lock_stale_before(state, now))
        .execute(state.db())
        .await?;
        if claimed.rows_affected() == 0 {
            // Something changed since the read: decide again on fresh data.
            let current = records::owned_session(state.db(), session_id, user).await?;
            match permit(state, &current, SessionAction::Cancel).await? {
                Permit::AlreadyDone => claim_leftover(state, session_id).await?,
                Permit::Proceed => return Err(changed_meanwhile()),
            }
        } else {
            true
        }
    } else {
        claim_leftover(state, session_id).await?
    };
    if claimed {
        let released = release_session(state, session_id).await?;
        tracing::info!(
            uploads_aborted = released.uploads_aborted,
            objects_deleted = released.objects_deleted,
            "upload session cancelled"
        );
    }
    Ok(())
}

// ------------------------------------------------------------------ §4.10

/// Aborts one file (§4.10): its upload aborted, its object deleted, its row
/// and parts deleted; its name and count slot are free again.
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id, %file_id))]
pub async fn abort_file(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    file_id: Uuid,
) -> Result<(), ApiError> {
    let session = records::owned_session(state.db(), session_id, user).await?;
    permit(state, &session, SessionAction::AbortFile).await?;
    let now = time::now();
    // The claim is the row's deletion, in one statement that share-locks the
    // session row: it cannot interleave with finalize taking its lock (which
    // needs that row exclusively), so a finalize either sees the file with
    // its object or does not see it at all.
    let deleted: Option<FileRow> = sqlx::query_as(&format!(
        "WITH live AS (
             SELECT id FROM upload_sessions
              WHERE id = $2 AND status = ANY($3) AND finalized_at IS NULL
                AND (finalizing_at IS NULL OR finalizing_at < $4) AND expires_at > $5
              FOR SHARE
         )
         DELETE FROM upload_session_files f USING live
          WHERE f.id = $1 AND f.session_id = live.id
         RETURNING {}",
        FILE_COLUMNS
            .split(", ")
            .map(|c| format!("f.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(file_id)
    .bind(session_id)
    .bind(SessionAction::AbortFile.from_statuses())
    .bind(lock_stale_before(state, now))
    .bind(now)
    .fetch_optional(state.db())
    .await?;
    let Some(file) = deleted else {
        // Either no such file (404), or the session changed under us.
        let current = records::owned_session(state.db(), session_id, user).await?;
        permit(state, &current, SessionAction::AbortFile).await?;
        return Err(ApiError::NotFound("file"));
    };
    // The row is gone; a failure from here leaves at most an open upload
    // with no row, which the sweeper's orphan pass aborts.
    let released = release_file(state, &file).await.inspect_err(|error| {
        tracing::error!(%error, key = ?file.s3_key, upload_id = ?file.upload_id,
            "file row deleted but its storage was not released; the sweeper's orphan pass aborts an open upload");
    })?;
    tracing::info!(?released, "file aborted");
    Ok(())
}

// ------------------------------------------------------------------ §4.11

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Extended {
    pub session_id: Uuid,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// Extends an active session (§4.11): `expires_at` = now + the session TTL,
/// capped at `created_at` + `UPLOAD_SESSION_MAX_LIFETIME_MINUTES`, and never
/// moved earlier.
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id))]
pub async fn extend(state: &AppState, user: &User, session_id: Uuid) -> Result<Extended, ApiError> {
    let config = state.config();
    let session = records::owned_session(state.db(), session_id, user).await?;
    permit(state, &session, SessionAction::Extend).await?;
    let now = time::now();
    let cap = time::add(session.created_at, config.session_max_lifetime);
    let wanted = time::add(now, config.session_ttl).min(cap);
    let updated: Option<NaiveDateTime> = sqlx::query_scalar(
        "UPDATE upload_sessions SET expires_at = GREATEST(expires_at, $2), updated_at = $3
          WHERE id = $1 AND status = ANY($4) AND finalized_at IS NULL AND expires_at > $3
            AND (finalizing_at IS NULL OR finalizing_at < $5)
         RETURNING expires_at",
    )
    .bind(session_id)
    .bind(wanted)
    .bind(now)
    .bind(SessionAction::Extend.from_statuses())
    .bind(lock_stale_before(state, now))
    .fetch_optional(state.db())
    .await?;
    let Some(expires_at) = updated else {
        let current = records::owned_session(state.db(), session_id, user).await?;
        permit(state, &current, SessionAction::Extend).await?;
        return Err(changed_meanwhile());
    };
    tracing::info!(
        expires_at = %time::rfc3339(expires_at),
        capped = wanted == cap,
        "upload session extended"
    );
    Ok(Extended {
        session_id,
        expires_at: time::rfc3339(expires_at),
    })
}

// ------------------------------------------------------------------ §4.12

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FreshUrls {
    pub file_id: Uuid,
    pub presigned_urls: Vec<PresignedPartUrl>,
}

/// Fresh presigned part URLs (§4.12): for the listed part numbers, or, for
/// `{}`, for every part S3 does not hold yet (reconciled with ListParts).
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id, %file_id))]
pub async fn fresh_urls(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    file_id: Uuid,
    body: Value,
) -> Result<FreshUrls, ApiError> {
    let requested = parse_part_numbers(&body)?;
    let session = records::owned_session(state.db(), session_id, user).await?;
    permit(state, &session, SessionAction::UploadParts).await?;
    let file = records::session_file(state.db(), session_id, file_id).await?;
    file_permit(&file, FileAction::PresignParts)?;
    let (key, upload_id) = file.upload()?;
    let plan = file.plan(&session);
    let parts: Vec<PartNumber> = match requested {
        Some(numbers) => {
            let over: Vec<u16> = numbers
                .iter()
                .map(|n| n.get())
                .filter(|n| u64::from(*n) > plan.part_count())
                .collect();
            if !over.is_empty() {
                let mut errors = FieldErrors::default();
                errors.add(
                    "partNumbers",
                    format!(
                        "the file has {} parts; {over:?} are beyond it",
                        plan.part_count()
                    ),
                );
                return Err(ApiError::Validation(errors));
            }
            numbers
        }
        None => {
            let stored: HashSet<PartNumber> = parts::reconcile(state, state.db(), &session, &file)
                .await?
                .into_iter()
                .map(|p| p.part_number)
                .collect();
            plan.parts().filter(|n| !stored.contains(n)).collect()
        }
    };
    let presigned_urls = files::presign_parts(state, key, upload_id, plan, parts).await?;
    tracing::info!(urls = presigned_urls.len(), "fresh part URLs issued");
    Ok(FreshUrls {
        file_id,
        presigned_urls,
    })
}

/// `{"partNumbers": [..]}` → those parts (deduplicated, ascending); `{}` →
/// `None`, meaning every part S3 lacks.
fn parse_part_numbers(body: &Value) -> Result<Option<Vec<PartNumber>>, ApiError> {
    let mut errors = FieldErrors::default();
    let obj = JsonObject::new("", body, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if body.get("partNumbers").is_none_or(Value::is_null) {
        return Ok(None);
    }
    let numbers = obj.array(
        "partNumbers",
        1..=usize::from(PartNumber::MAX),
        &mut errors,
        |path, value, errors| {
            let n = value
                .as_u64()
                .filter(|n| (1..=u64::from(PartNumber::MAX)).contains(n));
            match n.and_then(|n| PartNumber::new(n as u16)) {
                Some(n) => Some(n),
                None => {
                    errors.add(path, "must be an integer from 1 to 10000");
                    None
                }
            }
        },
    );
    match numbers {
        Some(mut numbers) if errors.is_empty() => {
            numbers.sort();
            numbers.dedup();
            Ok(Some(numbers))
        }
        _ => Err(ApiError::Validation(errors)),
    }
}

// ------------------------------------------------------------------ §4.13

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub sessions_expired: u64,
    pub uploads_aborted: u64,
    pub objects_deleted: u64,
    pub orphan_uploads_aborted: u64,
    /// Sessions whose cleanup failed this run; retried once their claim
    /// goes stale.
    pub sessions_failed: u64,
    /// More sessions wait for a later run.
    pub remaining: bool,
    pub duration_ms: u64,
}

/// The sessions a sweep may claim: active ones long expired (past expiry
/// plus the grace period), not finalized, without a fresh finalize lock;
/// and cancelled or expired ones whose cleanup a dead run left behind.
const SWEEPABLE: &str = "finalized_at IS NULL AND (
        (status = ANY($1) AND expires_at < $2 AND (finalizing_at IS NULL OR finalizing_at < $3))
     OR (status IN ('cancelled', 'expired')
         AND (cleanup_claimed_at IS NULL OR cleanup_claimed_at < $4)
         AND EXISTS (SELECT 1 FROM upload_session_files f WHERE f.session_id = upload_sessions.id)))";

/// One run of the expiry sweeper (§4.13).
///
/// - Claims at most `SWEEP_BATCH_SIZE` sessions, oldest expiry first, with
///   `FOR UPDATE SKIP LOCKED`: overlapping runs claim disjoint sessions, and
///   the claim commits before any S3 call, so none is processed twice.
/// - Cleans them as cancel does, then aborts orphan uploads: open multipart
///   uploads under this stage's prefix, older than the grace period, that no
///   file row refers to.
/// - Never touches a finalized session: its objects belong to a MOC.
#[tracing::instrument(skip_all)]
pub async fn sweep(state: &AppState) -> Result<SweepReport, ApiError> {
    let started = Instant::now();
    let config = state.config();
    let now = time::now();
    let grace = chrono::Duration::from_std(config.expired_session_grace).unwrap_or_default();
    let mut report = SweepReport::default();

    let claimed: Vec<(Uuid, String)> = sqlx::query_as(&format!(
        "WITH picked AS (
             SELECT id, status FROM upload_sessions
              WHERE {SWEEPABLE}
              ORDER BY expires_at, id
              LIMIT $5
              FOR UPDATE SKIP LOCKED
         )
         UPDATE upload_sessions s
            SET status = CASE WHEN s.status = 'active' THEN 'expired' ELSE s.status END,
                cleanup_claimed_at = $6, updated_at = $6
           FROM picked
          WHERE s.id = picked.id
         RETURNING s.id, picked.status"
    ))
    .bind(SessionAction::Sweep.from_statuses())
    .bind(now - grace)
    .bind(lock_stale_before(state, now))
    .bind(lease_expired_before(now))
    .bind(i64::from(config.sweep_batch_size))
    .bind(now)
    .fetch_all(state.db())
    .await?;
    report.sessions_expired = claimed.iter().filter(|(_, s)| s == "active").count() as u64;

    let ids: Vec<Uuid> = claimed.iter().map(|(id, _)| *id).collect();
    // Owned state per task: the stream's futures must not borrow the list.
    let mut cleanups = futures::stream::iter(ids)
        .map(|id| {
            let state = state.clone();
            async move { (id, release_session(&state, id).await) }
        })
        .buffer_unordered(SWEEP_CONCURRENCY);
    while let Some((session_id, outcome)) = cleanups.next().await {
        match outcome {
            Ok(released) => {
                report.uploads_aborted += released.uploads_aborted;
                report.objects_deleted += released.objects_deleted;
            }
            Err(error) => {
                report.sessions_failed += 1;
                tracing::error!(%session_id, %error, "sweeper could not clean a session; retried after the claim goes stale");
            }
        }
    }
    drop(cleanups);

    if started.elapsed() < SWEEP_BUDGET {
        match abort_orphans(state, now - grace, started).await {
            Ok(aborted) => report.orphan_uploads_aborted = aborted,
            Err(error) => {
                tracing::error!(%error, "sweeper could not finish the orphan upload pass");
            }
        }
    }

    let now = time::now();
    report.remaining = sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM upload_sessions WHERE {SWEEPABLE})"
    ))
    .bind(SessionAction::Sweep.from_statuses())
    .bind(now - grace)
    .bind(lock_stale_before(state, now))
    .bind(lease_expired_before(now))
    .fetch_one(state.db())
    .await?;
    report.duration_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        sessionsExpired = report.sessions_expired,
        uploadsAborted = report.uploads_aborted,
        objectsDeleted = report.objects_deleted,
        orphanUploadsAborted = report.orphan_uploads_aborted,
        sessionsFailed = report.sessions_failed,
        remaining = report.remaining,
        durationMs = report.duration_ms,
        "expiry sweep finished"
    );
    Ok(report)
}

/// Aborts open uploads under this stage's prefix that were started before
/// `older_than` and that no file row refers to. The age matters: a
/// registration creates its S3 upload just after committing its row and
/// records the upload ID just after that, so a young unreferenced upload
/// may be one being registered right now.
async fn abort_orphans(
    state: &AppState,
    older_than: NaiveDateTime,
    started: Instant,
) -> Result<u64, ApiError> {
    let prefix = format!("{}/moc-instructions/", state.config().stage.as_str());
    let old: Vec<_> = state
        .s3()
        .list_open_uploads(&prefix, ORPHAN_SCAN_LIMIT)
        .await?
        .into_iter()
        .filter(|u| u.initiated.is_some_and(|at| at.naive_utc() <= older_than))
        .collect();
    if old.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = old.iter().map(|u| u.upload_id.as_str()).collect();
    let referenced: HashSet<String> =
        sqlx::query_scalar("SELECT upload_id FROM upload_session_files WHERE upload_id = ANY($1)")
            .bind(&ids)
            .fetch_all(state.db())
            .await?
            .into_iter()
            .collect();
    let mut aborted = 0;
    for upload in old.iter().filter(|u| !referenced.contains(&u.upload_id)) {
        if started.elapsed() >= SWEEP_BUDGET {
            break;
        }
        if state
            .s3()
            .abort_upload_if_open(&upload.key, &upload.upload_id)
            .await?
        {
            tracing::info!(key = %upload.key, upload_id = %upload.upload_id, "orphan multipart upload aborted");
            aborted += 1;
        }
    }
    Ok(aborted)
}

/// The cron call's credential (§4.13): exactly `Authorization: Bearer
/// $CRON_SECRET`. Unset secret, missing or wrong header: 403.
pub fn authorize_cron(state: &AppState, authorization: Option<&str>) -> Result<(), ApiError> {
    let forbidden = ApiError::Forbidden("This route is for the scheduled job only");
    let (Some(secret), Some(header)) = (state.config().cron_secret.as_deref(), authorization)
    else {
        return Err(forbidden);
    };
    let presented = header.strip_prefix("Bearer ").unwrap_or("");
    if constant_time_eq(presented.as_bytes(), secret.as_bytes()) {
        Ok(())
    } else {
        Err(forbidden)
    }
}

/// Compares without an early exit, so the time taken does not tell how much
/// of a guessed secret was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_numbers_parse_sorted_and_deduplicated_or_mean_all_missing() {
        assert_eq!(parse_part_numbers(&json!({})).unwrap(), None);
        let parsed = parse_part_numbers(&json!({"partNumbers": [3, 1, 3]}))
            .unwrap()
            .unwrap();
        assert_eq!(parsed.iter().map(|n| n.get()).collect::<Vec<_>>(), [1, 3]);
        for bad in [
            json!({"partNumbers": [0]}),
            json!({"partNumbers": [10001]}),
            json!({"partNumbers": ["1"]}),
            json!({"partNumbers": []}),
            json!([1]),
        ] {
            let err = parse_part_numbers(&bad).unwrap_err();
            assert_eq!(err.code(), "VALIDATION_ERROR", "{bad}");
        }
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"secret"));
    }
}
