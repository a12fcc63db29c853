//! Configuration, read once per cold start from the environment (docs/contract.md §2).
//!
//! Every problem is collected and reported together, so an operator fixes a
//! deployment in one round trip. A bad configuration never panics: the state
//! keeps the error and every request answers 500 CONFIGURATION_ERROR.

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::domain::ByteSize;
use crate::domain::limits::{CREATE_SESSION_LIMIT, FINALIZE_LIMIT, RateLimit, UploadLimits};
use crate::tls::TrustRoots;

/// The deployment stage. It prefixes every S3 key, and `production` forbids
/// the development shortcuts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage(String);

impl Stage {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_production(&self) -> bool {
        self.0 == "production"
    }
}

#[derive(Debug, Clone)]
pub enum JwksSource {
    Url(String),
    Inline(String),
    Unconfigured,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Requests without credentials act as `dev_user_sub`. Presented
    /// credentials are still verified: a bad token is never silently accepted.
    pub bypass: bool,
    pub dev_user_sub: String,
    pub jwks: JwksSource,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub admin_group: String,
    /// The cookie the frontend's auth service sets (`AUTH_COOKIE_NAME`).
    pub cookie_name: String,
}

#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    /// An S3-compatible endpoint; path-style addressing is used when set.
    pub endpoint: Option<String>,
    pub public_file_base_url: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub stage: Stage,
    /// What the functions connect to: `DATABASE_URL`, else `POSTGRES_URL`;
    /// usually a transaction-mode pooler (`crate::db`).
    pub database_url: String,
    /// What migrations and other session-level tooling connect to (§2).
    pub migration_database_url: String,
    /// `DATABASE_STATEMENTS`: `unnamed` (the default, for any pooler) or
    /// `named`, for a pooler that keeps named statements (`crate::db::Statements`).
    pub database_statements: crate::db::Statements,
    pub s3: S3Config,
    pub auth: AuthConfig,
    pub limits: UploadLimits,
    /// Sessions per user per UTC day (`domain::limits::CREATE_SESSION_LIMIT`).
    pub create_session_per_day: u32,
    pub session_ttl: Duration,
    pub presigned_url_ttl: Duration,
    pub part_size: ByteSize,
    pub max_batch_size: usize,
    pub proxy_max_body_bytes: u64,
    /// The proxied part route gives up (408) when this much of the function's
    /// `maxDuration` (30 s) is gone, leaving time to answer.
    pub part_upload_budget: Duration,
    pub finalize_lock_ttl: Duration,
    /// How long a finalize that finds a fresh lock waits for its holder
    /// (`FINALIZE_WAIT_MS`, docs/contract.md §4.7 step 7).
    pub finalize_wait: Duration,
    /// Finalizes per user per minute (`domain::limits::FINALIZE_LIMIT`).
    pub finalize_per_minute: u32,
    /// `REDIS_URL`, else `KV_URL` (what the Marketplace's Upstash sets).
    /// Parsed by `crate::kv`: a refused URL fails only finalize.
    pub redis_url: Option<String>,
    /// Which of the two `redis_url` came from, for the messages about it.
    pub redis_url_variable: &'static str,
    /// The roots every TLS connection trusts: the compiled-in ones plus
    /// `SSL_CERT_FILE`'s (`crate::tls`).
    pub trust: TrustRoots,
    pub rate_limit_bypass: bool,
    pub allow_browser_uploads: bool,
    /// `CORS_ALLOWED_ORIGINS`, else `ALLOWED_UPLOAD_ORIGINS`: exact origins,
    /// never `*` (docs/contract.md §7).
    pub cors_allowed_origins: Vec<String>,
    /// How far extensions may push a session's expiry past its creation (§4.11).
    pub session_max_lifetime: Duration,
    /// How long after expiry a session's S3 state is kept before the sweeper
    /// removes it, and how old an unreferenced multipart upload must be
    /// before it counts as an orphan (§4.13).
    pub expired_session_grace: Duration,
    /// The bearer secret Vercel Cron sends; unset refuses every cron call.
    pub cron_secret: Option<String>,
    /// Sessions one sweeper run claims (`SWEEP_BATCH_SIZE`, default 100).
    pub sweep_batch_size: u32,
}

/// Everything wrong with the environment, one line per variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.problems.join("; "))
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests can supply their own
    /// environment without touching the process's.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env {
            lookup: &|name| lookup(name).filter(|value| !value.trim().is_empty()),
            problems: Vec::new(),
        };
        let stage = Stage(env.string_or("STAGE", "dev"));
        let (database_url, migration_database_url) = read_database_urls(&mut env);
        let database_statements = read_database_statements(&mut env);
        let s3 = read_s3(&mut env);
        let auth = read_auth(&mut env, &stage);
        let limits = read_upload_limits(&mut env);
        let lifetimes = read_lifetimes(&mut env);
        // Part size trade-off: S3 rejects any non-final part under 5 MiB, so 5
        // is the floor. Larger parts mean fewer requests (and fewer presigned
        // URLs in the register response) but each request runs longer and a
        // failed part costs more to resend on a slow link; past 100 MiB a
        // single part on a home connection outlives any sensible URL TTL.
        let part_size = ByteSize::mib(env.number("MULTIPART_PART_SIZE_MB", 5, 5..=100));
        let (redis_url_variable, redis_url) = read_redis_url(&env);
        let trust = read_trust(&mut env);
        let rate_limit_bypass = env.flag("RATE_LIMIT_BYPASS");
        if rate_limit_bypass && stage.is_production() {
            env.problem("RATE_LIMIT_BYPASS=true is forbidden when STAGE=production");
        }
        let config = Config {
            stage,
            database_url,
            migration_database_url,
            database_statements,
            s3,
            auth,
            limits,
            create_session_per_day: env.rate_limit(&CREATE_SESSION_LIMIT),
            session_ttl: lifetimes.session_ttl,
            presigned_url_ttl: lifetimes.presigned_url_ttl,
            part_size,
            max_batch_size: env.number_as("MAX_BATCH_SIZE", 10, 1..=100),
            proxy_max_body_bytes: env.number("PROXY_MAX_BODY_BYTES", 4_500_000, 1..=4_500_000),
            part_upload_budget: env.millis("PART_UPLOAD_BUDGET_MS", 25_000, 1..=300_000),
            finalize_lock_ttl: env.minutes("FINALIZE_LOCK_TTL_MINUTES", 5, 1..=24 * 60),
            finalize_wait: env.millis("FINALIZE_WAIT_MS", 10_000, 0..=60_000),
            finalize_per_minute: env.rate_limit(&FINALIZE_LIMIT),
            redis_url,
            redis_url_variable,
            trust,
            rate_limit_bypass,
            allow_browser_uploads: env.flag("ALLOW_BROWSER_UPLOADS"),
            cors_allowed_origins: read_cors_origins(&env),
            session_max_lifetime: lifetimes.session_max_lifetime,
            expired_session_grace: env.minutes(
                "EXPIRED_SESSION_GRACE_MINUTES",
                60,
                0..=30 * 24 * 60,
            ),
            cron_secret: env.string("CRON_SECRET"),
            sweep_batch_size: env.number_as("SWEEP_BATCH_SIZE", 100, 1..=1_000),
        };
        env.finish(config)
    }

    /// Warnings an operator must see at cold start.
    pub fn log_cold_start_warnings(&self) {
        if self.auth.bypass {
            tracing::warn!(
                dev_user_sub = %self.auth.dev_user_sub,
                "AUTH_BYPASS is on: requests without credentials act as the dev user"
            );
        }
        if self.rate_limit_bypass {
            tracing::warn!("RATE_LIMIT_BYPASS is on: rate limits count and log but never deny");
        }
        if self.redis_url.is_none() {
            tracing::warn!("REDIS_URL and KV_URL are unset: the finalize rate limit fails open");
        }
        if self.cron_secret.is_none() {
            tracing::warn!(
                "CRON_SECRET is unset: the expiry sweeper answers 403 to every call, so abandoned uploads are never cleaned"
            );
        }
    }

    pub fn part_size_bytes(&self) -> u64 {
        self.part_size.bytes()
    }
}

/// `REDIS_URL`, else `KV_URL` (the Marketplace's Upstash sets both), and
/// which of the two it was.
fn read_redis_url(env: &Env) -> (&'static str, Option<String>) {
    ["REDIS_URL", "KV_URL"]
        .into_iter()
        .find_map(|name| Some((name, Some(env.string(name)?))))
        .unwrap_or(("REDIS_URL", None))
}

/// The compiled-in roots plus `SSL_CERT_FILE`'s; a file that cannot be used
/// is a problem of the whole configuration (every route reaches Postgres).
fn read_trust(env: &mut Env) -> TrustRoots {
    TrustRoots::load(env.string("SSL_CERT_FILE").as_deref()).unwrap_or_else(|problem| {
        env.problem(problem);
        TrustRoots::builtin()
    })
}

/// `DATABASE_STATEMENTS`: `unnamed` unless set (`crate::db::Statements`).
fn read_database_statements(env: &mut Env) -> crate::db::Statements {
    let Some(value) = env.string("DATABASE_STATEMENTS") else {
        return crate::db::Statements::default();
    };
    crate::db::Statements::parse(&value).unwrap_or_else(|| {
        env.problem(format!(
            "DATABASE_STATEMENTS must be `unnamed` or `named`, not {value:?}"
        ));
        crate::db::Statements::default()
    })
}

/// The functions' URL (`DATABASE_URL`, else `POSTGRES_URL`; required) and
/// the migrations' one ([`migration_url`]).
fn read_database_urls(env: &mut Env) -> (String, String) {
    let database_url = env
        .string("DATABASE_URL")
        .or_else(|| env.string("POSTGRES_URL"));
    if database_url.is_none() {
        env.problem("DATABASE_URL (or POSTGRES_URL) is required");
    }
    let migration_database_url = migration_url(&|name| env.string(name));
    (
        database_url.unwrap_or_default(),
        migration_database_url.unwrap_or_default(),
    )
}

fn read_s3(env: &mut Env) -> S3Config {
    let bucket = env
        .string("MOC_BUCKET")
        .or_else(|| env.string("LEGO_API_BUCKET_NAME"));
    if bucket.is_none() {
        env.problem("MOC_BUCKET (or LEGO_API_BUCKET_NAME) is required");
    }
    let bucket = bucket.unwrap_or_default();
    // S3_REGION first: Vercel may inject AWS_REGION (the function's region,
    // not necessarily the bucket's).
    let region = env
        .string("S3_REGION")
        .or_else(|| env.string("AWS_REGION"))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let endpoint = env
        .string("AWS_ENDPOINT_URL_S3")
        .or_else(|| env.string("S3_ENDPOINT"))
        .map(|e| e.trim_end_matches('/').to_owned());
    let public_file_base_url = env
        .string("PUBLIC_FILE_BASE_URL")
        .map(|url| url.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| match &endpoint {
            Some(endpoint) => format!("{endpoint}/{bucket}"),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com"),
        });
    S3Config {
        bucket,
        region,
        endpoint,
        public_file_base_url,
    }
}

fn read_auth(env: &mut Env, stage: &Stage) -> AuthConfig {
    let bypass = env.flag("AUTH_BYPASS");
    let jwks = match (env.string("AUTH_JWKS_URL"), env.string("AUTH_JWKS_JSON")) {
        (_, Some(json)) => JwksSource::Inline(json),
        (Some(url), None) => JwksSource::Url(url),
        (None, None) => JwksSource::Unconfigured,
    };
    let issuer = env.string("AUTH_ISSUER");
    if !bypass && (matches!(jwks, JwksSource::Unconfigured) || issuer.is_none()) {
        env.problem("AUTH_JWKS_URL or AUTH_JWKS_JSON, and AUTH_ISSUER, are required unless AUTH_BYPASS=true");
    }
    if bypass && stage.is_production() {
        env.problem("AUTH_BYPASS=true is forbidden when STAGE=production");
    }
    AuthConfig {
        bypass,
        dev_user_sub: env.string_or(
            "DEV_USER_SUB",
            "dev-user-00000000-0000-0000-0000-000000000001",
        ),
        jwks,
        issuer,
        audience: env.string("AUTH_AUDIENCE"),
        admin_group: env.string_or("AUTH_ADMIN_GROUP", "admin"),
        cookie_name: env.string_or("AUTH_COOKIE_NAME", "auth_token"),
    }
}

/// The largest size limit, in MiB: what the `integer` size columns hold
/// (`domain::MAX_STORED_SIZE`, 2 GiB - 1 byte), in whole MiB. A larger
/// limit is a configuration error, not a size stored wrapped
/// (docs/adr/0012-sizes-fit-their-columns.md).
pub const MAX_SIZE_LIMIT_MIB: u64 = 2_047;

fn read_upload_limits(env: &mut Env) -> UploadLimits {
    let size_limit = 1..=MAX_SIZE_LIMIT_MIB;
    UploadLimits {
        instruction_max: ByteSize::mib(env.number("UPLOAD_PDF_MAX_MB", 50, size_limit.clone())),
        image_max: ByteSize::mib(env.number("UPLOAD_IMAGE_MAX_MB", 10, size_limit.clone())),
        parts_list_max: ByteSize::mib(env.number("UPLOAD_PARTSLIST_MAX_MB", 5, size_limit)),
        image_max_count: env.number_as("UPLOAD_IMAGE_MAX_COUNT", 10, 0..=1_000),
        parts_list_max_count: env.number_as("UPLOAD_PARTSLIST_MAX_COUNT", 5, 0..=1_000),
    }
}

struct Lifetimes {
    session_ttl: Duration,
    presigned_url_ttl: Duration,
    session_max_lifetime: Duration,
}

fn read_lifetimes(env: &mut Env) -> Lifetimes {
    // The old service reused PRESIGN_TTL_MINUTES for the session lifetime;
    // deployments that only set that keep their behaviour.
    let legacy = "PRESIGN_TTL_MINUTES";
    let session_ttl = env.minutes_or(legacy, "UPLOAD_SESSION_TTL_MINUTES", 15, 1..=24 * 60);
    let presigned_url_ttl = read_presign_ttl(env, legacy);
    let max_lifetime_key = "UPLOAD_SESSION_MAX_LIFETIME_MINUTES";
    let session_max_lifetime = env.minutes(max_lifetime_key, 1440, 1..=7 * 24 * 60);
    if session_max_lifetime < session_ttl {
        let (max, ttl) = (
            session_max_lifetime.as_secs() / 60,
            session_ttl.as_secs() / 60,
        );
        env.problem(format!(
            "{max_lifetime_key} ({max}) must not be below the session TTL ({ttl})"
        ));
    }
    Lifetimes {
        session_ttl,
        presigned_url_ttl,
        session_max_lifetime,
    }
}

/// The presigned part URLs' lifetime: `PRESIGN_TTL_SECONDS`, else
/// `PRESIGNED_URL_TTL_MINUTES`, else the legacy `PRESIGN_TTL_MINUTES`.
/// Seconds allow a lifetime under a minute (a client's expired-URL path can
/// be exercised in seconds); the ceiling is the minutes variable's hour, so
/// a leaked URL, a write capability, never lives longer. Both new variables
/// set is refused: which one wins would be a guess. Whatever is set, a URL
/// is cut to what temporary credentials have left when it is signed
/// (`credentials::AwsCredentials::presign_ttl`).
fn read_presign_ttl(env: &mut Env, legacy: &str) -> Duration {
    const SECONDS: &str = "PRESIGN_TTL_SECONDS";
    const MINUTES: &str = "PRESIGNED_URL_TTL_MINUTES";
    if env.string(SECONDS).is_none() {
        return env.minutes_or(legacy, MINUTES, 15, 1..=60);
    }
    if env.string(MINUTES).is_some() {
        env.problem(format!("set {SECONDS} or {MINUTES}, not both"));
    }
    Duration::from_secs(env.number(SECONDS, 900, 1..=3_600))
}

/// `CORS_ALLOWED_ORIGINS`, else `ALLOWED_UPLOAD_ORIGINS`: comma-separated
/// exact origins; `*` is dropped, never honoured (docs/contract.md §7).
fn read_cors_origins(env: &Env) -> Vec<String> {
    env.string("CORS_ALLOWED_ORIGINS")
        .or_else(|| env.string("ALLOWED_UPLOAD_ORIGINS"))
        .map(|list| {
            list.split(',')
                .map(|origin| origin.trim().trim_end_matches('/').to_owned())
                .filter(|origin| !origin.is_empty() && origin != "*")
                .collect()
        })
        .unwrap_or_default()
}

struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

impl Env<'_> {
    fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    fn string(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|value| value.trim().to_owned())
    }

    fn string_or(&self, name: &str, default: &str) -> String {
        self.string(name).unwrap_or_else(|| default.to_owned())
    }

    fn flag(&mut self, name: &str) -> bool {
        match self.string(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false" | "0" | "no" | "off") => false,
            Some("true" | "1" | "yes" | "on") => true,
            Some(other) => {
                self.problem(format!("{name} must be true or false, got {other:?}"));
                false
            }
        }
    }

    fn number(&mut self, name: &str, default: u64, range: RangeInclusive<u64>) -> u64 {
        let Some(raw) = self.string(name) else {
            return default;
        };
        match raw.parse::<u64>() {
            Ok(value) if range.contains(&value) => value,
            _ => {
                self.problem(format!(
                    "{name} must be an integer in {}..={}, got {raw:?}",
                    range.start(),
                    range.end()
                ));
                default
            }
        }
    }

    /// [`Env::number`] as the type it is used as; `range` lies within it.
    fn number_as<T: TryFrom<u64> + Default>(
        &mut self,
        name: &str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> T {
        let value = self.number(name, default, range);
        T::try_from(value).unwrap_or_else(|_| {
            self.problem(format!("{name}: {value} does not fit where it is used"));
            T::default()
        })
    }

    fn minutes(&mut self, name: &str, default: u64, range: RangeInclusive<u64>) -> Duration {
        Duration::from_secs(self.number(name, default, range) * 60)
    }

    /// `name` in minutes, else the older `fallback` variable, else `default`.
    fn minutes_or(
        &mut self,
        fallback: &str,
        name: &str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Duration {
        let name = if self.string(name).is_some() {
            name
        } else {
            fallback
        };
        self.minutes(name, default, range)
    }

    fn millis(&mut self, name: &str, default: u64, range: RangeInclusive<u64>) -> Duration {
        Duration::from_millis(self.number(name, default, range))
    }

    /// How many per window `limit` allows, from its variable.
    fn rate_limit(&mut self, limit: &RateLimit) -> u32 {
        self.number_as(limit.env_key, limit.default, 1..=limit.max)
    }

    fn finish(self, config: Config) -> Result<Config, ConfigError> {
        if self.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}

/// The direct (unpooled) URL that migrations use: `DATABASE_URL_UNPOOLED`,
/// else `POSTGRES_URL_NON_POOLING` (the names the Vercel Postgres / Neon
/// integration sets), else the pooled `DATABASE_URL` / `POSTGRES_URL`.
/// Migrations take a session-level advisory lock, which a transaction-mode
/// pooler does not keep.
pub fn migration_url(lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
    get("DATABASE_URL_UNPOOLED")
        .or_else(|| get("POSTGRES_URL_NON_POOLING"))
        .or_else(|| get("DATABASE_URL"))
        .or_else(|| get("POSTGRES_URL"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env: HashMap<String, String> = [
            ("DATABASE_URL", "postgres://localhost/db"),
            ("MOC_BUCKET", "bucket"),
            ("AUTH_BYPASS", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in vars {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Config::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn functions_use_the_pooled_url_and_migrations_the_direct_one() {
        let config = load(&[]).unwrap();
        assert_eq!(config.database_url, "postgres://localhost/db");
        assert_eq!(config.migration_database_url, "postgres://localhost/db");

        let vercel = |vars: &[(&str, &str)]| {
            let env: HashMap<&str, &str> = vars.iter().copied().collect();
            Config::from_lookup(|name| {
                env.get(name).map(|v| v.to_string()).or_else(|| match name {
                    "MOC_BUCKET" => Some("b".into()),
                    "AUTH_BYPASS" => Some("true".into()),
                    _ => None,
                })
            })
        };
        let config = vercel(&[
            ("POSTGRES_URL", "postgres://pooled/db"),
            ("POSTGRES_URL_NON_POOLING", "postgres://direct/db"),
        ])
        .unwrap();
        assert_eq!(config.database_url, "postgres://pooled/db");
        assert_eq!(config.migration_database_url, "postgres://direct/db");
        let config = vercel(&[
            ("DATABASE_URL", "postgres://pooled/a"),
            ("POSTGRES_URL", "postgres://pooled/b"),
            ("DATABASE_URL_UNPOOLED", "postgres://direct/a"),
            ("POSTGRES_URL_NON_POOLING", "postgres://direct/b"),
        ])
        .unwrap();
        assert_eq!(config.database_url, "postgres://pooled/a");
        assert_eq!(config.migration_database_url, "postgres://direct/a");
        let missing = vercel(&[]).unwrap_err();
        assert!(
            missing
                .problems
                .iter()
                .any(|p| p.contains("DATABASE_URL (or POSTGRES_URL)")),
            "{missing}"
        );
    }

    #[test]
    fn statements_are_unnamed_unless_a_pooler_that_keeps_names_is_declared() {
        use crate::db::Statements;
        assert_eq!(load(&[]).unwrap().database_statements, Statements::Unnamed);
        for (value, expected) in [
            ("named", Statements::Named),
            ("Unnamed", Statements::Unnamed),
        ] {
            let config = load(&[("DATABASE_STATEMENTS", value)]).unwrap();
            assert_eq!(config.database_statements, expected, "{value}");
        }
        let err = load(&[("DATABASE_STATEMENTS", "prepared")]).unwrap_err();
        assert!(err.problems[0].contains("DATABASE_STATEMENTS"), "{err}");
    }

    #[test]
    fn defaults_follow_the_contract() {
        let config = load(&[]).unwrap();
        assert_eq!(config.part_size_bytes(), 5_242_880);
        assert_eq!(config.limits.instruction_max.bytes(), 52_428_800);
        assert_eq!(config.session_ttl, Duration::from_secs(900));
        assert_eq!(config.proxy_max_body_bytes, 4_500_000);
        assert_eq!(config.session_max_lifetime, Duration::from_secs(1440 * 60));
        assert_eq!(config.expired_session_grace, Duration::from_secs(3600));
        assert_eq!(config.sweep_batch_size, 100);
        assert!(config.cron_secret.is_none());
        assert_eq!(
            config.s3.public_file_base_url,
            "https://bucket.s3.us-east-1.amazonaws.com"
        );
    }

    #[test]
    fn part_size_outside_five_to_one_hundred_mib_is_refused() {
        for bad in ["4", "101", "0", "five"] {
            let err = load(&[("MULTIPART_PART_SIZE_MB", bad)]).unwrap_err();
            assert!(
                err.problems[0].contains("MULTIPART_PART_SIZE_MB"),
                "{bad}: {err}"
            );
        }
        let config = load(&[("MULTIPART_PART_SIZE_MB", "8")]).unwrap();
        assert_eq!(config.part_size_bytes(), ByteSize::mib(8).bytes());
    }

    #[test]
    fn size_limits_stop_at_what_the_size_columns_hold() {
        for name in [
            "UPLOAD_PDF_MAX_MB",
            "UPLOAD_IMAGE_MAX_MB",
            "UPLOAD_PARTSLIST_MAX_MB",
        ] {
            let err = load(&[(name, "2048")]).unwrap_err();
            assert!(
                err.problems[0].contains(name) && err.problems[0].contains("1..=2047"),
                "{err}"
            );
        }
        let config = load(&[("UPLOAD_PDF_MAX_MB", "2047")]).unwrap();
        let largest = config.limits.instruction_max;
        assert_eq!(largest.to_column(), Ok(2_146_435_072));
        assert!(largest <= crate::domain::MAX_STORED_SIZE);
    }

    #[test]
    fn auth_bypass_in_production_is_refused() {
        let err = load(&[("STAGE", "production")]).unwrap_err();
        assert!(err.to_string().contains("AUTH_BYPASS"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let env: HashMap<&str, &str> = [("PRESIGNED_URL_TTL_MINUTES", "61")].into();
        let err = Config::from_lookup(|n| env.get(n).map(|v| v.to_string())).unwrap_err();
        assert_eq!(err.problems.len(), 4, "{err}");
    }

    #[test]
    fn a_maximum_lifetime_below_the_ttl_is_refused() {
        let err = load(&[
            ("UPLOAD_SESSION_TTL_MINUTES", "30"),
            ("UPLOAD_SESSION_MAX_LIFETIME_MINUTES", "20"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("UPLOAD_SESSION_MAX_LIFETIME_MINUTES")
        );
    }

    #[test]
    fn endpoint_changes_the_public_base_url() {
        let config = load(&[("S3_ENDPOINT", "http://127.0.0.1:9000/")]).unwrap();
        assert_eq!(
            config.s3.public_file_base_url,
            "http://127.0.0.1:9000/bucket"
        );
    }

    #[test]
    fn redis_comes_from_redis_url_then_kv_url() {
        assert_eq!(load(&[]).unwrap().redis_url, None);
        let kv = load(&[("KV_URL", "rediss://default:p@kv:6379")]).unwrap();
        assert_eq!(kv.redis_url.as_deref(), Some("rediss://default:p@kv:6379"));
        assert_eq!(kv.redis_url_variable, "KV_URL");
        let both = load(&[("KV_URL", "rediss://kv"), ("REDIS_URL", "redis://r")]).unwrap();
        assert_eq!(both.redis_url.as_deref(), Some("redis://r"));
        assert_eq!(both.redis_url_variable, "REDIS_URL");
        // Any value is the Redis module's to judge: it never fails the config.
        assert!(load(&[("REDIS_URL", "not a url")]).is_ok());
    }

    #[test]
    fn an_unusable_ssl_cert_file_is_a_configuration_problem() {
        let err = load(&[("SSL_CERT_FILE", "/nonexistent/ca.pem")]).unwrap_err();
        assert!(err.to_string().contains("SSL_CERT_FILE"), "{err}");
        assert_eq!(load(&[]).unwrap().trust.extra_count(), 0);
    }

    #[test]
    fn the_bucket_region_prefers_s3_region_to_an_injected_aws_region() {
        let config = load(&[("AWS_REGION", "us-east-1"), ("S3_REGION", "eu-west-1")]).unwrap();
        assert_eq!(config.s3.region, "eu-west-1");
        assert_eq!(
            load(&[("AWS_REGION", "us-west-2")]).unwrap().s3.region,
            "us-west-2"
        );
    }

    #[test]
    fn presign_ttl_seconds_sets_the_url_lifetime_within_an_hour() {
        assert_eq!(
            load(&[]).unwrap().presigned_url_ttl,
            Duration::from_secs(900)
        );
        let config = load(&[("PRESIGN_TTL_SECONDS", "45")]).unwrap();
        assert_eq!(config.presigned_url_ttl, Duration::from_secs(45));
        // It wins over the legacy name, which still sets the session TTL.
        let config = load(&[("PRESIGN_TTL_SECONDS", "90"), ("PRESIGN_TTL_MINUTES", "30")]).unwrap();
        assert_eq!(config.presigned_url_ttl, Duration::from_secs(90));
        assert_eq!(config.session_ttl, Duration::from_secs(1800));
        for bad in ["0", "3601", "-5", "1.5", "ten"] {
            let err = load(&[("PRESIGN_TTL_SECONDS", bad)]).unwrap_err();
            assert_eq!(err.problems.len(), 1, "{bad}: {err}");
            assert!(
                err.problems[0].contains("PRESIGN_TTL_SECONDS must be an integer in 1..=3600"),
                "{bad}: {err}"
            );
        }
        let both = load(&[
            ("PRESIGN_TTL_SECONDS", "60"),
            ("PRESIGNED_URL_TTL_MINUTES", "1"),
        ])
        .unwrap_err();
        assert!(both.to_string().contains("not both"), "{both}");
    }

    #[test]
    fn legacy_presign_ttl_is_a_fallback() {
        let config = load(&[("PRESIGN_TTL_MINUTES", "30")]).unwrap();
        assert_eq!(config.session_ttl, Duration::from_secs(1800));
        assert_eq!(config.presigned_url_ttl, Duration::from_secs(1800));
    }
}
