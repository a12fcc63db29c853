//! Black-box API tests: real Postgres (a fresh database per test), real Redis,
//! and the embedded S3 with SigV4 checks (or garage 2.5 with `MOC_TEST_S3`
//! set: scripts/garage-check runs the checksum cases there).

#![allow(clippy::unwrap_used, reason = "in a test an unwrap is an assertion")]

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
#[path = "../support/store.rs"]
mod store;
mod sweeper;
mod tls;
