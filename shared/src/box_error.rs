//! The boxed error that the API's errors, the S3 adapter and the HTTP bodies
//! carry as a cause. It lives alone so that `error` (which turns an
//! `S3Error` into an `ApiError`) and `s3` (whose errors box their causes)
//! do not depend on each other.

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
