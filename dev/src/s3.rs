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
//! Storage is `s3s-fs` (one directory per bucket under `data_dir`). Where
//! `s3s-fs` 0.14.1 falls short of what the API relies on, a wrapper fills
//! the gap instead of letting the dev setup drift from production:
//! - ListParts: `s3s-fs` returns parts unsorted, without ETags, and ignores
//!   `max-parts` / `part-number-marker`; ListMultipartUploads is missing.
//! - `s3s-fs` forgets an upload as soon as CompleteMultipartUpload starts, so
//!   a rejected completion (small part, wrong ETag) would destroy it, where
//!   S3 keeps it for a retry; completions are validated before delegating.
//! - An unknown upload id gets `NoSuchUpload` (404), not `AccessDenied`.
//! - A request signed for another region is refused, as S3 does.
//! - Object keys: `s3s-fs` names files after the key (the object under
//!   `{bucket}/{key}`, its metadata in `.bucket-{b64}.object-{b64(key)}...`
//!   files in the root), so a key past roughly 120 bytes (less with a
//!   longer bucket name), or with a segment past 255, breaks the 255-byte
//!   file name limit and every write answers 500.
//!   The wrapper therefore hands `s3s-fs` only a fixed-length storage key,
//!   the hex SHA-256 of the real key (see [`storage_key`]), in every
//!   operation, and keeps the real key next to the object in
//!   `{bucket}/{storage key}.key` so ListObjects(V2) can answer with real
//!   keys; responses that echo a key get the real one back. Objects written
//!   before this mapping (stored under their real key) are not visible.
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

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use s3s::auth::SimpleAuth;
use s3s::crypto::{Checksum, Md5, Sha256};
use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, CommonPrefix,
    CompleteMultipartUploadInput, CompleteMultipartUploadOutput, CopyObjectInput, CopyObjectOutput,
    CopySource, CreateBucketInput, CreateBucketOutput, CreateMultipartUploadInput,
    CreateMultipartUploadOutput, DeleteBucketInput, DeleteBucketOutput, DeleteObjectInput,
    DeleteObjectOutput, DeleteObjectsInput, DeleteObjectsOutput, ETag, GetBucketLocationInput,
    GetBucketLocationOutput, GetObjectInput, GetObjectOutput, HeadBucketInput, HeadBucketOutput,
    HeadObjectInput, HeadObjectOutput, ListBucketsInput, ListBucketsOutput,
    ListMultipartUploadsInput, ListMultipartUploadsOutput, ListObjectsInput, ListObjectsOutput,
    ListObjectsV2Input, ListObjectsV2Output, ListPartsInput, ListPartsOutput, MultipartUpload,
    Object, Part, PutObjectInput, PutObjectOutput, Timestamp, UploadPartCopyInput,
    UploadPartCopyOutput, UploadPartInput, UploadPartOutput,
};
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Error, S3Request, S3Response, S3Result, s3_error};
use s3s_fs::FileSystem;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
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
        if cfg.access_key.is_empty() || cfg.secret_key.is_empty() {
            return Err(EmbeddedS3Error::InvalidConfig(
                "access_key and secret_key must be non-empty".into(),
            ));
        }
        if cfg.region.is_empty() {
            return Err(EmbeddedS3Error::InvalidConfig(
                "region must be non-empty".into(),
            ));
        }
        if let Some(bad) = cfg
            .buckets
            .iter()
            .find(|b| !s3s::path::check_bucket_name(b))
        {
            return Err(EmbeddedS3Error::InvalidConfig(format!(
                "invalid bucket name {bad:?}"
            )));
        }

        tokio::fs::create_dir_all(&cfg.data_dir)
            .await
            .map_err(io_err(format!("create {}", cfg.data_dir.display())))?;
        // s3s-fs canonicalizes its root; part and upload files are looked up
        // here under the very same path.
        let root = tokio::fs::canonicalize(&cfg.data_dir)
            .await
            .map_err(io_err(format!("canonicalize {}", cfg.data_dir.display())))?;
        for bucket in &cfg.buckets {
            let dir = root.join(bucket);
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(io_err(format!("create bucket directory {}", dir.display())))?;
        }
        let fs = FileSystem::new(&root).map_err(|e| EmbeddedS3Error::Storage(format!("{e:?}")))?;

        let backend = Backend {
            fs,
            root,
            region: cfg.region,
            etag_cache: Mutex::new(HashMap::new()),
        };
        let mut builder = S3ServiceBuilder::new(backend);
        builder.set_auth(SimpleAuth::from_single(cfg.access_key, cfg.secret_key));
        let service = builder.build();

        let listener = TcpListener::bind(cfg.bind)
            .await
            .map_err(io_err(format!("bind {}", cfg.bind)))?;
        let local_addr = listener
            .local_addr()
            .map_err(io_err("read the bound address"))?;
        let service = CorsS3Service {
            inner: service,
            cors: Arc::new(cors),
        };
        let accept_loop = tokio::spawn(serve(listener, service));
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
        // Connection tasks live in a JoinSet owned by the accept loop, so
        // aborting it closes them too and a test's server cannot outlive it.
        self.accept_loop.abort();
    }
}

async fn serve(listener: TcpListener, service: CorsS3Service) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Small XML responses would otherwise wait on Nagle.
                    let _ = stream.set_nodelay(true);
                    let service = service.clone();
                    connections.spawn(async move {
                        let conn = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .serve_connection(TokioIo::new(stream), service);
                        if let Err(err) = conn.await {
                            tracing::debug!(%peer, error = %err, "embedded S3 connection ended with an error");
                        }
                    });
                }
                Err(err) => {
                    // Typically EMFILE: back off rather than spin on it.
                    tracing::warn!(error = %err, "embedded S3 accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set does not grow forever.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// `s3s-fs` plus the multipart behaviour S3 has and `s3s-fs` lacks (see the
/// module docs). It relies on `s3s-fs` 0.14.1's on-disk layout: in the root,
/// `.upload-{id}.json` exists while an upload is open and
/// `.upload_id-{id}.part-{n}` holds part n; an object with storage key `s`
/// is the file `{bucket}/{s}`. The `=0.14.1` pin keeps that stable. Its own
/// files are the per-upload record `.moc-mpu-{id}.json` in the root and the
/// real key of each object in `{bucket}/{s}.key`.
///
/// Every key taken from a request is mapped with [`storage_key`] right
/// before the request goes to `s3s-fs`, after SigV4 was checked over the
/// real key; the wrapper's own checks (upload records, listings) work on
/// real keys.
struct Backend {
    fs: FileSystem,
    root: PathBuf,
    region: String,
    /// Part ETags, keyed by path and validated by (size, mtime) so a part
    /// that was uploaded again is re-hashed. Hashing lazily at ListParts /
    /// completion keeps it correct without a hook on every write path.
    etag_cache: Mutex<HashMap<PathBuf, CachedEtag>>,
}

struct CachedEtag {
    len: u64,
    modified: SystemTime,
    etag: String,
}

/// `s3s-fs` only remembers who created an upload, but ListMultipartUploads
/// and the bucket/key check need where it goes and when it started.
#[derive(Serialize, Deserialize)]
struct UploadRecord {
    bucket: String,
    key: String,
    initiated_unix_ms: u64,
}

struct PartFile {
    number: i32,
    path: PathBuf,
}

struct PartInfo {
    len: u64,
    modified: SystemTime,
    etag: String,
}

/// An object found in a bucket directory, under its real key.
struct StoredObject {
    key: String,
    size: u64,
    modified: SystemTime,
}

/// One page of a ListObjects(V2) answer.
struct ListPage {
    contents: Vec<Object>,
    common_prefixes: Vec<CommonPrefix>,
    is_truncated: bool,
    /// The last key or common prefix returned, when there is more.
    next_marker: Option<String>,
}

fn no_such_upload() -> S3Error {
    s3_error!(
        NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )
}

fn internal(err: io::Error) -> S3Error {
    S3Error::internal_error(err)
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

    async fn require_bucket(&self, bucket: &str) -> S3Result<()> {
        match tokio::fs::metadata(self.root.join(bucket)).await {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(s3_error!(NoSuchBucket)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Err(s3_error!(NoSuchBucket)),
            Err(err) => Err(internal(err)),
        }
    }

    fn record_path(&self, id: Uuid) -> PathBuf {
        self.root.join(format!(".moc-mpu-{id}.json"))
    }

    fn fs_upload_marker(&self, id: Uuid) -> PathBuf {
        self.root.join(format!(".upload-{id}.json"))
    }

    fn part_prefix(id: Uuid) -> String {
        format!(".upload_id-{id}.part-")
    }

    async fn read_record(&self, id: Uuid) -> S3Result<Option<UploadRecord>> {
        if !tokio::fs::try_exists(self.fs_upload_marker(id))
            .await
            .map_err(internal)?
        {
            return Ok(None);
        }
        match tokio::fs::read(self.record_path(id)).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| internal(io::Error::new(io::ErrorKind::InvalidData, e))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(internal(err)),
        }
    }

    /// S3 scopes an upload id to its bucket and key; `s3s-fs` does not.
    async fn open_upload(&self, bucket: &str, key: &str, upload_id: &str) -> S3Result<Uuid> {
        let id = Uuid::parse_str(upload_id).map_err(|_| no_such_upload())?;
        match self.read_record(id).await? {
            Some(rec) if rec.bucket == bucket && rec.key == key => Ok(id),
            _ => Err(no_such_upload()),
        }
    }

    async fn write_record(&self, id: Uuid, rec: &UploadRecord) -> io::Result<()> {
        let bytes = serde_json::to_vec(rec).map_err(io::Error::other)?;
        let tmp = self.root.join(format!(".moc-mpu-{id}.json.tmp"));
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::rename(&tmp, self.record_path(id)).await
    }

    /// Part files of one upload, sorted by part number.
    async fn part_files(&self, id: Uuid) -> S3Result<Vec<PartFile>> {
        let prefix = Self::part_prefix(id);
        let mut parts = Vec::new();
        let mut dir = tokio::fs::read_dir(&self.root).await.map_err(internal)?;
        while let Some(entry) = dir.next_entry().await.map_err(internal)? {
            let name = entry.file_name();
            let Some(number) = name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            parts.push(PartFile {
                number,
                path: entry.path(),
            });
        }
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }

    /// Size, mtime and ETag taken from one open handle, so they describe the
    /// same bytes even if the part is being replaced (s3s-fs renames a new
    /// file over it) meanwhile. `None`: the part does not exist.
    async fn part_info(&self, path: &Path) -> S3Result<Option<PartInfo>> {
        let mut file = match tokio::fs::File::open(path).await {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(internal(err)),
        };
        let meta = file.metadata().await.map_err(internal)?;
        let len = meta.len();
        let modified = meta.modified().map_err(internal)?;
        let cached = {
            let cache = self.etag_cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(path)
                .filter(|c| c.len == len && c.modified == modified)
                .map(|c| c.etag.clone())
        };
        let etag = match cached {
            Some(etag) => etag,
            None => {
                let mut md5 = Md5::new();
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = file.read(&mut buf).await.map_err(internal)?;
                    if n == 0 {
                        break;
                    }
                    md5.update(&buf[..n]);
                }
                // Same lowercase-hex MD5 that s3s-fs returned from UploadPart.
                let etag = hex_lower(&md5.finalize());
                let mut cache = self.etag_cache.lock().unwrap_or_else(|p| p.into_inner());
                cache.insert(
                    path.to_owned(),
                    CachedEtag {
                        len,
                        modified,
                        etag: etag.clone(),
                    },
                );
                etag
            }
        };
        Ok(Some(PartInfo {
            len,
            modified,
            etag,
        }))
    }

    /// Drops the record and any part files the completion did not use
    /// (S3 discards those too); s3s-fs leaves them behind.
    async fn forget_upload(&self, id: Uuid) -> S3Result<()> {
        for part in self.part_files(id).await? {
            match tokio::fs::remove_file(&part.path).await {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(internal(err)),
            }
        }
        match tokio::fs::remove_file(self.record_path(id)).await {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(internal(err)),
        }
        let prefix = self.root.join(Self::part_prefix(id));
        let prefix = prefix.to_string_lossy();
        let mut cache = self.etag_cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|path, _| !path.to_string_lossy().starts_with(prefix.as_ref()));
        Ok(())
    }

    fn key_file(&self, bucket: &str, storage_key: &str) -> PathBuf {
        self.root.join(bucket).join(format!("{storage_key}.key"))
    }

    /// Records the real key of an object about to be written under
    /// [`storage_key`]`(key)`. Written before the object, so an object on
    /// disk always has it. Not removed with the object: a stale one is inert
    /// (listings start from object files), and keeping it means a delete
    /// cannot race a concurrent write of the same key into an object that
    /// is never listed.
    async fn remember_key(&self, bucket: &str, key: &str) -> S3Result<()> {
        let skey = storage_key(key);
        let path = self.key_file(bucket, &skey);
        match tokio::fs::read(&path).await {
            Ok(existing) if existing == key.as_bytes() => return Ok(()),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(internal(err)),
        }
        let tmp = self
            .root
            .join(bucket)
            .join(format!(".{skey}.key.{}.tmp", Uuid::new_v4()));
        let written = async {
            tokio::fs::write(&tmp, key).await?;
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        match written {
            Ok(()) => Ok(()),
            Err(err) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                if err.kind() == io::ErrorKind::NotFound {
                    Err(s3_error!(NoSuchBucket))
                } else {
                    Err(internal(err))
                }
            }
        }
    }

    /// The bucket's objects whose real key starts with `prefix`, sorted by
    /// key. Only storage-key files count, so the `.key` files, temporary
    /// files and anything stored before the key mapping are skipped.
    async fn stored_objects(&self, bucket: &str, prefix: &str) -> S3Result<Vec<StoredObject>> {
        self.require_bucket(bucket).await?;
        let mut entries = tokio::fs::read_dir(self.root.join(bucket))
            .await
            .map_err(internal)?;
        let mut objects = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(internal)? {
            let name = entry.file_name();
            let Some(skey) = name.to_str().filter(|n| is_storage_key(n)) else {
                continue;
            };
            let meta = match entry.metadata().await {
                Ok(meta) if meta.is_file() => meta,
                Ok(_) => continue,
                // Deleted since the directory was read.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(internal(err)),
            };
            let key = match tokio::fs::read(self.key_file(bucket, skey)).await {
                Ok(bytes) => String::from_utf8(bytes).ok(),
                Err(err) if err.kind() == io::ErrorKind::NotFound => None,
                Err(err) => return Err(internal(err)),
            };
            let Some(key) = key.filter(|k| storage_key(k) == skey) else {
                tracing::warn!(
                    bucket,
                    storage_key = skey,
                    "embedded S3: object without a valid key file is not listed"
                );
                continue;
            };
            if !key.starts_with(prefix) {
                continue;
            }
            objects.push(StoredObject {
                key,
                size: meta.len(),
                modified: meta.modified().map_err(internal)?,
            });
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// One page of a listing, S3's way: a key that contains `delimiter`
    /// after `prefix` rolls up into the common prefix ending at that
    /// delimiter, and objects and common prefixes are paged together in key
    /// order, resuming after `after` (a start key, or the last key or common
    /// prefix of the previous page).
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        max_keys: usize,
    ) -> S3Result<ListPage> {
        let delimiter = delimiter.filter(|d| !d.is_empty());
        let mut contents = Vec::new();
        let mut common_prefixes = Vec::new();
        let mut last: Option<String> = None;
        let mut is_truncated = false;
        for obj in self.stored_objects(bucket, prefix).await? {
            let rolled_up = delimiter.and_then(|d| {
                obj.key[prefix.len()..]
                    .find(d)
                    .map(|pos| obj.key[..prefix.len() + pos + d.len()].to_owned())
            });
            let name = rolled_up.as_deref().unwrap_or(&obj.key);
            // Keys are sorted, so the keys of one common prefix are adjacent.
            if after.is_some_and(|after| name <= after) || last.as_deref() == Some(name) {
                continue;
            }
            if contents.len() + common_prefixes.len() == max_keys {
                is_truncated = max_keys > 0;
                break;
            }
            last = Some(name.to_owned());
            match rolled_up {
                Some(prefix) => common_prefixes.push(CommonPrefix {
                    prefix: Some(prefix),
                }),
                None => contents.push(Object {
                    size: Some(i64::try_from(obj.size).map_err(|e| internal(io::Error::other(e)))?),
                    last_modified: Some(Timestamp::from(obj.modified)),
                    key: Some(obj.key),
                    ..Default::default()
                }),
            }
        }
        Ok(ListPage {
            contents,
            common_prefixes,
            is_truncated,
            next_marker: last.filter(|_| is_truncated),
        })
    }

    async fn list_objects_v2_impl(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.check_region(&req)?;
        let input = req.input;
        let max_keys = page_size(input.max_keys, "max-keys")?;
        // The continuation token is the last key or common prefix returned.
        let after = input
            .continuation_token
            .as_deref()
            .max(input.start_after.as_deref());
        let page = self
            .list_page(
                &input.bucket,
                input.prefix.as_deref().unwrap_or(""),
                input.delimiter.as_deref(),
                after,
                max_keys,
            )
            .await?;
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            max_keys: Some(to_i32(max_keys)),
            key_count: Some(to_i32(page.contents.len() + page.common_prefixes.len())),
            continuation_token: input.continuation_token,
            next_continuation_token: page.next_marker,
            start_after: input.start_after,
            is_truncated: Some(page.is_truncated),
            contents: non_empty(page.contents),
            common_prefixes: non_empty(page.common_prefixes),
            // Keys go out unencoded, so the answer must not claim otherwise.
            encoding_type: None,
            ..Default::default()
        }))
    }

    async fn list_objects_impl(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.check_region(&req)?;
        let input = req.input;
        let max_keys = page_size(input.max_keys, "max-keys")?;
        let page = self
            .list_page(
                &input.bucket,
                input.prefix.as_deref().unwrap_or(""),
                input.delimiter.as_deref(),
                input.marker.as_deref(),
                max_keys,
            )
            .await?;
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            marker: input.marker,
            next_marker: page.next_marker,
            max_keys: Some(to_i32(max_keys)),
            is_truncated: Some(page.is_truncated),
            contents: non_empty(page.contents),
            common_prefixes: non_empty(page.common_prefixes),
            encoding_type: None,
            ..Default::default()
        }))
    }

    async fn put_object_impl(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.check_region(&req)?;
        // s3s-fs would create a missing bucket's directory on the fly.
        self.require_bucket(&req.input.bucket).await?;
        self.remember_key(&req.input.bucket, &req.input.key).await?;
        to_storage_key(&mut req.input.key);
        self.fs.put_object(req).await
    }

    async fn copy_object_impl(
        &self,
        mut req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.check_region(&req)?;
        self.require_bucket(&req.input.bucket).await?;
        // Other sources (access points, outposts) s3s-fs refuses anyway.
        if let CopySource::Bucket { key, .. } = &mut req.input.copy_source {
            *key = storage_key(key).into();
        }
        self.remember_key(&req.input.bucket, &req.input.key).await?;
        to_storage_key(&mut req.input.key);
        self.fs.copy_object(req).await
    }

    async fn delete_objects_impl(
        &self,
        mut req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.check_region(&req)?;
        self.require_bucket(&req.input.bucket).await?;
        let mut real_keys = HashMap::new();
        for object in &mut req.input.delete.objects {
            let skey = storage_key(&object.key);
            real_keys.insert(skey.clone(), std::mem::replace(&mut object.key, skey));
        }
        let mut resp = self.fs.delete_objects(req).await?;
        let restore = |key: &mut Option<String>| {
            if let Some(real) = key.as_ref().and_then(|k| real_keys.get(k)) {
                *key = Some(real.clone());
            }
        };
        for deleted in resp.output.deleted.iter_mut().flatten() {
            restore(&mut deleted.key);
        }
        for error in resp.output.errors.iter_mut().flatten() {
            restore(&mut error.key);
        }
        Ok(resp)
    }

    async fn create_multipart_upload_impl(
        &self,
        mut req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.check_region(&req)?;
        // s3s-fs would happily open an upload into a bucket that is not there.
        self.require_bucket(&req.input.bucket).await?;
        let record = UploadRecord {
            bucket: req.input.bucket.clone(),
            key: req.input.key.clone(),
            initiated_unix_ms: unix_ms(SystemTime::now()),
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
        self.write_record(id, &record).await.map_err(internal)?;
        Ok(resp)
    }

    async fn upload_part_impl(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.check_region(&req)?;
        let input = &req.input;
        self.open_upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        // s3s-fs only checks the upper bound; 0 or a negative number would
        // become a part that can never be completed.
        if input.part_number < 1 {
            return Err(s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            ));
        }
        to_storage_key(&mut req.input.key);
        self.fs.upload_part(req).await
    }

    async fn upload_part_copy_impl(
        &self,
        mut req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.check_region(&req)?;
        let input = &req.input;
        self.open_upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        to_storage_key(&mut req.input.key);
        if let CopySource::Bucket { key, .. } = &mut req.input.copy_source {
            *key = storage_key(key).into();
        }
        self.fs.upload_part_copy(req).await
    }

    async fn list_parts_impl(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.check_region(&req)?;
        let input = req.input;
        let id = self
            .open_upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        let max_parts = page_size(input.max_parts, "max-parts")?;
        let marker = input.part_number_marker.unwrap_or(0);
        if marker < 0 {
            return Err(s3_error!(
                InvalidArgument,
                "part-number-marker must be non-negative"
            ));
        }

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
                ..Default::default()
            });
        }
        let is_truncated = remaining.peek().is_some();
        let next_marker = parts.last().and_then(|p| p.part_number).unwrap_or(marker);

        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            max_parts: Some(i32::try_from(max_parts).unwrap_or(i32::MAX)),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: Some(next_marker),
            is_truncated: Some(is_truncated),
            parts: Some(parts),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload_impl(
        &self,
        mut req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.check_region(&req)?;
        let input = &req.input;
        let id = self
            .open_upload(&input.bucket, &input.key, &input.upload_id)
            .await?;

        // Everything s3s-fs would reject is rejected here first: once s3s-fs
        // starts completing, a failure leaves the upload deleted.
        let requested = input
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.as_deref())
            .unwrap_or_default();
        if requested.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "You must specify at least one part"
            ));
        }
        let prefix = Self::part_prefix(id);
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
            let Some(info) = self
                .part_info(&self.root.join(format!("{prefix}{number}")))
                .await?
            else {
                return Err(s3_error!(
                    InvalidPart,
                    "part {number} has not been uploaded"
                ));
            };
            let given = part.e_tag.as_ref().map(ETag::value);
            if given != Some(info.etag.as_str()) {
                return Err(s3_error!(
                    InvalidPart,
                    "part {number}: ETag {given:?} does not match the uploaded part's \"{}\"",
                    info.etag
                ));
            }
            let is_last = index + 1 == requested.len();
            if !is_last && info.len < MIN_PART_SIZE {
                return Err(s3_error!(
                    EntityTooSmall,
                    "Your proposed upload is smaller than the minimum allowed size (part {number} is {} bytes)",
                    info.len
                ));
            }
            // S3 allows gaps (1, 2, 5); s3s-fs insists on 1..=N.
            if usize::try_from(number).ok() != Some(index + 1) {
                return Err(s3_error!(
                    InvalidPart,
                    "embedded S3 limitation: part numbers must be exactly 1..=N, found {number} at position {}",
                    index + 1
                ));
            }
        }

        self.remember_key(&input.bucket, &input.key).await?;
        let real_key = input.key.clone();
        to_storage_key(&mut req.input.key);
        let mut resp = self.fs.complete_multipart_upload(req).await?;
        // s3s-fs answers through a keep-alive body (whitespace until the XML
        // is ready); its work is already done, so send a plain response.
        if let Some(pending) = resp.output.future.take() {
            resp.output = pending.await?;
        }
        resp.output.key = Some(real_key);
        self.forget_upload(id).await?;
        Ok(resp)
    }

    async fn abort_multipart_upload_impl(
        &self,
        mut req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.check_region(&req)?;
        let input = &req.input;
        let id = self
            .open_upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        to_storage_key(&mut req.input.key);
        let resp = self.fs.abort_multipart_upload(req).await?;
        self.forget_upload(id).await?;
        Ok(resp)
    }

    async fn list_multipart_uploads_impl(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        self.check_region(&req)?;
        let input = req.input;
        self.require_bucket(&input.bucket).await?;
        if input.delimiter.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "embedded S3: ListMultipartUploads with a delimiter is not supported"
            ));
        }
        let max_uploads = page_size(input.max_uploads, "max-uploads")?;
        let prefix = input.prefix.as_deref().unwrap_or("");

        let mut uploads: Vec<(UploadRecord, Uuid)> = Vec::new();
        let mut dir = tokio::fs::read_dir(&self.root).await.map_err(internal)?;
        while let Some(entry) = dir.next_entry().await.map_err(internal)? {
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_prefix(".moc-mpu-"))
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| Uuid::parse_str(n).ok())
            else {
                continue;
            };
            if let Some(rec) = self.read_record(id).await?
                && rec.bucket == input.bucket
                && rec.key.starts_with(prefix)
            {
                uploads.push((rec, id));
            }
        }
        // S3's order: by key, then oldest upload first.
        uploads.sort_by(|(a, a_id), (b, b_id)| {
            (&a.key, a.initiated_unix_ms, a_id).cmp(&(&b.key, b.initiated_unix_ms, b_id))
        });

        if let Some(key_marker) = input.key_marker.as_deref() {
            let after_upload = input.upload_id_marker.as_deref().and_then(|marker| {
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

        let is_truncated = uploads.len() > max_uploads;
        uploads.truncate(max_uploads);
        let (next_key_marker, next_upload_id_marker) = match uploads.last() {
            Some((rec, id)) if is_truncated => (Some(rec.key.clone()), Some(id.to_string())),
            _ => (None, None),
        };
        let uploads = uploads
            .into_iter()
            .map(|(rec, id)| MultipartUpload {
                key: Some(rec.key),
                upload_id: Some(id.to_string()),
                initiated: Some(Timestamp::from(
                    UNIX_EPOCH + Duration::from_millis(rec.initiated_unix_ms),
                )),
                ..Default::default()
            })
            .collect();

        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            max_uploads: Some(i32::try_from(max_uploads).unwrap_or(i32::MAX)),
            is_truncated: Some(is_truncated),
            next_key_marker,
            next_upload_id_marker,
            uploads: Some(uploads),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }
}

fn page_size(requested: Option<i32>, name: &str) -> S3Result<usize> {
    match requested {
        None => Ok(MAX_PAGE),
        Some(n) => usize::try_from(n)
            .map(|n| n.min(MAX_PAGE))
            .map_err(|_| s3_error!(InvalidArgument, "{name} must be non-negative")),
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
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

fn is_storage_key(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn to_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
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
macro_rules! s3_methods {
    (delegate: $($method:ident($input:ty) -> $output:ty;)*) => {$(
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
                self.fs.$method(req).await
            })
        }
    )*};
    // Operations on one object that need nothing but the key mapped.
    (keyed: $($method:ident($input:ty) -> $output:ty;)*) => {$(
        fn $method<'life0, 'async_trait>(
            &'life0 self,
            mut req: S3Request<$input>,
        ) -> S3Future<'async_trait, $output>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move {
                self.check_region(&req)?;
                to_storage_key(&mut req.input.key);
                self.fs.$method(req).await
            })
        }
    )*};
    (override: $($method:ident($input:ty) -> $output:ty => $imp:ident;)*) => {$(
        fn $method<'life0, 'async_trait>(
            &'life0 self,
            req: S3Request<$input>,
        ) -> S3Future<'async_trait, $output>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(self.$imp(req))
        }
    )*};
}

impl S3 for Backend {
    s3_methods! { delegate:
        create_bucket(CreateBucketInput) -> CreateBucketOutput;
        delete_bucket(DeleteBucketInput) -> DeleteBucketOutput;
        head_bucket(HeadBucketInput) -> HeadBucketOutput;
        get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput;
        list_buckets(ListBucketsInput) -> ListBucketsOutput;
    }

    s3_methods! { keyed:
        get_object(GetObjectInput) -> GetObjectOutput;
        head_object(HeadObjectInput) -> HeadObjectOutput;
        delete_object(DeleteObjectInput) -> DeleteObjectOutput;
    }

    s3_methods! { override:
        list_objects(ListObjectsInput) -> ListObjectsOutput => list_objects_impl;
        list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output => list_objects_v2_impl;
        put_object(PutObjectInput) -> PutObjectOutput => put_object_impl;
        copy_object(CopyObjectInput) -> CopyObjectOutput => copy_object_impl;
        delete_objects(DeleteObjectsInput) -> DeleteObjectsOutput => delete_objects_impl;
        create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput
            => create_multipart_upload_impl;
        upload_part(UploadPartInput) -> UploadPartOutput => upload_part_impl;
        upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput => upload_part_copy_impl;
        list_parts(ListPartsInput) -> ListPartsOutput => list_parts_impl;
        complete_multipart_upload(CompleteMultipartUploadInput) -> CompleteMultipartUploadOutput
            => complete_multipart_upload_impl;
        abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput
            => abort_multipart_upload_impl;
        list_multipart_uploads(ListMultipartUploadsInput) -> ListMultipartUploadsOutput
            => list_multipart_uploads_impl;
    }
}
