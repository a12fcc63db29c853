//! STS `AssumeRoleWithWebIdentity`: the OIDC token Vercel issues exchanged
//! for a role's temporary credentials.
//!
//! The call is unsigned (the token is the proof), so it is a form POST and
//! a small XML answer over the HTTP client the JWKS fetch already links
//! (reqwest on rustls/*ring*), with the process's roots ([`TrustRoots`]):
//! no `aws-sdk-sts`/`aws-config` in the binaries. The answer is read with
//! `aws-smithy-xml`, which the S3 client links anyway.

use std::time::{Duration, SystemTime};

use crate::tls::TrustRoots;
use crate::xml::leaf_values;

/// The STS API version of the query protocol.
const VERSION: &str = "2011-06-15";

/// What to assume, with which token.
#[derive(Debug, Clone)]
pub struct WebIdentityRequest<'a> {
    /// The STS endpoint, e.g. `https://sts.us-east-1.amazonaws.com`.
    pub endpoint: &'a str,
    pub role_arn: &'a str,
    pub session_name: &'a str,
    pub token: &'a str,
    /// `None`: the role's default (one hour).
    pub duration_seconds: Option<u32>,
}

/// Temporary credentials STS issued.
#[derive(Clone)]
pub struct StsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: SystemTime,
}

impl std::fmt::Debug for StsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StsError {
    /// No answer, or a 5xx or throttling answer: worth retrying later.
    #[error("STS could not be reached at {endpoint}: {source}")]
    Unavailable {
        endpoint: String,
        #[source]
        source: crate::box_error::BoxError,
    },
    /// STS refused the request: the role, its trust policy or the token.
    #[error("STS refused AssumeRoleWithWebIdentity ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("STS answered something that is not AssumeRoleWithWebIdentity's result: {0}")]
    Malformed(String),
}

impl StsError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StsError::Unavailable { .. })
    }
}

/// The regional STS endpoint of `region`, unless `AWS_ENDPOINT_URL_STS`
/// (`override_url`) names another.
pub fn endpoint(region: &str, override_url: Option<&str>) -> String {
    match override_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("https://sts.{region}.amazonaws.com"),
    }
}

/// The HTTP client of STS calls: rustls on *ring* with `trust`'s roots,
/// short timeouts (a function's whole request waits on it).
pub fn http_client(trust: &TrustRoots) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(trust.client_config())
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// `AssumeRoleWithWebIdentity`.
#[tracing::instrument(skip_all, fields(endpoint = request.endpoint, role_arn = request.role_arn))]
pub async fn assume_role_with_web_identity(
    http: &reqwest::Client,
    request: &WebIdentityRequest<'_>,
) -> Result<StsCredentials, StsError> {
    let duration = request.duration_seconds.map(|d| d.to_string());
    let mut form = vec![
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", VERSION),
        ("RoleArn", request.role_arn),
        ("RoleSessionName", request.session_name),
        ("WebIdentityToken", request.token),
    ];
    if let Some(duration) = &duration {
        form.push(("DurationSeconds", duration));
    }
    let unavailable = |source: crate::box_error::BoxError| StsError::Unavailable {
        endpoint: request.endpoint.to_owned(),
        source,
    };
    let response = http
        .post(format!("{}/", request.endpoint))
        .form(&form)
        .send()
        .await
        .map_err(|e| unavailable(e.into()))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| unavailable(e.into()))?;
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(unavailable(
            format!("HTTP {status}: {}", first_line(&body)).into(),
        ));
    }
    if !status.is_success() {
        let fields = leaf_values(&body, &["Code", "Message"]);
        let [code, message] = fields.map(|v| v.unwrap_or_default());
        if code == "Throttling" || code == "IDPCommunicationError" {
            return Err(unavailable(format!("{code}: {message}").into()));
        }
        return Err(StsError::Refused {
            status: status.as_u16(),
            code,
            message,
        });
    }
    parse_credentials(&body)
}

/// The `Credentials` of a successful answer.
pub fn parse_credentials(body: &str) -> Result<StsCredentials, StsError> {
    let [key, secret, token, expiration] = leaf_values(
        body,
        &[
            "AccessKeyId",
            "SecretAccessKey",
            "SessionToken",
            "Expiration",
        ],
    );
    let missing = |name: &str| StsError::Malformed(format!("no {name}"));
    let expiration = expiration.ok_or_else(|| missing("Expiration"))?;
    let expiration = chrono::DateTime::parse_from_rfc3339(&expiration)
        .map_err(|e| StsError::Malformed(format!("Expiration {expiration:?}: {e}")))?;
    Ok(StsCredentials {
        access_key_id: key.ok_or_else(|| missing("AccessKeyId"))?,
        secret_access_key: secret.ok_or_else(|| missing("SecretAccessKey"))?,
        session_token: token.ok_or_else(|| missing("SessionToken"))?,
        expiration: SystemTime::from(expiration),
    })
}

fn first_line(body: &str) -> &str {
    let line = body.lines().next().unwrap_or("");
    &line[..line.len().min(200)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credentials_are_read_from_the_answer() {
        let body = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>owner:acme:project:moc:environment:production</SubjectFromWebIdentityToken>
    <Audience>https://vercel.com/acme</Audience>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalr/K7MDENG+bPxRfiCY</SecretAccessKey>
      <SessionToken>FwoGZX&amp;IvYXdzE</SessionToken>
      <Expiration>2026-12-05T20:00:00.123Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;
        let credentials = parse_credentials(body).unwrap();
        assert_eq!(credentials.access_key_id, "ASIAEXAMPLE");
        assert_eq!(credentials.secret_access_key, "wJalr/K7MDENG+bPxRfiCY");
        assert_eq!(credentials.session_token, "FwoGZX&IvYXdzE");
        let expected = chrono::DateTime::parse_from_rfc3339("2026-12-05T20:00:00.123Z").unwrap();
        assert_eq!(credentials.expiration, SystemTime::from(expected));
    }

    #[test]
    fn an_answer_without_credentials_is_malformed() {
        let error = parse_credentials("<html>gateway</html>").unwrap_err();
        assert!(matches!(error, StsError::Malformed(_)), "{error}");
        let no_key =
            "<R><Credentials><Expiration>2026-12-05T20:00:00Z</Expiration></Credentials></R>";
        assert!(
            parse_credentials(no_key)
                .unwrap_err()
                .to_string()
                .contains("AccessKeyId")
        );
    }

    #[test]
    fn an_error_answer_gives_its_code_and_message() {
        let body = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>No OpenIDConnect provider found</Message></Error>
  <RequestId>1</RequestId></ErrorResponse>"#;
        let [code, message] = leaf_values(body, &["Code", "Message"]);
        assert_eq!(code.as_deref(), Some("InvalidIdentityToken"));
        assert_eq!(message.as_deref(), Some("No OpenIDConnect provider found"));
    }

    #[test]
    fn the_endpoint_is_regional_unless_overridden() {
        assert_eq!(
            endpoint("eu-west-1", None),
            "https://sts.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint("eu-west-1", Some("http://127.0.0.1:5000/")),
            "http://127.0.0.1:5000"
        );
    }
}
