//! Postgres access. One small pool per function instance.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::Config;

/// The schema migrations, embedded so every binary and test applies the same set.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A lazily connecting pool: building it costs nothing at cold start, and the
/// first query opens the first connection.
///
/// - At most 5 connections: serverless instances multiply, Postgres does not.
/// - No prepared-statement cache: it must work behind a transaction-mode
///   pooler (PgBouncer, Neon), where a session's statements do not survive.
pub fn pool(config: &Config) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = config.database_url.parse()?;
    Ok(pool_options().connect_lazy_with(options.statement_cache_capacity(0)))
}

pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(5)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(Some(Duration::from_secs(60)))
}

/// Postgres SQLSTATE of a database error, if any.
pub fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
}

/// The constraint a database error names, if any.
pub fn constraint(error: &sqlx::Error) -> Option<&str> {
    error.as_database_error().and_then(|e| e.constraint())
}

pub const UNIQUE_VIOLATION: &str = "23505";
pub const SERIALIZATION_FAILURE: &str = "40001";
pub const DEADLOCK_DETECTED: &str = "40P01";
