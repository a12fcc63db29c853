//! The proxied part upload (docs/contract.md §4.4).

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::User;
use crate::domain::{
    Crc32c, Crc32cSyntax, FileAction, PartNumber, SessionAction, looks_like_part_etag,
};
use crate::error::ApiError;
use crate::http::ApiRequest;
use crate::s3::S3Error;
use crate::services::{lookup, permits};
use crate::state::AppState;
use crate::store::parts::NewPart;
use crate::store::{self, FileRow, SessionRow};
use crate::time;

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
    let max = state.config().proxy_max_body_bytes;
    match request.content_length() {
        Some(len) if len > max => return Err(too_large(max)),
        Some(0) => return Err(ApiError::bad_request("The part body is empty")),
        _ => {}
    }
    let declared = declared_crc32c(request)?;
    let (session, file) = uploadable_file(state, user, session_id, file_id).await?;
    let (key, upload_id) = file.upload()?;

    let started = request.started;
    let budget = state.config().part_upload_budget;
    let work = async {
        let (body, crc) = read_part(request, max, part_number, declared).await?;
        let s3_started = Instant::now();
        let size = body.len();
        // S3 checks it again on arrival; an upload opened without CRC32C
        // (a file registered without one) takes no part checksums.
        let forwarded = file.crc32c.is_some().then_some(crc);
        let etag = match send_part(state, key, upload_id, part_number, body, forwarded).await {
            Err(S3Error::NoSuchUpload { .. }) => {
                return Err(upload_gone(state, user, session_id, file_id).await);
            }
            sent => sent.map_err(ApiError::from)?,
        };
        Ok((etag, size, s3_started.elapsed()))
    };
    let remaining = budget.saturating_sub(started.elapsed());
    let (etag, size, s3_duration) = match tokio::time::timeout(remaining, work).await {
        Ok(result) => result?,
        Err(_) => return Err(out_of_time(started, budget)),
    };

    record_part(state, &session, &file, part_number, &etag, size).await?;
    tracing::info!(
        size_bytes = size,
        etag = %etag,
        s3_ms = time::millis(s3_duration),
        duration_ms = time::millis(started.elapsed()),
        "part uploaded"
    );
    Ok(UploadedPart {
        part_number: part_number.get(),
        etag,
    })
}

/// The part's bytes, within `max` and not empty, and their CRC32C, held to
/// the one the client declared.
async fn read_part(
    request: &mut ApiRequest,
    max: u64,
    part_number: PartNumber,
    declared: Option<Crc32c>,
) -> Result<(Bytes, Crc32c), ApiError> {
    let mut crc = Crc32c::of(b"");
    let body = match request
        .read_body_with(max, |chunk| crc = crc.append(chunk))
        .await
    {
        Err(ApiError::PayloadTooLarge { .. }) => return Err(too_large(max)),
        other => other?,
    };
    if body.is_empty() {
        return Err(ApiError::bad_request("The part body is empty"));
    }
    check_crc32c(part_number, declared, crc)?;
    Ok((body, crc))
}

/// The part's CRC32C the client declared in `x-amz-checksum-crc32c`, as
/// S3 reads that header (400 when it is not S3's base64 of 4 bytes).
fn declared_crc32c(request: &ApiRequest) -> Result<Option<Crc32c>, ApiError> {
    let Some(raw) = request.header(CRC32C_HEADER) else {
        return Ok(None);
    };
    raw.parse().map(Some).map_err(|e: Crc32cSyntax| {
        ApiError::bad_request_with(
            format!("{CRC32C_HEADER} is not a CRC32C: {e}"),
            serde_json::json!({"header": CRC32C_HEADER}),
        )
    })
}

const CRC32C_HEADER: &str = "x-amz-checksum-crc32c";

/// 400 CHECKSUM_MISMATCH when the bytes read are not the declared ones.
fn check_crc32c(
    part_number: PartNumber,
    declared: Option<Crc32c>,
    found: Crc32c,
) -> Result<(), ApiError> {
    match declared {
        Some(expected) if expected != found => {
            tracing::warn!(%expected, %found, "proxied part refused: CRC32C mismatch");
            Err(ApiError::PartChecksumMismatch {
                part_number,
                expected,
                found,
            })
        }
        _ => Ok(()),
    }
}

fn too_large(max_body_bytes: u64) -> ApiError {
    ApiError::PayloadTooLarge {
        message: "The part is larger than this route accepts; upload parts of 5 MiB or more directly to S3 with presigned URLs",
        max_body_bytes,
    }
}

/// The session and file, if the file takes parts now.
///
/// One transaction for the look-ups, ended before the lifecycle is asked
/// (an expired session records its expiry on a connection of its own),
/// the body is read and S3 is called: no connection is held while the
/// part streams.
async fn uploadable_file(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    file_id: Uuid,
) -> Result<(SessionRow, FileRow), ApiError> {
    let (session, file) =
        lookup::owned_session_and_file(state.db(), session_id, file_id, user).await?;
    permits::permit(state, &session, SessionAction::UploadParts).await?;
    let file = file?;
    permits::file_permit(&file, FileAction::UploadPart)?;
    Ok((session, file))
}

/// What to answer when S3 no longer knows the file's upload: a cancel, an
/// abort or a complete that won the race since the checks answers as it
/// would have before; otherwise the upload is lost (400, start the file
/// over), never a 500 the client would retry for ever.
async fn upload_gone(state: &AppState, user: &User, session_id: Uuid, file_id: Uuid) -> ApiError {
    match uploadable_file(state, user, session_id, file_id).await {
        Err(refusal) => refusal,
        Ok(_) => {
            tracing::error!("S3 no longer knows the upload of a file that takes parts");
            ApiError::upload_gone()
        }
    }
}

/// 408 for an upload abandoned near the function's time limit.
fn out_of_time(started: Instant, budget: Duration) -> ApiError {
    let elapsed = started.elapsed();
    tracing::error!(
        elapsed_ms = time::millis(elapsed),
        budget_ms = time::millis(budget),
        "part upload abandoned near the function time limit"
    );
    ApiError::RequestTimeout {
        elapsed_ms: time::millis(elapsed),
        timeout_at: time::rfc3339_utc(
            chrono::Utc::now() - chrono::Duration::from_std(elapsed).unwrap_or_default()
                + chrono::Duration::from_std(budget).unwrap_or_default(),
        ),
    }
}

/// Sends the part to S3 and returns its ETag, stored as S3 gave it (see
/// `domain::etag`).
async fn send_part(
    state: &AppState,
    key: &str,
    upload_id: &str,
    part_number: PartNumber,
    body: Bytes,
    crc32c: Option<Crc32c>,
) -> Result<String, S3Error> {
    let etag = state
        .s3()
        .upload_part(key, upload_id, part_number, body, crc32c)
        .await
        .inspect_err(|error| {
            if error.is_unavailable() {
                tracing::error!(%error, "S3 retries exhausted for UploadPart");
            }
        })?;
    if !looks_like_part_etag(&etag) {
        tracing::warn!(etag = %etag, "unexpected ETag format from S3; stored as is");
    }
    Ok(etag)
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
    let part = NewPart {
        number: part_number,
        etag,
        size: crate::domain::ByteSize::new(u64::try_from(size).unwrap_or(u64::MAX)).to_column()?,
        uploaded_at: time::now(),
    };
    // One statement records the part and marks the file: one round trip.
    store::parts::record_uploaded(state.db(), session.id, file.id, &part).await?;
    Ok(())
}
