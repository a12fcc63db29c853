//! An S3 server embedded in-process, for the dev server and the integration
//! tests.
//!
//! The upload API hands browsers presigned UploadPart URLs and talks to S3
//! through the AWS SDK, so a fake that merely stores bytes would hide exactly
//! the bugs that matter: a wrong signing region, a URL that expired, a part
//! ETag that was mangled on its way back. This speaks the real S3 REST
//! protocol (via `s3s`) and verifies SigV4 for real, both header-signed
//! requests and presigned query strings; a bad or expired signature gets the
//! same 403 that AWS would send.
//!
//! It serves what the API (`shared/src/s3.rs`), the seeds and the scripts
//! use, and nothing else (any other operation is 501 NotImplemented):
//! CreateMultipartUpload, UploadPart (signed or presigned), ListParts,
//! CompleteMultipartUpload, AbortMultipartUpload, ListMultipartUploads,
//! HeadObject, GetObject (ranged or whole) and DeleteObject; plus the
//! browsers' CORS preflights (`s3_cors`), and HeadBucket and GetBucketCors
//! for `moc-dev doctor`.
//!
//! Storage is `s3s-fs` (one directory per bucket under `data_dir`). Where
//! `s3s-fs` 0.14.1 falls short of what the API relies on, a wrapper fills
//! the gap instead of letting the dev setup drift from production:
//! - ListParts: `s3s-fs` returns parts unsorted, without ETags, and ignores
//!   `max-parts` / `part-number-marker`; ListMultipartUploads is missing.
//! - `s3s-fs` forgets an upload as soon as CompleteMultipartUpload starts, so
//!   a rejected completion (small part, wrong ETag) would destroy it, where
//!   S3 keeps it for a retry; completions are validated before delegating.
//! - `s3s-fs` completes in steps (forget the upload, then write the object)
//!   and stops wherever its request is dropped: a client that disconnects
//!   mid-completion (a killed function) left an upload gone and no object,
//!   where S3 completes atomically. A completion runs in a task of its own,
//!   to the end, holding its key; every other operation on the key waits
//!   for it ([`Completions`]), so none sees it half done.
//! - An unknown upload id gets `NoSuchUpload` (404), not `AccessDenied`.
//! - A request signed for another region is refused, as S3 does.
//! - Object keys: `s3s-fs` names files after the key (the object under
//!   `{bucket}/{key}`, its metadata in `.bucket-{b64}.object-{b64(key)}...`
//!   files in the root), so a key past roughly 120 bytes (less with a
//!   longer bucket name), or with a segment past 255, breaks the 255-byte
//!   file name limit and every write answers 500.
//!   The wrapper therefore hands `s3s-fs` only a fixed-length storage key,
//!   the hex SHA-256 of the real key (see [`storage_key`]), in every
//!   operation; responses that echo a key get the real one back.
//! - Checksums (issue 24): `s3s-fs` checks no part checksum and combines
//!   none at completion. As AWS does, a part sent with
//!   `x-amz-checksum-crc32c` is checked before it is stored (400 BadDigest,
//!   the part held before stays); an upload opened with CRC32C
//!   (`FULL_OBJECT` only) gets the whole object's CRC32C computed at
//!   completion, a wrong declared one refused (400 BadDigest, the upload
//!   stays open for a retry); HeadObject with `x-amz-checksum-mode:
//!   ENABLED` answers it. The value lives in a sidecar file per object.
//!   A checked part is held in memory while it is checked (the dev server's
//!   parts are 5 MiB).
//!
//! Only ever a dependency of the dev crate: never linked into a function
//! binary.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::TryStreamExt;
use moc_shared::domain::Crc32c;
use s3s::auth::SimpleAuth;
use s3s::crypto::{Checksum, Md5, Sha256};
use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, CORSRule, ChecksumAlgorithm,
    ChecksumMode, ChecksumType, CompleteMultipartUploadInput, CompleteMultipartUploadOutput,
    CompletedPart, CreateMultipartUploadInput, CreateMultipartUploadOutput, DeleteObjectInput,
    DeleteObjectOutput, ETag, GetBucketCorsInput, GetBucketCorsOutput, GetObjectInput,
    GetObjectOutput, HeadBucketInput, HeadBucketOutput, HeadObjectInput, HeadObjectOutput,
    ListMultipartUploadsInput, ListMultipartUploadsOutput, ListPartsInput, ListPartsOutput,
    MultipartUpload, Part, StreamingBlob, Timestamp, UploadPartInput, UploadPartOutput,
};
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Error, S3Request, S3Response, S3Result, s3_error};
use s3s_fs::FileSystem;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub use crate::s3_cors::BucketCors;
use crate::s3_cors::CorsS3Service;

/// S3's own floor for every part but the last; checked at completion only.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3 caps both ListParts and ListMultipartUploads pages at 1000.
const MAX_PAGE: usize = 1000;

#[derive(Debug, Clone)]
pub struct EmbeddedS3Config {
    /// Created if missing; holds one directory per bucket plus the
    /// bookkeeping files of in-flight multipart uploads.
    pub data_dir: PathBuf,
    /// Port 0 picks a free port; read it back with [`EmbeddedS3::local_addr`].
    pub bind: SocketAddr,
    pub access_key: String,
    pub secret_key: String,
    /// Requests signed for any other region are refused.
    pub region: String,
    /// Created at start if missing; existing contents are kept.
    pub buckets: Vec<String>,
}

#[derive(Debug)]
pub enum EmbeddedS3Error {
    InvalidConfig(String),
    Io {
        action: String,
        source: io::Error,
    },
    /// `s3s_fs::Error` implements neither `Display` nor `Error`, so only its
    /// debug rendering can be carried.
    Storage(String),
}

impl fmt::Display for EmbeddedS3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig(msg) => write!(f, "invalid embedded S3 config: {msg}"),
            Self::Io { action, source } => write!(f, "embedded S3: {action}: {source}"),
            Self::Storage(msg) => write!(f, "embedded S3 storage: {msg}"),
        }
    }
}

impl std::error::Error for EmbeddedS3Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::InvalidConfig(_) | Self::Storage(_) => None,
        }
    }
}

fn io_err(action: impl Into<String>) -> impl FnOnce(io::Error) -> EmbeddedS3Error {
    let action = action.into();
    move |source| EmbeddedS3Error::Io { action, source }
}

/// A running server. Dropping it stops accepting and closes every open
/// connection; the data directory is left in place.
#[derive(Debug)]
pub struct EmbeddedS3 {
    local_addr: SocketAddr,
    accept_loop: JoinHandle<()>,
}

impl EmbeddedS3 {
    /// Must be called from within a tokio runtime: the server runs on it.
    /// No origin is allowed: every browser preflight is refused.
    pub async fn start(cfg: EmbeddedS3Config) -> Result<EmbeddedS3, EmbeddedS3Error> {
        Self::start_with_cors(cfg, BucketCors::default()).await
    }

    /// As [`EmbeddedS3::start`], answering browsers as a bucket with the
    /// README's CORS rule for `cors.allowed_origins` would (see `s3_cors`).
    pub async fn start_with_cors(
        cfg: EmbeddedS3Config,
        cors: BucketCors,
    ) -> Result<EmbeddedS3, EmbeddedS3Error> {
        cfg.check()?;
        let root = storage_root(&cfg.data_dir, &cfg.buckets).await?;
        let fs = FileSystem::new(&root).map_err(|e| EmbeddedS3Error::Storage(format!("{e:?}")))?;
        let cors = Arc::new(cors);
        let backend = Backend {
            fs,
            root,
            region: cfg.region,
            etag_cache: EtagCache::default(),
            cors: Arc::clone(&cors),
            completions: Completions::default(),
        };
        let mut builder = S3ServiceBuilder::new(SharedBackend(Arc::new(backend)));
        builder.set_auth(SimpleAuth::from_single(cfg.access_key, cfg.secret_key));
        let service = CorsS3Service {
            inner: builder.build(),
            cors,
        };

        let listener = TcpListener::bind(cfg.bind)
            .await
            .map_err(io_err(format!("bind {}", cfg.bind)))?;
        let local_addr = listener
            .local_addr()
            .map_err(io_err("read the bound address"))?;
        let accept_loop = tokio::spawn(crate::platform::serve_connections(listener, move |_| {
            service.clone()
        }));
        tracing::info!(%local_addr, "embedded S3 listening");
        Ok(EmbeddedS3 {
            local_addr,
            accept_loop,
        })
    }

    /// Base URL for path-style clients. A wildcard bind is reported as
    /// loopback, since a wildcard address is not something a client can
    /// connect to (nor sign a Host header for).
    pub fn endpoint(&self) -> String {
        let ip = match self.local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.local_addr.port()))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for EmbeddedS3 {
    fn drop(&mut self) {
        // Connection tasks belong to the accept loop, so aborting it closes
        // them too and a test's server cannot outlive it.
        self.accept_loop.abort();
    }
}

impl EmbeddedS3Config {
    fn check(&self) -> Result<(), EmbeddedS3Error> {
        let invalid = |message: String| Err(EmbeddedS3Error::InvalidConfig(message));
        if self.access_key.is_empty() || self.secret_key.is_empty() {
            return invalid("access_key and secret_key must be non-empty".into());
        }
        if self.region.is_empty() {
            return invalid("region must be non-empty".into());
        }
        match self
            .buckets
            .iter()
            .find(|b| !s3s::path::check_bucket_name(b))
        {
            Some(bad) => invalid(format!("invalid bucket name {bad:?}")),
            None => Ok(()),
        }
    }
}

/// Creates `data_dir` and a directory per bucket; answers the canonical
/// `data_dir`: s3s-fs canonicalizes its root, and part and upload files are
/// looked up here under the very same path.
async fn storage_root(data_dir: &Path, buckets: &[String]) -> Result<PathBuf, EmbeddedS3Error> {
    tokio::fs::create_dir_all(data_dir)
        .await
        .map_err(io_err(format!("create {}", data_dir.display())))?;
    let root = tokio::fs::canonicalize(data_dir)
        .await
        .map_err(io_err(format!("canonicalize {}", data_dir.display())))?;
    for bucket in buckets {
        let dir = root.join(bucket);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_err(format!("create bucket directory {}", dir.display())))?;
    }
    Ok(root)
}

/// `s3s-fs` plus the multipart behaviour S3 has and `s3s-fs` lacks (see the
/// module docs). It relies on `s3s-fs` 0.14.1's on-disk layout: in the root,
/// `.upload-{id}.json` exists while an upload is open and
/// `.upload_id-{id}.part-{n}` holds part n; an object with storage key `s`
/// is the file `{bucket}/{s}`. The `=0.14.1` pin keeps that stable. Its own
/// files, in the root: the per-upload record `.moc-mpu-{id}.json`, and the
/// part index `.moc-parts-{id}/`, an empty file per part number uploaded.
/// The index is what ListParts and completion read: s3s-fs keeps every
/// upload's parts side by side in the root, so finding one upload's parts
/// there meant reading the names of all of them, a cost that grew with every
/// upload left open (10 ms of CPU per completed file in `scripts/bench-load`).
///
/// Every key taken from a request is mapped with [`storage_key`] right
/// before the request goes to `s3s-fs`, after SigV4 was checked over the
/// real key; the wrapper's own checks (upload records) work on real keys.
struct Backend {
    fs: FileSystem,
    root: PathBuf,
    region: String,
    etag_cache: EtagCache,
    /// The bucket's CORS rule, for GetBucketCors (`moc-dev doctor` reads it).
    cors: Arc<BucketCors>,
    completions: Completions,
}

/// The backend as the service holds it: shared, so a completion can run in
/// a task that outlives its request.
struct SharedBackend(Arc<Backend>);

impl std::ops::Deref for SharedBackend {
    type Target = Backend;

    fn deref(&self) -> &Backend {
        &self.0
    }
}

impl SharedBackend {
    /// Completes in a task of its own, so a client that goes away does not
    /// stop it half done (S3 completes or does not, whoever is listening).
    async fn complete_to_the_end(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let backend = Arc::clone(&self.0);
        tokio::spawn(async move { backend.complete_multipart_upload_impl(req).await })
            .await
            .map_err(|e| internal(io::Error::other(e)))?
    }
}

/// The completions running, by `bucket/key`. A completion holds its key's
/// lock; the other operations naming the key wait until it is free, so a
/// completion is seen either not begun or done.
#[derive(Default)]
struct Completions(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl Completions {
    fn lock_of(&self, bucket: &str, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut running = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(running.entry(format!("{bucket}/{key}")).or_default())
    }

    /// Holds the key until `work` is done.
    async fn completing<T>(&self, bucket: &str, key: &str, work: impl Future<Output = T>) -> T {
        let lock = self.lock_of(bucket, key);
        let result = {
            let _held = lock.lock().await;
            work.await
        };
        let mut running = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Only the map and this call hold it: nobody waits for the key.
        if Arc::strong_count(&lock) == 2 {
            running.remove(&format!("{bucket}/{key}"));
        }
        result
    }

    /// Waits for a completion of the key, if one is running.
    async fn settled(&self, bucket: &str, key: &str) {
        let running = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&format!("{bucket}/{key}"))
            .cloned();
        if let Some(lock) = running {
            drop(lock.lock().await);
        }
    }
}

/// Part ETags, keyed by path and validated by (size, mtime) so a part that
/// was uploaded again is re-hashed. Hashing lazily at ListParts / completion
/// keeps it correct without a hook on every write path.
#[derive(Default, Clone)]
struct EtagCache(Arc<Mutex<HashMap<PathBuf, PartInfo>>>);

/// `s3s-fs` only remembers who created an upload, but ListMultipartUploads
/// and the bucket/key check need where it goes and when it started.
#[derive(Serialize, Deserialize)]
struct UploadRecord {
    bucket: String,
    key: String,
    initiated_unix_ms: u64,
    /// Opened with `ChecksumAlgorithm=CRC32C`, `ChecksumType=FULL_OBJECT`.
    #[serde(default)]
    full_object_crc32c: bool,
}

/// The name of an upload's record: the prefix, the upload id, the suffix.
const RECORD_PREFIX: &str = ".moc-mpu-";
const RECORD_SUFFIX: &str = ".json";

/// The CRC32C of a completed object: this, then the storage key of
/// `{bucket}/{key}`.
const CRC32C_PREFIX: &str = ".moc-crc32c-";

/// The part index of an upload: this, then the upload id (a directory).
const PART_INDEX_PREFIX: &str = ".moc-parts-";

/// s3s-fs's file of part n of an upload: this, then n.
fn part_name_prefix(id: Uuid) -> String {
    format!(".upload_id-{id}.part-")
}

struct PartFile {
    number: i32,
    path: PathBuf,
}

#[derive(Clone)]
struct PartInfo {
    len: u64,
    modified: SystemTime,
    etag: String,
    crc32c: Crc32c,
}

/// The input of an operation on one open upload.
trait NamesUpload {
    /// Its bucket, key and upload id.
    fn upload(&self) -> (&str, &str, &str);
}

macro_rules! names_upload {
    ($($input:ty),*) => {$(
        impl NamesUpload for $input {
            fn upload(&self) -> (&str, &str, &str) {
                (&self.bucket, &self.key, &self.upload_id)
            }
        }
    )*};
}

names_upload!(
    UploadPartInput,
    ListPartsInput,
    CompleteMultipartUploadInput,
    AbortMultipartUploadInput
);

fn no_such_upload() -> S3Error {
    s3_error!(
        NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )
}

fn internal(err: io::Error) -> S3Error {
    S3Error::internal_error(err)
}

/// Runs a step's file operations, `std::fs` in one closure, as one task on
/// Tokio's blocking pool. Each `tokio::fs` call is such a task of its own,
/// and every hand-off wakes two threads, CPU that `scripts/bench-load`
/// charges to the cores the API shares (docs/PERFORMANCE.md, "the embedded
/// S3's thread hand-offs"); `s3s-fs`'s own calls stay as they are.
async fn blocking<T, F>(work: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

/// `None` for a file that is not there.
fn found<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// `Ok(None)` for a file that is not there.
fn if_present<T>(result: io::Result<T>) -> S3Result<Option<T>> {
    found(result).map_err(internal)
}

impl EtagCache {
    fn get(&self, path: &Path, len: u64, modified: SystemTime) -> Option<PartInfo> {
        let cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(path)
            .filter(|c| c.len == len && c.modified == modified)
            .cloned()
    }

    fn insert(&self, path: &Path, info: &PartInfo) {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(path.to_owned(), info.clone());
    }

    fn forget_under(&self, prefix: &Path) {
        let prefix = prefix.to_string_lossy();
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|path, _| !path.to_string_lossy().starts_with(prefix.as_ref()));
    }
}

impl Backend {
    fn check_region<T>(&self, req: &S3Request<T>) -> S3Result<()> {
        match &req.region {
            Some(region) if region.as_str() != self.region => Err(s3_error!(
                AuthorizationHeaderMalformed,
                "The authorization header is malformed; the region '{}' is wrong; expecting '{}'",
                region.as_str(),
                self.region
            )),
            _ => Ok(()),
        }
    }

    async fn head_bucket_impl(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.require_bucket(&req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    /// The bucket's one CORS rule (`s3_cors`), as S3 answers GetBucketCors;
    /// a bucket without allowed origins has no CORS configuration at all.
    async fn get_bucket_cors_impl(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        self.require_bucket(&req.input.bucket).await?;
        if self.cors.allowed_origins.is_empty() {
            return Err(s3_error!(NoSuchCORSConfiguration));
        }
        let list = |joined: &str| joined.split(", ").map(str::to_owned).collect();
        let rule = CORSRule {
            allowed_headers: Some(vec!["*".to_owned()]),
            allowed_methods: list(crate::s3_cors::ALLOWED_METHODS),
            allowed_origins: self.cors.allowed_origins.clone(),
            expose_headers: Some(list(crate::s3_cors::EXPOSE_HEADERS)),
            max_age_seconds: crate::s3_cors::MAX_AGE_SECONDS.parse().ok(),
            ..CORSRule::default()
        };
        Ok(S3Response::new(GetBucketCorsOutput {
            cors_rules: Some(vec![rule]),
        }))
    }

    async fn require_bucket(&self, bucket: &str) -> S3Result<()> {
        match if_present(tokio::fs::metadata(self.root.join(bucket)).await)? {
            Some(meta) if meta.is_dir() => Ok(()),
            _ => Err(s3_error!(NoSuchBucket)),
        }
    }

    fn record_path(&self, id: Uuid) -> PathBuf {
        self.root
            .join(format!("{RECORD_PREFIX}{id}{RECORD_SUFFIX}"))
    }

    fn fs_upload_marker(&self, id: Uuid) -> PathBuf {
        self.root.join(format!(".upload-{id}.json"))
    }

    fn part_index(&self, id: Uuid) -> PathBuf {
        self.root.join(format!("{PART_INDEX_PREFIX}{id}"))
    }

    fn part_path(&self, id: Uuid, number: i32) -> PathBuf {
        part_path_in(&self.root, id, number)
    }

    async fn read_record(&self, id: Uuid) -> S3Result<Option<UploadRecord>> {
        let (marker, path) = (self.fs_upload_marker(id), self.record_path(id));
        let read = blocking(move || match marker.try_exists()? {
            true => found(std::fs::read(path)),
            false => Ok(None),
        });
        let Some(bytes) = read.await.map_err(internal)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| internal(io::Error::new(io::ErrorKind::InvalidData, e)))
    }

    /// The open upload a request names. S3 scopes an upload id to its
    /// bucket and key; `s3s-fs` does not.
    /// Once a completion of its key is done: until then the upload is
    /// still open, and after it, gone.
    async fn open_upload(&self, input: &impl NamesUpload) -> S3Result<(Uuid, UploadRecord)> {
        let (bucket, key, _) = input.upload();
        self.completions.settled(bucket, key).await;
        self.find_upload(input).await
    }

    /// [`Backend::open_upload`] for the completion holding the key.
    async fn find_upload(&self, input: &impl NamesUpload) -> S3Result<(Uuid, UploadRecord)> {
        let (bucket, key, upload_id) = input.upload();
        let id = Uuid::parse_str(upload_id).map_err(|_| no_such_upload())?;
        match self.read_record(id).await? {
            Some(rec) if rec.bucket == bucket && rec.key == key => Ok((id, rec)),
            _ => Err(no_such_upload()),
        }
    }

    /// Writes an upload's record and creates its empty part index.
    async fn open_record(&self, id: Uuid, rec: &UploadRecord) -> io::Result<()> {
        let bytes = serde_json::to_vec(rec).map_err(io::Error::other)?;
        let (path, index) = (self.record_path(id), self.part_index(id));
        blocking(move || {
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, path)?;
            std::fs::create_dir(index)
        })
        .await
    }

    /// Part files of one upload, sorted by part number ([`part_numbers`]).
    async fn part_files(&self, id: Uuid) -> S3Result<Vec<PartFile>> {
        let (root, index) = (self.root.clone(), self.part_index(id));
        let numbers = blocking(move || part_numbers(&root, &index, id))
            .await
            .map_err(internal)?;
        Ok(numbers
            .into_iter()
            .map(|number| PartFile {
                number,
                path: self.part_path(id, number),
            })
            .collect())
    }

    /// Size, mtime and ETag taken from one open handle, so they describe the
    /// same bytes even if the part is being replaced (s3s-fs renames a new
    /// file over it) meanwhile. `None`: the part does not exist.
    async fn part_info(&self, path: &Path) -> S3Result<Option<PartInfo>> {
        let (path, cache) = (path.to_owned(), self.etag_cache.clone());
        blocking(move || {
            let Some(mut file) = found(std::fs::File::open(&path))? else {
                return Ok(None);
            };
            let meta = file.metadata()?;
            let (len, modified) = (meta.len(), meta.modified()?);
            if let Some(cached) = cache.get(&path, len, modified) {
                return Ok(Some(cached));
            }
            let (etag, crc32c) = digest_part(&mut file)?;
            let info = PartInfo {
                len,
                modified,
                etag,
                crc32c,
            };
            cache.insert(&path, &info);
            Ok(Some(info))
        })
        .await
        .map_err(internal)
    }

    /// Drops the record and any part files the completion did not use
    /// (S3 discards those too); s3s-fs leaves them behind.
    async fn forget_upload(&self, id: Uuid) -> S3Result<()> {
        let (root, index, record) = (self.root.clone(), self.part_index(id), self.record_path(id));
        blocking(move || {
            for number in part_numbers(&root, &index, id)? {
                found(std::fs::remove_file(part_path_in(&root, id, number)))?;
            }
            found(std::fs::remove_dir_all(index))?;
            found(std::fs::remove_file(record)).map(drop)
        })
        .await
        .map_err(internal)?;
        self.etag_cache
            .forget_under(&self.root.join(part_name_prefix(id)));
        Ok(())
    }

    async fn create_multipart_upload_impl(
        &self,
        mut req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        // s3s-fs would happily open an upload into a bucket that is not there.
        self.require_bucket(&req.input.bucket).await?;
        let record = UploadRecord {
            bucket: req.input.bucket.clone(),
            key: req.input.key.clone(),
            initiated_unix_ms: unix_ms(SystemTime::now()),
            full_object_crc32c: full_object_crc32c(&req.input)?,
        };
        to_storage_key(&mut req.input.key);
        let mut resp = self.fs.create_multipart_upload(req).await?;
        resp.output.key = Some(record.key.clone());
        let id = resp
            .output
            .upload_id
            .as_deref()
            .and_then(|id| Uuid::parse_str(id).ok())
            .ok_or_else(|| s3_error!(InternalError, "s3s-fs returned no usable upload id"))?;
        self.open_record(id, &record).await.map_err(internal)?;
        Ok(resp)
    }

    async fn upload_part_impl(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let (id, _) = self.open_upload(&req.input).await?;
        // s3s-fs only checks the upper bound; 0 or a negative number would
        // become a part that can never be completed.
        if req.input.part_number < 1 {
            return Err(s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            ));
        }
        let number = req.input.part_number;
        let crc32c = check_part_crc32c(&mut req.input).await?;
        to_storage_key(&mut req.input.key);
        let mut resp = self.fs.upload_part(req).await?;
        resp.output.checksum_crc32c = crc32c.map(|crc| crc.to_string());
        // Indexed once stored and before the client hears of it, so a part
        // S3 has acknowledged is always listed. No index (NotFound): a
        // legacy upload, whose parts are found by reading the root.
        let indexed = self.part_index(id).join(number.to_string());
        if let Err(e) = tokio::fs::write(&indexed, b"").await
            && e.kind() != io::ErrorKind::NotFound
        {
            return Err(internal(e));
        }
        Ok(resp)
    }

    async fn list_parts_impl(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let (id, record) = self.open_upload(&input).await?;
        let max_parts = page_size(input.max_parts, "max-parts")?;
        let marker = input.part_number_marker.unwrap_or(0);
        if marker < 0 {
            return Err(s3_error!(
                InvalidArgument,
                "part-number-marker must be non-negative"
            ));
        }
        // S3 lists part checksums of uploads opened with an algorithm.
        let crc32c = record.full_object_crc32c;
        let (parts, is_truncated) = self.parts_page(id, marker, max_parts, crc32c).await?;
        let next_marker = parts.last().and_then(|p| p.part_number).unwrap_or(marker);
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            max_parts: Some(to_i32(max_parts)),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: Some(next_marker),
            is_truncated: Some(is_truncated),
            parts: Some(parts),
            ..Default::default()
        }))
    }

    /// Up to `max_parts` parts after part `marker`, and whether more follow;
    /// with their CRC32Cs when `crc32c`.
    async fn parts_page(
        &self,
        id: Uuid,
        marker: i32,
        max_parts: usize,
        crc32c: bool,
    ) -> S3Result<(Vec<Part>, bool)> {
        let mut remaining = self
            .part_files(id)
            .await?
            .into_iter()
            .filter(|p| p.number > marker)
            .peekable();
        let mut parts = Vec::new();
        while parts.len() < max_parts {
            let Some(file) = remaining.next() else { break };
            // Gone between listing and opening: aborted or completed meanwhile.
            let Some(info) = self.part_info(&file.path).await? else {
                continue;
            };
            parts.push(Part {
                part_number: Some(file.number),
                size: Some(i64::try_from(info.len).map_err(|e| internal(io::Error::other(e)))?),
                last_modified: Some(Timestamp::from(info.modified)),
                e_tag: Some(ETag::Strong(info.etag)),
                checksum_crc32c: crc32c.then(|| info.crc32c.to_string()),
                ..Default::default()
            });
        }
        Ok((parts, remaining.peek().is_some()))
    }

    async fn complete_multipart_upload_impl(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        self.completions
            .completing(&bucket, &key, self.complete_now(req))
            .await
    }

    async fn complete_now(
        &self,
        mut req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let (id, record) = self.find_upload(&req.input).await?;
        let input = &req.input;
        // Everything s3s-fs would reject is rejected here first: once s3s-fs
        // starts completing, a failure leaves the upload deleted.
        let requested = input
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.as_deref())
            .unwrap_or_default();
        self.check_completion(id, requested).await?;
        let crc32c = self
            .check_object_crc32c(id, &record, input, requested)
            .await?;

        let real_key = input.key.clone();
        let sidecar = self.crc32c_sidecar(&input.bucket, &real_key);
        to_storage_key(&mut req.input.key);
        let mut resp = self.fs.complete_multipart_upload(req).await?;
        match crc32c {
            Some(crc) => tokio::fs::write(&sidecar, crc.to_string())
                .await
                .map_err(internal)?,
            None => drop(if_present(tokio::fs::remove_file(&sidecar).await)?),
        }
        // s3s-fs answers through a keep-alive body (whitespace until the XML
        // is ready); its work is already done, so send a plain response.
        if let Some(pending) = resp.output.future.take() {
            resp.output = pending.await?;
        }
        resp.output.key = Some(real_key);
        if let Some(crc) = crc32c {
            resp.output.checksum_crc32c = Some(crc.to_string());
            resp.output.checksum_type = Some(ChecksumType::from_static(ChecksumType::FULL_OBJECT));
        }
        self.forget_upload(id).await?;
        Ok(resp)
    }

    /// Where the CRC32C of the object at `bucket`/`key` is kept.
    fn crc32c_sidecar(&self, bucket: &str, key: &str) -> PathBuf {
        let name = storage_key(&format!("{bucket}/{key}"));
        self.root.join(format!("{CRC32C_PREFIX}{name}"))
    }

    /// The whole object's CRC32C, for an upload opened with CRC32C: computed
    /// over the parts named, in order, and refused (BadDigest) when the
    /// completion declares another. Declaring one for an upload opened
    /// without CRC32C is refused as S3 refuses it.
    async fn check_object_crc32c(
        &self,
        id: Uuid,
        record: &UploadRecord,
        input: &CompleteMultipartUploadInput,
        requested: &[CompletedPart],
    ) -> S3Result<Option<Crc32c>> {
        let full_object = record.full_object_crc32c;
        let declared = input
            .checksum_crc32c
            .as_deref()
            .map(parse_crc32c)
            .transpose()?;
        if !full_object {
            return match declared {
                Some(_) => Err(s3_error!(
                    InvalidRequest,
                    "The upload was created using a null checksum algorithm but the completion carries a CRC32C"
                )),
                None => Ok(None),
            };
        }
        // As S3 does for FULL_OBJECT: the parts' CRC32Cs combined in order.
        let mut parts = Vec::with_capacity(requested.len());
        for part in requested {
            let number = part.part_number.unwrap_or_default();
            let info = self
                .part_info(&self.part_path(id, number))
                .await?
                .ok_or_else(|| s3_error!(InvalidPart, "part {number} is no longer there"))?;
            parts.push((info.crc32c, info.len));
        }
        let found = Crc32c::of_parts(parts);
        match declared {
            Some(declared) if declared != found => Err(s3_error!(
                BadDigest,
                "The FULL_OBJECT CRC32C you specified ({declared}) did not match the calculated checksum ({found})"
            )),
            _ => Ok(Some(found)),
        }
    }

    /// GetObject, once a completion of the key is done.
    async fn get_object_impl(
        &self,
        mut req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.completions
            .settled(&req.input.bucket, &req.input.key)
            .await;
        to_storage_key(&mut req.input.key);
        self.fs.get_object(req).await
    }

    /// HeadObject, with the object's CRC32C when checksum mode is enabled.
    async fn head_object_impl(
        &self,
        mut req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.completions
            .settled(&req.input.bucket, &req.input.key)
            .await;
        let sidecar = self.crc32c_sidecar(&req.input.bucket, &req.input.key);
        let enabled = req
            .input
            .checksum_mode
            .as_ref()
            .is_some_and(|mode| mode.as_str() == ChecksumMode::ENABLED);
        to_storage_key(&mut req.input.key);
        let mut resp = self.fs.head_object(req).await?;
        if enabled && let Some(crc) = if_present(tokio::fs::read_to_string(&sidecar).await)? {
            resp.output.checksum_crc32c = Some(crc);
            resp.output.checksum_type = Some(ChecksumType::from_static(ChecksumType::FULL_OBJECT));
        }
        Ok(resp)
    }

    /// DeleteObject, and the object's CRC32C with it.
    async fn delete_object_impl(
        &self,
        mut req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.completions
            .settled(&req.input.bucket, &req.input.key)
            .await;
        let sidecar = self.crc32c_sidecar(&req.input.bucket, &req.input.key);
        to_storage_key(&mut req.input.key);
        let resp = self.fs.delete_object(req).await?;
        if_present(tokio::fs::remove_file(&sidecar).await)?;
        Ok(resp)
    }

    /// What S3 checks of a completion's part list, in S3's order.
    async fn check_completion(&self, id: Uuid, requested: &[CompletedPart]) -> S3Result<()> {
        if requested.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "You must specify at least one part"
            ));
        }
        let mut previous = 0;
        for (index, part) in requested.iter().enumerate() {
            let number = part
                .part_number
                .ok_or_else(|| s3_error!(MalformedXML, "a part is missing its PartNumber"))?;
            if number <= previous {
                return Err(s3_error!(
                    InvalidPartOrder,
                    "The list of parts was not in ascending order. Parts must be ordered by part number."
                ));
            }
            previous = number;
            let Some(uploaded) = self.part_info(&self.part_path(id, number)).await? else {
                return Err(s3_error!(
                    InvalidPart,
                    "part {number} has not been uploaded"
                ));
            };
            check_completed_part(number, part, &uploaded, index + 1 == requested.len())?;
            // S3 allows gaps (1, 2, 5); s3s-fs insists on 1..=N.
            if usize::try_from(number).ok() != Some(index + 1) {
                return Err(s3_error!(
                    InvalidPart,
                    "embedded S3 limitation: part numbers must be exactly 1..=N, found {number} at position {}",
                    index + 1
                ));
            }
        }
        Ok(())
    }

    async fn abort_multipart_upload_impl(
        &self,
        mut req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let (id, _) = self.open_upload(&req.input).await?;
        to_storage_key(&mut req.input.key);
        let resp = self.fs.abort_multipart_upload(req).await?;
        self.forget_upload(id).await?;
        Ok(resp)
    }

    async fn list_multipart_uploads_impl(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        self.require_bucket(&input.bucket).await?;
        if input.delimiter.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "embedded S3: ListMultipartUploads with a delimiter is not supported"
            ));
        }
        let max_uploads = page_size(input.max_uploads, "max-uploads")?;
        let mut uploads = self
            .open_uploads(&input.bucket, input.prefix.as_deref().unwrap_or(""))
            .await?;
        skip_to_markers(
            &mut uploads,
            input.key_marker.as_deref(),
            input.upload_id_marker.as_deref(),
        );
        let is_truncated = uploads.len() > max_uploads;
        uploads.truncate(max_uploads);
        let (next_key_marker, next_upload_id_marker) = match uploads.last() {
            Some((rec, id)) if is_truncated => (Some(rec.key.clone()), Some(id.to_string())),
            _ => (None, None),
        };
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            max_uploads: Some(to_i32(max_uploads)),
            is_truncated: Some(is_truncated),
            next_key_marker,
            next_upload_id_marker,
            uploads: Some(uploads.into_iter().map(listed_upload).collect()),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    /// The open uploads into `bucket` whose key starts with `prefix`, in
    /// S3's order: by key, then oldest upload first.
    async fn open_uploads(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> S3Result<Vec<(UploadRecord, Uuid)>> {
        let mut uploads = Vec::new();
        let root = self.root.clone();
        let names = blocking(move || file_names(&root)).await;
        for name in names.map_err(internal)? {
            let Some(id) = name
                .strip_prefix(RECORD_PREFIX)
                .and_then(|n| n.strip_suffix(RECORD_SUFFIX))
                .and_then(|n| Uuid::parse_str(n).ok())
            else {
                continue;
            };
            if let Some(rec) = self.read_record(id).await?
                && rec.bucket == bucket
                && rec.key.starts_with(prefix)
            {
                uploads.push((rec, id));
            }
        }
        uploads.sort_by(|(a, a_id), (b, b_id)| {
            (&a.key, a.initiated_unix_ms, a_id).cmp(&(&b.key, b.initiated_unix_ms, b_id))
        });
        Ok(uploads)
    }
}

/// Whether CreateMultipartUpload asks for a full-object CRC32C; any other
/// checksum is more than the API uses, so it is not implemented here.
fn full_object_crc32c(input: &CreateMultipartUploadInput) -> S3Result<bool> {
    let algorithm = input
        .checksum_algorithm
        .as_ref()
        .map(ChecksumAlgorithm::as_str);
    let kind = input.checksum_type.as_ref().map(ChecksumType::as_str);
    match (algorithm, kind) {
        (None, None) => Ok(false),
        (Some(ChecksumAlgorithm::CRC32C), Some(ChecksumType::FULL_OBJECT)) => Ok(true),
        _ => Err(s3_error!(
            NotImplemented,
            "embedded S3: only ChecksumAlgorithm=CRC32C with ChecksumType=FULL_OBJECT is supported"
        )),
    }
}

fn parse_crc32c(raw: &str) -> S3Result<Crc32c> {
    raw.parse().map_err(|_| {
        s3_error!(
            InvalidRequest,
            "Value for x-amz-checksum-crc32c header is invalid."
        )
    })
}

/// A part's declared CRC32C, checked over its bytes before `s3s-fs` stores
/// them, so a corrupted part never replaces a good one (S3 answers
/// BadDigest and keeps what it held). The body is put back for `s3s-fs`.
async fn check_part_crc32c(input: &mut UploadPartInput) -> S3Result<Option<Crc32c>> {
    let Some(declared) = input
        .checksum_crc32c
        .as_deref()
        .map(parse_crc32c)
        .transpose()?
    else {
        return Ok(None);
    };
    let body = input.body.take().ok_or_else(|| s3_error!(IncompleteBody))?;
    let chunks: Vec<bytes::Bytes> = body
        .try_collect()
        .await
        .map_err(|_| s3_error!(IncompleteBody))?;
    let found = chunks
        .iter()
        .fold(Crc32c::of(b""), |crc, chunk| crc.append(chunk));
    if found != declared {
        return Err(s3_error!(
            BadDigest,
            "The CRC32C you specified ({declared}) did not match the calculated checksum ({found})"
        ));
    }
    input.body = Some(StreamingBlob::from(s3s::Body::from(bytes::Bytes::from(
        chunks.concat(),
    ))));
    Ok(Some(found))
}

/// Drops the uploads up to the markers of the previous page: up to and
/// including the upload `upload_id_marker` of `key_marker`, else every
/// upload of a key up to `key_marker`.
fn skip_to_markers(
    uploads: &mut Vec<(UploadRecord, Uuid)>,
    key_marker: Option<&str>,
    upload_id_marker: Option<&str>,
) {
    let Some(key_marker) = key_marker else { return };
    let after_upload = upload_id_marker.and_then(|marker| {
        uploads
            .iter()
            .position(|(rec, id)| rec.key == key_marker && id.to_string() == marker)
    });
    match after_upload {
        Some(pos) => {
            uploads.drain(..=pos);
        }
        None => uploads.retain(|(rec, _)| rec.key.as_str() > key_marker),
    }
}

fn listed_upload((rec, id): (UploadRecord, Uuid)) -> MultipartUpload {
    MultipartUpload {
        key: Some(rec.key),
        upload_id: Some(id.to_string()),
        initiated: Some(Timestamp::from(
            UNIX_EPOCH + Duration::from_millis(rec.initiated_unix_ms),
        )),
        ..Default::default()
    }
}

/// A part named in a completion against the part uploaded under its number:
/// the ETags must match and every part but the last must be 5 MiB or more.
fn check_completed_part(
    number: i32,
    named: &CompletedPart,
    uploaded: &PartInfo,
    is_last: bool,
) -> S3Result<()> {
    let given = named.e_tag.as_ref().map(ETag::value);
    if given != Some(uploaded.etag.as_str()) {
        return Err(s3_error!(
            InvalidPart,
            "part {number}: ETag {given:?} does not match the uploaded part's \"{}\"",
            uploaded.etag
        ));
    }
    if !is_last && uploaded.len < MIN_PART_SIZE {
        return Err(s3_error!(
            EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed size (part {number} is {} bytes)",
            uploaded.len
        ));
    }
    Ok(())
}

/// The names in a directory, as far as they are UTF-8.
fn file_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        names.extend(entry?.file_name().into_string().ok());
    }
    Ok(names)
}

/// The part numbers of upload `id`, ascending, from its part index `index`;
/// an upload opened before the index existed (a data directory kept from an
/// older dev server) has none, and its parts are found by reading `root`.
fn part_numbers(root: &Path, index: &Path, id: Uuid) -> io::Result<Vec<i32>> {
    let mut numbers: Vec<i32> = match found(file_names(index))? {
        Some(index) => index.iter().filter_map(|n| n.parse().ok()).collect(),
        None => {
            let prefix = part_name_prefix(id);
            file_names(root)?
                .iter()
                .filter_map(|name| name.strip_prefix(&prefix)?.parse().ok())
                .collect()
        }
    };
    numbers.sort_unstable();
    Ok(numbers)
}

/// s3s-fs's file of part `number` of upload `id` under `root`.
fn part_path_in(root: &Path, id: Uuid, number: i32) -> PathBuf {
    root.join(format!("{}{number}", part_name_prefix(id)))
}

fn page_size(requested: Option<i32>, name: &str) -> S3Result<usize> {
    match requested {
        None => Ok(MAX_PAGE),
        Some(n) => usize::try_from(n)
            .map(|n| n.min(MAX_PAGE))
            .map_err(|_| s3_error!(InvalidArgument, "{name} must be non-negative")),
    }
}

fn to_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The lowercase-hex MD5 of the rest of `file` (the ETag s3s-fs returned
/// from UploadPart) and its CRC32C, in one read.
fn digest_part(file: &mut std::fs::File) -> io::Result<(String, Crc32c)> {
    use std::io::Read;
    let mut md5 = Md5::new();
    let mut crc = Crc32c::of(b"");
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((hex_lower(&md5.finalize()), crc));
        }
        md5.update(&buf[..n]);
        crc = crc.append(&buf[..n]);
    }
}

/// The key `s3s-fs` gets in place of a client-visible key: the hex SHA-256
/// of the key. Every key becomes 64 characters of `[0-9a-f]`, so the file
/// names `s3s-fs` derives from it stay well below 255 bytes (the longest,
/// an open upload's metadata file, is 160 bytes plus the base64 of the bucket
/// name: at most 244), and no key can leave its bucket directory or alias
/// another key the way `a//b` and `a/./b` would as paths.
fn storage_key(key: &str) -> String {
    hex_lower(&Sha256::checksum(key.as_bytes()))
}

fn to_storage_key(key: &mut String) {
    *key = storage_key(key);
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

type S3Future<'a, T> = Pin<Box<dyn Future<Output = S3Result<S3Response<T>>> + Send + 'a>>;

// `S3` is declared with `#[async_trait]`, and async-trait is not a dependency
// of this crate, so the methods are written in the form that macro expands to.
// Every request's region is checked first, then its `_impl` serves it.
macro_rules! s3_methods {
    ($($method:ident($input:ty) -> $output:ty => $how:ident;)*) => {$(
        fn $method<'life0, 'async_trait>(
            &'life0 self,
            req: S3Request<$input>,
        ) -> S3Future<'async_trait, $output>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move {
                self.check_region(&req)?;
                self.$how(req).await
            })
        }
    )*};
}

impl S3 for SharedBackend {
    s3_methods! {
        head_bucket(HeadBucketInput) -> HeadBucketOutput => head_bucket_impl;
        get_bucket_cors(GetBucketCorsInput) -> GetBucketCorsOutput => get_bucket_cors_impl;
        get_object(GetObjectInput) -> GetObjectOutput => get_object_impl;
        head_object(HeadObjectInput) -> HeadObjectOutput => head_object_impl;
        delete_object(DeleteObjectInput) -> DeleteObjectOutput => delete_object_impl;
        create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput
            => create_multipart_upload_impl;
        upload_part(UploadPartInput) -> UploadPartOutput => upload_part_impl;
        list_parts(ListPartsInput) -> ListPartsOutput => list_parts_impl;
        complete_multipart_upload(CompleteMultipartUploadInput) -> CompleteMultipartUploadOutput
            => complete_to_the_end;
        abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput
            => abort_multipart_upload_impl;
        list_multipart_uploads(ListMultipartUploadsInput) -> ListMultipartUploadsOutput
            => list_multipart_uploads_impl;
    }
}
