//! Authentication (docs/contract.md §1): the frontend's `auth_token` cookie (a Cognito
//! ID token) first, then `Authorization: Bearer` (an access or ID token), each
//! an RS256 JWT verified against a JWKS; or the development bypass.

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

/// How the caller proved who they are. A browser attaches a cookie to any
/// request to this API, whoever made the page, so only cookie-authenticated
/// state changes need the CSRF origin check; a header has to be set by the
/// calling script itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Cookie,
    Header,
    /// No credentials, accepted as the dev user under `AUTH_BYPASS`.
    Bypass,
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
    token_use: Option<String>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default, rename = "cognito:groups")]
    groups: Vec<String>,
}

/// Which Cognito token a credential slot accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepts {
    /// The cookie holds what the frontend's auth service stores: an ID token.
    IdToken,
    /// The header carries an access token, or an ID token.
    AnyToken,
}

/// The value of cookie `name`, when the request carries one (empty counts as
/// absent: that is how a logged-out cookie is cleared).
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|value| !value.is_empty())
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

/// Authenticates a request, in the order of docs/contract.md §1: the cookie, and
/// only without one the header. A cookie that is present but invalid is
/// refused even when a valid header comes with it: falling through would let
/// a stale session silently act as whoever the header names. Without any
/// credentials the bypass (when on) makes the caller the dev user;
/// credentials that are presented are always verified.
pub async fn authenticate(
    config: &AuthConfig,
    jwks: &JwksCache,
    headers: &HeaderMap,
) -> Result<(User, Credential), ApiError> {
    let (token, credential, accepts) =
        match (cookie(headers, &config.cookie_name), bearer_token(headers)) {
            (Some(token), _) => (token, Credential::Cookie, Accepts::IdToken),
            (None, Some(Ok(token))) => (token, Credential::Header, Accepts::AnyToken),
            (None, Some(Err(()))) => return Err(ApiError::Unauthorized),
            (None, None) if config.bypass => {
                let user = User {
                    id: config.dev_user_sub.clone(),
                    is_admin: false,
                };
                return Ok((user, Credential::Bypass));
            }
            (None, None) => return Err(ApiError::Unauthorized),
        };
    match verify(config, jwks, token, accepts).await {
        Ok(user) => Ok((user, credential)),
        Err(reason) => {
            // The answer never says which check failed; the log does.
            tracing::info!(reason, credential = ?credential, "token refused");
            Err(ApiError::Unauthorized)
        }
    }
}

async fn verify(
    config: &AuthConfig,
    jwks: &JwksCache,
    token: &str,
    accepts: Accepts,
) -> Result<User, &'static str> {
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
    // Cognito ID tokens carry `aud`, access tokens `client_id`; which one
    // is checked depends on `token_use`, below.
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map_err(|_| "signature, expiry or issuer check failed")?
        .claims;

    let audience = config.audience.as_deref();
    match (claims.token_use.as_deref(), accepts) {
        (Some("id"), _) => {
            let aud_matches = |audience: &str| match &claims.aud {
                Some(Value::String(aud)) => aud == audience,
                Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
                _ => false,
            };
            if audience.is_some_and(|a| !aud_matches(a)) {
                return Err("ID token audience mismatch");
            }
        }
        (Some("access"), Accepts::AnyToken) => {
            if audience.is_some_and(|a| claims.client_id.as_deref() != Some(a)) {
                return Err("access token client_id mismatch");
            }
        }
        (Some("access"), Accepts::IdToken) => return Err("the cookie holds an access token"),
        _ => return Err("token_use is neither id nor access"),
    }
    if claims.sub.is_empty() {
        return Err("empty sub");
    }
    Ok(User {
        is_admin: claims.groups.iter().any(|g| g == &config.admin_group),
        id: claims.sub,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auth_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            http::header::COOKIE,
            http::HeaderValue::from_static("theme=dark; auth_token=abc.def.ghi"),
        );
        assert_eq!(cookie(&headers, "auth_token"), Some("abc.def.ghi"));
        assert_eq!(cookie(&headers, "auth"), None);
        headers.insert(
            http::header::COOKIE,
            http::HeaderValue::from_static("auth_token="),
        );
        assert_eq!(
            cookie(&headers, "auth_token"),
            None,
            "a cleared cookie is no cookie"
        );
    }
}
