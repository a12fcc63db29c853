//! S3 and AWS: which credentials the functions would sign with (the role
//! through OIDC when `AWS_ROLE_ARN` is set), the bucket, its CORS rule, and
//! a presigned upload round trip.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::CorsRule;
use moc_shared::config::Config;
use moc_shared::domain::PartNumber;
use moc_shared::s3::{S3Error, S3Store};

use super::credentials::{self, CredentialSource};
use super::{
    AWS_CREDENTIALS, BUCKET, BUCKET_CORS, Check, DoctorEnv, Failure, PRESIGNED_UPLOAD, chain, timed,
};

const ENDPOINT_FIX: &str =
    "check AWS_ENDPOINT_URL_S3 / S3_ENDPOINT (unset: AWS S3) and the network";
const NO_CREDENTIALS: &str = "not checked: no S3 credentials (see `AWS credentials`)";

pub(super) async fn checks(env: &DoctorEnv, config: &Config, http: &reqwest::Client) -> Vec<Check> {
    let source = CredentialSource::of(env);
    let (role, signing) = credentials::role(env, config, &source).await;
    let hazard = Check {
        name: AWS_CREDENTIALS,
        result: credentials::hazard(env, &source),
    };
    let [bucket, cors, upload] = match signing {
        Some(signing) => {
            let store = S3Store::new(&config.s3, Some(signing));
            let cors_fix = cors_fix(config);
            let (bucket, cors, upload) = tokio::join!(
                timed(BUCKET, ENDPOINT_FIX, head_bucket(&store, config)),
                timed(BUCKET_CORS, &cors_fix, bucket_cors(&store, config)),
                timed(
                    PRESIGNED_UPLOAD,
                    ENDPOINT_FIX,
                    round_trip(&store, config, http)
                ),
            );
            [bucket, cors, upload]
        }
        None => [BUCKET, BUCKET_CORS, PRESIGNED_UPLOAD].map(|name| Check {
            name,
            result: Err(Failure::new(NO_CREDENTIALS, credentials::SETUP_FIX)),
        }),
    };
    vec![bucket, cors, upload, role, hazard]
}

/// What to do about an S3 answer, by its HTTP status and error code.
fn s3_fix(status: Option<u16>, code: &str) -> &'static str {
    match (status, code) {
        (_, "NoSuchBucket") | (Some(404), _) => "create the bucket, or set MOC_BUCKET to its name",
        (_, "PermanentRedirect" | "AuthorizationHeaderMalformed") | (Some(301), _) => {
            "set AWS_REGION to the bucket's region"
        }
        // NotSignedUp: what some S3-compatible stores say of an unknown key.
        (
            _,
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "InvalidToken"
            | "NotSignedUp",
        ) => "the S3 credentials are wrong or expired: check the keys, or the role (`AWS role`)",
        (_, "AccessDenied") => {
            "grant the role (or the key's user) docs/aws/s3-policy.json on this bucket"
        }
        // HeadBucket answers without a body, so without a code.
        (Some(403), _) => {
            "check the S3 credentials (or `AWS role`), and grant docs/aws/s3-policy.json on this bucket"
        }
        _ => ENDPOINT_FIX,
    }
}

/// An S3 SDK failure of `operation`, with its fix.
fn sdk_failure<E>(
    operation: &str,
    error: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    let code = error.code().unwrap_or_default().to_owned();
    let shown = match status {
        Some(status) => format!("{operation} answered {status} {code}")
            .trim_end()
            .to_owned(),
        None => format!("{operation}: {}", chain(&error)),
    };
    Failure::new(shown, s3_fix(status, &code))
}

/// A failure of the functions' own S3 calls (`moc_shared::s3`).
fn store_failure(error: &S3Error) -> Failure {
    let fix = match error {
        S3Error::Service { code, .. } => s3_fix(None, code),
        // The store reports a missing bucket as a missing key.
        S3Error::NoSuchKey { .. } => s3_fix(Some(404), ""),
        S3Error::NoSuchUpload { .. } | S3Error::Unavailable { .. } => ENDPOINT_FIX,
        S3Error::Credentials { .. } => credentials::SETUP_FIX,
    };
    // A service error's code says it all; a network error needs its causes.
    let shown = match error {
        S3Error::Unavailable { .. } => chain(error),
        _ => error.to_string(),
    };
    Failure::new(shown, fix)
}

async fn head_bucket(store: &S3Store, config: &Config) -> Result<String, Failure> {
    const OP: &str = "HeadBucket";
    let bucket = &config.s3.bucket;
    store
        .client()
        .head_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| sdk_failure(OP, e))?;
    let at = config.s3.endpoint.as_deref().unwrap_or("AWS S3");
    Ok(format!(
        "{bucket} answers {OP} at {at} ({})",
        config.s3.region
    ))
}

fn cors_fix(config: &Config) -> String {
    format!(
        "list your page's origins in AllowedOrigins of docs/bucket-cors.json, then `aws s3api put-bucket-cors --bucket {} --cors-configuration file://docs/bucket-cors.json`",
        config.s3.bucket
    )
}

/// The bucket's CORS rules must let each configured origin (the API's
/// `CORS_ALLOWED_ORIGINS`, else `ALLOWED_UPLOAD_ORIGINS`) PUT, and expose
/// `ETag`: the browser PUTs parts straight to S3 and reads each part's ETag.
async fn bucket_cors(store: &S3Store, config: &Config) -> Result<String, Failure> {
    const OP: &str = "GetBucketCors";
    let output = match store
        .client()
        .get_bucket_cors()
        .bucket(&config.s3.bucket)
        .send()
        .await
    {
        Ok(output) => output,
        Err(error) if error.code() == Some("NoSuchCORSConfiguration") => {
            return Err(Failure::new(
                "the bucket has no CORS configuration: browsers cannot PUT parts to it",
                cors_fix(config),
            ));
        }
        Err(error) => return Err(sdk_failure(OP, error)),
    };
    cors_allows(output.cors_rules(), &config.cors_allowed_origins)
        .map_err(|problem| Failure::new(problem, cors_fix(config)))
}

fn cors_allows(rules: &[CorsRule], origins: &[String]) -> Result<String, String> {
    let usable: Vec<&CorsRule> = rules
        .iter()
        .filter(|r| r.allowed_methods().iter().any(|m| m == "PUT"))
        .filter(|r| {
            r.expose_headers()
                .iter()
                .any(|h| h.eq_ignore_ascii_case("ETag"))
        })
        .collect();
    if usable.is_empty() {
        return Err(
            "no CORS rule allows PUT and exposes ETag: a page could never read a part's ETag"
                .into(),
        );
    }
    let refused: Vec<&String> = origins
        .iter()
        .filter(|origin| {
            !usable.iter().any(|r| {
                r.allowed_origins()
                    .iter()
                    .any(|p| origin_matches(p, origin))
            })
        })
        .collect();
    match (refused.is_empty(), origins.is_empty()) {
        (false, _) => Err(format!(
            "no rule that allows PUT and exposes ETag allows the origins {refused:?} (CORS_ALLOWED_ORIGINS)"
        )),
        (true, true) => {
            Ok("a rule allows PUT and exposes ETag (no CORS_ALLOWED_ORIGINS to compare)".into())
        }
        (true, false) => Ok(format!("PUT allowed from {origins:?}, ETag exposed")),
    }
}

/// S3's origin patterns: exact, `*`, or one `*` wildcard inside.
fn origin_matches(pattern: &str, origin: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == origin,
        Some((head, tail)) => {
            origin.len() >= head.len() + tail.len()
                && origin.starts_with(head)
                && origin.ends_with(tail)
        }
    }
}

/// CreateMultipartUpload, a presigned UploadPart PUT over plain HTTP (as a
/// browser sends it), AbortMultipartUpload: the API's S3 path end to end.
async fn round_trip(
    store: &S3Store,
    config: &Config,
    http: &reqwest::Client,
) -> Result<String, Failure> {
    let key = format!("{}/doctor/{}", config.stage.as_str(), uuid::Uuid::new_v4());
    let upload_id = store
        .create_multipart_upload(&key, "application/octet-stream", false)
        .await
        .map_err(|e| store_failure(&e))?;
    let put = put_presigned_part(store, config, http, &key, &upload_id).await;
    let aborted = store.abort_multipart_upload(&key, &upload_id).await;
    let etag = put?;
    aborted.map_err(|e| store_failure(&e))?;
    Ok(format!(
        "CreateMultipartUpload → presigned PUT (ETag {etag}) → AbortMultipartUpload under {key}"
    ))
}

async fn put_presigned_part(
    store: &S3Store,
    config: &Config,
    http: &reqwest::Client,
    key: &str,
    upload_id: &str,
) -> Result<String, Failure> {
    let body: &'static [u8] = b"moc-uploads doctor\n";
    let (Some(part), Ok(size)) = (PartNumber::new(1), u64::try_from(body.len())) else {
        unreachable!("part 1 of a 19-byte body is valid");
    };
    let presigned = store
        .presign_upload_part(key, upload_id, part, size, None, config.presigned_url_ttl)
        .await
        .map_err(|e| store_failure(&e))?;
    let mut request = http.put(&presigned.url).body(body);
    for (name, value) in &presigned.headers {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| Failure::new(format!("the presigned PUT: {}", chain(&e)), ENDPOINT_FIX))?;
    let status = response.status();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match (status.is_success(), etag) {
        (true, Some(etag)) => Ok(etag),
        (true, None) => Err(Failure::new(
            "the presigned PUT answered without an ETag",
            ENDPOINT_FIX,
        )),
        (false, _) => {
            let text = response.text().await.unwrap_or_default();
            let code = xml_text(&text, "Code").unwrap_or_default();
            Err(Failure::new(
                format!("the presigned PUT answered {status} {code}"),
                s3_fix(Some(status.as_u16()), code),
            ))
        }
    }
}

/// The text of the first `<tag>` element of an S3 XML error answer.
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..end])
}
