//! The S3 client's AWS credentials, in this order (docs/contract.md §2):
//!
//! 1. **OIDC**, when `AWS_ROLE_ARN` is set: STS `AssumeRoleWithWebIdentity`
//!    with the request's `x-vercel-oidc-token` header, else
//!    `VERCEL_OIDC_TOKEN`. The credentials are kept for the instance and
//!    refreshed, with the token of the request that finds them near their
//!    end, before they expire.
//! 2. **The project's own names**, `S3_ACCESS_KEY_ID` /
//!    `S3_SECRET_ACCESS_KEY` (optional `S3_SESSION_TOKEN`), never mixed with
//!    an `AWS_*` variable: Vercel may inject `AWS_ACCESS_KEY_ID`,
//!    `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` into every function,
//!    and they are not usable as credentials.
//! 3. `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and
//!    `AWS_SESSION_TOKEN`); on Vercel (`VERCEL` set) a cold start warns.
//!
//! The request's token reaches the provider through a task-local that
//! `routes::dispatch` sets around the handler ([`with_request_token`]): the
//! SDK asks for credentials inside the handler's task, and each request
//! refreshes with its own token, so a bad token fails only its own request.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials};
use aws_sdk_s3::config::Credentials;
use http::HeaderMap;

use crate::sts::{self, StsError, WebIdentityRequest};
use crate::tls::TrustRoots;

/// The header Vercel puts the function's OIDC token in, on every request.
pub const OIDC_TOKEN_HEADER: &str = "x-vercel-oidc-token";

/// Refreshing never waits until the last moment: credentials with less
/// than this left are not used to sign.
const MIN_LIFETIME_LEFT: Duration = Duration::from_secs(30);

tokio::task_local! {
    static REQUEST_OIDC_TOKEN: Option<String>;
}

/// The request's OIDC token, when it carries one.
pub fn oidc_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(OIDC_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Runs `work` (a request's handler) with the request's OIDC token
/// ([`oidc_token`]) available to the credential provider.
pub fn with_request_token<F: Future>(
    token: Option<String>,
    work: F,
) -> impl Future<Output = F::Output> {
    REQUEST_OIDC_TOKEN.scope(token, work)
}

fn request_token() -> Option<String> {
    REQUEST_OIDC_TOKEN.try_with(Clone::clone).ok().flatten()
}

/// Why no credentials could be had.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsProblem {
    #[error(
        "AWS_ROLE_ARN is set but there is no OIDC token: the request has no x-vercel-oidc-token header and VERCEL_OIDC_TOKEN is unset (enable OIDC federation in the Vercel project, or `vercel env pull` it for local development)"
    )]
    NoToken,
    #[error("assuming AWS_ROLE_ARN {role_arn} failed: {source}")]
    Sts {
        role_arn: String,
        #[source]
        source: StsError,
    },
    /// The variables select no usable source (named in the message).
    #[error("{0}")]
    Misconfigured(String),
}

impl CredentialsProblem {
    /// Worth a retry later (no token, STS unreachable) rather than an
    /// operator's fix (a refused role or a bad variable).
    pub fn is_unavailable(&self) -> bool {
        match self {
            CredentialsProblem::NoToken => true,
            CredentialsProblem::Sts { source, .. } => source.is_unavailable(),
            CredentialsProblem::Misconfigured(_) => false,
        }
    }
}

/// The instance's credential source, chosen once from the environment.
/// Cheap to clone; it is the S3 client's credentials provider.
#[derive(Clone, Debug)]
pub struct AwsCredentials {
    source: Arc<Source>,
}

#[derive(Debug)]
enum Source {
    /// None configured: the S3 client sends unsigned requests.
    None,
    Static {
        credentials: Credentials,
        /// Which variables they came from, for the logs.
        origin: &'static str,
        /// `AWS_*` keys on Vercel, where they may be the platform's.
        injected_hazard: bool,
    },
    WebIdentity(WebIdentity),
    /// Refused: every S3 call answers 500 CONFIGURATION_ERROR with this.
    Unusable(String),
}

/// How OIDC credentials are obtained and kept.
#[derive(Debug, Clone)]
pub struct WebIdentityConfig {
    pub role_arn: String,
    pub session_name: String,
    pub endpoint: String,
    pub env_token: Option<String>,
    pub duration_seconds: Option<u32>,
    /// Refresh when less than this is left (at most half the credentials'
    /// lifetime): a presigned URL never outlives the credentials that signed
    /// it, so this keeps the URLs at their full TTL.
    pub refresh_margin: Duration,
}

#[derive(Debug)]
struct WebIdentity {
    config: WebIdentityConfig,
    trust: TrustRoots,
    http: OnceLock<reqwest::Client>,
    /// The current credentials and when they were issued; the lock also
    /// makes concurrent refreshes one STS call.
    current: tokio::sync::Mutex<Option<(Credentials, SystemTime)>>,
}

impl AwsCredentials {
    /// No credentials: unsigned requests (a public local S3).
    pub fn none() -> Self {
        Self::from_source(Source::None)
    }

    /// Fixed keys (the embedded S3's, in the dev server and tests).
    pub fn fixed(access_key_id: &str, secret_access_key: &str, origin: &'static str) -> Self {
        Self::from_source(Source::Static {
            credentials: Credentials::new(access_key_id, secret_access_key, None, None, origin),
            origin,
            injected_hazard: false,
        })
    }

    pub fn from_env(region: &str, trust: &TrustRoots) -> Self {
        Self::from_lookup(&|name| std::env::var(name).ok(), region, trust)
    }

    /// The source the variables select, in the order of the module's doc.
    /// `region` is the S3 region, where the regional STS endpoint is.
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
        region: &str,
        trust: &TrustRoots,
    ) -> Self {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if let Some(role_arn) = get("AWS_ROLE_ARN") {
            return Self::from_source(match web_identity_config(&get, role_arn, region) {
                Ok(config) => Source::WebIdentity(WebIdentity {
                    config,
                    trust: trust.clone(),
                    http: OnceLock::new(),
                    current: tokio::sync::Mutex::default(),
                }),
                Err(problem) => Source::Unusable(problem),
            });
        }
        let keys = |prefix: &str, origin: &'static str, injected_hazard: bool| {
            let id = get(&format!("{prefix}_ACCESS_KEY_ID"));
            let secret = get(&format!("{prefix}_SECRET_ACCESS_KEY"));
            let token = get(&format!("{prefix}_SESSION_TOKEN"));
            match (id, secret) {
                (Some(id), Some(secret)) => Some(Source::Static {
                    credentials: Credentials::new(id, secret, token, None, origin),
                    origin,
                    injected_hazard,
                }),
                (None, None) => None,
                _ => Some(Source::Unusable(format!(
                    "{prefix}_ACCESS_KEY_ID and {prefix}_SECRET_ACCESS_KEY must be set together"
                ))),
            }
        };
        let on_vercel = get("VERCEL").is_some();
        let source = keys("S3", "S3_ACCESS_KEY_ID", false)
            .or_else(|| keys("AWS", "AWS_ACCESS_KEY_ID", on_vercel))
            .unwrap_or(Source::None);
        Self::from_source(source)
    }

    fn from_source(source: Source) -> Self {
        Self {
            source: Arc::new(source),
        }
    }

    /// Whether the S3 client gets a credentials provider at all.
    pub fn is_none(&self) -> bool {
        matches!(*self.source, Source::None)
    }

    /// Which source is in use, for logs and `doctor`.
    pub fn describe(&self) -> String {
        match &*self.source {
            Source::None => "none (unsigned requests)".into(),
            Source::Static { origin, .. } => format!("static keys from {origin}"),
            Source::WebIdentity(oidc) => format!(
                "OIDC: AssumeRoleWithWebIdentity of {} at {}",
                oidc.config.role_arn, oidc.config.endpoint
            ),
            Source::Unusable(problem) => format!("unusable: {problem}"),
        }
    }

    /// The cold start's lines about credentials: one ERROR for a refused
    /// configuration, one WARN for the injected-variable hazard.
    pub fn log_cold_start(&self) {
        match &*self.source {
            Source::Unusable(problem) => tracing::error!(
                %problem,
                "AWS credentials are misconfigured: {problem}; the routes that use S3 answer 500 CONFIGURATION_ERROR"
            ),
            Source::Static {
                injected_hazard: true,
                credentials,
                ..
            } => tracing::warn!(
                session_token = credentials.session_token().is_some(),
                "S3 signs with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN when set), which Vercel may inject and which are then not usable; set AWS_ROLE_ARN (OIDC) or S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY instead"
            ),
            Source::None => tracing::warn!(
                "no AWS credentials are configured (AWS_ROLE_ARN, S3_ACCESS_KEY_ID or AWS_ACCESS_KEY_ID): S3 requests go unsigned"
            ),
            _ => {}
        }
    }

    /// The credentials to sign with now; `None` for [`AwsCredentials::none`].
    pub async fn resolve(&self) -> Result<Option<Credentials>, CredentialsProblem> {
        match &*self.source {
            Source::None => Ok(None),
            Source::Static { credentials, .. } => Ok(Some(credentials.clone())),
            Source::WebIdentity(oidc) => oidc.resolve().await.map(Some),
            Source::Unusable(problem) => Err(CredentialsProblem::Misconfigured(problem.clone())),
        }
    }

    /// `wanted`, shortened to what the signing credentials have left: a
    /// presigned URL never claims to live longer than they do.
    pub async fn presign_ttl(&self, wanted: Duration) -> Result<Duration, CredentialsProblem> {
        Ok(match self.resolve().await? {
            Some(credentials) => presign_ttl_of(&credentials, wanted),
            None => wanted,
        })
    }
}

/// `wanted`, shortened to what `credentials` have left (temporary ones expire).
pub fn presign_ttl_of(credentials: &Credentials, wanted: Duration) -> Duration {
    match credentials
        .expiry()
        .and_then(|at| at.duration_since(SystemTime::now()).ok())
    {
        Some(left) => wanted.min(left),
        None => wanted,
    }
}

fn web_identity_config(
    get: &dyn Fn(&str) -> Option<String>,
    role_arn: String,
    region: &str,
) -> Result<WebIdentityConfig, String> {
    if !role_arn.starts_with("arn:") {
        return Err(format!(
            "AWS_ROLE_ARN must be a role ARN (arn:aws:iam::ACCOUNT:role/NAME), got {role_arn:?}"
        ));
    }
    let seconds = |name: &str, range: std::ops::RangeInclusive<u32>| match get(name) {
        None => Ok(None),
        Some(raw) => match raw.parse::<u32>() {
            Ok(value) if range.contains(&value) => Ok(Some(value)),
            _ => Err(format!(
                "{name} must be an integer in {}..={}, got {raw:?}",
                range.start(),
                range.end()
            )),
        },
    };
    // STS allows 900..=43200; a local STS (moto) also shorter ones.
    let duration_seconds = seconds("AWS_ROLE_DURATION_SECONDS", 1..=43_200)?;
    let refresh_margin = seconds("AWS_CREDENTIALS_REFRESH_MARGIN_SECONDS", 0..=43_200)?
        .map_or(DEFAULT_REFRESH_MARGIN, |s| Duration::from_secs(s.into()));
    let session_name = get("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| "moc-uploads".into());
    Ok(WebIdentityConfig {
        role_arn,
        session_name,
        endpoint: sts::endpoint(region, get("AWS_ENDPOINT_URL_STS").as_deref()),
        env_token: get("VERCEL_OIDC_TOKEN"),
        duration_seconds,
        refresh_margin,
    })
}

/// The presigned URLs' default TTL and then some: with the role's default
/// hour, credentials are refreshed 20 minutes before their end, so a URL
/// signed with them keeps its full 15 minutes.
const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(20 * 60);

impl WebIdentity {
    #[tracing::instrument(skip_all, name = "aws_credentials")]
    async fn resolve(&self) -> Result<Credentials, CredentialsProblem> {
        let mut current = self.current.lock().await;
        let now = SystemTime::now();
        let left = |c: &Credentials| {
            c.expiry()
                .and_then(|at| at.duration_since(now).ok())
                .unwrap_or_default()
        };
        if let Some((credentials, issued)) = current.as_ref() {
            let lifetime = credentials
                .expiry()
                .and_then(|at| at.duration_since(*issued).ok())
                .unwrap_or_default();
            // Never down to nothing: a presigned URL gets what is left.
            let threshold = self.config.refresh_margin.min(lifetime / 2);
            if left(credentials) > threshold.max(Duration::from_secs(1)) {
                return Ok(credentials.clone());
            }
        }
        let usable = current
            .as_ref()
            .map(|(c, _)| c.clone())
            .filter(|c| left(c) > MIN_LIFETIME_LEFT);
        let Some(token) = request_token().or_else(|| self.config.env_token.clone()) else {
            return usable.ok_or(CredentialsProblem::NoToken);
        };
        match self.assume(&token).await {
            Ok(fresh) => {
                tracing::info!(
                    access_key_id = fresh.access_key_id(),
                    expires_in_s = left(&fresh).as_secs(),
                    "assumed AWS_ROLE_ARN with the OIDC token"
                );
                *current = Some((fresh.clone(), now));
                Ok(fresh)
            }
            Err(problem) => match usable {
                Some(still_valid) => {
                    tracing::warn!(error = %problem, expires_in_s = left(&still_valid).as_secs(), "refreshing the AWS credentials failed: signing with the current ones until they expire");
                    Ok(still_valid)
                }
                None => Err(problem),
            },
        }
    }

    async fn assume(&self, token: &str) -> Result<Credentials, CredentialsProblem> {
        let http = self.http.get_or_init(|| sts::http_client(&self.trust));
        let config = &self.config;
        let request = WebIdentityRequest {
            endpoint: &config.endpoint,
            role_arn: &config.role_arn,
            session_name: &config.session_name,
            token,
            duration_seconds: config.duration_seconds,
        };
        let issued = sts::assume_role_with_web_identity(http, &request)
            .await
            .map_err(|source| CredentialsProblem::Sts {
                role_arn: config.role_arn.clone(),
                source,
            })?;
        Ok(Credentials::new(
            issued.access_key_id,
            issued.secret_access_key,
            Some(issued.session_token),
            Some(issued.expiration),
            "AssumeRoleWithWebIdentity",
        ))
    }
}

impl From<crate::s3::StaticCredentials> for AwsCredentials {
    fn from(keys: crate::s3::StaticCredentials) -> Self {
        Self::from_source(Source::Static {
            credentials: Credentials::new(
                keys.access_key_id,
                keys.secret_access_key,
                keys.session_token,
                None,
                "static",
            ),
            origin: "static",
            injected_hazard: false,
        })
    }
}

impl From<Option<crate::s3::StaticCredentials>> for AwsCredentials {
    fn from(keys: Option<crate::s3::StaticCredentials>) -> Self {
        keys.map_or_else(Self::none, Self::from)
    }
}

impl ProvideCredentials for AwsCredentials {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            match self.resolve().await {
                Ok(Some(credentials)) => Ok(credentials),
                Ok(None) => Err(CredentialsError::not_loaded(
                    "no AWS credentials are configured",
                )),
                Err(problem) => Err(CredentialsError::provider_error(problem)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn chosen(vars: &[(&str, &str)]) -> AwsCredentials {
        let env: HashMap<&str, &str> = vars.iter().copied().collect();
        AwsCredentials::from_lookup(
            &|name| env.get(name).map(|v| v.to_string()),
            "eu-west-1",
            &TrustRoots::builtin(),
        )
    }

    const INJECTED: [(&str, &str); 4] = [
        ("VERCEL", "1"),
        ("AWS_ACCESS_KEY_ID", "ASIAINJECTED"),
        ("AWS_SECRET_ACCESS_KEY", "injected"),
        ("AWS_SESSION_TOKEN", "injected-token"),
    ];

    #[tokio::test]
    async fn the_projects_own_keys_are_never_mixed_with_injected_aws_ones() {
        let mut vars = INJECTED.to_vec();
        vars.extend([
            ("S3_ACCESS_KEY_ID", "AKIAOWN"),
            ("S3_SECRET_ACCESS_KEY", "own"),
        ]);
        let credentials = chosen(&vars).resolve().await.unwrap().unwrap();
        assert_eq!(credentials.access_key_id(), "AKIAOWN");
        assert_eq!(credentials.secret_access_key(), "own");
        assert_eq!(credentials.session_token(), None);
        vars.push(("S3_SESSION_TOKEN", "own-token"));
        let credentials = chosen(&vars).resolve().await.unwrap().unwrap();
        assert_eq!(credentials.session_token(), Some("own-token"));
    }

    #[tokio::test]
    async fn aws_keys_are_the_last_resort_and_flagged_on_vercel() {
        let source = chosen(&INJECTED);
        let credentials = source.resolve().await.unwrap().unwrap();
        assert_eq!(credentials.access_key_id(), "ASIAINJECTED");
        assert_eq!(credentials.session_token(), Some("injected-token"));
        assert!(matches!(
            *source.source,
            Source::Static {
                injected_hazard: true,
                ..
            }
        ));
        let off_vercel = chosen(&INJECTED[1..]);
        assert!(matches!(
            *off_vercel.source,
            Source::Static {
                injected_hazard: false,
                ..
            }
        ));
        assert!(chosen(&[("VERCEL", "1")]).is_none());
    }

    #[tokio::test]
    async fn a_role_comes_first_and_half_a_key_pair_is_refused() {
        let mut vars = INJECTED.to_vec();
        vars.extend([
            ("S3_ACCESS_KEY_ID", "AKIAOWN"),
            ("S3_SECRET_ACCESS_KEY", "own"),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/moc"),
        ]);
        let oidc = chosen(&vars);
        assert!(
            oidc.describe()
                .contains("https://sts.eu-west-1.amazonaws.com"),
            "{}",
            oidc.describe()
        );
        // No header and no VERCEL_OIDC_TOKEN: nothing to exchange.
        assert!(matches!(
            oidc.resolve().await,
            Err(CredentialsProblem::NoToken)
        ));
        let half = chosen(&[
            ("S3_ACCESS_KEY_ID", "AKIAOWN"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
        ]);
        let problem = half.resolve().await.unwrap_err();
        assert!(
            problem.to_string().contains("S3_SECRET_ACCESS_KEY"),
            "{problem}"
        );
        assert!(!problem.is_unavailable());
        let bad_role = chosen(&[("AWS_ROLE_ARN", "moc-role")]);
        assert!(
            bad_role
                .resolve()
                .await
                .unwrap_err()
                .to_string()
                .contains("AWS_ROLE_ARN")
        );
    }

    #[tokio::test]
    async fn the_request_token_is_seen_only_inside_its_request() {
        let mut headers = HeaderMap::new();
        headers.insert(OIDC_TOKEN_HEADER, "header-token".parse().unwrap());
        let seen = with_request_token(oidc_token(&headers), async { request_token() }).await;
        assert_eq!(seen.as_deref(), Some("header-token"));
        assert_eq!(request_token(), None);
        let none =
            with_request_token(oidc_token(&HeaderMap::new()), async { request_token() }).await;
        assert_eq!(none, None);
    }

    #[tokio::test]
    async fn temporary_credentials_cut_a_presigned_url_to_what_they_have_left() {
        let expiry = SystemTime::now() + Duration::from_secs(60);
        let source = AwsCredentials::from_source(Source::Static {
            credentials: Credentials::new("a", "b", Some("token".into()), Some(expiry), "test"),
            origin: "test",
            injected_hazard: false,
        });
        let ttl = source.presign_ttl(Duration::from_secs(900)).await.unwrap();
        assert!(ttl <= Duration::from_secs(60), "{ttl:?}");
        assert!(ttl > Duration::from_secs(50), "{ttl:?}");
        // A lifetime shorter than what is left stands.
        let short = source.presign_ttl(Duration::from_secs(5)).await.unwrap();
        assert_eq!(short, Duration::from_secs(5));
    }

    #[tokio::test]
    async fn static_credentials_do_not_shorten_presigned_urls() {
        let source = AwsCredentials::fixed("a", "b", "test");
        let ttl = Duration::from_secs(900);
        assert_eq!(source.presign_ttl(ttl).await.unwrap(), ttl);
    }
}
