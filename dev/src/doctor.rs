//! `moc-dev doctor [ENV_FILE]`: the deploy preflight. It reads the
//! environment a deployment will run with (a `vercel env pull` file over the
//! process environment, `doctor/env.rs`) and checks every service the
//! functions need for real: Postgres pooled and direct, the migrations,
//! Redis, the bucket, its CORS rule, a presigned upload, the AWS role, the
//! JWKS, and the settings a production deployment must have. One line per
//! check, ✔ or ✘ with the fix; any ✘ fails the command.
//!
//! The configuration is read by the functions' own code (`Config::from_lookup`),
//! so the doctor refuses exactly what a cold start would refuse.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use moc_shared::config::Config;

mod credentials;
mod database;
mod env;
mod redis_store;
mod settings;
mod storage;

pub use env::DoctorEnv;

/// Each check's budget: a service that has not answered by then counts as
/// unreachable. The checks run concurrently, so the whole run takes about
/// as long as the slowest one.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(8);

/// The checks, by the name each line starts with.
pub const CONFIGURATION: &str = "configuration";
pub const POSTGRES_POOLED: &str = "postgres pooled";
pub const POSTGRES_UNPOOLED: &str = "postgres unpooled";
pub const MIGRATIONS: &str = "migrations";
pub const REDIS: &str = "redis";
pub const BUCKET: &str = "bucket";
pub const BUCKET_CORS: &str = "bucket CORS";
pub const PRESIGNED_UPLOAD: &str = "presigned upload";
pub const AWS_ROLE: &str = "AWS role";
pub const JWKS: &str = "JWKS";
pub const CRON_SECRET: &str = "CRON_SECRET";
pub const PRODUCTION_BYPASS: &str = "production bypasses";
pub const AWS_CREDENTIALS: &str = "AWS credentials";

/// What a failed check found, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub problem: String,
    pub fix: String,
}

impl Failure {
    pub fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// One check's line: what passed, or the failure.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub result: Result<String, Failure>,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            Ok(detail) => write!(f, "✔ {}: {detail}", self.name),
            Err(failure) => write!(
                f,
                "✘ {}: {} → fix: {}",
                self.name, failure.problem, failure.fix
            ),
        }
    }
}

/// Every check's line, in a fixed order.
#[derive(Debug, Clone)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.result.is_ok())
    }

    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|check| check.name == name)
    }

    pub fn failures(&self) -> usize {
        self.checks.iter().filter(|c| c.result.is_err()).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            writeln!(f, "{check}")?;
        }
        Ok(())
    }
}

/// Runs every check against `env`. A configuration the functions would
/// refuse is reported alone: the services cannot be checked without it.
pub async fn run(env: &DoctorEnv) -> Report {
    let config = match Config::from_lookup(|name| env.get(name)) {
        Ok(config) => config,
        Err(error) => {
            let fix = "correct these variables in the Vercel project (Settings → Environment Variables), pull them again, and rerun; the other checks need a valid configuration";
            let problem = format!(
                "the functions would refuse to start: {}",
                error.problems.join("; ")
            );
            return Report {
                checks: vec![Check {
                    name: CONFIGURATION,
                    result: Err(Failure::new(problem, fix)),
                }],
            };
        }
    };
    let configuration = Check {
        name: CONFIGURATION,
        result: Ok(format!("valid (STAGE={})", config.stage.as_str())),
    };
    let http = reqwest::Client::builder()
        .timeout(CHECK_TIMEOUT)
        .build()
        .unwrap_or_default();
    let (databases, redis, storage, jwks) = tokio::join!(
        database::checks(&config),
        redis_store::check(&config),
        storage::checks(env, &config, &http),
        timed(JWKS, settings::JWKS_FIX, settings::jwks(&config, &http)),
    );
    let mut checks = vec![configuration];
    checks.extend(databases);
    checks.push(redis);
    checks.extend(storage);
    checks.push(jwks);
    checks.extend(settings::checks(env, &config));
    Report { checks }
}

/// `check`, bounded by [`CHECK_TIMEOUT`]; running out of time is a failure
/// with the check's usual fix.
pub(crate) async fn timed(
    name: &'static str,
    fix: &str,
    check: impl Future<Output = Result<String, Failure>>,
) -> Check {
    let result = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(result) => result,
        Err(_) => Err(Failure::new(
            format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
            fix,
        )),
    };
    Check { name, result }
}

/// An error with its causes, the way an operator needs to read it.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
