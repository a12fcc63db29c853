//! The one error type of the API. Each variant maps, in one table
//! (`codes.rs`), to a status, a code of the production frontend's vocabulary
//! and a finer reason (docs/contract.md §0, ADR 0008); 5xx answers carry no
//! internals, the full cause goes to the log instead. [`ApiError::to_body`]
//! is the only place the error envelope is written: routes, batch items, the
//! dev server and the gateway all render through it
//! (docs/adr/0004-error-envelope-and-auth-order.md).

mod codes;

use http::{HeaderValue, Method, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

pub use codes::{ErrorCode, Row};

use crate::domain::limits::RateLimitDenial;
use crate::domain::{ByteSize, Crc32c, FieldErrors, FileCategory, PartNumber};
use crate::domain::{FileRejection, FileVerificationProblem};

/// Re-exported for the crates that name it here (the dev server).
use crate::box_error::BoxError;

/// The body of every error answer (contract §0):
/// `{"success": false, "error": {…}, "requestId", "correlationId", "timestamp"}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Always `false`.
    #[schema(value_type = bool, example = false)]
    pub success: bool,
    pub error: ErrorObject,
    /// The request's `x-request-id`, also in every log line of the request.
    #[schema(example = "7f8c2a52-0d1e-4c6b-9a57-0f3c1b2d4e5a")]
    pub request_id: String,
    /// The same value as `requestId` and the `X-Correlation-Id` header: the
    /// support reference the production frontend reads from the body.
    #[schema(example = "7f8c2a52-0d1e-4c6b-9a57-0f3c1b2d4e5a")]
    pub correlation_id: String,
    #[schema(example = "2026-11-22T10:00:00.000Z")]
    pub timestamp: String,
}

/// What went wrong. `code` and `type` carry the same code of the production
/// frontend's vocabulary (its `ApiErrorCodeSchema`): the old Lambdas'
/// clients and the frontend's error mapping read `code`, its API clients
/// read `type`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorObject {
    #[schema(example = "VALIDATION_ERROR")]
    pub code: ErrorCode,
    #[serde(rename = "type")]
    #[schema(example = "VALIDATION_ERROR")]
    pub error_type: ErrorCode,
    /// A human sentence; a 5xx says only what kind of failure happened.
    #[schema(example = "the request body does not match the schema")]
    pub message: String,
    /// Always present: `reason`, the finer code (docs/contract.md §0), and
    /// the context of the code, e.g. `errors` by field path (422),
    /// `sessionExpired`/`expiresAt`/`now` (410 EXPIRED_SESSION), `files[]`
    /// (400 FILE_ERROR), `suggestedSlug` (409 DUPLICATE_SLUG), `retryable`
    /// (503).
    pub details: ErrorDetails,
}

/// `error.details`: the finer code, then the context of the code.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorDetails {
    /// The finer code: the one the API answered as `error.code` before it
    /// spoke the frontend's vocabulary (ADR 0008), e.g. `FILE_TOO_LARGE`
    /// under SIZE_TOO_LARGE, `GONE` under EXPIRED_SESSION.
    pub reason: &'static str,
    /// The context fields, beside `reason`.
    #[serde(flatten)]
    pub context: Map<String, Value>,
}

/// Written out, not derived: a derived schema of the flattened map is an
/// `allOf` with an empty object, which typed clients read as "no other
/// fields". This says what the body is: `reason`, plus any context field.
impl utoipa::PartialSchema for ErrorDetails {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        let reason = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "The finer code: the one the API answered as `error.code` before it spoke the \
                 frontend's vocabulary (ADR 0008), e.g. `FILE_TOO_LARGE` under SIZE_TOO_LARGE, \
                 `GONE` under EXPIRED_SESSION.",
            ))
            .examples([json!("FILE_TOO_LARGE")]);
        ObjectBuilder::new()
            .description(Some(
                "`reason`, the finer code, and the context fields of the code beside it.",
            ))
            .property("reason", reason)
            .required("reason")
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .examples([json!({
                "reason": "FILE_TOO_LARGE",
                "fileName": "castle.pdf",
                "category": "instruction",
                "maxBytes": 52_428_800,
            })])
            .into()
    }
}

impl ToSchema for ErrorDetails {}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        message: String,
        details: Option<Value>,
    },
    #[error("too many {category} files for this session")]
    FileCountExceeded {
        category: FileCategory,
        max_files: u32,
        registered: u32,
    },
    #[error("batch of {size} files is over the limit of {max_batch_size}")]
    BatchTooLarge { size: usize, max_batch_size: usize },
    #[error("part number must be an integer from 1 to 10000")]
    InvalidPartNumber,
    #[error("{} file(s) failed verification", files.len())]
    FileValidationFailed { files: Vec<FileVerificationProblem> },
    /// 400: the part list sent to complete cannot complete the upload.
    #[error("{message}")]
    PartListRejected {
        message: &'static str,
        details: Value,
    },
    #[error("authentication required")]
    Unauthorized,
    /// 403: the caller is known but may not do this (a cron call without the
    /// cron secret). The message never says which check failed.
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static [Method] },
    #[error("the upload took too long and was stopped")]
    RequestTimeout { elapsed_ms: u64, timeout_at: String },
    #[error("{message}")]
    Conflict { message: String, details: Value },
    /// 409: the user already has a MOC with this title (its slug is taken).
    #[error("{message}")]
    TitleTaken { message: String, details: Value },
    #[error("the upload session has expired")]
    Gone { expires_at: String, now: String },
    #[error("{file_name} is larger than the {category} limit")]
    FileTooLarge {
        file_name: String,
        category: FileCategory,
        max: ByteSize,
    },
    #[error("{message}")]
    PayloadTooLarge {
        message: &'static str,
        max_body_bytes: u64,
    },
    #[error("{file_name}: type {mime_type} is not allowed for {category} files")]
    UnsupportedMediaType {
        file_name: String,
        mime_type: String,
        category: FileCategory,
        allowed: &'static [&'static str],
    },
    #[error("the request body does not match the schema")]
    Validation(FieldErrors),
    #[error("partCount {received} does not match the file size: expected {expected}")]
    PartCountMismatch { expected: u64, received: u64 },
    /// 400: a proxied part's bytes do not have the CRC32C declared in its
    /// `x-amz-checksum-crc32c`; nothing reached S3.
    #[error("part {part_number}: the body's CRC32C is {found}, not the declared {expected}")]
    PartChecksumMismatch {
        part_number: PartNumber,
        expected: Crc32c,
        found: Crc32c,
    },
    /// 422: the file's parts do not make the full-object CRC32C it was
    /// registered with (`found`: what they make, when S3 says).
    #[error("the file's CRC32C is not the declared {expected}")]
    FileChecksumMismatch {
        expected: Crc32c,
        found: Option<Crc32c>,
    },
    /// 409: the file a client is about to upload is not the registered one
    /// (another size or full-object CRC32C); no URL was given (§4.12).
    /// `details`: `fileId`, `fileName`, `mismatches`, `expected`, `received`.
    #[error("{message}")]
    FileMismatch { message: String, details: Value },
    /// 400: a query parameter is not one the route accepts (`errors` by
    /// parameter name, as 422's by field path).
    #[error("the query parameters are invalid")]
    InvalidQuery(FieldErrors),
    /// 429: a rate limit refused the request; the limit it names says
    /// the code, the message and the details.
    #[error("{}", .0.rule.message)]
    RateLimited(RateLimitDenial),
    #[error("service configuration error: {0}")]
    Configuration(String),
    #[error("storage is temporarily unavailable")]
    S3Unavailable(#[source] BoxError),
    #[error("database is temporarily unavailable")]
    DatabaseUnavailable(#[source] BoxError),
    /// 503: S3 needs credentials this request cannot get: `AWS_ROLE_ARN` is
    /// set but no OIDC token came with it, or STS could not be reached
    /// (`crate::credentials`). Its stable reason is
    /// `AWS_CREDENTIALS_UNAVAILABLE`.
    #[error("AWS credentials are unavailable")]
    AwsCredentialsUnavailable(#[source] BoxError),
    #[error("internal error")]
    Internal(#[source] BoxError),
    /// An answer the platform gives instead of a function (the dev gateway's
    /// 502 FUNCTION_INVOCATION_FAILED and 504 FUNCTION_INVOCATION_TIMEOUT,
    /// Vercel's own codes), in the same envelope as every other error. Only
    /// the dev crate builds it; it stays in the library's error because the
    /// envelope and the code table (`error::codes`) are the one renderer of
    /// every answer, and a second, dev-only renderer would drift from it.
    #[error("{message}")]
    Platform {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request_with(message: impl Into<String>, details: Value) -> Self {
        Self::BadRequest {
            message: message.into(),
            details: Some(details),
        }
    }

    /// The file's row has its S3 upload open, but S3 no longer knows it
    /// and no object took its place: its parts are lost. The client starts
    /// the file over (docs/contract.md §4.6).
    pub fn upload_gone() -> Self {
        Self::bad_request(
            "The file's upload no longer exists in S3; abort the file and register it again",
        )
    }

    pub fn internal(error: impl Into<BoxError>) -> Self {
        Self::Internal(error.into())
    }

    pub fn invalid_field(path: &str, message: &str) -> Self {
        let mut errors = FieldErrors::default();
        errors.add(path, message);
        Self::Validation(errors)
    }

    pub fn file_rejected(
        file_name: &str,
        category: FileCategory,
        mime_type: &str,
        rejection: FileRejection,
    ) -> Self {
        match rejection {
            FileRejection::TooLarge { max } => Self::FileTooLarge {
                file_name: file_name.to_owned(),
                category,
                max,
            },
            FileRejection::UnsupportedType { allowed } => Self::UnsupportedMediaType {
                file_name: file_name.to_owned(),
                mime_type: mime_type.to_owned(),
                category,
                allowed,
            },
        }
    }

    /// This error's row of the mapping table (docs/contract.md §0).
    pub fn row(&self) -> Row {
        codes::row_of(self)
    }

    pub fn status(&self) -> StatusCode {
        self.row().status
    }

    /// The code of the frontend's vocabulary clients switch on.
    pub fn code(&self) -> ErrorCode {
        self.row().code
    }

    /// The finer code, `details.reason`.
    pub fn reason(&self) -> &'static str {
        self.row().reason
    }

    /// The human sentence of the body. 5xx answers say only what kind of
    /// failure happened, never its cause.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Configuration(_) => "The service is misconfigured".to_owned(),
            ApiError::Internal(_) => "An unexpected error occurred".to_owned(),
            ApiError::S3Unavailable(_) => {
                "File storage is temporarily unavailable; retry with exponential backoff".to_owned()
            }
            ApiError::DatabaseUnavailable(_) => {
                "The database is temporarily unavailable; retry shortly".to_owned()
            }
            ApiError::AwsCredentialsUnavailable(_) => {
                "The service has no AWS credentials for this request".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// `error.details`: the context of the code (docs/contract.md §0). Every
    /// variant is sorted here into the kind of context it carries; each kind
    /// is written by its own function below.
    pub fn details(&self) -> Option<Value> {
        use ApiError::*;
        match self {
            BadRequest { details, .. } => details.clone(),
            Conflict { details, .. }
            | TitleTaken { details, .. }
            | FileMismatch { details, .. }
            | PartListRejected { details, .. } => Some(details.clone()),
            FileCountExceeded { .. }
            | BatchTooLarge { .. }
            | InvalidPartNumber
            | FileValidationFailed { .. }
            | Validation(_)
            | PartCountMismatch { .. }
            | PartChecksumMismatch { .. }
            | FileChecksumMismatch { .. }
            | InvalidQuery(_) => self.request_details(),
            FileTooLarge { .. } | PayloadTooLarge { .. } | UnsupportedMediaType { .. } => {
                self.upload_details()
            }
            RequestTimeout { .. } | Gone { .. } => self.time_details(),
            RateLimited(denial) => Some(denial.details()),
            S3Unavailable(_) | DatabaseUnavailable(_) | AwsCredentialsUnavailable(_) => {
                Some(json!({"retryable": true}))
            }
            Unauthorized
            | Forbidden(_)
            | Platform { .. }
            | NotFound(_)
            | MethodNotAllowed { .. }
            | Configuration(_)
            | Internal(_) => None,
        }
    }

    /// What was wrong with the request: counts, part numbers, fields.
    fn request_details(&self) -> Option<Value> {
        use ApiError::*;
        Some(match self {
            FileCountExceeded {
                category,
                max_files,
                registered,
            } => json!({
                "fileCountExceeded": true,
                "category": category,
                "maxFiles": max_files,
                "registered": registered,
            }),
            BatchTooLarge {
                size,
                max_batch_size,
            } => json!({"maxBatchSize": max_batch_size, "received": size}),
            InvalidPartNumber => json!({"validRange": [1, PartNumber::MAX]}),
            FileValidationFailed { files } => json!({ "files": files }),
            Validation(errors) => json!({ "errors": errors.0 }),
            PartCountMismatch { expected, received } => json!({
                "errors": {"partCount": [format!("must equal ceil(size / partSizeBytes) = {expected}")]},
                "expectedPartCount": expected,
                "received": received,
            }),
            PartChecksumMismatch {
                part_number,
                expected,
                found,
            } => json!({"partNumber": part_number.get(), "expected": expected, "found": found}),
            FileChecksumMismatch { expected, found } => {
                json!({"expected": expected, "found": found})
            }
            InvalidQuery(errors) => json!({ "errors": errors.0 }),
            _ => return None,
        })
    }

    /// Which size or type limit an upload broke.
    fn upload_details(&self) -> Option<Value> {
        use ApiError::*;
        Some(match self {
            FileTooLarge {
                file_name,
                category,
                max,
            } => json!({"fileName": file_name, "category": category, "maxBytes": max.bytes()}),
            PayloadTooLarge { max_body_bytes, .. } => json!({
                "maxBodyBytes": max_body_bytes,
                "hint": "Upload parts of 5 MiB or more directly to S3 with the presigned URLs from file registration (send partCount).",
            }),
            UnsupportedMediaType {
                file_name,
                mime_type,
                category,
                allowed,
            } => json!({
                "fileName": file_name,
                "type": mime_type,
                "category": category,
                "allowedTypes": allowed,
            }),
            _ => return None,
        })
    }

    /// When the request ran out of time, or the session did.
    fn time_details(&self) -> Option<Value> {
        match self {
            ApiError::RequestTimeout {
                elapsed_ms,
                timeout_at,
            } => Some(json!({"elapsedMs": elapsed_ms, "timeoutAt": timeout_at, "retryable": true})),
            ApiError::Gone { expires_at, now } => {
                Some(json!({"sessionExpired": true, "expiresAt": expires_at, "now": now}))
            }
            _ => None,
        }
    }

    /// `Retry-After` seconds, for the answers that carry one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited(denial) => Some(denial.retry_after_seconds),
            ApiError::S3Unavailable(_)
            | ApiError::DatabaseUnavailable(_)
            | ApiError::AwsCredentialsUnavailable(_) => Some(2),
            _ => None,
        }
    }

    /// The `error` object of docs/contract.md §0. Batch results carry it as their
    /// items' `error`.
    pub fn to_item(&self) -> ErrorObject {
        let Row { code, reason, .. } = self.row();
        let context = match self.details() {
            Some(Value::Object(context)) => context,
            Some(other) => Map::from_iter([("value".to_owned(), other)]),
            None => Map::new(),
        };
        debug_assert!(
            !context.contains_key("reason"),
            "details.reason is the finer code only"
        );
        ErrorObject {
            code,
            error_type: code,
            message: self.public_message(),
            details: ErrorDetails { reason, context },
        }
    }

    /// The full error body of docs/contract.md §0.
    pub fn to_body(&self, request_id: &str) -> ErrorBody {
        ErrorBody {
            success: false,
            error: self.to_item(),
            request_id: request_id.to_owned(),
            correlation_id: request_id.to_owned(),
            timestamp: crate::time::rfc3339(crate::time::now()),
        }
    }

    pub fn allow_header(&self) -> Option<HeaderValue> {
        match self {
            ApiError::MethodNotAllowed { allow } => {
                let list: Vec<&str> = allow.iter().map(Method::as_str).collect();
                HeaderValue::from_str(&list.join(", ")).ok()
            }
            _ => None,
        }
    }

    /// Logs the error at the level its status deserves: 5xx in full at ERROR,
    /// client mistakes briefly at INFO.
    pub fn log(&self) {
        let status = self.status().as_u16();
        if self.status().is_server_error() {
            let causes = std::error::Error::source(self)
                .map(causes)
                .unwrap_or_default();
            tracing::error!(status, code = self.code().as_str(), reason = self.reason(), error = %self, causes = ?causes, "request failed");
        } else {
            tracing::info!(status, code = self.code().as_str(), reason = self.reason(), error = %self, "request refused");
        }
    }
}

impl From<crate::domain::SizeTooLarge> for ApiError {
    /// Every size the API accepts fits its column (the configuration caps
    /// the limits): one that does not is a bug, never stored wrapped.
    fn from(error: crate::domain::SizeTooLarge) -> Self {
        ApiError::internal(error)
    }
}

impl From<crate::db::Error> for ApiError {
    fn from(error: crate::db::Error) -> Self {
        if crate::db::is_unavailable(&error) {
            ApiError::DatabaseUnavailable(error.into())
        } else {
            ApiError::Internal(error.into())
        }
    }
}

impl From<crate::s3::S3Error> for ApiError {
    fn from(error: crate::s3::S3Error) -> Self {
        use crate::s3::S3Error::Credentials;
        match error {
            Credentials {
                unavailable: true, ..
            } => ApiError::AwsCredentialsUnavailable(error.into()),
            Credentials { .. } => ApiError::Configuration(causes(&error).join(": ")),
            _ if error.is_unavailable() => ApiError::S3Unavailable(error.into()),
            _ => ApiError::Internal(error.into()),
        }
    }
}

/// The stable reason of [`ApiError::AwsCredentialsUnavailable`].
pub const AWS_CREDENTIALS_UNAVAILABLE: &str = "AWS_CREDENTIALS_UNAVAILABLE";

/// `error` and its sources, outermost first.
fn causes(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    std::iter::successors(Some(error), |e| e.source())
        .map(ToString::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::limits::FINALIZE_LIMIT;

    #[test]
    fn server_errors_never_leak_their_cause() {
        let err = ApiError::internal("relation \"secret_table\" does not exist");
        let body = serde_json::to_value(err.to_body("req-1")).unwrap();
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
        assert_eq!(body["error"]["type"], "INTERNAL_ERROR");
        assert_eq!(
            body["error"]["details"],
            json!({"reason": "INTERNAL_ERROR"})
        );
        assert_eq!(body["requestId"], "req-1");
        assert_eq!(body["correlationId"], "req-1");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(!body.to_string().contains("secret_table"));
    }

    #[test]
    fn gone_carries_the_expiry_context() {
        let err = ApiError::Gone {
            expires_at: "a".into(),
            now: "b".into(),
        };
        assert_eq!(err.status(), StatusCode::GONE);
        assert_eq!(err.code(), ErrorCode::ExpiredSession);
        let details = serde_json::to_value(err.to_item().details).unwrap();
        assert_eq!(
            details,
            json!({"reason": "GONE", "sessionExpired": true, "expiresAt": "a", "now": "b"})
        );
    }

    #[test]
    fn a_rate_limit_denial_answers_what_its_limit_says() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:18Z")
            .unwrap()
            .to_utc();
        let err = ApiError::RateLimited(RateLimitDenial::new(&FINALIZE_LIMIT, 10, now));
        assert_eq!(err.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.code(), ErrorCode::TooManyRequests);
        assert_eq!(err.reason(), "RATE_LIMIT_EXCEEDED");
        assert_eq!(err.public_message(), "too many finalize requests");
        assert_eq!(err.retry_after(), Some(42));
        assert_eq!(err.details().unwrap()["window"], format!("{}m", 1));
    }
}
