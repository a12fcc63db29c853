//! All logic of the MOC upload API.
//!
//! The Vercel function binaries under `api/` are thin: each one hands a
//! [`routes::Route`] to [`runtime::serve`]. Everything they do — configuration,
//! authentication, the database, S3, rate limits and the upload domain — lives
//! here, so the dev server and the test suite drive exactly the same code.

pub mod auth;
pub mod box_error;
pub mod config;
pub mod credentials;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod kv;
pub mod openapi;
pub mod rate_limit;
pub mod routes;
pub mod s3;
mod s3_call;
mod s3_http;
mod s3_sign;
pub mod services;
pub mod state;
pub mod store;
pub mod sts;
pub mod telemetry;
pub mod time;
pub mod tls;
mod xml;

#[cfg(feature = "vercel")]
pub mod runtime;

pub use error::ApiError;
pub use state::AppState;
