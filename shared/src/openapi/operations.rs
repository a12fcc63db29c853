//! One documented operation per route and method. The handlers are in
//! `routes.rs`; a test in `openapi.rs` checks that the two list the same
//! paths and methods. Answers every user route can give (401, 403 on state
//! changes, 400/413 on JSON bodies, 500, 503) are added to all of them in
//! `openapi.rs`, so each operation lists only its own.

#![allow(dead_code)] // The functions exist for their `#[utoipa::path]` only.

use utoipa::IntoParams;

use crate::error::ErrorBody;

use crate::openapi::examples::{RESUME_FILE, RESUME_SESSION};
use crate::openapi::responses::{FinalizeReplay, PartBytes};
use crate::services::files::{
    BatchRegisterRequest, BatchResults, CompleteFileRequest, CompletedFile, FreshUrls,
    FreshUrlsRequest, RegisterFileRequest, Registration,
};
use crate::services::finalize::{FinalizeRequest, MocView};
use crate::services::lifecycle::{Extended, SessionList, SessionView, SweepReport};
use crate::services::parts::{PartList, UploadedPart};
use crate::services::sessions::{CreateSessionRequest, CreatedSession};

/// The path of a session's routes: `{sessionId}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path, rename_all = "camelCase")]
struct SessionPath {
    #[param(example = json!(RESUME_SESSION))]
    session_id: uuid::Uuid,
}

/// The path of a file's routes: `{sessionId}` and `{fileId}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path, rename_all = "camelCase")]
struct FilePath {
    #[param(example = json!(RESUME_SESSION))]
    session_id: uuid::Uuid,
    #[param(example = json!(RESUME_FILE))]
    file_id: uuid::Uuid,
}

/// Which sessions a listing shows (`status`), by the status the session
/// route shows (§4.8); `all` for every one.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum ListedStatus {
    Active,
    Expired,
    Completed,
    Cancelled,
    All,
}

/// The query of `GET /api/mocs/uploads/sessions`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct SessionListQuery {
    /// `active` (the default): resumable now, never finalized, cancelled or
    /// expired ones.
    #[param(inline)]
    status: Option<ListedStatus>,
    /// Sessions per page, newest first.
    #[param(minimum = 1, maximum = 50, default = 20)]
    limit: Option<u32>,
    /// The `nextCursor` of the previous page, as given.
    #[param(
        min_length = 1,
        example = "1764972000123456_0f3c1b2d4e5a4c6b9a570f3c1b2d4e5a"
    )]
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/mocs/uploads/sessions",
    operation_id = "listSessions",
    tag = "sessions",
    description = "The caller's sessions, newest first, a page at a time: what another device resumes from. Each is what the session route answers (§4.8); `uploadedParts` are the parts the database has recorded (parts PUT straight to S3 show once listed or re-signed). Not rate limited, and not counted against the daily create limit.",
    params(SessionListQuery),
    responses(
        (status = 200, description = "A page of sessions and the cursor of the next (`null` on the last).", body = SessionList),
        (status = 400, description = "VALIDATION_ERROR (`details.reason` INVALID_QUERY): an unknown `status`, a `limit` outside 1..=50 or a `cursor` this route did not answer (`details.errors` by parameter).", body = ErrorBody),
    ),
)]
fn list_sessions() {}

#[utoipa::path(
    post,
    path = "/api/mocs/uploads/sessions",
    operation_id = "createSession",
    tag = "sessions",
    request_body = CreateSessionRequest,
    responses(
        (status = 201, description = "The session, with the part size to cut files into.", body = CreatedSession),
        (status = 400, description = "BAD_REQUEST (no instruction file, invalid JSON), or VALIDATION_ERROR with `details.reason` FILE_COUNT_EXCEEDED.", body = ErrorBody),
        (status = 413, description = "SIZE_TOO_LARGE: a file over its category's limit (`details.reason` FILE_TOO_LARGE), or a body over 1 MiB (PAYLOAD_TOO_LARGE).", body = ErrorBody),
        (status = 415, description = "INVALID_TYPE (`details.reason` UNSUPPORTED_MEDIA_TYPE): a MIME type its category does not allow.", body = ErrorBody),
        (status = 422, description = "VALIDATION_ERROR, `details.errors` by field path.", body = ErrorBody),
        (status = 429, description = "TOO_MANY_REQUESTS (`details.reason` TOO_MANY_REQUESTS): the daily session limit; checked after every other rule, so an invalid request uses no quota.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the next session may be created."))),
    ),
)]
fn create_session() {}

#[utoipa::path(
    post,
    path = "/api/mocs/uploads/sessions/{sessionId}/files",
    operation_id = "registerFile",
    tag = "files",
    params(SessionPath),
    request_body = RegisterFileRequest,
    responses(
        (status = 201, description = "A new file and its S3 multipart upload.", body = Registration),
        (status = 200, description = "A re-registration (`fileId` sent): the same upload, fresh URLs.", body = Registration),
        (status = 400, description = "BAD_REQUEST (session not active), or VALIDATION_ERROR with `details.reason` FILE_COUNT_EXCEEDED (more than the session declared).", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such session of the caller's.", body = ErrorBody),
        (status = 409, description = "CONFLICT: the same category and name is already registered (`details.existingFileId`), or the re-registered file is completed.", body = ErrorBody),
        (status = 410, description = "EXPIRED_SESSION (`details.reason` GONE): the session expired (`details.sessionExpired`, `expiresAt`, `now`).", body = ErrorBody),
        (status = 413, description = "SIZE_TOO_LARGE (`details.reason` FILE_TOO_LARGE or PAYLOAD_TOO_LARGE).", body = ErrorBody),
        (status = 415, description = "INVALID_TYPE (`details.reason` UNSUPPORTED_MEDIA_TYPE).", body = ErrorBody),
        (status = 422, description = "VALIDATION_ERROR, including a `partCount` that does not match the size (`details.expectedPartCount`).", body = ErrorBody),
    ),
)]
fn register_file() {}

#[utoipa::path(
    post,
    path = "/api/mocs/uploads/sessions/{sessionId}/files/batch",
    operation_id = "registerFiles",
    tag = "files",
    params(SessionPath),
    request_body = BatchRegisterRequest,
    responses(
        (status = 201, description = "One result per file, in request order: its registration or its error. Items register independently (partial commit).", body = BatchResults),
        (status = 400, description = "BAD_REQUEST: the batch is over the limit (`details.reason` BATCH_TOO_LARGE, `maxBatchSize`), or the session is not active.", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such session of the caller's.", body = ErrorBody),
        (status = 410, description = "EXPIRED_SESSION (`details.reason` GONE): the session expired (`details.sessionExpired`, `expiresAt`, `now`).", body = ErrorBody),
        (status = 422, description = "VALIDATION_ERROR of the request as a whole (`files` missing or empty).", body = ErrorBody),
    ),
)]
fn register_files() {}

#[utoipa::path(
    put,
    path = "/api/mocs/uploads/sessions/{sessionId}/files/{fileId}/parts/{partNumber}",
    operation_id = "uploadPart",
    tag = "parts",
    description = "Proxies one part to S3. A function body is capped at 4.5 MB on Vercel and S3 needs 5 MiB for every part but the last, so this carries only a final or single small part; presigned URLs are the path for the rest.",
    params(
        FilePath,
        ("partNumber" = u16, Path, minimum = 1, maximum = 10000, example = 2),
        ("x-amz-checksum-crc32c" = Option<String>, Header, description = "The part's CRC32C (S3's base64). Computed while the body streams in; a mismatch is 400 CHECKSUM_MISMATCH before anything reaches S3. For a file registered with `crc32c` the computed value goes on to S3, which checks it again.", example = "yZRlqg=="),
    ),
    request_body(content = PartBytes, content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Stored in S3 and recorded.", body = UploadedPart),
        (status = 400, description = "BAD_REQUEST: a part number out of range (`details.reason` INVALID_PART_NUMBER, `validRange`), an empty body or a malformed checksum header; FILE_ERROR (`details.reason` CHECKSUM_MISMATCH, `partNumber`, `expected`, `found`): the body is not what `x-amz-checksum-crc32c` declares.", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such session or file of the caller's.", body = ErrorBody),
        (status = 408, description = "EXTERNAL_SERVICE_ERROR (`details.reason` REQUEST_TIMEOUT): the upload neared the function's time budget (`details.elapsedMs`, `timeoutAt`); retryable.", body = ErrorBody),
        (status = 409, description = "CONFLICT: the file is completed, or the session is finalized.", body = ErrorBody),
        (status = 410, description = "EXPIRED_SESSION (`details.reason` GONE): the session expired (`details.sessionExpired`, `expiresAt`, `now`).", body = ErrorBody),
        (status = 413, description = "SIZE_TOO_LARGE (`details.reason` PAYLOAD_TOO_LARGE): over `PROXY_MAX_BODY_BYTES` (`details.maxBodyBytes`, and a hint to use presigned URLs).", body = ErrorBody),
    ),
)]
fn upload_part() {}

#[utoipa::path(
    get,
    path = "/api/mocs/uploads/sessions/{sessionId}/files/{fileId}/parts",
    operation_id = "listParts",
    tag = "parts",
    description = "What S3 holds for the file's upload (reconciled with ListParts, since presigned PUTs never pass through the server): the resume point.",
    params(FilePath),
    responses(
        (status = 200, description = "The parts, ascending; empty when none.", body = PartList),
        (status = 404, description = "NOT_FOUND: no such session or file of the caller's.", body = ErrorBody),
    ),
)]
fn list_parts() {}

#[utoipa::path(
    post,
    path = "/api/mocs/uploads/sessions/{sessionId}/files/{fileId}/complete",
    operation_id = "completeFile",
    tag = "files",
    params(FilePath),
    request_body = CompleteFileRequest,
    responses(
        (status = 200, description = "Completed, now or before (idempotent: the stored `fileUrl`).", body = CompletedFile),
        (status = 400, description = "PARTS_VALIDATION_ERROR: the listed parts (or, for `{}`, the parts S3 holds) cannot complete the file: parts missing (`details.missingPartNumbers`, `expected`), a count mismatch (`expected`/`received`), an ETag mismatch (`partNumber`), or non-final parts under 5 MiB (`partNumber`, `sizeBytes`, `minBytes`, `smallPartNumbers`).", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such session or file of the caller's.", body = ErrorBody),
        (status = 409, description = "CONFLICT: the session is finalized or cancelled.", body = ErrorBody),
        (status = 410, description = "EXPIRED_SESSION (`details.reason` GONE): the session expired (`details.sessionExpired`, `expiresAt`, `now`).", body = ErrorBody),
        (status = 422, description = "VALIDATION_ERROR; or FILE_ERROR (`details.reason` CHECKSUM_MISMATCH, `expected`, `found`): S3 found the parts do not make the full-object `crc32c` the file was registered with. Nothing changed: replace parts and complete again, or re-register with `fileId` and the right `crc32c`.", body = ErrorBody),
    ),
)]
fn complete_file() {}

#[utoipa::path(
    post,
    path = "/api/mocs/uploads/finalize",
    operation_id = "finalizeSession",
    tag = "mocs",
    description = "Turns a session's completed files into a MOC, after checking each object in S3 (size, magic bytes). Also served at the older paths `/api/mocs/uploads/sessions/finalize` and `/api/mocs/uploads/sessions/{sessionId}/finalize`, where the session still comes from the body.",
    request_body = FinalizeRequest,
    responses(
        (status = 201, description = "The MOC, created now.", body = MocView),
        (status = 200, description = "Finalized before (the stored MOC, `idempotent: true`), or another request is finalizing and the wait ran out (`status: finalizing`, with `Retry-After`).", body = FinalizeReplay,
            headers(("Retry-After" = u64, description = "Only with `status: finalizing`."))),
        (status = 400, description = "BAD_REQUEST (no completed instruction file), or FILE_ERROR (`details.reason` FILE_VALIDATION_FAILED, `details.files[]`).", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such session of the caller's.", body = ErrorBody),
        (status = 409, description = "DUPLICATE_SLUG: the title is taken (`details.suggestedSlug`, `retryStrategy`); CONFLICT: the session is cancelled.", body = ErrorBody),
        (status = 410, description = "EXPIRED_SESSION (`details.reason` GONE): the session expired before it was finalized.", body = ErrorBody),
        (status = 422, description = "VALIDATION_ERROR.", body = ErrorBody),
        (status = 429, description = "TOO_MANY_REQUESTS (`details.reason` RATE_LIMIT_EXCEEDED): `FINALIZE_RATE_LIMIT_PER_MINUTE` per user (admins exempt).", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the window frees a slot."))),
    ),
)]
fn finalize_session() {}

#[utoipa::path(
    get,
    path = "/api/mocs/uploads/sessions/{sessionId}",
    operation_id = "getSession",
    tag = "sessions",
    description = "What a client needs to resume after a reload. An expired session is still readable; its status says so.",
    params(SessionPath),
    responses(
        (status = 200, description = "The session and its files.", body = SessionView),
        (status = 404, description = "NOT_FOUND: no such session of the caller's.", body = ErrorBody),
    ),
)]
fn get_session() {}

#[utoipa::path(
    delete,
    path = "/api/mocs/uploads/sessions/{sessionId}",
    operation_id = "cancelSession",
    tag = "sessions",
    description = "Aborts every upload of the session, deletes its objects and file rows, and marks it cancelled. Repeating it answers 204; the daily quota is not refunded.",
    params(SessionPath),
    responses(
        (status = 204, description = "Cancelled."),
        (status = 404, description = "NOT_FOUND: no such session of the caller's.", body = ErrorBody),
        (status = 409, description = "CONFLICT: finalized or being finalized.", body = ErrorBody),
    ),
)]
fn cancel_session() {}

#[utoipa::path(
    delete,
    path = "/api/mocs/uploads/sessions/{sessionId}/files/{fileId}",
    operation_id = "abortFile",
    tag = "files",
    description = "Aborts the file's upload, deletes its object and its rows; its name and count slot are free again. Repeating it answers 404.",
    params(FilePath),
    responses(
        (status = 204, description = "Aborted."),
        (status = 404, description = "NOT_FOUND: no such session or file of the caller's.", body = ErrorBody),
        (status = 409, description = "CONFLICT: the session is finalized, being finalized or cancelled.", body = ErrorBody),
        (status = 410, description = "EXPIRED_SESSION (`details.reason` GONE): the session expired (`details.sessionExpired`, `expiresAt`, `now`).", body = ErrorBody),
    ),
)]
fn abort_file() {}

#[utoipa::path(
    post,
    path = "/api/mocs/uploads/sessions/{sessionId}/extend",
    operation_id = "extendSession",
    tag = "sessions",
    description = "Moves `expiresAt` to now + the session TTL, capped at `UPLOAD_SESSION_MAX_LIFETIME_MINUTES` after creation.",
    params(SessionPath),
    responses(
        (status = 200, description = "The new expiry.", body = Extended),
        (status = 404, description = "NOT_FOUND: no such session of the caller's.", body = ErrorBody),
        (status = 409, description = "CONFLICT: finalized, being finalized or cancelled.", body = ErrorBody),
        (status = 410, description = "EXPIRED_SESSION (`details.reason` GONE): already expired.", body = ErrorBody),
    ),
)]
fn extend_session() {}

#[utoipa::path(
    post,
    path = "/api/mocs/uploads/sessions/{sessionId}/files/{fileId}/urls",
    operation_id = "freshPartUrls",
    tag = "parts",
    params(FilePath),
    request_body = FreshUrlsRequest,
    responses(
        (status = 200, description = "Presigned URLs for the listed parts, or for every part S3 lacks.", body = FreshUrls),
        (status = 404, description = "NOT_FOUND: no such session or file of the caller's.", body = ErrorBody),
        (status = 409, description = "CONFLICT: the file is completed, or the session is finalized or cancelled; FILE_ERROR (`details.reason` FILE_MISMATCH, `mismatches`, `expected`, `received`): the `size` or `crc32c` sent is not the registered file's, and no URL is given.", body = ErrorBody),
        (status = 410, description = "EXPIRED_SESSION (`details.reason` GONE): the session expired (`details.sessionExpired`, `expiresAt`, `now`).", body = ErrorBody),
        (status = 422, description = "VALIDATION_ERROR, e.g. a part number beyond the file's part count.", body = ErrorBody),
    ),
)]
fn fresh_part_urls() {}

#[utoipa::path(
    get,
    path = "/api/cron/expire-upload-sessions",
    operation_id = "expireUploadSessions",
    tag = "cron",
    description = "The expiry sweeper, run by Vercel Cron: aborts the uploads of long-expired sessions and orphan uploads, in bounded batches.",
    security(("cronSecret" = [])),
    responses(
        (status = 200, description = "What this run did; the same as its log line.", body = SweepReport),
        (status = 403, description = "FORBIDDEN: not called with the cron secret.", body = ErrorBody),
    ),
)]
fn expire_upload_sessions() {}
