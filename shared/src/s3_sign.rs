//! SigV4 for the bucket, signed here: presigned `UploadPart` URLs (the
//! signature in the query, `UNSIGNED-PAYLOAD`), to the same URL and headers
//! the SDK's presigning makes, and the `Authorization` header of the calls
//! the API sends itself (`crate::s3_call`). The tests hold both equal to the
//! SDK's signer.
//!
//! Why not the SDK's: it runs the whole operation pipeline for each URL and
//! call (interceptors, the S3 endpoint rules, a fresh signing key), for what
//! is one HMAC chain (docs/adr/0014-api-cpu.md, 0015-s3-calls.md). Here the
//! bucket's endpoint is resolved once, by the SDK's own rules
//! ([`DefaultResolver`]), and the day's signing key is derived once per day
//! and credentials.

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
/// What a presigned URL signs as its payload: the client's bytes are not known.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Where the bucket is and how to sign for it, resolved once per client.
#[derive(Debug)]
pub(crate) struct Signer {
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

/// One call on an object of the bucket, before signing: its query values
/// and header values as they are (the signer encodes them), header names in
/// lower case.
#[derive(Debug, Clone)]
pub(crate) struct ObjectCall<'a> {
    pub method: http::Method,
    pub key: &'a str,
    pub query: Vec<(&'static str, String)>,
    pub headers: Vec<(&'static str, String)>,
    /// The body, whose SHA-256 the signature covers (a few hundred bytes at
    /// most: the parts of a completion).
    pub body: bytes::Bytes,
}

/// An [`ObjectCall`] signed: the URL, and every header to send with it
/// (`host` included, so the signed one is the one sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedCall {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
}

/// The SigV4 date and time of one signature, and its credential scope.
struct Stamp {
    date: String,
    timestamp: String,
    scope: String,
}

impl Stamp {
    fn at(now: SystemTime, region: &str) -> Self {
        let now: DateTime<Utc> = now.into();
        let date = now.format("%Y%m%d").to_string();
        let scope = format!("{date}/{region}/{SERVICE}/aws4_request");
        Self {
            timestamp: now.format("%Y%m%dT%H%M%SZ").to_string(),
            date,
            scope,
        }
    }
}

impl Signer {
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
        let stamp = Stamp::at(now, &self.region);
        let headers = self.signed_headers(part);
        let signed_headers = names_of(&headers);
        let mut query = vec![
            ("x-id", "UploadPart".to_owned()),
            ("partNumber", part.part.get().to_string()),
            ("uploadId", encode(part.upload_id, false)),
            ("X-Amz-Algorithm", ALGORITHM.to_owned()),
            (
                "X-Amz-Credential",
                encode(
                    &format!("{}/{}", credentials.access_key_id(), stamp.scope),
                    false,
                ),
            ),
            ("X-Amz-Date", stamp.timestamp.clone()),
            ("X-Amz-Expires", part.ttl.as_secs().to_string()),
            ("X-Amz-SignedHeaders", encode(&signed_headers, false)),
        ];
        if let Some(token) = credentials.session_token() {
            query.push(("X-Amz-Security-Token", encode(token, false)));
        }
        let path = format!("{}/{}", self.bucket_path, encode(part.key, true));
        let canonical = CanonicalRequest {
            method: "PUT",
            path: &path,
            query: &query,
            headers: &headers,
            signed_headers: &signed_headers,
            payload: UNSIGNED_PAYLOAD,
        };
        let signature = self.signature(credentials, &stamp, &canonical.to_string());
        query.push(("X-Amz-Signature", signature));

        let url = format!(
            "{}/{}?{}",
            self.bucket_url,
            encode(part.key, true),
            joined_query(&query)
        );
        (url, headers_to_send(headers, part.size))
    }

    /// Signs `call` with an `Authorization` header: every header it sends
    /// is signed, `host`, `x-amz-date`, `x-amz-content-sha256` and (with
    /// temporary credentials) `x-amz-security-token` among them.
    pub(crate) fn sign(
        &self,
        credentials: &Credentials,
        call: &ObjectCall<'_>,
        now: SystemTime,
    ) -> SignedCall {
        let stamp = Stamp::at(now, &self.region);
        let payload = sha256_hex(&call.body);
        let payload = payload.as_str();
        let mut headers = call.headers.clone();
        headers.push(("host", self.host.clone()));
        headers.push(("x-amz-content-sha256", payload.to_owned()));
        headers.push(("x-amz-date", stamp.timestamp.clone()));
        if let Some(token) = credentials.session_token() {
            headers.push(("x-amz-security-token", token.to_owned()));
        }
        headers.sort();
        let signed_headers = names_of(&headers);
        let query: Vec<(&str, String)> = call
            .query
            .iter()
            .map(|(name, value)| (*name, encode(value, false)))
            .collect();
        let path = format!("{}/{}", self.bucket_path, encode(call.key, true));
        let canonical = CanonicalRequest {
            method: call.method.as_str(),
            path: &path,
            query: &query,
            headers: &headers,
            signed_headers: &signed_headers,
            payload,
        };
        let signature = self.signature(credentials, &stamp, &canonical.to_string());
        headers.push((
            "authorization",
            format!(
                "{ALGORITHM} Credential={}/{}, SignedHeaders={signed_headers}, Signature={signature}",
                credentials.access_key_id(),
                stamp.scope
            ),
        ));
        let mut url = format!("{}/{}", self.bucket_url, encode(call.key, true));
        if !query.is_empty() {
            url.push('?');
            url.push_str(&joined_query(&query));
        }
        SignedCall { url, headers }
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

    /// The signature (hex) of a canonical request made at `stamp`.
    fn signature(&self, credentials: &Credentials, stamp: &Stamp, canonical: &str) -> String {
        let string_to_sign = format!(
            "{ALGORITHM}\n{}\n{}\n{}",
            stamp.timestamp,
            stamp.scope,
            sha256_hex(canonical.as_bytes())
        );
        let key = self.signing_key(credentials, &stamp.date);
        hex::encode(hmac::sign(&key, string_to_sign.as_bytes()))
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

/// The SHA-256 of `bytes` in lower-case hex, as SigV4 writes hashes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes))
}

/// The `;`-joined names of headers sorted by name.
fn names_of(headers: &[(&str, String)]) -> String {
    headers
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(";")
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

/// SigV4's canonical request: the query (already encoded) sorted by its
/// names and values, the headers (sorted by name) trimmed.
struct CanonicalRequest<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a [(&'a str, String)],
    headers: &'a [(&'a str, String)],
    signed_headers: &'a str,
    payload: &'a str,
}

impl std::fmt::Display for CanonicalRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut sorted = self.query.to_vec();
        sorted.sort();
        writeln!(f, "{}\n{}", self.method, self.path)?;
        // An empty value keeps its `=` here (`uploads=`), unlike in the URL.
        let query: Vec<String> = sorted
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        writeln!(f, "{}", query.join("&"))?;
        for (name, value) in self.headers {
            writeln!(f, "{name}:{}", value.trim())?;
        }
        write!(f, "\n{}\n{}", self.signed_headers, self.payload)
    }
}

/// The query of a URL: `name=value`, or `name` alone for an empty value
/// (`?uploads`), as S3's own clients write it.
fn joined_query(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| match value.is_empty() {
            true => (*name).to_owned(),
            false => format!("{name}={value}"),
        })
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
        let (url, headers) = Signer::resolve(config)
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
        let presigner = Signer::resolve(&config).unwrap();
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
                Signer::resolve(&config)
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

    /// The `Authorization` the SDK's signer (`aws-sigv4`, with S3's
    /// settings) gives the headers we send, at the same instant.
    fn sdk_authorization(
        call: &ObjectCall<'_>,
        signed: &SignedCall,
        credentials: &Credentials,
        region: &str,
        at: SystemTime,
    ) -> String {
        use aws_sigv4::http_request::{
            PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
            SigningSettings, UriPathNormalizationMode, sign,
        };
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let identity = credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("s3")
            .time(at)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        // What we send but what the SDK's signer adds itself.
        let ours = signed.headers.iter().filter(|(name, _)| {
            !matches!(
                *name,
                "authorization" | "x-amz-date" | "x-amz-content-sha256" | "x-amz-security-token"
            )
        });
        let request = SignableRequest::new(
            call.method.as_str(),
            signed.url.as_str(),
            ours.map(|(name, value)| (*name, value.as_str())),
            SignableBody::Bytes(&call.body),
        )
        .unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let (headers, _) = instructions.into_parts();
        headers
            .iter()
            .find(|header| header.name() == "authorization")
            .map(|header| header.value().to_owned())
            .unwrap()
    }

    fn signed_header<'a>(signed: &'a SignedCall, name: &str) -> &'a str {
        signed
            .headers
            .iter()
            .find(|(header, _)| *header == name)
            .map(|(_, value)| value.as_str())
            .unwrap()
    }

    #[test]
    fn a_create_on_a_path_style_endpoint_is_signed_as_the_sdk_signs_it() {
        let config = config("us-east-1", "moc-uploads", Some("http://127.0.0.1:9000"));
        let signer = Signer::resolve(&config).unwrap();
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let call = ObjectCall {
            method: http::Method::POST,
            key: "mocs/u/s/ä+b=c (1).pdf",
            query: vec![("uploads", String::new())],
            headers: vec![
                ("content-type", "application/pdf".to_owned()),
                ("x-amz-checksum-algorithm", "CRC32C".to_owned()),
                ("x-amz-checksum-type", "FULL_OBJECT".to_owned()),
            ],
            body: bytes::Bytes::new(),
        };
        let signed = signer.sign(&credentials, &call, at(1_796_000_000));
        assert_eq!(
            signed.url,
            "http://127.0.0.1:9000/moc-uploads/mocs/u/s/%C3%A4%2Bb%3Dc%20%281%29.pdf?uploads"
        );
        assert_eq!(signed_header(&signed, "host"), "127.0.0.1:9000");
        assert_eq!(
            signed_header(&signed, "authorization"),
            sdk_authorization(&call, &signed, &credentials, "us-east-1", at(1_796_000_000))
        );
    }

    #[test]
    fn a_completion_on_aws_with_a_session_token_is_signed_as_the_sdk_signs_it() {
        let config = config("eu-west-1", "moc-uploads-prod", None);
        let signer = Signer::resolve(&config).unwrap();
        let credentials = Credentials::new(
            "ASIAEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("IQoJb3JpZ2luX2VjE/token+with=odd/chars".to_owned()),
            None,
            "test",
        );
        let call = ObjectCall {
            method: http::Method::POST,
            key: "mocs/u/s/f/instructions.pdf",
            query: vec![("uploadId", "2~iCw_lDY8VoNEGazq7T0JQh+Dv/ZE=x".to_owned())],
            headers: vec![("x-amz-checksum-crc32c", "yZRlqg==".to_owned())],
            body: bytes::Bytes::from_static(b"<CompleteMultipartUpload/>"),
        };
        let signed = signer.sign(&credentials, &call, at(1_796_000_123));
        assert!(signed.url.starts_with(
            "https://moc-uploads-prod.s3.eu-west-1.amazonaws.com/mocs/u/s/f/instructions.pdf?uploadId=2~iCw_lDY8VoNEGazq7T0JQh%2BDv%2FZE%3Dx"
        ));
        assert_eq!(
            signed_header(&signed, "x-amz-content-sha256"),
            sha256_hex(b"<CompleteMultipartUpload/>")
        );
        assert_eq!(
            signed_header(&signed, "authorization"),
            sdk_authorization(&call, &signed, &credentials, "eu-west-1", at(1_796_000_123))
        );
    }

    #[test]
    fn keys_are_encoded_once_with_their_slashes_kept() {
        assert_eq!(encode("a/b c+d=é~_.-", true), "a/b%20c%2Bd%3D%C3%A9~_.-");
        assert_eq!(encode("a/b", false), "a%2Fb");
    }
}
