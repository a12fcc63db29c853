//! The use cases of the API, one module each (grouped in a folder where a
//! resource has several). Each public function is one request's work: it
//! takes typed input, commits its own transaction, and returns typed output
//! or an [`ApiError`](crate::ApiError). The SQL they run is in
//! [`crate::store`]; the rules they apply are in [`crate::domain`].

pub mod expired;
pub mod files;
pub mod finalize;
pub mod lifecycle;
pub mod lookup;
pub mod parts;
pub mod permits;
pub mod sessions;
