//! The settings a deployment must have: a verifiable JWKS, `CRON_SECRET`,
//! and none of the development bypasses in production.

use std::time::Duration;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use moc_shared::config::{Config, JwksSource};

use super::{CRON_SECRET, Check, DoctorEnv, Failure, PRODUCTION_BYPASS, chain};

pub(super) const JWKS_FIX: &str = "set AUTH_JWKS_URL to the issuer's JWKS (Cognito: AUTH_ISSUER + /.well-known/jwks.json), or AUTH_JWKS_JSON to the JWKS itself";

pub(super) fn checks(env: &DoctorEnv, config: &Config) -> Vec<Check> {
    vec![
        Check {
            name: CRON_SECRET,
            result: cron_secret(config),
        },
        Check {
            name: PRODUCTION_BYPASS,
            result: production_bypasses(env, config),
        },
    ]
}

/// The JWKS the functions verify tokens against: fetched as they fetch it,
/// or parsed from `AUTH_JWKS_JSON`; it must hold a key they can use.
pub(super) async fn jwks(config: &Config, http: &reqwest::Client) -> Result<String, Failure> {
    let (set, from) = match &config.auth.jwks {
        JwksSource::Inline(json) => {
            let set = serde_json::from_str::<JwkSet>(json).map_err(|e| {
                Failure::new(format!("AUTH_JWKS_JSON is not a JWKS: {e}"), JWKS_FIX)
            })?;
            (set, "AUTH_JWKS_JSON".to_owned())
        }
        JwksSource::Url(url) => (fetch(url, http).await?, url.clone()),
        JwksSource::Unconfigured => {
            return Err(Failure::new(
                "no JWKS: only AUTH_BYPASS requests could be served",
                JWKS_FIX,
            ));
        }
    };
    let usable = set
        .keys
        .iter()
        .filter(|jwk| DecodingKey::from_jwk(jwk).is_ok())
        .count();
    match usable {
        0 => Err(Failure::new(
            format!("{from} holds no usable key"),
            JWKS_FIX,
        )),
        n => Ok(format!("{from}: {n} usable key(s)")),
    }
}

async fn fetch(url: &str, http: &reqwest::Client) -> Result<JwkSet, Failure> {
    let response = http
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| Failure::new(format!("AUTH_JWKS_URL: {}", chain(&e)), JWKS_FIX))?;
    response
        .json::<JwkSet>()
        .await
        .map_err(|e| Failure::new(format!("{url} is not a JWKS: {}", chain(&e)), JWKS_FIX))
}

fn cron_secret(config: &Config) -> Result<String, Failure> {
    match &config.cron_secret {
        Some(secret) => Ok(format!("set ({} characters)", secret.chars().count())),
        None => Err(Failure::new(
            "CRON_SECRET is unset: the expiry sweeper answers 403 to Vercel Cron, so abandoned uploads are never cleaned",
            "`openssl rand -hex 32 | vercel env add CRON_SECRET production` (Vercel Cron sends it as a bearer token)",
        )),
    }
}

/// A production deployment (`VERCEL_ENV=production`, or `STAGE=production`)
/// with a bypass on, or with a `STAGE` that lets the functions accept one.
fn production_bypasses(env: &DoctorEnv, config: &Config) -> Result<String, Failure> {
    let vercel_production = env.get("VERCEL_ENV").as_deref() == Some("production");
    if !vercel_production && !config.stage.is_production() {
        return Ok("not a production environment".into());
    }
    let on: Vec<&str> = [
        ("AUTH_BYPASS", config.auth.bypass),
        ("RATE_LIMIT_BYPASS", config.rate_limit_bypass),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    if !on.is_empty() {
        return Err(Failure::new(
            format!("{} on in production", on.join(" and ")),
            format!(
                "remove {} from the Production environment",
                on.join(" and ")
            ),
        ));
    }
    if !config.stage.is_production() {
        return Err(Failure::new(
            format!(
                "VERCEL_ENV=production with STAGE={}: the functions would accept the bypasses",
                config.stage.as_str()
            ),
            "set STAGE=production in the Production environment",
        ));
    }
    Ok("no bypass, STAGE=production".into())
}
