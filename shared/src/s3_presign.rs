//! Presigned `UploadPart` URLs, signed here: SigV4 in the query string
//! (`UNSIGNED-PAYLOAD`), to the same URL and headers the SDK's presigning
//! makes (the tests hold the two equal).
//!
//! Why not the SDK's `presigned()`: it runs the whole operation pipeline for
//! each URL (interceptors, the S3 endpoint rules, a fresh signing key), about
//! 15 % of the API's instructions in a small-file flow under callgrind, for
//! what is one HMAC chain. Here the bucket's endpoint is resolved once, by
//! the SDK's own rules ([`DefaultResolver`]), and the day's signing key is
//! derived once per day and credentials (docs/PERFORMANCE.md, issue 28).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_s3::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use ring::{digest, hmac};

use crate::config::S3Config;
use crate::domain::{Crc32c, PartNumber};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SERVICE: &str = "s3";

/// Where the bucket is and how to sign for it, resolved once per client.
#[derive(Debug)]
pub(crate) struct Presigner {
    /// The bucket's URL without a trailing slash: `http://host:port/bucket`
    /// in path style, `https://bucket.s3.REGION.amazonaws.com` otherwise.
    bucket_url: String,
    /// The path of `bucket_url` (`/bucket` or empty), as signed.
    bucket_path: String,
    /// `host[:port]` of `bucket_url`, as signed.
    host: String,
    region: String,
    day_key: Mutex<Option<DayKey>>,
}

/// The SigV4 signing key of one day, region and set of credentials.
struct DayKey {
    date: String,
    access_key_id: String,
    secret_access_key: String,
    key: hmac::Key,
}

impl std::fmt::Debug for DayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DayKey({}, {})", self.date, self.access_key_id)
    }
}

/// What one presigned `UploadPart` covers.
pub(crate) struct PartToSign<'a> {
    pub key: &'a str,
    pub upload_id: &'a str,
    pub part: PartNumber,
    pub size: u64,
    pub crc32c: Option<Crc32c>,
    pub ttl: Duration,
}

impl Presigner {
    /// The bucket's endpoint, by the SDK's S3 endpoint rules for this
    /// configuration (a custom endpoint is addressed path-style, as the
    /// client is). An error names what the rules refused.
    pub(crate) fn resolve(config: &S3Config) -> Result<Self, String> {
        let params = Params::builder()
            .bucket(&config.bucket)
            .region(&config.region)
            .set_endpoint(config.endpoint.clone())
            .force_path_style(config.endpoint.is_some())
            .build()
            .map_err(|error| error.to_string())?;
        let endpoint = DefaultResolver::new()
            .resolve_endpoint(&params)
            .now_or_never()
            .ok_or("the S3 endpoint rules did not resolve at once")?
            .map_err(|error| error.to_string())?;
        let bucket_url = endpoint.url().trim_end_matches('/').to_owned();
        let uri: http::Uri = bucket_url.parse().map_err(|error| format!("{error}"))?;
        let host = uri
            .authority()
            .ok_or("the S3 endpoint has no host")?
            .as_str()
            .to_owned();
        let bucket_path = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            bucket_url,
            bucket_path,
            host,
            region: config.region.clone(),
            day_key: Mutex::new(None),
        })
    }

    /// The URL and the headers to send with it: `Content-Length`, and with
    /// a CRC32C its two checksum headers, all signed.
    pub(crate) fn presign(
        &self,
        credentials: &Credentials,
        part: &PartToSign<'_>,
        now: SystemTime,
    ) -> (String, Vec<(String, String)>) {
        let now: DateTime<Utc> = now.into();
        let date = now.format("%Y%m%d").to_string();
        let timestamp = now.format("%Y%m%dT%H%M%SZ").to_string();
        let scope = format!("{date}/{}/{SERVICE}/aws4_request", self.region);
        let headers = self.signed_headers(part);
        let signed_headers = headers
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(";");
        let mut query = vec![
            ("x-id", "UploadPart".to_owned()),
            ("partNumber", part.part.get().to_string()),
            ("uploadId", encode(part.upload_id, false)),
            ("X-Amz-Algorithm", ALGORITHM.to_owned()),
            (
                "X-Amz-Credential",
                encode(&format!("{}/{scope}", credentials.access_key_id()), false),
            ),
            ("X-Amz-Date", timestamp.clone()),
            ("X-Amz-Expires", part.ttl.as_secs().to_string()),
            ("X-Amz-SignedHeaders", encode(&signed_headers, false)),
        ];
        if let Some(token) = credentials.session_token() {
            query.push(("X-Amz-Security-Token", encode(token, false)));
        }
        let path = format!("{}/{}", self.bucket_path, encode(part.key, true));
        let canonical_request = canonical_request(&path, &query, &headers, &signed_headers);
        let string_to_sign = format!(
            "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
            hex::encode(digest::digest(
                &digest::SHA256,
                canonical_request.as_bytes()
            ))
        );
        let signature = hmac::sign(
            &self.signing_key(credentials, &date),
            string_to_sign.as_bytes(),
        );
        query.push(("X-Amz-Signature", hex::encode(signature)));

        let url = format!(
            "{}/{}?{}",
            self.bucket_url,
            encode(part.key, true),
            joined_query(&query)
        );
        (url, headers_to_send(headers, part.size))
    }

    /// The headers the URL's signature covers, in SigV4's order (by name).
    fn signed_headers(&self, part: &PartToSign<'_>) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("content-length", part.size.to_string()),
            ("host", self.host.clone()),
        ];
        if let Some(crc32c) = part.crc32c {
            headers.push(("x-amz-checksum-crc32c", crc32c.to_string()));
            headers.push(("x-amz-sdk-checksum-algorithm", "CRC32C".to_owned()));
        }
        headers
    }

    /// The signing key of `date` for `credentials`, derived once per day and
    /// credentials (four HMACs) and kept.
    fn signing_key(&self, credentials: &Credentials, date: &str) -> hmac::Key {
        let mut day_key = self.day_key.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kept) = day_key.as_ref()
            && kept.date == date
            && kept.access_key_id == credentials.access_key_id()
            && kept.secret_access_key == credentials.secret_access_key()
        {
            return kept.key.clone();
        }
        let secret = format!("AWS4{}", credentials.secret_access_key());
        let key = [date, self.region.as_str(), SERVICE, "aws4_request"]
            .iter()
            .fold(
                hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
                |key, part| {
                    hmac::Key::new(
                        hmac::HMAC_SHA256,
                        hmac::sign(&key, part.as_bytes()).as_ref(),
                    )
                },
            );
        *day_key = Some(DayKey {
            date: date.to_owned(),
            access_key_id: credentials.access_key_id().to_owned(),
            secret_access_key: credentials.secret_access_key().to_owned(),
            key: key.clone(),
        });
        key
    }
}

/// What the client sends with the URL: the signed headers but `host`, which
/// its HTTP client writes, with `Content-Length` spelt as browsers and the
/// SDK spell it.
fn headers_to_send(headers: Vec<(&str, String)>, size: u64) -> Vec<(String, String)> {
    let mut sent: Vec<(String, String)> = headers
        .into_iter()
        .filter(|(name, _)| !matches!(*name, "host" | "content-length"))
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    sent.push(("Content-Length".to_owned(), size.to_string()));
    sent
}

/// SigV4's canonical request of a PUT with an unsigned payload: the query
/// sorted by its encoded names and values.
fn canonical_request(
    path: &str,
    query: &[(&str, String)],
    headers: &[(&str, String)],
    signed_headers: &str,
) -> String {
    let mut sorted = query.to_vec();
    sorted.sort();
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{}\n", value.trim()))
        .collect();
    format!(
        "PUT\n{path}\n{}\n{canonical_headers}\n{signed_headers}\nUNSIGNED-PAYLOAD",
        joined_query(&sorted)
    )
}

fn joined_query(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes all but the unreserved characters (`A-Z a-z 0-9 - . _ ~`),
/// and `/` too unless `keep_slashes` (an object key in a path): SigV4's
/// encoding, which S3 signs once, not twice.
fn encode(value: &str, keep_slashes: bool) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'.' | b'_' | b'~')
            || (keep_slashes && byte == b'/')
        {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use aws_sdk_s3::presigning::PresigningConfig;
    use aws_sdk_s3::types::ChecksumAlgorithm;

    use super::*;
    use crate::s3::{S3Store, StaticCredentials};

    fn config(region: &str, bucket: &str, endpoint: Option<&str>) -> S3Config {
        S3Config {
            bucket: bucket.to_owned(),
            region: region.to_owned(),
            endpoint: endpoint.map(str::to_owned),
            public_file_base_url: "https://files.example".to_owned(),
        }
    }

    fn credentials(session_token: Option<&str>) -> StaticCredentials {
        StaticCredentials {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
            session_token: session_token.map(str::to_owned),
        }
    }

    /// The URL, split into what S3 reads of it, and the headers to send.
    type Presigned = (
        String,
        BTreeSet<(String, String)>,
        BTreeSet<(String, String)>,
    );

    fn split(url: &str, headers: Vec<(String, String)>) -> Presigned {
        let (base, query) = url.split_once('?').expect("a query");
        let pairs = query
            .split('&')
            .map(|pair| {
                let (name, value) = pair.split_once('=').expect("name=value");
                (name.to_owned(), value.to_owned())
            })
            .collect();
        (base.to_owned(), pairs, headers.into_iter().collect())
    }

    async fn by_the_sdk(
        config: &S3Config,
        keys: StaticCredentials,
        part: &PartToSign<'_>,
        at: SystemTime,
    ) -> Presigned {
        let store = S3Store::new(config, keys);
        let mut request = store
            .client()
            .upload_part()
            .bucket(&config.bucket)
            .key(part.key)
            .upload_id(part.upload_id)
            .part_number(part.part.as_i32())
            .content_length(i64::try_from(part.size).unwrap());
        if let Some(crc32c) = part.crc32c {
            request = request
                .checksum_algorithm(ChecksumAlgorithm::Crc32C)
                .checksum_crc32_c(crc32c.to_string());
        }
        let presigning = PresigningConfig::builder()
            .start_time(at)
            .expires_in(part.ttl)
            .build()
            .unwrap();
        let presigned = request.presigned(presigning).await.unwrap();
        let mut headers: Vec<(String, String)> = presigned
            .headers()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        headers.push(("Content-Length".to_owned(), part.size.to_string()));
        split(presigned.uri(), headers)
    }

    fn by_us(
        config: &S3Config,
        keys: StaticCredentials,
        part: &PartToSign<'_>,
        at: SystemTime,
    ) -> Presigned {
        let credentials = Credentials::new(
            keys.access_key_id,
            keys.secret_access_key,
            keys.session_token,
            None,
            "test",
        );
        let (url, headers) = Presigner::resolve(config)
            .unwrap()
            .presign(&credentials, part, at);
        split(&url, headers)
    }

    fn part<'a>(key: &'a str, crc32c: Option<Crc32c>) -> PartToSign<'a> {
        PartToSign {
            key,
            upload_id: "2~iCw_lDY8VoNEGazq7T0JQh+Dv/ZE=x",
            part: PartNumber::new(3).unwrap(),
            size: 5_242_880,
            crc32c,
            ttl: Duration::from_secs(3600),
        }
    }

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[tokio::test]
    async fn a_part_url_for_a_path_style_endpoint_is_the_one_the_sdk_presigns() {
        let config = config("us-east-1", "moc-uploads", Some("http://127.0.0.1:9000"));
        let part = part("mocs/user-1/session/ä+b=c (1).pdf", None);
        let ours = by_us(&config, credentials(None), &part, at(1_796_000_000));
        let sdk = by_the_sdk(&config, credentials(None), &part, at(1_796_000_000)).await;
        assert_eq!(ours, sdk);
        assert!(
            ours.0
                .starts_with("http://127.0.0.1:9000/moc-uploads/mocs/user-1/")
        );
    }

    #[tokio::test]
    async fn a_part_url_on_aws_with_a_session_token_and_a_crc32c_is_the_one_the_sdk_presigns() {
        let config = config("eu-west-1", "moc-uploads-prod", None);
        let crc32c: Crc32c = "yZRlqg==".parse().unwrap();
        let part = part("mocs/u/s/f/instructions.pdf", Some(crc32c));
        let keys = || credentials(Some("IQoJb3JpZ2luX2VjE/token+with=odd/chars"));
        let ours = by_us(&config, keys(), &part, at(1_796_000_123));
        let sdk = by_the_sdk(&config, keys(), &part, at(1_796_000_123)).await;
        assert_eq!(ours, sdk);
        assert!(
            ours.0
                .starts_with("https://moc-uploads-prod.s3.eu-west-1.amazonaws.com/")
        );
        assert!(
            ours.1
                .iter()
                .any(|(name, _)| name == "X-Amz-Security-Token")
        );
    }

    #[tokio::test]
    async fn a_bucket_name_with_dots_is_addressed_as_the_sdk_addresses_it() {
        let config = config("us-east-1", "moc.uploads", None);
        let part = part("a/b.pdf", None);
        let ours = by_us(&config, credentials(None), &part, at(1_796_086_399));
        let sdk = by_the_sdk(&config, credentials(None), &part, at(1_796_086_399)).await;
        assert_eq!(ours, sdk);
    }

    #[test]
    fn the_signing_key_is_derived_again_for_a_new_day_or_new_credentials() {
        let config = config("us-east-1", "moc-uploads", Some("http://127.0.0.1:9000"));
        let presigner = Presigner::resolve(&config).unwrap();
        let sign = |secret: &str, day: u64| {
            let credentials = Credentials::new("AKID", secret, None, None, "test");
            // The same instant of the day, so only the key can differ.
            presigner
                .presign(
                    &credentials,
                    &part("k", None),
                    at(1_796_000_000 + day * 86_400),
                )
                .0
        };
        let signature = |url: String| url.rsplit_once("X-Amz-Signature=").unwrap().1.to_owned();
        let first = signature(sign("secret-1", 0));
        assert_eq!(
            signature(sign("secret-1", 0)),
            first,
            "the kept key signs alike"
        );
        assert_ne!(
            signature(sign("secret-2", 0)),
            first,
            "new credentials, new key"
        );
        let next_day = signature(sign("secret-1", 1));
        assert_ne!(next_day, first);
        assert_eq!(
            next_day,
            signature(
                Presigner::resolve(&config)
                    .unwrap()
                    .presign(
                        &Credentials::new("AKID", "secret-1", None, None, "test"),
                        &part("k", None),
                        at(1_796_086_400),
                    )
                    .0
            ),
            "a kept key of the new day signs as a fresh one"
        );
    }

    #[test]
    fn keys_are_encoded_once_with_their_slashes_kept() {
        assert_eq!(encode("a/b c+d=é~_.-", true), "a/b%20c%2Bd%3D%C3%A9~_.-");
        assert_eq!(encode("a/b", false), "a%2Fb");
    }
}
