//! The API's limits, as data: how large a file may be and how many of a kind
//! a session may hold (`UploadLimits`, read from the environment by
//! `config`), and the rate limits, each with its window, its store, the
//! variable that sets it and what a denial says (`RateLimit`). The
//! `rate_limit` module counts against them; a denial renders itself into the
//! 429 answer, so `Retry-After`, `details` and the log all come from here.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDateTime, NaiveTime, Utc};
use serde_json::{Value, json};

use super::ByteSize;

const MIB: u64 = 1024 * 1024;

impl ByteSize {
    pub const fn mib(mebibytes: u64) -> Self {
        ByteSize::new(mebibytes * MIB)
    }
}

/// Per-file sizes by category and per-session file counts (docs/contract.md §2).
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    pub instruction_max: ByteSize,
    pub image_max: ByteSize,
    pub parts_list_max: ByteSize,
    /// Images and thumbnails together.
    pub image_max_count: u32,
    pub parts_list_max_count: u32,
}

/// Where a rate limit's counts live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// `user_daily_uploads`, counted inside the request's transaction, so a
    /// request that fails later gives its count back.
    Postgres,
    /// One key per user and window (`REDIS_URL`); an unreachable store fails open.
    Redis,
}

/// The span of time one count covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Fixed windows of this many minutes, aligned to the Unix epoch.
    Minutes(u32),
    /// The UTC calendar day.
    UtcDay,
}

impl Window {
    const DAY_SECONDS: i64 = 24 * 60 * 60;

    fn seconds(self) -> i64 {
        match self {
            Window::Minutes(minutes) => i64::from(minutes) * 60,
            Window::UtcDay => Self::DAY_SECONDS,
        }
    }

    /// Which window `now` falls in; a counter key names it.
    pub fn index(self, now: DateTime<Utc>) -> i64 {
        now.timestamp().div_euclid(self.seconds())
    }

    /// When the window holding `now` ends, and a new count begins.
    pub fn end(self, now: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Window::Minutes(_) => {
                let start = self.index(now) * self.seconds();
                DateTime::from_timestamp(start + self.seconds(), 0)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
                    .naive_utc()
            }
            Window::UtcDay => (now.date_naive() + Duration::days(1)).and_time(NaiveTime::MIN),
        }
    }

    /// Whole seconds from `now` to the window's end, at least 1: the
    /// `Retry-After` of a denial.
    pub fn retry_after_seconds(self, now: DateTime<Utc>) -> u64 {
        match self {
            Window::Minutes(_) => {
                u64::try_from(self.seconds() - now.timestamp().rem_euclid(self.seconds()))
                    .unwrap_or(1)
            }
            Window::UtcDay => {
                u64::try_from((self.end(now) - now.naive_utc()).num_seconds().max(1)).unwrap_or(1)
            }
        }
    }

    /// How long a counter must outlive the start of its window: two windows,
    /// so a key never expires while its window still counts.
    pub fn counter_ttl_seconds(self) -> i64 {
        2 * self.seconds()
    }
}

/// How the window is named in logs and in a denial's `details.window`.
impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Minutes(minutes) => write!(f, "{minutes}m"),
            Window::UtcDay => f.write_str("utc-day"),
        }
    }
}

/// One rate limit: per user, so many per window, counted in a store.
#[derive(Debug)]
pub struct RateLimit {
    /// The limited action, as logs and counter keys name it.
    pub name: &'static str,
    /// The variable that sets how many per window, its default and its
    /// largest value (the smallest is 1).
    pub env_key: &'static str,
    pub default: u64,
    pub max: u64,
    pub window: Window,
    pub store: Store,
    /// The finer code (`details.reason` under TOO_MANY_REQUESTS) and the
    /// message of a denial (docs/contract.md §0).
    pub reason: &'static str,
    pub message: &'static str,
}

/// Sessions a user may create per UTC day (docs/contract.md §4.1).
pub static CREATE_SESSION_LIMIT: RateLimit = RateLimit {
    name: "create-session",
    env_key: "UPLOAD_RATE_LIMIT_PER_DAY",
    default: 100,
    max: 1_000_000,
    window: Window::UtcDay,
    store: Store::Postgres,
    reason: "TOO_MANY_REQUESTS",
    message: "daily upload session limit reached",
};

/// Finalizes a user may start per minute; admins are exempt (§4.7).
pub static FINALIZE_LIMIT: RateLimit = RateLimit {
    name: "finalize",
    env_key: "FINALIZE_RATE_LIMIT_PER_MINUTE",
    default: 10,
    max: 100_000,
    window: Window::Minutes(1),
    store: Store::Redis,
    reason: "RATE_LIMIT_EXCEEDED",
    message: "too many finalize requests",
};

/// A request that a rate limit refused: everything its 429 answer says.
#[derive(Debug, Clone)]
pub struct RateLimitDenial {
    pub rule: &'static RateLimit,
    /// How many the window allows.
    pub limit: u32,
    /// When the window ends.
    pub window_ends_at: NaiveDateTime,
    pub retry_after_seconds: u64,
}

impl RateLimitDenial {
    pub fn new(rule: &'static RateLimit, limit: u32, now: DateTime<Utc>) -> Self {
        Self {
            rule,
            limit,
            window_ends_at: rule.window.end(now),
            retry_after_seconds: rule.window.retry_after_seconds(now),
        }
    }

    /// `error.details` (docs/contract.md §0): a daily limit says when the
    /// next day begins, a per-minute one names its window; the two shapes
    /// are the ones the old service's clients read.
    pub fn details(&self) -> Value {
        match self.rule.window {
            Window::UtcDay => json!({
                "limit": self.limit,
                "nextAllowedAt": crate::time::rfc3339(self.window_ends_at),
                "retryAfterSeconds": self.retry_after_seconds,
            }),
            Window::Minutes(_) => json!({
                "retryAfter": self.retry_after_seconds,
                "limit": self.limit,
                "window": self.rule.window.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
    }

    #[test]
    fn a_minute_window_ends_at_the_next_full_minute() {
        let now = at("2026-11-22T10:00:42.500Z");
        let minute = Window::Minutes(1);
        assert_eq!(minute.retry_after_seconds(now), 18);
        assert_eq!(
            crate::time::rfc3339(minute.end(now)),
            "2026-11-22T10:01:00.000Z"
        );
        assert_eq!(minute.index(now), now.timestamp() / 60);
        assert_eq!(minute.counter_ttl_seconds(), 120);
        assert_eq!(minute.retry_after_seconds(at("2026-11-22T10:00:00Z")), 60);
    }

    #[test]
    fn a_day_window_ends_at_the_next_utc_midnight() {
        let now = at("2026-11-22T23:59:59.900Z");
        assert_eq!(
            crate::time::rfc3339(Window::UtcDay.end(now)),
            "2026-11-23T00:00:00.000Z"
        );
        assert_eq!(Window::UtcDay.retry_after_seconds(now), 1);
        assert_eq!(
            Window::UtcDay.retry_after_seconds(at("2026-11-22T00:00:00Z")),
            86_400
        );
    }

    #[test]
    fn each_denial_carries_its_limits_details() {
        let now = at("2026-11-22T10:00:42Z");
        let daily = RateLimitDenial::new(&CREATE_SESSION_LIMIT, 100, now);
        assert_eq!(
            daily.details(),
            json!({"limit": 100, "nextAllowedAt": "2026-11-23T00:00:00.000Z", "retryAfterSeconds": 50_358})
        );
        let finalize = RateLimitDenial::new(&FINALIZE_LIMIT, 10, now);
        assert_eq!(
            finalize.details(),
            json!({"retryAfter": 18, "limit": 10, "window": format!("{}m", 1)})
        );
    }
}
