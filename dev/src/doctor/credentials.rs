//! Where the S3 credentials come from, in the functions' order (issue 22,
//! item 3): the role in `AWS_ROLE_ARN` through OIDC, else the project's
//! `S3_ACCESS_KEY_ID` / `S3_SECRET_ACCESS_KEY`, else `AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY`; and the hazard of the variables Vercel injects.
//!
//! The role is assumed through the functions' own STS call
//! (`moc_shared::sts`), trusting the same roots (`SSL_CERT_FILE`).

use moc_shared::config::Config;
use moc_shared::s3::StaticCredentials;
use moc_shared::sts::{self, StsError, WebIdentityRequest};

use super::{AWS_ROLE, CHECK_TIMEOUT, Check, DoctorEnv, Failure, chain};

pub(super) const SETUP_FIX: &str =
    "set AWS_ROLE_ARN for OIDC (README, Deploy), or S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY";
const ROLE_FIX: &str = "check AWS_ROLE_ARN, and that the role's trust policy (docs/aws/iam-trust-policy.json) names this team's issuer and audience, and this project and environment";
const TOKEN_FIX: &str = "turn on OIDC federation in the Vercel project (Settings → Security), then `vercel env pull` again: a pulled VERCEL_OIDC_TOKEN lives 12 hours";

/// The credentials S3 calls would be signed with.
pub(super) enum CredentialSource {
    Role {
        role_arn: String,
    },
    /// `S3_ACCESS_KEY_ID` / `S3_SECRET_ACCESS_KEY` (optional `S3_SESSION_TOKEN`).
    Project(StaticCredentials),
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (optional `AWS_SESSION_TOKEN`).
    Aws(StaticCredentials),
    Missing,
}

impl CredentialSource {
    pub(super) fn of(env: &DoctorEnv) -> Self {
        if let Some(role_arn) = env.get("AWS_ROLE_ARN") {
            return Self::Role { role_arn };
        }
        let keys = |id: &str, secret: &str, token: &str| {
            Some(StaticCredentials {
                access_key_id: env.get(id)?,
                secret_access_key: env.get(secret)?,
                session_token: env.get(token),
            })
        };
        keys(
            "S3_ACCESS_KEY_ID",
            "S3_SECRET_ACCESS_KEY",
            "S3_SESSION_TOKEN",
        )
        .map(Self::Project)
        .or_else(|| {
            keys(
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
            )
            .map(Self::Aws)
        })
        .unwrap_or(Self::Missing)
    }
}

/// The `AWS role` check, and the credentials the S3 checks sign with.
pub(super) async fn role(
    env: &DoctorEnv,
    config: &Config,
    source: &CredentialSource,
) -> (Check, Option<StaticCredentials>) {
    let (result, credentials) = match source {
        CredentialSource::Role { role_arn } => {
            let assumed = tokio::time::timeout(CHECK_TIMEOUT, assume_role(env, config, role_arn));
            match assumed.await {
                Ok(Ok(credentials)) => (
                    Ok(format!(
                        "assumed {role_arn} with VERCEL_OIDC_TOKEN (key {})",
                        credentials.access_key_id
                    )),
                    Some(credentials),
                ),
                Ok(Err(failure)) => (Err(failure), None),
                Err(_) => (
                    Err(Failure::new("STS did not answer in time", ROLE_FIX)),
                    None,
                ),
            }
        }
        CredentialSource::Project(keys) | CredentialSource::Aws(keys) => (
            Ok("AWS_ROLE_ARN unset: no role to assume".to_owned()),
            Some(keys.clone()),
        ),
        CredentialSource::Missing => (Ok("AWS_ROLE_ARN unset: no role to assume".to_owned()), None),
    };
    (
        Check {
            name: AWS_ROLE,
            result,
        },
        credentials,
    )
}

/// STS `AssumeRoleWithWebIdentity` through the functions' own STS call
/// (`moc_shared::sts`), with the pulled `VERCEL_OIDC_TOKEN`.
/// `AWS_ENDPOINT_URL_STS` overrides the regional endpoint.
async fn assume_role(
    env: &DoctorEnv,
    config: &Config,
    role_arn: &str,
) -> Result<StaticCredentials, Failure> {
    let token = env.get("VERCEL_OIDC_TOKEN").ok_or_else(|| {
        Failure::new(
            "AWS_ROLE_ARN is set but VERCEL_OIDC_TOKEN is not",
            TOKEN_FIX,
        )
    })?;
    let endpoint = sts::endpoint(
        &config.s3.region,
        env.get("AWS_ENDPOINT_URL_STS").as_deref(),
    );
    let request = WebIdentityRequest {
        endpoint: &endpoint,
        role_arn,
        session_name: "moc-uploads-doctor",
        token: &token,
        duration_seconds: Some(900),
    };
    let assumed = sts::assume_role_with_web_identity(&sts::http_client(&config.trust), &request)
        .await
        .map_err(|error| {
            let fix = match &error {
                StsError::Unavailable { .. } => {
                    "check AWS_ENDPOINT_URL_STS (unset: AWS STS) and the network"
                }
                StsError::Refused { code, .. } if code == "ExpiredTokenException" => TOKEN_FIX,
                _ => ROLE_FIX,
            };
            Failure::new(chain(&error), fix)
        })?;
    Ok(StaticCredentials {
        access_key_id: assumed.access_key_id,
        secret_access_key: assumed.secret_access_key,
        session_token: Some(assumed.session_token),
    })
}

/// Vercel documents that `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `AWS_SESSION_TOKEN` may appear in a function without being set, and are
/// not usable credentials: signing with them fails every S3 call.
pub(super) fn hazard(env: &DoctorEnv, source: &CredentialSource) -> Result<String, Failure> {
    let on_vercel = env.get("VERCEL").is_some();
    match source {
        CredentialSource::Role { .. } => Ok("the OIDC role (AWS_ROLE_ARN); AWS_* keys are not used".into()),
        CredentialSource::Project(_) => Ok("S3_ACCESS_KEY_ID; AWS_* keys are not used".into()),
        CredentialSource::Aws(keys) if on_vercel && keys.session_token.is_some() => Err(Failure::new(
            "S3 would sign with AWS_ACCESS_KEY_ID and AWS_SESSION_TOKEN, which Vercel may inject and which are not usable credentials",
            "use OIDC (AWS_ROLE_ARN, README) or the project's own S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY",
        )),
        CredentialSource::Aws(_) if on_vercel => Ok(
            "AWS_ACCESS_KEY_ID (Vercel may inject AWS_* variables: prefer OIDC or S3_ACCESS_KEY_ID)".into(),
        ),
        CredentialSource::Aws(_) => Ok("AWS_ACCESS_KEY_ID".into()),
        CredentialSource::Missing => Err(Failure::new(
            "no S3 credentials: none of AWS_ROLE_ARN, S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY is set",
            SETUP_FIX,
        )),
    }
}
