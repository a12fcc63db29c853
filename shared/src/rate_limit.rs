//! Rate limits as data: each limited action names its limit, its window and
//! its store. `RATE_LIMIT_BYPASS` keeps counting and logging but never denies.

use crate::db::Tx;
use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Timelike, Utc};

use crate::auth::User;
use crate::config::Config;
use crate::error::ApiError;
use crate::time;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitedAction {
    /// `UPLOAD_RATE_LIMIT_PER_DAY` sessions per user per UTC day, in Postgres.
    CreateSession,
    /// `FINALIZE_RATE_LIMIT_PER_MINUTE` per user, in Redis; admins exempt;
    /// fails open when Redis is down.
    Finalize,
}

impl RateLimitedAction {
    pub fn limit(self, config: &Config) -> u32 {
        match self {
            RateLimitedAction::CreateSession => config.create_session_per_day,
            RateLimitedAction::Finalize => config.finalize_per_minute,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RateLimitedAction::CreateSession => "create-session",
            RateLimitedAction::Finalize => "finalize",
        }
    }
}

/// Counts one session creation against today's quota, inside the caller's
/// transaction so a create that fails later gives the quota back.
///
/// One statement: the upsert takes the row lock, so concurrent creates queue
/// on it and each sees the count the previous one committed. The first two
/// requests of a day both try to insert; the loser waits on the unique index
/// and then takes the update path, so nobody under the limit is denied (the
/// old service's race).
pub async fn count_session_create(
    tx: &mut Tx,
    config: &Config,
    user: &User,
) -> Result<(), ApiError> {
    let action = RateLimitedAction::CreateSession;
    let limit = action.limit(config);
    let now = Utc::now();
    let today = now.date_naive();
    let counted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO user_daily_uploads (user_id, day, count, updated_at)
         VALUES ($1, $2, 1, $4)
         ON CONFLICT (user_id, day) DO UPDATE
            SET count = user_daily_uploads.count + 1, updated_at = $4
            WHERE user_daily_uploads.count < $3 OR $5
         RETURNING count",
    )
    .bind(&user.id)
    .bind(today)
    .bind(limit as i32)
    .bind(time::now())
    .bind(config.rate_limit_bypass)
    .fetch_optional(&mut *tx)
    .await?;

    match counted {
        Some(count) if count as u32 > limit => {
            tracing::warn!(action = action.name(), user_id = %user.id, count, limit, "rate limit exceeded but RATE_LIMIT_BYPASS is on: allowed");
            Ok(())
        }
        Some(count) => {
            tracing::info!(action = action.name(), user_id = %user.id, count, limit, bypass = config.rate_limit_bypass, "rate limit counted");
            Ok(())
        }
        None => {
            let next_day = next_utc_midnight(today);
            let retry_after_seconds = (next_day - now.naive_utc()).num_seconds().max(1) as u64;
            tracing::info!(action = action.name(), user_id = %user.id, limit, "rate limit denied");
            Err(ApiError::TooManyRequests {
                limit,
                next_allowed_at: time::rfc3339(next_day),
                retry_after_seconds,
            })
        }
    }
}

fn next_utc_midnight(today: NaiveDate) -> chrono::NaiveDateTime {
    (today + Duration::days(1)).and_time(NaiveTime::MIN)
}

/// Counts one finalize in the current one-minute window. Admins are exempt.
/// Redis trouble never blocks a finalize: it is logged at WARN and allowed.
pub async fn count_finalize(
    redis: Option<&redis::Client>,
    config: &Config,
    user: &User,
) -> Result<(), ApiError> {
    let action = RateLimitedAction::Finalize;
    if user.is_admin {
        return Ok(());
    }
    let Some(client) = redis else {
        tracing::warn!(
            action = action.name(),
            "rate limit store not configured (REDIS_URL unset): allowing"
        );
        return Ok(());
    };
    let now = Utc::now();
    let window = now.timestamp() / 60;
    let key = format!(
        "moc-uploads:{}:ratelimit:{}:{}:{window}",
        config.stage.as_str(),
        action.name(),
        user.id
    );
    let limit = action.limit(config);
    let count = match tokio::time::timeout(
        std::time::Duration::from_millis(500),
        incr(client, &key),
    )
    .await
    {
        Ok(Ok(count)) => count,
        Ok(Err(error)) => {
            tracing::warn!(action = action.name(), %error, "rate limit store unavailable: failing open");
            return Ok(());
        }
        Err(_) => {
            tracing::warn!(
                action = action.name(),
                "rate limit store timed out: failing open"
            );
            return Ok(());
        }
    };
    if count <= i64::from(limit) {
        return Ok(());
    }
    let retry_after_seconds = u64::from(60 - now.second()).max(1);
    if config.rate_limit_bypass {
        tracing::warn!(action = action.name(), user_id = %user.id, count, limit, "rate limit exceeded but RATE_LIMIT_BYPASS is on: allowed");
        return Ok(());
    }
    tracing::info!(action = action.name(), user_id = %user.id, count, limit, day = now.day(), "rate limit denied");
    Err(ApiError::RateLimitExceeded {
        limit,
        retry_after_seconds,
    })
}

async fn incr(client: &redis::Client, key: &str) -> redis::RedisResult<i64> {
    let mut connection = client.get_multiplexed_async_connection().await?;
    let (count,): (i64,) = redis::pipe()
        .atomic()
        .incr(key, 1)
        .expire(key, 120)
        .ignore()
        .query_async(&mut connection)
        .await?;
    Ok(count)
}
