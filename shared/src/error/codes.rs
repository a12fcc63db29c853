//! The production frontend's error-code vocabulary, and the one table that
//! maps every error of the API onto it (docs/contract.md §0, ADR 0008).
//!
//! The frontend knows exactly these codes (its `ApiErrorCodeSchema`): it
//! gives each a title, a message, an action (retry, login, fix-input, wait)
//! and retryability, and shows any other code as a generic "contact support,
//! not retryable". So `error.code` and `error.type` always come from here;
//! the finer code the API answered before, which clients may still switch
//! on, is `error.details.reason`.

use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiError;

/// `error.code` and `error.type`: the frontend's vocabulary, all of it, so the
/// OpenAPI enum is the list the frontend validates. The API answers a subset
/// (the mapping table of docs/contract.md §0); `ACCESS_DENIED`,
/// `RATE_LIMITED`, `DATABASE_ERROR`, `SEARCH_ERROR` and `THROTTLING_ERROR`
/// are never answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    Unauthorized,
    ExpiredSession,
    AccessDenied,
    Forbidden,
    NotFound,
    Conflict,
    DuplicateSlug,
    BadRequest,
    ValidationError,
    InvalidType,
    SizeTooLarge,
    FileError,
    PartsValidationError,
    RateLimited,
    TooManyRequests,
    InternalError,
    ServiceUnavailable,
    DatabaseError,
    SearchError,
    ExternalServiceError,
    ThrottlingError,
}

impl ErrorCode {
    /// The vocabulary in the frontend's order.
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::Unauthorized,
        ErrorCode::ExpiredSession,
        ErrorCode::AccessDenied,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::DuplicateSlug,
        ErrorCode::BadRequest,
        ErrorCode::ValidationError,
        ErrorCode::InvalidType,
        ErrorCode::SizeTooLarge,
        ErrorCode::FileError,
        ErrorCode::PartsValidationError,
        ErrorCode::RateLimited,
        ErrorCode::TooManyRequests,
        ErrorCode::InternalError,
        ErrorCode::ServiceUnavailable,
        ErrorCode::DatabaseError,
        ErrorCode::SearchError,
        ErrorCode::ExternalServiceError,
        ErrorCode::ThrottlingError,
    ];

    /// The code as it goes on the wire.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            Unauthorized => "UNAUTHORIZED",
            ExpiredSession => "EXPIRED_SESSION",
            AccessDenied => "ACCESS_DENIED",
            Forbidden => "FORBIDDEN",
            NotFound => "NOT_FOUND",
            Conflict => "CONFLICT",
            DuplicateSlug => "DUPLICATE_SLUG",
            BadRequest => "BAD_REQUEST",
            ValidationError => "VALIDATION_ERROR",
            InvalidType => "INVALID_TYPE",
            SizeTooLarge => "SIZE_TOO_LARGE",
            FileError => "FILE_ERROR",
            PartsValidationError => "PARTS_VALIDATION_ERROR",
            RateLimited => "RATE_LIMITED",
            TooManyRequests => "TOO_MANY_REQUESTS",
            InternalError => "INTERNAL_ERROR",
            ServiceUnavailable => "SERVICE_UNAVAILABLE",
            DatabaseError => "DATABASE_ERROR",
            SearchError => "SEARCH_ERROR",
            ExternalServiceError => "EXTERNAL_SERVICE_ERROR",
            ThrottlingError => "THROTTLING_ERROR",
        }
    }
}

/// One row of the mapping: the HTTP status, the frontend's code, and the
/// finer code (`details.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub reason: &'static str,
}

const fn row(status: StatusCode, code: ErrorCode, reason: &'static str) -> Row {
    Row {
        status,
        code,
        reason,
    }
}

/// 500: the API's own fault; the frontend does not retry it.
const fn internal(reason: &'static str) -> Row {
    row(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::InternalError,
        reason,
    )
}

/// 503: a dependency is down for now; retryable, with `Retry-After`.
const fn unavailable(reason: &'static str) -> Row {
    row(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::ServiceUnavailable,
        reason,
    )
}

/// The mapping table (docs/contract.md §0 "Error codes", the same rows in
/// the same order). The frontend's action for each code chose the row: what
/// a user fixes is fix-input (BAD_REQUEST, VALIDATION_ERROR, INVALID_TYPE,
/// SIZE_TOO_LARGE, FILE_ERROR, PARTS_VALIDATION_ERROR, DUPLICATE_SLUG);
/// what passes with time is retryable (TOO_MANY_REQUESTS waits,
/// SERVICE_UNAVAILABLE and EXTERNAL_SERVICE_ERROR retry); an expired upload
/// session is EXPIRED_SESSION, the only code the upload manager's "expired"
/// state is entered for. The reason is the code the API answered before
/// ADR 0008.
pub(super) fn row_of(error: &ApiError) -> Row {
    use ApiError::*;
    use ErrorCode as C;
    use StatusCode as S;
    match error {
        BadRequest { .. } => row(S::BAD_REQUEST, C::BadRequest, "BAD_REQUEST"),
        BatchTooLarge { .. } => row(S::BAD_REQUEST, C::BadRequest, "BATCH_TOO_LARGE"),
        InvalidPartNumber => row(S::BAD_REQUEST, C::BadRequest, "INVALID_PART_NUMBER"),
        FileCountExceeded { .. } => row(S::BAD_REQUEST, C::ValidationError, "FILE_COUNT_EXCEEDED"),
        InvalidQuery(_) => row(S::BAD_REQUEST, C::ValidationError, "INVALID_QUERY"),
        FileValidationFailed { .. } => row(S::BAD_REQUEST, C::FileError, "FILE_VALIDATION_FAILED"),
        PartChecksumMismatch { .. } => row(S::BAD_REQUEST, C::FileError, "CHECKSUM_MISMATCH"),
        FileChecksumMismatch { .. } => {
            row(S::UNPROCESSABLE_ENTITY, C::FileError, "CHECKSUM_MISMATCH")
        }
        PartListRejected { .. } => row(S::BAD_REQUEST, C::PartsValidationError, "BAD_REQUEST"),
        Unauthorized => row(S::UNAUTHORIZED, C::Unauthorized, "UNAUTHORIZED"),
        Forbidden(_) => row(S::FORBIDDEN, C::Forbidden, "FORBIDDEN"),
        NotFound(_) => row(S::NOT_FOUND, C::NotFound, "NOT_FOUND"),
        MethodNotAllowed { .. } => row(S::METHOD_NOT_ALLOWED, C::BadRequest, "METHOD_NOT_ALLOWED"),
        RequestTimeout { .. } => row(
            S::REQUEST_TIMEOUT,
            C::ExternalServiceError,
            "REQUEST_TIMEOUT",
        ),
        Conflict { .. } => row(S::CONFLICT, C::Conflict, "CONFLICT"),
        TitleTaken { .. } => row(S::CONFLICT, C::DuplicateSlug, "CONFLICT"),
        // FILE_ERROR, not CONFLICT: the user fixes it by choosing the right
        // file (the frontend's fix-input action).
        FileMismatch { .. } => row(S::CONFLICT, C::FileError, "FILE_MISMATCH"),
        Gone { .. } => row(S::GONE, C::ExpiredSession, "GONE"),
        FileTooLarge { .. } => row(S::PAYLOAD_TOO_LARGE, C::SizeTooLarge, "FILE_TOO_LARGE"),
        PayloadTooLarge { .. } => row(S::PAYLOAD_TOO_LARGE, C::SizeTooLarge, "PAYLOAD_TOO_LARGE"),
        UnsupportedMediaType { .. } => row(
            S::UNSUPPORTED_MEDIA_TYPE,
            C::InvalidType,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        Validation(_) | PartCountMismatch { .. } => row(
            S::UNPROCESSABLE_ENTITY,
            C::ValidationError,
            "VALIDATION_ERROR",
        ),
        RateLimited(denial) => row(S::TOO_MANY_REQUESTS, C::TooManyRequests, denial.rule.reason),
        Configuration(_) => internal("CONFIGURATION_ERROR"),
        Internal(_) => internal("INTERNAL_ERROR"),
        S3Unavailable(_) => unavailable("S3_UNAVAILABLE"),
        DatabaseUnavailable(_) => unavailable("DATABASE_UNAVAILABLE"),
        AwsCredentialsUnavailable(_) => unavailable(super::AWS_CREDENTIALS_UNAVAILABLE),
        Platform { status, code, .. } => row(*status, C::ExternalServiceError, code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_names_are_the_serde_names_in_the_frontends_order() {
        let names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names.join(","),
            "UNAUTHORIZED,EXPIRED_SESSION,ACCESS_DENIED,FORBIDDEN,NOT_FOUND,CONFLICT,\
             DUPLICATE_SLUG,BAD_REQUEST,VALIDATION_ERROR,INVALID_TYPE,SIZE_TOO_LARGE,\
             FILE_ERROR,PARTS_VALIDATION_ERROR,RATE_LIMITED,TOO_MANY_REQUESTS,\
             INTERNAL_ERROR,SERVICE_UNAVAILABLE,DATABASE_ERROR,SEARCH_ERROR,\
             EXTERNAL_SERVICE_ERROR,THROTTLING_ERROR"
        );
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
