//! Black-box API tests: real Postgres (a fresh database per test), real Redis,
//! and the embedded S3 with SigV4 checks.

mod auth;
mod checksums;
mod complete;
mod credentials;
mod database;
mod dependencies;
mod error_codes;
mod finalize;
mod frontend;
mod helpers;
mod lifecycle;
mod oidc;
mod parts;
mod register;
mod resume;
mod sessions;
mod snapshots;
mod sweeper;
mod tls;
