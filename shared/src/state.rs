//! What a request needs, built once per cold start: the configuration, one
//! database pool, one S3 client, the JWKS cache and the Redis client.
//!
//! A dependency's bad configuration fails only what needs it: an unusable
//! Redis URL or AWS credential setting is logged once, here, at cold start,
//! and answers 500 CONFIGURATION_ERROR only on the routes that use Redis or
//! S3 (`crate::kv`, `crate::credentials`).

use std::sync::{Arc, LazyLock};

use crate::db::Db;

use crate::auth::JwksCache;
use crate::config::{Config, ConfigError};
use crate::credentials::AwsCredentials;
use crate::error::ApiError;
use crate::kv::Kv;
use crate::s3::S3Store;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    db: Db,
    s3: S3Store,
    jwks: JwksCache,
    redis: Kv,
}

/// The process-wide state of a function instance. Building it opens no
/// connection (the pool and the Redis client connect on first use), so a cold
/// start pays only for parsing the environment.
static GLOBAL: LazyLock<Result<AppState, ConfigError>> = LazyLock::new(|| {
    let state = Config::from_env().and_then(|config| {
        let credentials = AwsCredentials::from_env(&config.s3.region, &config.trust);
        AppState::new(config, credentials)
    });
    match &state {
        Ok(state) => state.log_cold_start(),
        Err(error) => tracing::error!(%error, "refusing to serve: the configuration is invalid"),
    }
    state
});

impl AppState {
    pub fn new(config: Config, s3_credentials: AwsCredentials) -> Result<Self, ConfigError> {
        let db = crate::db::pool(&config).map_err(|e| ConfigError {
            problems: vec![format!("DATABASE_URL is not a valid Postgres URL: {e}")],
        })?;
        Self::with_db(config, db, s3_credentials)
    }

    /// State over a given database; tests hand in the per-test one.
    pub fn with_db(
        config: Config,
        db: Db,
        s3_credentials: AwsCredentials,
    ) -> Result<Self, ConfigError> {
        let redis_url = config
            .redis_url
            .as_deref()
            .map(|url| (config.redis_url_variable, url));
        let redis = Kv::new(redis_url, &config.trust);
        let s3 = S3Store::with_trust(&config.s3, &config.trust, s3_credentials);
        let jwks = JwksCache::new(config.auth.jwks.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                db,
                s3,
                jwks,
                redis,
            }),
        })
    }

    /// The instance's state, or the configuration error every request answers with.
    pub fn global() -> Result<AppState, ApiError> {
        GLOBAL
            .as_ref()
            .map(Clone::clone)
            .map_err(|error| ApiError::Configuration(error.to_string()))
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The database: every statement unnamed and inside a transaction
    /// (`crate::db`), so it works through a transaction-mode pooler.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn s3(&self) -> &S3Store {
        &self.inner.s3
    }

    pub fn jwks(&self) -> &JwksCache {
        &self.inner.jwks
    }

    /// Redis, where the finalize rate limit counts: unset, unusable, or ready.
    pub fn redis(&self) -> &Kv {
        &self.inner.redis
    }

    /// The cold start's warnings and errors: the configuration's, a refused
    /// Redis URL's, the credentials'. Once per instance.
    pub fn log_cold_start(&self) {
        self.config().log_cold_start_warnings();
        self.redis().log_cold_start();
        self.s3().credentials().log_cold_start();
    }
}
