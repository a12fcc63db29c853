//! The use cases of the API, one module per resource. Each public function is
//! one request's work: it takes typed input, commits its own transaction, and
//! returns typed output or an [`ApiError`](crate::ApiError).

pub mod files;
pub mod finalize;
pub mod lifecycle;
pub mod parts;
pub mod records;
pub mod sessions;
