//! The S3 adapter: every S3 call of the API, with errors sorted into "the
//! store is unreachable, retry later" and everything else.
//!
//! The calls on the hot path (register's CreateMultipartUpload, complete's
//! CompleteMultipartUpload, the parts listing's ListParts, finalize's
//! HeadObject and ranged GetObject) are signed and sent here (`crate::s3_sign`, `crate::s3_call`); the rest go
//! through the SDK's client, over the same connections.
//!
//! Retries, for both: the SDK's standard retry mode, up to 3 attempts with
//! exponential backoff and jitter on throttling, 5xx and connection errors,
//! within a per-attempt timeout. When the attempts are exhausted the call
//! fails with [`S3Error::Unavailable`], which the API answers as 503
//! S3_UNAVAILABLE with `retryable: true`; clients back off (1 s, 2 s, 4 s).
//!
//! Identifiers from S3 are opaque: upload IDs are not always UUIDs, and ETags
//! are stored and compared exactly as S3 returns them, quotes included.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, IdentityCache, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    retry::RetryConfig, timeout::TimeoutConfig,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use crate::box_error::BoxError;
use crate::config::S3Config;
use crate::credentials::{AwsCredentials, CredentialsProblem, presign_ttl_of};
use crate::domain::{Crc32c, PartNumber};
use crate::s3_call::{ATTEMPT_TIMEOUT, Answer, CONNECT_TIMEOUT, Failure, MAX_ATTEMPTS, PartsPage};
use crate::s3_http::HyperClient;
use crate::s3_sign::{ObjectCall, PartToSign, Signer};
use crate::tls::TrustRoots;
use crate::xml::{escape, leaf_values};

/// Sends `$store.client.$operation()` on the store's bucket with the given
/// setters, and sorts a failure with [`S3Error::classify`]: the shape of
/// every plain S3 call below, written once.
macro_rules! send {
    ($store:expr, $operation:ident, $name:expr $(, $setter:ident($value:expr))* $(,)?) => {
        $store
            .client
            .$operation()
            .bucket(&$store.bucket)
            $(.$setter($value))*
            .send()
            .await
            .map_err(|error| S3Error::classify($name, error))
    };
}

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("S3 {operation} could not reach the store")]
    Unavailable {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("S3 {operation}: no such upload")]
    NoSuchUpload { operation: &'static str },
    #[error("S3 {operation}: no such key")]
    NoSuchKey { operation: &'static str },
    /// No credentials to sign with (`crate::credentials`): `unavailable`
    /// when a later try may have them, else a configuration to fix.
    #[error("S3 {operation}: no AWS credentials to sign with")]
    Credentials {
        operation: &'static str,
        unavailable: bool,
        #[source]
        source: BoxError,
    },
    #[error("S3 {operation} failed ({code})")]
    Service {
        operation: &'static str,
        code: String,
        #[source]
        source: BoxError,
    },
}

impl S3Error {
    /// A success answer that lacks what every S3 answer of its kind carries.
    fn malformed(operation: &'static str, code: &str, what: &'static str) -> Self {
        S3Error::Service {
            operation,
            code: code.to_owned(),
            source: what.into(),
        }
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, S3Error::Unavailable { .. })
    }

    /// S3 refused bytes or a completion because a checksum did not match
    /// (AWS: BadDigest; Garage: InvalidDigest).
    pub fn is_checksum_mismatch(&self) -> bool {
        matches!(self, S3Error::Service { code, .. } if code == "BadDigest" || code == "InvalidDigest")
    }

    /// S3 refused a part a completion listed. Garage 2.5 does so for a part
    /// whose later upload attempt was refused, though it still lists the
    /// part held before (AWS S3 keeps that one).
    pub fn is_invalid_part(&self) -> bool {
        matches!(self, S3Error::Service { code, .. } if code == "InvalidPart")
    }

    fn classify<E>(
        operation: &'static str,
        error: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if let Some(problem) = crate::s3_http::find_source::<CredentialsProblem>(&error) {
            return S3Error::Credentials {
                operation,
                unavailable: problem.is_unavailable(),
                source: error.into(),
            };
        }
        match &error {
            // ResponseError: an answer that came apart on the way (the
            // connection dropped mid-body), not one S3 gave.
            SdkError::DispatchFailure(_)
            | SdkError::TimeoutError(_)
            | SdkError::ResponseError(_) => S3Error::Unavailable {
                operation,
                source: error.into(),
            },
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let code = service.err().code().unwrap_or("Unknown").to_owned();
                S3Error::refused(operation, status, code, error.into())
            }
            _ => S3Error::Service {
                operation,
                code: "Unknown".to_owned(),
                source: error.into(),
            },
        }
    }

    /// S3's answer refusing a call, by its status and error code. Throttling,
    /// 5xx and an InternalError (which S3 may state inside a 200) are the
    /// store being unavailable: retried, then 503.
    fn refused(operation: &'static str, status: u16, code: String, source: BoxError) -> Self {
        match code.as_str() {
            "NoSuchUpload" => S3Error::NoSuchUpload { operation },
            "NoSuchKey" | "NotFound" => S3Error::NoSuchKey { operation },
            _ if status == 404 => S3Error::NoSuchKey { operation },
            "SlowDown" | "InternalError" | "ServiceUnavailable" => {
                S3Error::Unavailable { operation, source }
            }
            _ if status >= 500 || status == 429 => S3Error::Unavailable { operation, source },
            _ => S3Error::Service {
                operation,
                code,
                source,
            },
        }
    }

    /// One failed attempt of a call sent here.
    fn of_attempt(operation: &'static str, failure: Failure) -> Self {
        match failure {
            Failure::Transport {
                retryable: true,
                source,
            } => S3Error::Unavailable { operation, source },
            Failure::Transport {
                retryable: false,
                source,
            } => S3Error::Service {
                operation,
                code: "Request".to_owned(),
                source,
            },
            Failure::Refused(refusal) => S3Error::refused(
                operation,
                refusal.status,
                refusal.code.clone(),
                refusal.into(),
            ),
        }
    }
}

/// A part as S3 holds it: a domain type, so the rules about parts need no
/// S3 types.
pub use crate::domain::StoredPart;

/// An object as HeadObject (checksum mode on) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
    /// The full-object CRC32C, when the store keeps one.
    pub crc32c: Option<Crc32c>,
}

/// A multipart upload S3 lists as open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenUpload {
    pub key: String,
    pub upload_id: String,
    pub initiated: Option<chrono::DateTime<chrono::Utc>>,
}

/// A presigned `UploadPart` request: the client PUTs the part's bytes to
/// `url`, sending exactly `headers`.
#[derive(Debug, Clone)]
pub struct PresignedPart {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// Signs presigned part URLs with one set of credentials, for one lifetime
/// ([`S3Store::part_presigner`]).
pub struct PartPresigner<'a> {
    presigner: &'a Signer,
    credentials: Credentials,
    ttl: Duration,
}

impl PartPresigner<'_> {
    /// How long the URLs it signs are valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Presigns one `UploadPart` (`crate::s3_sign`). The signature
    /// covers the part number, the upload and `Content-Length`, so the URL
    /// uploads exactly that part; with `crc32c`, also `x-amz-checksum-crc32c`
    /// and `x-amz-sdk-checksum-algorithm`, so S3 refuses other bytes
    /// (BadDigest).
    pub fn presign(
        &self,
        key: &str,
        upload_id: &str,
        part: PartNumber,
        size: u64,
        crc32c: Option<Crc32c>,
    ) -> PresignedPart {
        let to_sign = PartToSign {
            key,
            upload_id,
            part,
            size,
            crc32c,
            ttl: self.ttl,
        };
        let (url, headers) = self
            .presigner
            .presign(&self.credentials, &to_sign, SystemTime::now());
        PresignedPart { url, headers }
    }
}

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    /// The connection pool of the calls sent here, shared with `client`.
    http: HyperClient,
    bucket: String,
    credentials: AwsCredentials,
    /// The bucket's endpoint and signing key, or why the SDK's endpoint
    /// rules refused the configuration (every signed call then fails with it).
    signer: Arc<Result<Signer, String>>,
}

/// The HTTP(S) stack of the functions' S3 client, for the tools' own SDK
/// clients: rustls on *ring* (no aws-lc entropy seeding) with the
/// compiled-in Mozilla roots (no root store to load and decode at start);
/// see `crate::s3_http` and docs/adr/0003-crypto-provider.md. The functions'
/// [`S3Store`] shares its pool with the calls it sends itself
/// ([`S3Store::with_trust`]).
pub fn https_client() -> aws_sdk_s3::config::SharedHttpClient {
    crate::s3_http::client(&TrustRoots::builtin())
}

/// Fixed keys, as tools hold them (an [`AwsCredentials`] source through
/// `From`; a function chooses its own with [`AwsCredentials::from_env`]).
#[derive(Debug, Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl S3Store {
    /// The bucket's client over the compiled-in roots only, signing with
    /// `credentials`; [`S3Store::with_trust`] is what the functions use.
    pub fn new(config: &S3Config, credentials: impl Into<AwsCredentials>) -> Self {
        Self::with_trust(config, &TrustRoots::builtin(), credentials.into())
    }

    /// The bucket's client, trusting `trust`'s roots and signing with
    /// `credentials` (`crate::credentials`: OIDC, the project's keys, or the
    /// `AWS_*` ones).
    pub fn with_trust(config: &S3Config, trust: &TrustRoots, credentials: AwsCredentials) -> Self {
        let http = crate::s3_http::hyper_client(trust, Some(CONNECT_TIMEOUT));
        let mut builder = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .http_client(crate::s3_http::client_sharing(
                trust,
                http.clone(),
                CONNECT_TIMEOUT,
            ))
            .region(Region::new(config.region.clone()))
            // Presigned part URLs must not carry a checksum of an empty body:
            // servers that check payload checksums would answer InvalidDigest.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            );
        if !credentials.is_none() {
            // The provider keeps (and refreshes) its own credentials; a
            // second cache in the SDK would only keep them past a refresh.
            builder = builder
                .credentials_provider(credentials.clone())
                .identity_cache(IdentityCache::no_cache());
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint).force_path_style(true);
        }
        Self {
            client: Client::from_conf(builder.build()),
            http,
            bucket: config.bucket.clone(),
            credentials,
            signer: Arc::new(Signer::resolve(config)),
        }
    }

    /// What the store signs with.
    pub fn credentials(&self) -> &AwsCredentials {
        &self.credentials
    }

    /// What signs presigned part URLs for the next `wanted` of time, or less
    /// when the signing credentials expire sooner (a URL never claims to live
    /// longer than they do): one credentials lookup for a batch of URLs.
    pub async fn part_presigner(&self, wanted: Duration) -> Result<PartPresigner<'_>, S3Error> {
        const OP: &str = "PresignUploadPart";
        let (presigner, credentials) = self.signer(OP).await?;
        Ok(PartPresigner {
            ttl: presign_ttl_of(&credentials, wanted),
            presigner,
            credentials,
        })
    }

    /// The bucket's signer and the credentials to sign `operation` with now.
    async fn signer(&self, operation: &'static str) -> Result<(&Signer, Credentials), S3Error> {
        let presigner = self
            .signer
            .as_ref()
            .as_ref()
            .map_err(|refused| S3Error::Service {
                operation,
                code: "EndpointResolution".into(),
                source: refused.clone().into(),
            })?;
        let credentials = self
            .credentials
            .resolve()
            .await
            .map_err(|problem| S3Error::Credentials {
                operation,
                unavailable: problem.is_unavailable(),
                source: problem.into(),
            })?
            .ok_or_else(|| S3Error::Credentials {
                operation,
                unavailable: false,
                source: "no AWS credentials are configured to sign with".into(),
            })?;
        Ok((presigner, credentials))
    }

    /// Sends `call` (`crate::s3_call`), signed afresh for each attempt, and
    /// retries what [`S3Error::is_unavailable`] sorts as the store not
    /// answering, as the SDK's standard mode would.
    async fn call(&self, operation: &'static str, call: ObjectCall<'_>) -> Result<Answer, S3Error> {
        let (signer, credentials) = self.signer(operation).await?;
        let mut attempt = 1;
        loop {
            let signed = signer.sign(&credentials, &call, SystemTime::now());
            let sent =
                crate::s3_call::attempt(&self.http, call.method.clone(), signed, call.body.clone())
                    .await;
            let error = match sent {
                Ok(answer) => return Ok(answer),
                Err(failure) => S3Error::of_attempt(operation, failure),
            };
            if !error.is_unavailable() || attempt >= MAX_ATTEMPTS {
                return Err(error);
            }
            attempt += 1;
            let pause = crate::s3_call::backoff(attempt);
            tracing::info!(operation, attempt, ?pause, %error, "S3 did not answer; trying again");
            tokio::time::sleep(pause).await;
        }
    }

    /// The underlying client, for tests and tooling that inspect the store.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens a multipart upload. With `full_object_crc32c`, S3 keeps each
    /// part's CRC32C and checks the whole object's at completion
    /// (`ChecksumAlgorithm=CRC32C`, `ChecksumType=FULL_OBJECT`).
    pub async fn create_multipart_upload(
        &self,
        key: &str,
        content_type: &str,
        full_object_crc32c: bool,
    ) -> Result<String, S3Error> {
        const OP: &str = "CreateMultipartUpload";
        let mut headers = vec![("content-type", content_type.to_owned())];
        if full_object_crc32c {
            headers.push(("x-amz-checksum-algorithm", "CRC32C".to_owned()));
            headers.push(("x-amz-checksum-type", "FULL_OBJECT".to_owned()));
        }
        let call = ObjectCall {
            method: http::Method::POST,
            key,
            query: vec![("uploads", String::new())],
            headers,
            body: Bytes::new(),
        };
        let answer = self.call(OP, call).await?;
        let [upload_id] = leaf_values(answer.text(), &["UploadId"]);
        upload_id
            .ok_or_else(|| S3Error::malformed(OP, "MissingUploadId", "response had no UploadId"))
    }

    pub async fn abort_multipart_upload(&self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        const OP: &str = "AbortMultipartUpload";
        send!(
            self,
            abort_multipart_upload,
            OP,
            key(key),
            upload_id(upload_id)
        )?;
        Ok(())
    }

    /// Aborts an upload. `Ok(false)`: S3 no longer knows it (aborted,
    /// completed or never created), which is what an abort wants anyway.
    pub async fn abort_upload_if_open(&self, key: &str, upload_id: &str) -> Result<bool, S3Error> {
        match self.abort_multipart_upload(key, upload_id).await {
            Ok(()) => Ok(true),
            Err(S3Error::NoSuchUpload { .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Deletes an object; a key with no object is not an error (S3 answers
    /// 204 either way, some compatible stores 404).
    pub async fn delete_object(&self, key: &str) -> Result<(), S3Error> {
        match send!(self, delete_object, "DeleteObject", key(key)) {
            Ok(_) | Err(S3Error::NoSuchKey { .. }) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Every open multipart upload under `prefix`, following
    /// ListMultipartUploads pagination (key marker + upload ID marker), up
    /// to `max` uploads so one call stays bounded.
    pub async fn list_open_uploads(
        &self,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<OpenUpload>, S3Error> {
        const OP: &str = "ListMultipartUploads";
        let mut uploads = Vec::new();
        let mut markers: (Option<String>, Option<String>) = (None, None);
        loop {
            let output = send!(
                self,
                list_multipart_uploads,
                OP,
                prefix(prefix),
                set_key_marker(markers.0.clone()),
                set_upload_id_marker(markers.1.clone()),
            )?;
            uploads.extend(output.uploads().iter().filter_map(|upload| {
                Some(OpenUpload {
                    key: upload.key()?.to_owned(),
                    upload_id: upload.upload_id()?.to_owned(),
                    initiated: upload.initiated().and_then(to_chrono),
                })
            }));
            let next = (
                output.next_key_marker().map(str::to_owned),
                output.next_upload_id_marker().map(str::to_owned),
            );
            let advanced = next.0.is_some() && next != markers;
            if output.is_truncated() == Some(true) && advanced && uploads.len() < max {
                markers = next;
            } else {
                break;
            }
        }
        uploads.truncate(max);
        Ok(uploads)
    }

    /// Presigns one `UploadPart` valid for `ttl` ([`PartPresigner::presign`]).
    pub async fn presign_upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part: PartNumber,
        size: u64,
        crc32c: Option<Crc32c>,
        ttl: Duration,
    ) -> Result<PresignedPart, S3Error> {
        const OP: &str = "PresignUploadPart";
        let (presigner, credentials) = self.signer(OP).await?;
        let signer = PartPresigner {
            presigner,
            credentials,
            ttl,
        };
        Ok(signer.presign(key, upload_id, part, size, crc32c))
    }

    /// Uploads one part and returns its ETag, as S3 spelt it. With
    /// `crc32c`, S3 checks the bytes against it (BadDigest otherwise).
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part: PartNumber,
        body: Bytes,
        crc32c: Option<Crc32c>,
    ) -> Result<String, S3Error> {
        const OP: &str = "UploadPart";
        let output = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part.as_i32())
            .content_length(i64::try_from(body.len()).unwrap_or(i64::MAX))
            .set_checksum_crc32_c(crc32c.map(|crc| crc.to_string()))
            .body(ByteStream::from(body))
            .customize()
            // UNSIGNED-PAYLOAD, as in the presigned URLs clients PUT every
            // other part to: the signature still covers the upload, the part
            // number and Content-Length, and TLS to S3 protects the bytes. A
            // signed payload would cost a SHA-256 of the part here and another
            // in S3 to check it, CPU the direct path never spends.
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| S3Error::classify(OP, e))?;
        output
            .e_tag()
            .map(str::to_owned)
            .ok_or_else(|| S3Error::malformed(OP, "MissingETag", "response had no ETag"))
    }

    /// Every part S3 holds for the upload, following ListParts pagination.
    pub async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<StoredPart>, S3Error> {
        const OP: &str = "ListParts";
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut query = vec![("uploadId", upload_id.to_owned())];
            query.extend(marker.clone().map(|marker| ("part-number-marker", marker)));
            let call = ObjectCall {
                method: http::Method::GET,
                key,
                query,
                headers: Vec::new(),
                body: Bytes::new(),
            };
            let answer = self.call(OP, call).await?;
            let page = PartsPage::read(answer.text()).map_err(|error| S3Error::Service {
                operation: OP,
                code: "MalformedXML".to_owned(),
                source: error.into(),
            })?;
            parts.extend(page.parts);
            if page.truncated && page.next_marker.is_some() && page.next_marker != marker {
                marker = page.next_marker;
            } else {
                break;
            }
        }
        parts.sort_by_key(|p| p.part_number);
        parts.dedup_by_key(|p| p.part_number);
        Ok(parts)
    }

    /// Completes the upload from `parts` (ascending). An error document
    /// inside a 200 answer is an error (`crate::s3_call`), and a success
    /// without an ETag is treated as a failure too. With `crc32c`, S3 checks the whole
    /// object against it (FULL_OBJECT) and refuses a mismatch
    /// ([`S3Error::is_checksum_mismatch`]), keeping the upload open.
    pub async fn complete_multipart_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(PartNumber, String)],
        crc32c: Option<Crc32c>,
    ) -> Result<(), S3Error> {
        const OP: &str = "CompleteMultipartUpload";
        let mut headers = Vec::new();
        if let Some(crc32c) = crc32c {
            headers.push(("x-amz-checksum-crc32c", crc32c.to_string()));
            headers.push(("x-amz-checksum-type", "FULL_OBJECT".to_owned()));
        }
        let call = ObjectCall {
            method: http::Method::POST,
            key,
            query: vec![("uploadId", upload_id.to_owned())],
            headers,
            body: completion_document(parts),
        };
        let answer = self.call(OP, call).await?;
        let [etag] = leaf_values(answer.text(), &["ETag"]);
        match etag {
            Some(_) => Ok(()),
            None => Err(S3Error::malformed(
                OP,
                "MissingETag",
                "completion answered without an ETag",
            )),
        }
    }

    /// The object's size, or `None` when there is no object at `key`.
    pub async fn object_size(&self, key: &str) -> Result<Option<u64>, S3Error> {
        Ok(self.stored_object(key).await?.map(|object| object.size))
    }

    /// The object's size and stored CRC32C (HeadObject with checksum mode
    /// on), or `None` when there is no object at `key`.
    pub async fn stored_object(&self, key: &str) -> Result<Option<StoredObject>, S3Error> {
        const OP: &str = "HeadObject";
        let call = ObjectCall {
            method: http::Method::HEAD,
            key,
            query: Vec::new(),
            headers: vec![("x-amz-checksum-mode", "ENABLED".to_owned())],
            body: Bytes::new(),
        };
        match self.call(OP, call).await {
            Ok(answer) => Ok(Some(StoredObject {
                size: answer
                    .header("content-length")
                    .and_then(|size| size.parse().ok())
                    .unwrap_or(0),
                crc32c: answer
                    .header("x-amz-checksum-crc32c")
                    .and_then(|crc| crc.parse().ok()),
            })),
            Err(S3Error::NoSuchKey { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// The CRC32C of the object's bytes, computed here as they stream in
    /// (memory stays one chunk): finalize's own check of an object whose
    /// store answers a CRC32C other than the declared one.
    pub async fn object_crc32c(&self, key: &str) -> Result<Crc32c, S3Error> {
        const OP: &str = "GetObject";
        let mut body = send!(self, get_object, OP, key(key))?.body;
        let mut crc = Crc32c::of(&[]);
        while let Some(chunk) = body.try_next().await.map_err(|e| S3Error::Unavailable {
            operation: OP,
            source: e.into(),
        })? {
            crc = crc.append(&chunk);
        }
        Ok(crc)
    }

    /// The first `len` bytes of the object (fewer if it is shorter).
    pub async fn read_head(&self, key: &str, len: usize) -> Result<Bytes, S3Error> {
        const OP: &str = "GetObject";
        let call = ObjectCall {
            method: http::Method::GET,
            key,
            query: Vec::new(),
            headers: vec![("range", format!("bytes=0-{}", len.saturating_sub(1)))],
            body: Bytes::new(),
        };
        let mut bytes = self.call(OP, call).await?.body;
        bytes.truncate(len);
        Ok(bytes)
    }
}

/// The body of a CompleteMultipartUpload: each part's number and ETag, the
/// ETag as S3 spelt it (quotes included, escaped for XML).
fn completion_document(parts: &[(PartNumber, String)]) -> Bytes {
    let mut document = String::from(
        r#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
    );
    for (number, etag) in parts {
        document.push_str(&format!(
            "<Part><ETag>{}</ETag><PartNumber>{number}</PartNumber></Part>",
            escape(etag)
        ));
    }
    document.push_str("</CompleteMultipartUpload>");
    Bytes::from(document)
}

/// An S3 timestamp as chrono's.
fn to_chrono(at: &aws_sdk_s3::primitives::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::config::http::HttpResponse;
    use aws_sdk_s3::operation::list_parts::ListPartsError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    fn answered(status: u16, body: &'static str) -> HttpResponse {
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
    }

    #[test]
    fn an_answer_cut_off_on_the_way_is_unavailable_not_a_bug() {
        let cut: SdkError<ListPartsError, HttpResponse> =
            SdkError::response_error("connection closed mid-body", answered(200, "<?xml"));
        assert!(S3Error::classify("ListParts", cut).is_unavailable());
    }

    /// A stand-in S3 on a local port answering each request with the next
    /// of `answers` (the last one repeated), one connection per request; it
    /// records each request's head.
    async fn scripted_s3(
        answers: Vec<(u16, &'static str)>,
    ) -> (S3Store, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            for index in 0.. {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                while !String::from_utf8_lossy(&request).contains("\r\n\r\n") {
                    let read = socket.read(&mut chunk).await.unwrap();
                    request.extend_from_slice(&chunk[..read]);
                }
                let head = String::from_utf8_lossy(&request).into_owned();
                log.lock().unwrap().push(head);
                let (status, body) = answers[index.min(answers.len() - 1)];
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        let config = S3Config {
            bucket: "bucket".to_owned(),
            region: "us-east-1".to_owned(),
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            public_file_base_url: "https://files.example".to_owned(),
        };
        let keys = StaticCredentials {
            access_key_id: "AKID".to_owned(),
            secret_access_key: "secret".to_owned(),
            session_token: None,
        };
        (S3Store::new(&config, keys), seen)
    }

    #[tokio::test]
    async fn a_throttled_create_is_signed_and_sent_again_until_s3_answers() {
        let (store, seen) = scripted_s3(vec![
            (503, "<Error><Code>SlowDown</Code><Message>reduce your rate</Message></Error>"),
            (200, "<InitiateMultipartUploadResult><UploadId>opaque/id+1</UploadId></InitiateMultipartUploadResult>"),
        ])
        .await;
        let upload_id = store
            .create_multipart_upload("a b.pdf", "application/pdf", true)
            .await
            .unwrap();
        assert_eq!(upload_id, "opaque/id+1");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        let head = seen[1].to_lowercase();
        assert!(
            head.starts_with("post /bucket/a%20b.pdf?uploads http/1.1"),
            "{head}"
        );
        for header in [
            "authorization: aws4-hmac-sha256 credential=akid/",
            "content-length: 0",
            "x-amz-checksum-algorithm: crc32c",
            "x-amz-checksum-type: full_object",
        ] {
            assert!(head.contains(header), "{header} in {head}");
        }
    }

    /// Completes a one-part upload against a stand-in S3 that always gives
    /// `answer`: the error, and how many requests it received.
    async fn completing_against(answer: (u16, &'static str)) -> (S3Error, usize) {
        let (store, seen) = scripted_s3(vec![answer]).await;
        let part = PartNumber::new(1).unwrap();
        let error = store
            .complete_multipart_upload("k", "u", &[(part, "\"e\"".to_owned())], None)
            .await
            .unwrap_err();
        let requests = seen.lock().unwrap().len();
        (error, requests)
    }

    #[tokio::test]
    async fn an_internal_error_inside_a_200_is_tried_three_times_then_unavailable() {
        let (error, requests) = completing_against((
            200,
            "<?xml version=\"1.0\"?>\n<Error><Code>InternalError</Code><Message>retry</Message></Error>",
        ))
        .await;
        assert!(error.is_unavailable(), "{error:?}");
        assert_eq!(requests, 3);
    }

    #[tokio::test]
    async fn a_refused_completion_is_sent_once_and_keeps_its_code() {
        let (error, requests) = completing_against((
            400,
            "<Error><Code>InvalidPart</Code><Message>no such part</Message></Error>",
        ))
        .await;
        assert!(error.is_invalid_part(), "{error:?}");
        assert_eq!(requests, 1);
    }

    #[tokio::test]
    async fn a_head_answered_404_without_a_body_is_no_object() {
        let (store, _) = scripted_s3(vec![(404, "")]).await;
        assert_eq!(store.stored_object("k").await.unwrap(), None);
    }

    #[test]
    fn a_request_that_could_not_be_built_is_a_bug() {
        let unbuilt: SdkError<ListPartsError, HttpResponse> =
            SdkError::construction_failure("no bucket");
        assert!(!S3Error::classify("ListParts", unbuilt).is_unavailable());
    }
}
