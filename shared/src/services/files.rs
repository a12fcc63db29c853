//! Registering files (docs/contract.md §4.2, §4.3) and completing them (§4.6).

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::User;
use crate::domain::{
    FieldErrors, FileCategory, FileMetadata, JsonObject, ObjectKey, PartNumber, PartPlan,
    S3_MIN_PART_SIZE,
};
use crate::domain::{FileAction, Permit, Refusal, SessionAction};
use crate::error::{ApiError, ErrorObject};
use crate::s3::StoredPart;
use crate::services::records::{self, FILE_COLUMNS, FileRow, SESSION_COLUMNS, SessionRow};
use crate::services::{lifecycle, parts};
use crate::state::AppState;
use crate::time;

/// One file to register: its metadata, plus `partCount` to receive presigned
/// part URLs, plus `fileId` to re-register (recover lost URLs).
#[derive(Debug, Clone)]
pub struct RegisterInput {
    pub file: FileMetadata,
    pub part_count: Option<u64>,
    pub file_id: Option<Uuid>,
}

impl RegisterInput {
    pub fn from_json(path: &str, value: &Value) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let file = FileMetadata::from_json(path, value, &mut errors);
        let obj = JsonObject::new(path, value, &mut FieldErrors::default());
        let part_count =
            obj.optional_integer("partCount", 1..=u64::from(PartNumber::MAX), &mut errors);
        let file_id = obj.optional_uuid("fileId", &mut errors);
        match file {
            Some(file) if errors.is_empty() => Ok(Self {
                file,
                part_count,
                file_id,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// Where to PUT one part straight to S3, and the headers to send with it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresignedPartUrl {
    #[schema(minimum = 1, maximum = 10000, example = 1)]
    pub part_number: u16,
    /// A presigned S3 `PUT` URL, valid until `expiresAt`.
    pub url: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(example = 5242880)]
    pub size_bytes: u64,
    /// `Content-Length`, which the signature covers. Header name → value,
    /// always strings (a client types and sends them as such).
    #[schema(value_type = std::collections::BTreeMap<String, String>, example = json!({"Content-Length": "5242880"}))]
    pub headers: serde_json::Map<String, Value>,
}

/// A registered file: its ID, its S3 multipart upload, and, when `partCount`
/// was sent, one presigned URL per part.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub file_id: Uuid,
    /// Opaque: S3-compatible stores differ in its format.
    pub upload_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presigned_urls: Option<Vec<PresignedPartUrl>>,
    /// True for a new file (201), false for a re-registration (200).
    #[serde(skip)]
    pub created: bool,
}

/// Registers one file (docs/contract.md §4.2).
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id))]
pub async fn register(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    body: Value,
) -> Result<Registration, ApiError> {
    let input = RegisterInput::from_json("", &body)?;
    let session = registrable_session(state, user, session_id).await?;
    register_one(state, user, &session, input).await
}

/// The answer of a batch registration: one item per file, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResults {
    pub results: Vec<BatchItem>,
}

/// One file's outcome in a batch: its registration, or its error.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    pub index: usize,
    #[serde(flatten)]
    pub outcome: BatchOutcome,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchOutcome {
    Registered(Registration),
    Failed { error: ErrorObject },
}

/// Registers up to `MAX_BATCH_SIZE` files (docs/contract.md §4.3).
///
/// Partial commit: each item is registered on its own, in request order, as
/// a single registration would be. A failed item does not undo the ones
/// before it and does not stop the ones after it; the answer reports each
/// item's outcome at its index, so a client retries only the failures.
/// Rolling back instead would abort S3 uploads the client may already be
/// using and turn one bad file into N lost registrations.
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id))]
pub async fn register_batch(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    body: Value,
) -> Result<BatchResults, ApiError> {
    let max = state.config().max_batch_size;
    let items = match body.get("files") {
        Some(Value::Array(items)) if items.len() > max => {
            return Err(ApiError::BatchTooLarge {
                size: items.len(),
                max_batch_size: max,
            });
        }
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => {
            return Err(ApiError::invalid_field(
                "files",
                &format!("must be an array of 1 to {max} files"),
            ));
        }
    };
    let session = registrable_session(state, user, session_id).await?;

    let mut results = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let outcome = match RegisterInput::from_json("", item) {
            Ok(input) => register_one(state, user, &session, input).await,
            Err(error) => Err(error),
        };
        let outcome = match outcome {
            Ok(registration) => BatchOutcome::Registered(registration),
            Err(error) => {
                error.log();
                BatchOutcome::Failed {
                    error: error.to_item(),
                }
            }
        };
        results.push(BatchItem { index, outcome });
    }
    let failed = results
        .iter()
        .filter(|r| matches!(r.outcome, BatchOutcome::Failed { .. }))
        .count();
    tracing::info!(items = results.len(), failed, "batch registration done");
    Ok(BatchResults { results })
}

/// The session, if files may be registered in it: owned (404), active (400)
/// and not expired (400 with the expiry context).
async fn registrable_session(
    state: &AppState,
    user: &User,
    session_id: Uuid,
) -> Result<SessionRow, ApiError> {
    let session = records::owned_session(state.db(), session_id, user).await?;
    ensure_registrable(state, state.db(), &session).await?;
    Ok(session)
}

/// Registration's own answers to the lifecycle's refusals (docs/contract.md §4.2):
/// 400, with the expiry context when the session expired.
///
/// `db` is the caller's transaction when it holds one: a request never
/// acquires a second connection while it holds the first.
async fn ensure_registrable(
    state: &AppState,
    db: impl sqlx::PgExecutor<'_>,
    session: &SessionRow,
) -> Result<(), ApiError> {
    let now = time::now();
    match lifecycle::lifecycle_of(state, session, now).permits(SessionAction::RegisterFile) {
        Ok(_) => Ok(()),
        Err(Refusal::Expired) if session.status == "active" => {
            let (expires_at, now) = session.expiration(db, now).await;
            Err(ApiError::bad_request_with(
                "The upload session has expired; create a new session",
                json!({"sessionExpired": true, "expiresAt": expires_at, "now": now}),
            ))
        }
        Err(_) => Err(ApiError::bad_request_with(
            "The upload session is not active",
            json!({"status": session.status}),
        )),
    }
}

async fn register_one(
    state: &AppState,
    user: &User,
    session: &SessionRow,
    input: RegisterInput,
) -> Result<Registration, ApiError> {
    let config = state.config();
    let file = &input.file;
    file.check_limits(&config.limits)
        .map_err(|r| ApiError::file_rejected(&file.name, file.category, &file.mime_type, r))?;
    let plan = PartPlan::new(file.size, session.part_size());
    if !plan.fits_s3() {
        return Err(ApiError::invalid_field(
            "size",
            "needs more than 10000 parts at this session's part size",
        ));
    }
    if let Some(received) = input.part_count
        && received != plan.part_count()
    {
        return Err(ApiError::PartCountMismatch {
            expected: plan.part_count(),
            received,
        });
    }

    let (row, created) = match input.file_id {
        Some(file_id) => (reregister(state, session, file_id, file).await?, false),
        None => (register_new(state, user, session, file).await?, true),
    };
    let (key, upload_id) = row.upload()?;
    let presigned_urls = match input.part_count {
        Some(_) => Some(presign_all(state, key, upload_id, plan).await?),
        None => None,
    };
    Ok(Registration {
        file_id: row.id,
        upload_id: upload_id.to_owned(),
        presigned_urls,
        created,
    })
}

/// A client that lost its presigned URLs sends the `fileId` again: same file,
/// same S3 upload, fresh URLs. The metadata must match what was registered.
async fn reregister(
    state: &AppState,
    session: &SessionRow,
    file_id: Uuid,
    file: &FileMetadata,
) -> Result<FileRow, ApiError> {
    let row = records::session_file(state.db(), session.id, file_id).await?;
    lifecycle::file_permit(&row, FileAction::Reregister)?;
    let same = row.category == file.category.as_str()
        && row.name == file.name
        && row.size as u64 == file.size.bytes()
        && row.mime_type == file.mime_type
        && row.extension == file.ext.as_str();
    if !same {
        return Err(ApiError::Conflict {
            message: "fileId belongs to a file registered with different metadata".into(),
            details: json!({"fileId": row.id}),
        });
    }
    tracing::info!(file_id = %row.id, "file re-registered: issuing fresh part URLs");
    Ok(row)
}

/// Registers a new file, race-safe.
///
/// The session row is locked while the file is counted and inserted, so
/// concurrent registrations of one session queue and each counts the ones
/// committed before it; the unique `(session_id, category, name)` index
/// backs the duplicate check. The S3 upload is created only after the row
/// committed, so the losers of a race never create one: N identical
/// concurrent registrations leave one row and one S3 multipart upload.
/// Clients should give files unique names within a session.
async fn register_new(
    state: &AppState,
    user: &User,
    session: &SessionRow,
    file: &FileMetadata,
) -> Result<FileRow, ApiError> {
    let config = state.config();
    let file_id = Uuid::new_v4();
    let key = ObjectKey::new(
        config.stage.as_str(),
        &user.id,
        session.id,
        file.category,
        file_id,
        &file.ext,
    );

    let mut tx = state.db().begin().await?;
    let locked: SessionRow = sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM upload_sessions WHERE id = $1 FOR NO KEY UPDATE"
    ))
    .bind(session.id)
    .fetch_one(&mut tx)
    .await?;
    ensure_registrable(state, &mut tx, &locked).await?;

    let existing = existing_file_id(&mut tx, session.id, file).await?;
    if let Some(existing_file_id) = existing {
        return Err(duplicate(existing_file_id, file));
    }

    let registered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM upload_session_files WHERE session_id = $1 AND category = $2",
    )
    .bind(session.id)
    .bind(file.category.as_str())
    .fetch_one(&mut tx)
    .await?;
    let max_files = match locked.declared_files() {
        Some(declared) => declared.of(file.category),
        None => fallback_max(config, file.category),
    };
    // The current attempt counts: with 2 declared and 1 registered, one more fits.
    if registered as u64 + 1 > u64::from(max_files) {
        return Err(ApiError::FileCountExceeded {
            category: file.category,
            max_files,
            registered: registered as u32,
        });
    }

    let now = time::now();
    let inserted = sqlx::query(
        "INSERT INTO upload_session_files
            (id, session_id, category, name, size, mime_type, extension, s3_key, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9)",
    )
    .bind(file_id)
    .bind(session.id)
    .bind(file.category.as_str())
    .bind(&file.name)
    .bind(file.size.bytes() as i32)
    .bind(&file.mime_type)
    .bind(file.ext.as_str())
    .bind(key.as_str())
    .bind(now)
    .execute(&mut tx)
    .await;
    if let Err(error) = inserted {
        if crate::db::constraint(&error) == Some("upload_session_files_session_category_name_key") {
            // Only reachable if a writer bypassed the session lock (e.g. the
            // old service); the index still keeps the name unique.
            drop(tx);
            let existing = existing_file_id(state.db(), session.id, file).await?;
            return Err(duplicate(existing.unwrap_or_default(), file));
        }
        return Err(error.into());
    }
    tx.commit().await?;

    let upload_id = match state
        .s3()
        .create_multipart_upload(key.as_str(), &file.mime_type)
        .await
    {
        Ok(upload_id) => upload_id,
        Err(error) => {
            // Give the name back so the client can simply retry.
            let _ = sqlx::query("DELETE FROM upload_session_files WHERE id = $1")
                .bind(file_id)
                .execute(state.db())
                .await;
            return Err(error.into());
        }
    };
    let row = sqlx::query_as::<_, FileRow>(&format!(
        "UPDATE upload_session_files SET upload_id = $2, updated_at = $3 WHERE id = $1 RETURNING {FILE_COLUMNS}"
    ))
    .bind(file_id)
    .bind(&upload_id)
    .bind(time::now())
    .fetch_one(state.db())
    .await;
    match row {
        Ok(row) => {
            tracing::info!(%file_id, category = %file.category, size = file.size.bytes(), "file registered");
            Ok(row)
        }
        Err(error) => {
            let _ = state
                .s3()
                .abort_multipart_upload(key.as_str(), &upload_id)
                .await;
            Err(error.into())
        }
    }
}

async fn existing_file_id(
    db: impl sqlx::PgExecutor<'_>,
    session_id: Uuid,
    file: &FileMetadata,
) -> Result<Option<Uuid>, ApiError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM upload_session_files WHERE session_id = $1 AND category = $2 AND name = $3",
    )
    .bind(session_id)
    .bind(file.category.as_str())
    .bind(&file.name)
    .fetch_optional(db)
    .await?)
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

fn fallback_max(config: &crate::config::Config, category: FileCategory) -> u32 {
    match category {
        FileCategory::Instruction => u32::MAX,
        FileCategory::PartsList => config.limits.parts_list_max_count,
        FileCategory::Image | FileCategory::Thumbnail => config.limits.image_max_count,
    }
}

/// One presigned URL per part.
///
/// Response size: about 1 KB per part (the SigV4 query string is most of it),
/// so the default 50 MiB PDF at 5 MiB parts is ~10 KB, and the worst case the
/// limits allow stays well under the 1 MiB a client should accept. Signing is
/// local HMAC work, no network round trip, so N URLs cost microseconds each.
async fn presign_all(
    state: &AppState,
    key: &str,
    upload_id: &str,
    plan: PartPlan,
) -> Result<Vec<PresignedPartUrl>, ApiError> {
    presign_parts(state, key, upload_id, plan, plan.parts()).await
}

/// Presigned URLs for `parts` of the file, valid for `PRESIGNED_URL_TTL_MINUTES`.
pub async fn presign_parts(
    state: &AppState,
    key: &str,
    upload_id: &str,
    plan: PartPlan,
    parts: impl IntoIterator<Item = PartNumber>,
) -> Result<Vec<PresignedPartUrl>, ApiError> {
    let ttl = state.config().presigned_url_ttl;
    let expires_at = time::rfc3339(time::add(time::now(), ttl));
    let mut urls = Vec::new();
    for part in parts {
        let size = plan.part_size_of(part);
        let presigned = state
            .s3()
            .presign_upload_part(key, upload_id, part, size, ttl)
            .await?;
        urls.push(PresignedPartUrl {
            part_number: part.get(),
            url: presigned.url,
            expires_at: expires_at.clone(),
            size_bytes: size,
            headers: presigned
                .headers
                .into_iter()
                .map(|(name, value)| (name, Value::String(value)))
                .collect(),
        });
    }
    Ok(urls)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompletedFile {
    pub file_id: Uuid,
    pub file_url: String,
}

/// The parts a client lists in a complete request.
pub fn parse_listed_parts(body: &Value) -> Result<Vec<(PartNumber, String)>, ApiError> {
    let mut errors = FieldErrors::default();
    let parts = JsonObject::new("", body, &mut errors).array(
        "parts",
        1..=usize::from(PartNumber::MAX),
        &mut errors,
        |path, value, errors| {
            let obj = JsonObject::new(path, value, errors);
            let number = obj.integer("partNumber", 1..=u64::from(PartNumber::MAX), errors);
            let etag = obj.string("etag", 1..=1024, errors);
            Some((PartNumber::new(number? as u16)?, etag?))
        },
    );
    match parts {
        Some(parts) if errors.is_empty() => Ok(parts),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// Completes a file (docs/contract.md §4.6). Idempotent and race-safe: the file row
/// stays locked from the status check to the status update, so of two
/// concurrent completes one calls S3 and the other waits, then answers 200
/// with the same `fileUrl`.
///
/// The row lock spans the S3 calls (ListParts, CompleteMultipartUpload) on
/// purpose: it is what makes exactly one S3 completion happen and lets the
/// loser answer with the winner's URL once the lock is released. A guarded
/// `completing` status would free the connection during S3, but then the
/// loser has to poll for the outcome and a crashed winner needs a staleness
/// rule. The request holds this one connection and acquires no other (the
/// reconciliation runs in the same transaction), so concurrent completes
/// queue for the pool instead of starving it.
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id, %file_id))]
pub async fn complete(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    file_id: Uuid,
    body: Value,
) -> Result<CompletedFile, ApiError> {
    let listed = parse_listed_parts(&body)?;
    let mut tx = state.db().begin().await?;
    let session = records::owned_session(&mut tx, session_id, user).await?;
    let now = time::now();
    // A finalized session still answers a repeated complete of a completed
    // file (below); it completes nothing new.
    let replay_only = match lifecycle::lifecycle_of(state, &session, now)
        .permits(SessionAction::CompleteFile)
    {
        Ok(_) => None,
        Err(Refusal::Finalized) => Some(Refusal::Finalized),
        Err(refusal) => return Err(lifecycle::refusal_error(&mut tx, &session, refusal, now).await),
    };

    let file: FileRow = sqlx::query_as(&format!(
        "SELECT {FILE_COLUMNS} FROM upload_session_files WHERE id = $1 AND session_id = $2 FOR NO KEY UPDATE"
    ))
    .bind(file_id)
    .bind(session_id)
    .fetch_optional(&mut tx)
    .await?
    .ok_or(ApiError::NotFound("file"))?;

    if let (Ok(Permit::AlreadyDone), Some(file_url)) = (
        lifecycle::file_permit(&file, FileAction::Complete),
        &file.file_url,
    ) {
        tracing::warn!(
            "file already completed: answering idempotently (the client may be retrying)"
        );
        return Ok(CompletedFile {
            file_id,
            file_url: file_url.clone(),
        });
    }
    if let Some(refusal) = replay_only {
        return Err(lifecycle::refusal_error(&mut tx, &session, refusal, now).await);
    }

    let (key, upload_id) = file.upload()?;
    let stored = parts::reconcile(state, &mut tx, &session, &file).await?;
    let to_complete = check_listed_parts(&file.plan(&session), &stored, &listed)?;
    state
        .s3()
        .complete_multipart_upload(key, upload_id, &to_complete)
        .await?;

    let file_url = format!("{}/{key}", state.config().s3.public_file_base_url);
    sqlx::query(
        "UPDATE upload_session_files SET status = 'completed', file_url = $2, updated_at = $3
         WHERE id = $1 AND status <> 'completed'",
    )
    .bind(file_id)
    .bind(&file_url)
    .bind(time::now())
    .execute(&mut tx)
    .await?;
    tx.commit().await?;

    tracing::info!(parts = to_complete.len(), "file completed");
    Ok(CompletedFile { file_id, file_url })
}

/// Holds the client's list to what S3 has: every part 1..N present, the
/// listed count N, each ETag equal, every non-final part at least 5 MiB.
fn check_listed_parts(
    plan: &PartPlan,
    stored: &[StoredPart],
    listed: &[(PartNumber, String)],
) -> Result<Vec<(PartNumber, String)>, ApiError> {
    let expected = plan.part_count();
    let missing: Vec<u16> = plan
        .parts()
        .filter(|n| !stored.iter().any(|p| p.part_number == *n))
        .map(PartNumber::get)
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request_with(
            "Some parts have not been uploaded; upload them, then complete again",
            json!({"missingPartNumbers": missing, "expected": expected}),
        ));
    }
    if listed.len() as u64 != expected {
        return Err(ApiError::bad_request_with(
            "The number of parts listed does not match the file's part count",
            json!({"expected": expected, "received": listed.len()}),
        ));
    }
    let mut result = Vec::with_capacity(listed.len());
    for part in plan.parts() {
        let Some(stored_part) = stored.iter().find(|p| p.part_number == part) else {
            continue;
        };
        match listed.iter().find(|(n, _)| *n == part) {
            Some((_, etag)) if etag_eq(etag, &stored_part.etag) => {}
            Some(_) => {
                return Err(ApiError::bad_request_with(
                    "A listed ETag does not match the uploaded part",
                    json!({"partNumber": part.get(), "reason": "etag-mismatch"}),
                ));
            }
            None => {
                return Err(ApiError::bad_request_with(
                    "A part is missing from the list",
                    json!({"missingPartNumbers": [part.get()], "expected": expected}),
                ));
            }
        }
        if u64::from(part.get()) < expected && stored_part.size < S3_MIN_PART_SIZE {
            return Err(ApiError::bad_request_with(
                "Every part but the last must be at least 5 MiB",
                json!({"partNumber": part.get(), "sizeBytes": stored_part.size, "minBytes": S3_MIN_PART_SIZE}),
            ));
        }
        result.push((part, stored_part.etag.clone()));
    }
    Ok(result)
}

/// ETags are opaque, but clients and proxies disagree on the quotes around
/// them; the quotes are the only difference tolerated.
fn etag_eq(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ByteSize;

    const MIB: u64 = 1024 * 1024;

    fn stored(n: u16, etag: &str, size: u64) -> StoredPart {
        StoredPart {
            part_number: PartNumber::new(n).unwrap(),
            etag: etag.into(),
            size,
            last_modified: None,
        }
    }

    fn listed(n: u16, etag: &str) -> (PartNumber, String) {
        (PartNumber::new(n).unwrap(), etag.into())
    }

    fn plan() -> PartPlan {
        PartPlan::new(ByteSize::new(12 * MIB), ByteSize::new(5 * MIB))
    }

    #[test]
    fn missing_parts_are_named() {
        let err = check_listed_parts(
            &plan(),
            &[stored(1, "\"a\"", 5 * MIB)],
            &[listed(1, "\"a\"")],
        )
        .unwrap_err();
        assert_eq!(err.details().unwrap()["missingPartNumbers"], json!([2, 3]));
    }

    #[test]
    fn a_count_mismatch_reports_expected_and_received() {
        let all = [
            stored(1, "a", 5 * MIB),
            stored(2, "b", 5 * MIB),
            stored(3, "c", 2 * MIB),
        ];
        let err = check_listed_parts(&plan(), &all, &[listed(1, "a")]).unwrap_err();
        assert_eq!(err.details().unwrap()["expected"], 3);
        assert_eq!(err.details().unwrap()["received"], 1);
    }

    #[test]
    fn a_wrong_etag_names_its_part() {
        let all = [
            stored(1, "a", 5 * MIB),
            stored(2, "b", 5 * MIB),
            stored(3, "c", 2 * MIB),
        ];
        let err = check_listed_parts(
            &plan(),
            &all,
            &[listed(1, "a"), listed(2, "x"), listed(3, "c")],
        )
        .unwrap_err();
        assert_eq!(err.details().unwrap()["partNumber"], 2);
    }

    #[test]
    fn a_short_middle_part_is_refused_and_quotes_are_tolerated() {
        let short = [
            stored(1, "\"a\"", 5 * MIB),
            stored(2, "\"b\"", MIB),
            stored(3, "\"c\"", 2 * MIB),
        ];
        let list = [listed(1, "a"), listed(2, "b"), listed(3, "\"c\"")];
        let err = check_listed_parts(&plan(), &short, &list).unwrap_err();
        assert_eq!(err.details().unwrap()["minBytes"], S3_MIN_PART_SIZE);
        let good = [
            stored(1, "\"a\"", 5 * MIB),
            stored(2, "\"b\"", 5 * MIB),
            stored(3, "\"c\"", 2 * MIB),
        ];
        let parts = check_listed_parts(&plan(), &good, &list).unwrap();
        assert_eq!(
            parts[1].1, "\"b\"",
            "S3's own spelling is what gets completed"
        );
    }
}
