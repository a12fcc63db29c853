//! Counting requests against the rate limits. The limits themselves are data
//! (`domain::limits`: each one's window, store, variable and message); this
//! module counts in each one's store and turns a refusal into the 429 that
//! the limit describes. `RATE_LIMIT_BYPASS` keeps counting and logging but
//! never denies.

use chrono::{DateTime, Utc};

use crate::auth::User;
use crate::config::Config;
use crate::db::Tx;
use crate::domain::limits::{CREATE_SESSION_LIMIT, FINALIZE_LIMIT, RateLimit, RateLimitDenial};
use crate::error::ApiError;
use crate::kv::{Kv, KvClient};
use crate::store::quotas::DailyQuota;
use crate::store::sessions::NewSession;

/// How long a finalize waits for the rate-limit store before failing open:
/// connecting (a TLS handshake for `rediss://`) and the count together.
const STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// Counts one session creation against today's quota and inserts the
/// session, in one statement inside the caller's transaction, so a create
/// that fails later gives the quota back and a denied one inserts nothing.
///
/// The count is an upsert: it takes the row lock, so concurrent creates
/// queue on it and each sees the count the previous one committed. The
/// first two requests of a day both try to insert; the loser waits on the
/// unique index and then takes the update path, so nobody under the limit
/// is denied (the old service's race).
///
/// Answers today's count, this create included, which the caller logs
/// with the session it created (one line per create, not two). The outer
/// error is the database's; the inner one the denial.
pub async fn create_session_counted(
    tx: &Tx,
    config: &Config,
    user: &User,
    session: &NewSession<'_>,
) -> Result<Result<i32, ApiError>, ApiError> {
    let rule = &CREATE_SESSION_LIMIT;
    let limit = config.create_session_per_day;
    let now = Utc::now();
    let quota = DailyQuota {
        day: now.date_naive(),
        limit: i32::try_from(limit).unwrap_or(i32::MAX),
        bypass: config.rate_limit_bypass,
    };
    let counted = crate::store::quotas::insert_session_counted(tx, session, quota).await?;
    Ok(match counted {
        Some(count) => {
            if i64::from(count) > i64::from(limit) {
                allow_past_the_limit(rule, user, count.into(), limit);
            }
            Ok(count)
        }
        None => Err(deny(rule, user, limit, now)),
    })
}

/// Counts one finalize in the current window. Admins are exempt.
/// Store trouble never blocks a finalize: it is logged at WARN and allowed.
/// A Redis URL that cannot be used at all is a configuration error (500).
pub async fn count_finalize(kv: &Kv, config: &Config, user: &User) -> Result<(), ApiError> {
    let rule = &FINALIZE_LIMIT;
    if user.is_admin {
        return Ok(());
    }
    let client = match kv {
        Kv::Ready(client) => client,
        Kv::Unset => {
            tracing::warn!(
                action = rule.name,
                "rate limit store not configured (REDIS_URL and KV_URL unset): allowing"
            );
            return Ok(());
        }
        Kv::Unusable { variable, reason } => {
            return Err(ApiError::Configuration(format!(
                "{variable} is unusable: {reason}"
            )));
        }
    };
    let now = Utc::now();
    let key = format!(
        "moc-uploads:{}:ratelimit:{}:{}:{}",
        config.stage.as_str(),
        rule.name,
        user.id,
        rule.window.index(now)
    );
    let counting = incr(client, &key, rule.window.counter_ttl_seconds());
    let count = match tokio::time::timeout(STORE_TIMEOUT, counting).await {
        Ok(Ok(count)) => count,
        Ok(Err(error)) => {
            client.discard().await;
            tracing::warn!(action = rule.name, store = ?rule.store, redis = %client.target().describe(), %error, "rate limit store unavailable: failing open");
            return Ok(());
        }
        Err(_) => {
            client.discard().await;
            tracing::warn!(action = rule.name, store = ?rule.store, redis = %client.target().describe(), "rate limit store timed out: failing open");
            return Ok(());
        }
    };
    let limit = config.finalize_per_minute;
    if count <= i64::from(limit) {
        return Ok(());
    }
    if config.rate_limit_bypass {
        allow_past_the_limit(rule, user, count, limit);
        return Ok(());
    }
    Err(deny(rule, user, limit, now))
}

/// `RATE_LIMIT_BYPASS` lets a request over the limit through, loudly.
fn allow_past_the_limit(rule: &RateLimit, user: &User, count: i64, limit: u32) {
    let window = rule.window;
    tracing::warn!(action = rule.name, %window, user_id = %user.id, count, limit, "rate limit exceeded but RATE_LIMIT_BYPASS is on: allowed");
}

/// The 429 that `rule` answers to a request over its limit.
fn deny(rule: &'static RateLimit, user: &User, limit: u32, now: DateTime<Utc>) -> ApiError {
    let window = rule.window;
    tracing::info!(action = rule.name, %window, store = ?rule.store, user_id = %user.id, limit, "rate limit denied");
    ApiError::RateLimited(RateLimitDenial::new(rule, limit, now))
}

async fn incr(client: &KvClient, key: &str, ttl_seconds: i64) -> redis::RedisResult<i64> {
    let mut connection = client.connection(STORE_TIMEOUT).await?;
    let (count,): (i64,) = redis::pipe()
        .atomic()
        .incr(key, 1)
        .expire(key, ttl_seconds)
        .ignore()
        .query_async(&mut connection)
        .await?;
    Ok(count)
}
