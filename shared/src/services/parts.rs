//! Parts: the proxied part upload (docs/contract.md §4.4) and the parts list that
//! resume is built on (§4.5).

use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::User;
use crate::domain::{FileAction, FileStatus, PartNumber, SessionAction};
use crate::error::ApiError;
use crate::http::ApiRequest;
use crate::s3::StoredPart;
use crate::services::lifecycle;
use crate::services::records::{self, FileRow, SessionRow};
use crate::state::AppState;
use crate::time;

/// The parts of a file, ascending by number (contract §4.5).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartList {
    pub parts: Vec<PartView>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartView {
    #[schema(minimum = 1, maximum = 10000)]
    pub part_number: i32,
    /// Opaque, as S3 answered it (quotes included).
    pub etag: String,
    pub size_bytes: Option<i32>,
    #[serde(serialize_with = "serialize_time")]
    #[schema(value_type = String, format = DateTime)]
    pub uploaded_at: chrono::NaiveDateTime,
}

fn serialize_time<S: serde::Serializer>(
    at: &chrono::NaiveDateTime,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time::rfc3339(*at))
}

/// Reads what S3 holds for the file's upload (following ListParts
/// pagination) and records it. Parts PUT straight to S3 through presigned
/// URLs never pass through this service, so S3 is the truth and the table
/// is brought up to it; a re-uploaded part's new ETag replaces the old one.
///
/// `db` is the caller's transaction when it holds one (complete does).
pub async fn reconcile(
    state: &AppState,
    db: impl sqlx::PgExecutor<'_>,
    session: &SessionRow,
    file: &FileRow,
) -> Result<Vec<StoredPart>, ApiError> {
    let (key, upload_id) = file.upload()?;
    let stored = state.s3().list_parts(key, upload_id).await?;
    if stored.is_empty() {
        return Ok(stored);
    }
    let now = time::now();
    let ids: Vec<Uuid> = stored.iter().map(|_| Uuid::new_v4()).collect();
    let numbers: Vec<i32> = stored.iter().map(|p| p.part_number.as_i32()).collect();
    let etags: Vec<&str> = stored.iter().map(|p| p.etag.as_str()).collect();
    let sizes: Vec<i32> = stored.iter().map(|p| p.size as i32).collect();
    let uploaded: Vec<chrono::NaiveDateTime> = stored
        .iter()
        .map(|p| p.last_modified.map(|t| t.naive_utc()).unwrap_or(now))
        .collect();
    sqlx::query(
        "INSERT INTO upload_session_parts
            (id, session_id, file_id, part_number, etag, size, status, uploaded_at, created_at)
         SELECT p.id, $1, $2, p.n, p.etag, p.size, 'uploaded', p.at, $8
           FROM UNNEST($3::uuid[], $4::int[], $5::text[], $6::int[], $7::timestamp[])
                AS p(id, n, etag, size, at)
         ON CONFLICT (file_id, part_number) DO UPDATE
            SET etag = EXCLUDED.etag, size = EXCLUDED.size, status = 'uploaded',
                uploaded_at = EXCLUDED.uploaded_at, session_id = EXCLUDED.session_id
          WHERE upload_session_parts.etag IS DISTINCT FROM EXCLUDED.etag
             OR upload_session_parts.size IS DISTINCT FROM EXCLUDED.size
             OR upload_session_parts.session_id IS NULL",
    )
    .bind(session.id)
    .bind(file.id)
    .bind(&ids)
    .bind(&numbers)
    .bind(&etags)
    .bind(&sizes)
    .bind(&uploaded)
    .bind(now)
    .execute(db)
    .await?;
    Ok(stored)
}

/// The parts uploaded so far, ascending (docs/contract.md §4.5). Resume flow: list
/// the parts, upload only the missing ones, then complete.
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id, %file_id))]
pub async fn list(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    file_id: Uuid,
) -> Result<PartList, ApiError> {
    // The two look-ups share one transaction (fewer round trips); it ends
    // before S3 is asked.
    let mut tx = state.db().begin().await?;
    let session = records::owned_session(&mut tx, session_id, user).await?;
    let file = records::session_file(&mut tx, session_id, file_id).await?;
    tx.commit().await?;
    // A completed upload no longer exists in S3; its recorded parts are final.
    if FileStatus::parse(&file.status).has_open_upload() && file.upload_id.is_some() {
        reconcile(state, state.db(), &session, &file).await?;
    }
    let parts = sqlx::query_as::<_, PartView>(
        "SELECT part_number, etag, size AS size_bytes, uploaded_at
           FROM upload_session_parts WHERE file_id = $1 ORDER BY part_number",
    )
    .bind(file_id)
    .fetch_all(state.db())
    .await?;
    Ok(PartList { parts })
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadedPart {
    #[schema(minimum = 1, maximum = 10000)]
    pub part_number: u16,
    pub etag: String,
}

/// The proxied part upload (docs/contract.md §4.4).
///
/// On Vercel a request body is capped at 4.5 MB while S3 needs 5 MiB for
/// every part but the last, so this route carries a file's final part or a
/// small single-part file; larger parts go straight to S3 with presigned URLs.
///
/// Memory: the body is read once into one buffer, bounded by
/// `PROXY_MAX_BODY_BYTES`, and handed to the SDK without another copy. (SigV4
/// signs the payload and S3 needs its length up front, so a part is whole
/// before it is sent.)
///
/// Time: the function's `maxDuration` is 30 s. Reading the body and the S3
/// call share the `PART_UPLOAD_BUDGET_MS` budget (25 s); past it the upload
/// is abandoned and the client gets 408 with enough time left to answer.
/// Clients should time out at 25 s themselves and retry the part.
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id, %file_id, part_number = %part_number))]
pub async fn upload(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    file_id: Uuid,
    part_number: PartNumber,
    request: &mut ApiRequest,
) -> Result<UploadedPart, ApiError> {
    let config = state.config();
    let max = config.proxy_max_body_bytes;
    let too_large = ApiError::PayloadTooLarge {
        message: "The part is larger than this route accepts; upload parts of 5 MiB or more directly to S3 with presigned URLs",
        max_body_bytes: max,
    };
    match request.content_length() {
        Some(len) if len > max => return Err(too_large),
        Some(0) => return Err(ApiError::bad_request("The part body is empty")),
        _ => {}
    }

    // One transaction for the look-ups, ended before the lifecycle is asked
    // (an expired session records its expiry on a connection of its own),
    // the body is read and S3 is called: no connection is held while the
    // part streams.
    let mut tx = state.db().begin().await?;
    let session = records::owned_session(&mut tx, session_id, user).await?;
    let file = records::session_file(&mut tx, session_id, file_id).await;
    tx.commit().await?;
    lifecycle::permit(state, &session, SessionAction::UploadParts).await?;
    let file = file?;
    lifecycle::file_permit(&file, FileAction::UploadPart)?;
    let (key, upload_id) = file.upload()?;

    let started = request.started;
    let budget = config.part_upload_budget;
    let work = async {
        let body = match request.read_body(max).await {
            Err(ApiError::PayloadTooLarge { .. }) => return Err(too_large),
            other => other?,
        };
        if body.is_empty() {
            return Err(ApiError::bad_request("The part body is empty"));
        }
        let s3_started = Instant::now();
        let size = body.len();
        let etag = send_part(state, key, upload_id, part_number, body).await?;
        Ok((etag, size, s3_started.elapsed()))
    };
    let remaining = budget.saturating_sub(started.elapsed());
    let (etag, size, s3_duration) = match tokio::time::timeout(remaining, work).await {
        Ok(result) => result?,
        Err(_) => {
            let elapsed = started.elapsed();
            tracing::error!(
                elapsed_ms = elapsed.as_millis() as u64,
                budget_ms = budget.as_millis() as u64,
                "part upload abandoned near the function time limit"
            );
            return Err(ApiError::RequestTimeout {
                elapsed_ms: elapsed.as_millis() as u64,
                timeout_at: time::rfc3339_utc(
                    chrono::Utc::now() - chrono::Duration::from_std(elapsed).unwrap_or_default()
                        + chrono::Duration::from_std(budget).unwrap_or_default(),
                ),
            });
        }
    };

    record_part(state, &session, &file, part_number, &etag, size).await?;
    tracing::info!(
        size_bytes = size,
        etag = %etag,
        s3_ms = s3_duration.as_millis() as u64,
        duration_ms = started.elapsed().as_millis() as u64,
        "part uploaded"
    );
    Ok(UploadedPart {
        part_number: part_number.get(),
        etag,
    })
}

/// ETag formats: a part's (and a single-part object's) ETag is the quoted
/// hex MD5 of its bytes, `"abc123…"`; a completed multipart object's is
/// `"<hex>-<part count>"`. S3-compatible stores differ (and SSE-KMS ETags are
/// not MD5s), so ETags are stored and compared opaquely; a shape we did not
/// expect is only logged, never refused. Clients must not parse them either.
async fn send_part(
    state: &AppState,
    key: &str,
    upload_id: &str,
    part_number: PartNumber,
    body: Bytes,
) -> Result<String, ApiError> {
    let etag = state
        .s3()
        .upload_part(key, upload_id, part_number, body)
        .await
        .map_err(|error| {
            if error.is_unavailable() {
                tracing::error!(%error, "S3 retries exhausted for UploadPart");
            }
            ApiError::from(error)
        })?;
    if !looks_like_part_etag(&etag) {
        tracing::warn!(etag = %etag, "unexpected ETag format from S3; stored as is");
    }
    Ok(etag)
}

fn looks_like_part_etag(etag: &str) -> bool {
    let inner = etag.strip_prefix('"').and_then(|e| e.strip_suffix('"'));
    inner.is_some_and(|hex| {
        let digest = hex.split_once('-').map_or(hex, |(d, n)| {
            if n.bytes().all(|b| b.is_ascii_digit()) {
                d
            } else {
                ""
            }
        });
        digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Last write wins: a part uploaded again replaces the recorded one. The
/// file moves from `pending` to `uploading` with its first part.
async fn record_part(
    state: &AppState,
    session: &SessionRow,
    file: &FileRow,
    part_number: PartNumber,
    etag: &str,
    size: usize,
) -> Result<(), ApiError> {
    let now = time::now();
    let mut tx = state.db().begin().await?;
    sqlx::query(
        "INSERT INTO upload_session_parts
            (id, session_id, file_id, part_number, etag, size, status, uploaded_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'uploaded', $7, $7)
         ON CONFLICT (file_id, part_number) DO UPDATE
            SET etag = EXCLUDED.etag, size = EXCLUDED.size, status = 'uploaded',
                uploaded_at = EXCLUDED.uploaded_at, session_id = EXCLUDED.session_id",
    )
    .bind(Uuid::new_v4())
    .bind(session.id)
    .bind(file.id)
    .bind(part_number.as_i32())
    .bind(etag)
    .bind(size as i32)
    .bind(now)
    .execute(&mut tx)
    .await?;
    sqlx::query(
        "UPDATE upload_session_files SET status = $3, updated_at = $2
          WHERE id = $1 AND status = $4",
    )
    .bind(file.id)
    .bind(now)
    .bind(FileStatus::Pending.after_part().as_str())
    .bind(FileStatus::Pending.as_str())
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_shapes() {
        assert!(looks_like_part_etag("\"9e107d9d372bb6826bd81d3542a419d6\""));
        assert!(looks_like_part_etag(
            "\"9e107d9d372bb6826bd81d3542a419d6-3\""
        ));
        assert!(!looks_like_part_etag("9e107d9d372bb6826bd81d3542a419d6"));
        assert!(!looks_like_part_etag("\"opaque-etag\""));
    }
}
