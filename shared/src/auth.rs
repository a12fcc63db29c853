//! Authentication (contract §1): Cognito-style RS256 bearer tokens verified
//! against a JWKS, or the development bypass.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::HeaderMap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{AuthConfig, JwksSource};
use crate::error::ApiError;

/// The caller, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub is_admin: bool,
}

/// An unknown `kid` refetches the JWKS (keys rotate), but at most this often,
/// so forged `kid`s cannot turn the API into a JWKS flooder.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

pub struct JwksCache {
    source: JwksSource,
    state: Mutex<CachedKeys>,
    http: std::sync::OnceLock<reqwest::Client>,
}

#[derive(Default)]
struct CachedKeys {
    keys: Option<JwkSet>,
    fetched_at: Option<Instant>,
}

impl JwksCache {
    pub fn new(source: JwksSource) -> Self {
        let keys = match &source {
            JwksSource::Inline(json) => match serde_json::from_str::<JwkSet>(json) {
                Ok(set) => Some(set),
                Err(error) => {
                    tracing::error!(%error, "AUTH_JWKS_JSON is not a valid JWKS");
                    None
                }
            },
            _ => None,
        };
        Self {
            source,
            state: Mutex::new(CachedKeys {
                keys,
                fetched_at: None,
            }),
            http: std::sync::OnceLock::new(),
        }
    }

    fn cached_key(&self, kid: &str) -> Option<DecodingKey> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let jwk = state.keys.as_ref()?.find(kid)?;
        DecodingKey::from_jwk(jwk).ok()
    }

    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(key) = self.cached_key(kid) {
            return Some(key);
        }
        let JwksSource::Url(url) = &self.source else {
            return None;
        };
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state
                .fetched_at
                .is_some_and(|at| at.elapsed() < JWKS_REFETCH_INTERVAL)
            {
                return None;
            }
            state.fetched_at = Some(Instant::now());
        }
        let client = self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default()
        });
        match client
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
        {
            Ok(response) => match response.json::<JwkSet>().await {
                Ok(set) => {
                    tracing::info!(keys = set.keys.len(), "fetched JWKS");
                    self.state.lock().unwrap_or_else(|e| e.into_inner()).keys = Some(set);
                }
                Err(error) => tracing::error!(%error, "JWKS response is not a valid JWKS"),
            },
            Err(error) => tracing::error!(%error, "could not fetch the JWKS"),
        }
        self.cached_key(kid)
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default, rename = "cognito:groups")]
    groups: Vec<String>,
}

fn bearer_token(headers: &HeaderMap) -> Option<Result<&str, ()>> {
    let value = headers.get(http::header::AUTHORIZATION)?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    Some(token.ok_or(()))
}

/// Authenticates a request. Without credentials, the bypass (when on) makes
/// the caller the dev user; credentials that are presented are always
/// verified, so a bad token is refused even in development.
pub async fn authenticate(
    config: &AuthConfig,
    jwks: &JwksCache,
    headers: &HeaderMap,
) -> Result<User, ApiError> {
    match bearer_token(headers) {
        None if config.bypass => Ok(User {
            id: config.dev_user_sub.clone(),
            is_admin: false,
        }),
        None | Some(Err(())) => Err(ApiError::Unauthorized),
        Some(Ok(token)) => match verify(config, jwks, token).await {
            Ok(user) => Ok(user),
            Err(reason) => {
                // The answer never says which check failed; the log does.
                tracing::info!(reason, "bearer token refused");
                Err(ApiError::Unauthorized)
            }
        },
    }
}

async fn verify(config: &AuthConfig, jwks: &JwksCache, token: &str) -> Result<User, &'static str> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed token")?;
    if header.alg != Algorithm::RS256 {
        return Err("algorithm is not RS256");
    }
    let kid = header.kid.ok_or("token has no kid")?;
    let key = jwks.key(&kid).await.ok_or("unknown kid")?;
    let issuer = config
        .issuer
        .as_deref()
        .ok_or("AUTH_ISSUER is not configured")?;

    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    validation.leeway = 30;
    // Cognito access tokens carry `client_id` rather than `aud`, so the
    // audience is checked by hand below.
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map_err(|_| "signature, expiry or issuer check failed")?
        .claims;

    if let Some(audience) = &config.audience {
        let aud_matches = match &claims.aud {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !aud_matches && claims.client_id.as_deref() != Some(audience.as_str()) {
            return Err("audience mismatch");
        }
    }
    if claims.sub.is_empty() {
        return Err("empty sub");
    }
    Ok(User {
        is_admin: claims.groups.iter().any(|g| g == &config.admin_group),
        id: claims.sub,
    })
}
