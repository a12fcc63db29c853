//! Redis, the finalize rate limit's store: a PING over the URL the
//! functions read (`REDIS_URL`), TLS (`rediss://`) included.

use moc_shared::config::Config;

use super::{Check, Failure, REDIS, chain, timed};
use crate::redact_url;

const REDIS_FIX: &str = "add Upstash Redis from the Vercel Marketplace (it sets REDIS_URL and KV_URL), or set REDIS_URL to a reachable redis:// or rediss:// URL";

pub(super) async fn check(config: &Config) -> Check {
    timed(REDIS, REDIS_FIX, ping(config)).await
}

/// MERGE: the client comes from `redis::Client::open`, as in
/// `moc_shared::state`; use the shared constructor of item 1 (TLS roots,
/// `SSL_CERT_FILE`) once it exists.
async fn ping(config: &Config) -> Result<String, Failure> {
    let Some(url) = config.redis_url.as_deref() else {
        return Err(Failure::new(
            "REDIS_URL is unset: the finalize rate limit fails open",
            REDIS_FIX,
        ));
    };
    let shown = redact_url(url);
    let failed = |e: redis::RedisError| Failure::new(format!("{shown}: {}", chain(&e)), REDIS_FIX);
    let client = redis::Client::open(url).map_err(failed)?;
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .map_err(failed)?;
    let pong: String = redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .map_err(failed)?;
    Ok(format!("{shown} answers PING ({pong})"))
}
