//! Time as the API speaks it: the database holds UTC in `timestamp without
//! time zone` (the production schema), the wire carries RFC 3339 with
//! milliseconds and a `Z`.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};

/// The current instant, truncated to what Postgres stores (microseconds), so
/// a value written and read back compares equal.
/// A duration in whole milliseconds, for logs and answers (saturating: a
/// duration past `u64::MAX` ms is 584 million years).
pub fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

pub fn rfc3339(at: NaiveDateTime) -> String {
    at.and_utc().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub fn rfc3339_utc(at: DateTime<Utc>) -> String {
    rfc3339(at.naive_utc())
}

pub fn add(at: NaiveDateTime, duration: std::time::Duration) -> NaiveDateTime {
    at + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_and_z() {
        let at =
            NaiveDateTime::parse_from_str("2026-11-22 10:00:00.123456", "%Y-%m-%d %H:%M:%S%.f")
                .unwrap();
        assert_eq!(rfc3339(at), "2026-11-22T10:00:00.123Z");
    }
}
