//! Redis, the finalize rate limit's store: a PING over the URL the
//! functions read (`REDIS_URL`), TLS (`rediss://`) included.

use moc_shared::config::Config;
use moc_shared::kv::RedisTarget;

use super::{CHECK_TIMEOUT, Check, Failure, REDIS, chain, timed};
use crate::redact_url;

const REDIS_FIX: &str = "add Upstash Redis from the Vercel Marketplace (it sets REDIS_URL and KV_URL), or set REDIS_URL to a reachable redis:// or rediss:// URL";

pub(super) async fn check(config: &Config) -> Check {
    timed(REDIS, REDIS_FIX, ping(config)).await
}

/// The functions' own Redis target (`moc_shared::kv`): TLS for `rediss://`,
/// on the same roots (`SSL_CERT_FILE`).
async fn ping(config: &Config) -> Result<String, Failure> {
    let Some(url) = config.redis_url.as_deref() else {
        return Err(Failure::new(
            "REDIS_URL is unset: the finalize rate limit fails open",
            REDIS_FIX,
        ));
    };
    let shown = redact_url(url);
    let target = RedisTarget::parse(url, &config.trust)
        .map_err(|why| Failure::new(format!("{shown}: {why}"), REDIS_FIX))?;
    target
        .ping(CHECK_TIMEOUT)
        .await
        .map_err(|e| Failure::new(format!("{shown}: {}", chain(&e)), REDIS_FIX))?;
    let tls = if target.is_tls() { " over TLS" } else { "" };
    Ok(format!("{} answers PING{tls}", target.describe()))
}
