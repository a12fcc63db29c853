//! The one error type of the API. Each variant maps to a status and a stable
//! code (docs/contract.md §0); 5xx answers carry no internals, the full cause goes to
//! the log instead. [`ApiError::to_body`] is the only place the error
//! envelope is written: routes, batch items, the dev server and the gateway
//! all render through it (docs/adr/0004-error-envelope-and-auth-order.md).

use http::{HeaderValue, Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::domain::limits::RateLimitDenial;
use crate::domain::{ByteSize, Crc32c, FieldErrors, FileCategory, PartNumber};
use crate::domain::{FileRejection, FileVerificationProblem};

/// Re-exported for the crates that name it here (the dev server).
use crate::box_error::BoxError;

/// The body of every error answer (contract §0):
/// `{"success": false, "error": {…}, "requestId", "timestamp"}`.
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
    #[schema(example = "2026-11-22T10:00:00.000Z")]
    pub timestamp: String,
}

/// What went wrong. `code` and `type` carry the same stable code: the old
/// Lambdas' clients read `code`, the production frontend reads `type`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorObject {
    #[schema(example = "VALIDATION_ERROR")]
    pub code: &'static str,
    #[serde(rename = "type")]
    #[schema(example = "VALIDATION_ERROR")]
    pub error_type: &'static str,
    /// A human sentence; a 5xx says only what kind of failure happened.
    #[schema(example = "the request body does not match the schema")]
    pub message: String,
    /// Context for the code, e.g. `errors` by field path (422),
    /// `sessionExpired`/`expiresAt`/`now` (410), `files[]` (400
    /// FILE_VALIDATION_FAILED), `suggestedSlug` (409), `retryable` (503).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, example = json!({"errors": {"files[0].size": ["must be an integer from 1 to 18446744073709551615"]}}))]
    pub details: Option<Value>,
}

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
    #[error("internal error")]
    Internal(#[source] BoxError),
    /// An answer the platform gives instead of a function (the dev gateway's
    /// 502 FUNCTION_INVOCATION_FAILED and 504 FUNCTION_INVOCATION_TIMEOUT,
    /// Vercel's own codes), in the same envelope as every other error.
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

    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            BadRequest { .. }
            | FileCountExceeded { .. }
            | BatchTooLarge { .. }
            | InvalidPartNumber
            | PartChecksumMismatch { .. }
            | FileValidationFailed { .. } => StatusCode::BAD_REQUEST,
            Unauthorized => StatusCode::UNAUTHORIZED,
            Forbidden(_) => StatusCode::FORBIDDEN,
            NotFound(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Conflict { .. } => StatusCode::CONFLICT,
            Gone { .. } => StatusCode::GONE,
            FileTooLarge { .. } | PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Validation(_) | PartCountMismatch { .. } | FileChecksumMismatch { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Configuration(_) | Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            S3Unavailable(_) | DatabaseUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Platform { status, .. } => *status,
        }
    }

    /// The stable code clients switch on.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            BadRequest { .. } => "BAD_REQUEST",
            FileCountExceeded { .. } => "FILE_COUNT_EXCEEDED",
            BatchTooLarge { .. } => "BATCH_TOO_LARGE",
            InvalidPartNumber => "INVALID_PART_NUMBER",
            FileValidationFailed { .. } => "FILE_VALIDATION_FAILED",
            Unauthorized => "UNAUTHORIZED",
            Forbidden(_) => "FORBIDDEN",
            NotFound(_) => "NOT_FOUND",
            MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            RequestTimeout { .. } => "REQUEST_TIMEOUT",
            Conflict { .. } => "CONFLICT",
            Gone { .. } => "GONE",
            FileTooLarge { .. } => "FILE_TOO_LARGE",
            PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            UnsupportedMediaType { .. } => "UNSUPPORTED_MEDIA_TYPE",
            Validation(_) | PartCountMismatch { .. } => "VALIDATION_ERROR",
            PartChecksumMismatch { .. } | FileChecksumMismatch { .. } => "CHECKSUM_MISMATCH",
            RateLimited(denial) => denial.rule.code,
            Configuration(_) => "CONFIGURATION_ERROR",
            S3Unavailable(_) => "S3_UNAVAILABLE",
            DatabaseUnavailable(_) => "DATABASE_UNAVAILABLE",
            Internal(_) => "INTERNAL_ERROR",
            Platform { code, .. } => code,
        }
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
            Conflict { details, .. } => Some(details.clone()),
            FileCountExceeded { .. }
            | BatchTooLarge { .. }
            | InvalidPartNumber
            | FileValidationFailed { .. }
            | Validation(_)
            | PartCountMismatch { .. }
            | PartChecksumMismatch { .. }
            | FileChecksumMismatch { .. } => self.request_details(),
            FileTooLarge { .. } | PayloadTooLarge { .. } | UnsupportedMediaType { .. } => {
                self.upload_details()
            }
            RequestTimeout { .. } | Gone { .. } => self.time_details(),
            RateLimited(denial) => Some(denial.details()),
            S3Unavailable(_) | DatabaseUnavailable(_) => Some(json!({"retryable": true})),
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
            ApiError::S3Unavailable(_) | ApiError::DatabaseUnavailable(_) => Some(2),
            _ => None,
        }
    }

    /// The `error` object of docs/contract.md §0. Batch results carry it as their
    /// items' `error`.
    pub fn to_item(&self) -> ErrorObject {
        let code = self.code();
        ErrorObject {
            code,
            error_type: code,
            message: self.public_message(),
            details: self.details(),
        }
    }

    /// The full error body of docs/contract.md §0.
    pub fn to_body(&self, request_id: &str) -> ErrorBody {
        ErrorBody {
            success: false,
            error: self.to_item(),
            request_id: request_id.to_owned(),
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
            let mut causes = Vec::new();
            let mut source = std::error::Error::source(self);
            while let Some(cause) = source {
                causes.push(cause.to_string());
                source = cause.source();
            }
            tracing::error!(status, code = self.code(), error = %self, causes = ?causes, "request failed");
        } else {
            tracing::info!(status, code = self.code(), error = %self, "request refused");
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&error) {
            ApiError::DatabaseUnavailable(error.into())
        } else {
            ApiError::Internal(error.into())
        }
    }
}

impl From<crate::s3::S3Error> for ApiError {
    fn from(error: crate::s3::S3Error) -> Self {
        if error.is_unavailable() {
            ApiError::S3Unavailable(error.into())
        } else {
            ApiError::Internal(error.into())
        }
    }
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
        assert!(body["error"].get("details").is_none());
        assert_eq!(body["requestId"], "req-1");
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
        assert_eq!(err.details().unwrap()["sessionExpired"], true);
    }

    #[test]
    fn a_rate_limit_denial_answers_what_its_limit_says() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:18Z")
            .unwrap()
            .to_utc();
        let err = ApiError::RateLimited(RateLimitDenial::new(&FINALIZE_LIMIT, 10, now));
        assert_eq!(err.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.code(), "RATE_LIMIT_EXCEEDED");
        assert_eq!(err.public_message(), "too many finalize requests");
        assert_eq!(err.retry_after(), Some(42));
        assert_eq!(err.details().unwrap()["window"], format!("{}m", 1));
    }
}
