//! `TestApp`: the API over a fresh database (from `#[sqlx::test]`), a fresh
//! embedded S3 (or the external store `MOC_TEST_S3` names, see
//! `crate::store`) and the shared local Redis, driven through the same
//! Vercel routing and handlers as the dev server and the function binaries.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use moc_dev::router::VercelRouter;
use moc_dev::s3::{EmbeddedS3, EmbeddedS3Config};
use moc_shared::AppState;
use moc_shared::config::Config;
use moc_shared::credentials::AwsCredentials;
use moc_shared::db::{Db, DbTarget, Statement, Statements};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use uuid::Uuid;

pub use crate::store::StoreKind;
use crate::store::{ExternalStore, external_store};

pub const ACCESS_KEY: &str = "moc-test-access";
pub const SECRET_KEY: &str = "moc-test-secret";
pub const BUCKET: &str = "moc-test";
pub const DEV_USER: &str = "dev-user-00000000-0000-0000-0000-000000000001";
pub const MIB: usize = 1024 * 1024;

pub struct TestApp {
    pub state: AppState,
    pub router: VercelRouter,
    /// The store the app's S3 calls go to, and its endpoint.
    pub store: StoreKind,
    pub s3_endpoint: String,
    pub stage: String,
    /// The embedded S3, unless the app is on an external store.
    _embedded: Option<EmbeddedS3>,
    dir: PathBuf,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl TestResponse {
    /// An answer that did not come through `TestApp::send` (a socket, a
    /// dispatch, the gateway), with its JSON body.
    pub fn of_json(status: StatusCode, headers: http::HeaderMap, body: &[u8]) -> Self {
        Self {
            status,
            headers,
            body: serde_json::from_slice(body).expect("a JSON body"),
        }
    }

    /// `error.details`, where context fields live (docs/contract.md §0).
    pub fn details(&self) -> &Value {
        &self.body["error"]["details"]
    }

    pub fn is_server_error(&self) -> bool {
        self.status.is_server_error()
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected answer: {}",
            self.body
        );
        self
    }

    /// The status and the finer code (`error.details.reason`, the code the
    /// API answered before ADR 0008) of an error, in the envelope.
    #[track_caller]
    pub fn assert_error(&self, status: u16, reason: &str) -> &Self {
        self.assert_status(status);
        assert_envelope(&self.body, &self.headers, reason);
        self
    }

    /// `error.code` (and `error.type`): the frontend's vocabulary.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

/// Whether `code` is in the production frontend's vocabulary.
pub fn in_vocabulary(code: &str) -> bool {
    moc_shared::error::ErrorCode::ALL
        .iter()
        .any(|known| known.as_str() == code)
}

/// The error envelope of docs/contract.md §0, as the production frontend validates
/// it: `success: false`, `error.code` and `error.type` the same code of its
/// vocabulary, `error.details.reason` the finer code, a string
/// `error.message`, and the request ID in the body (`requestId` and
/// `correlationId`) and in both headers.
#[track_caller]
pub fn assert_envelope(body: &Value, headers: &http::HeaderMap, reason: &str) {
    assert_eq!(body["success"], false, "{body}");
    let code = body["error"]["code"].as_str().unwrap_or_default();
    assert!(in_vocabulary(code), "{code} is not the frontend's: {body}");
    assert_eq!(body["error"]["type"], code, "{body}");
    assert_eq!(body["error"]["details"]["reason"], reason, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    let timestamp = body["timestamp"].as_str().expect("timestamp");
    assert!(
        chrono::DateTime::parse_from_rfc3339(timestamp).is_ok() && timestamp.ends_with('Z'),
        "{timestamp}"
    );
    let request_id = body["requestId"].as_str().expect("requestId");
    assert_eq!(body["correlationId"], request_id, "{body}");
    assert_eq!(headers["x-request-id"].to_str().unwrap(), request_id);
    assert_eq!(headers["x-correlation-id"].to_str().unwrap(), request_id);
}

/// The local port of a transaction-mode pooler the tests must go through.
pub fn pooler_port() -> Option<u16> {
    std::env::var("MOC_TEST_POOLER_PORT")
        .ok()
        .map(|port| port.parse().expect("MOC_TEST_POOLER_PORT is a port"))
}

/// How the apps send their statements: `MOC_TEST_DB_STATEMENTS`
/// (`DATABASE_STATEMENTS`'s values), unnamed unless set.
pub fn statements() -> Statements {
    std::env::var("MOC_TEST_DB_STATEMENTS").map_or(Statements::Unnamed, |value| {
        Statements::parse(&value).expect("MOC_TEST_DB_STATEMENTS is unnamed or named")
    })
}

/// The test database with the production settings, through the pooler when
/// one is set, its statements sent as [`statements`] says.
pub fn through_pooler(pool: &PgPool) -> Db {
    let options = (*pool.connect_options()).clone();
    let target = target_of(match pooler_port() {
        Some(port) => options.port(port),
        None => options,
    });
    Db::lazy(target.with_statements(statements()))
}

/// The functions' view of a test database sqlx's test harness made (trust
/// authentication: no password).
pub fn target_of(options: PgConnectOptions) -> DbTarget {
    DbTarget::parse(&url_of(&options), &moc_shared::tls::TrustRoots::builtin())
        .expect("a test database URL")
}

/// [`target_of`] without TLS, for a test that reads the protocol on the way.
pub fn plaintext_target_of(options: PgConnectOptions) -> DbTarget {
    let url = format!("{}?sslmode=disable", url_of(&options));
    DbTarget::parse(&url, &moc_shared::tls::TrustRoots::builtin()).expect("a test database URL")
}

fn url_of(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("postgres"),
    )
}

/// The S3 variables of an app on the embedded S3 `s3`.
fn embedded_vars(s3: &EmbeddedS3) -> Vec<(String, String)> {
    vec![
        ("S3_ENDPOINT".into(), s3.endpoint()),
        ("S3_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
        ("S3_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
    ]
}

/// The S3 variables of an app on `external` (its region too: a real store
/// checks the SigV4 region, garage against its `s3_region`).
fn external_vars(external: &ExternalStore) -> Vec<(String, String)> {
    vec![
        ("S3_ENDPOINT".into(), external.endpoint.clone()),
        ("S3_REGION".into(), external.region.clone()),
        ("S3_ACCESS_KEY_ID".into(), external.access_key_id.clone()),
        (
            "S3_SECRET_ACCESS_KEY".into(),
            external.secret_access_key.clone(),
        ),
        ("MOC_BUCKET".into(), external.bucket.clone()),
    ]
}

fn unique_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "moc-api-test-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        Uuid::new_v4().simple()
    ))
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> Self {
        Self::with_env(pool, &[]).await
    }

    /// `env` overrides the test defaults, as environment variables would.
    ///
    /// With `MOC_TEST_POOLER_PORT` set (scripts/pgbouncer-check), the app
    /// reaches the test's database through the transaction-mode pooler on
    /// that local port, with the production pool settings, as a function
    /// behind a pooled `DATABASE_URL` does.
    pub async fn with_env(pool: PgPool, env: &[(&str, &str)]) -> Self {
        Self::with_db(through_pooler(&pool), env).await
    }

    /// The app over exactly this database (no pooler rerouting).
    pub async fn with_db(db: Db, env: &[(&str, &str)]) -> Self {
        let dir = unique_dir();
        let external = external_store();
        let store = external.as_ref().map_or(StoreKind::Embedded, |e| e.kind);
        let (s3_vars, embedded) = match &external {
            Some(external) => (external_vars(external), None),
            None => {
                let s3 = EmbeddedS3::start(EmbeddedS3Config {
                    data_dir: dir.clone(),
                    bind: "127.0.0.1:0".parse().unwrap(),
                    access_key: ACCESS_KEY.into(),
                    secret_key: SECRET_KEY.into(),
                    region: "us-east-1".into(),
                    buckets: vec![BUCKET.into()],
                })
                .await
                .expect("embedded S3 starts");
                (embedded_vars(&s3), Some(s3))
            }
        };
        // A stage of its own keeps this test's Redis keys and S3 keys apart.
        let stage = format!("t{}", &Uuid::new_v4().simple().to_string()[..10]);
        let mut vars: HashMap<String, String> = [
            ("DATABASE_URL", "postgres://unused-the-pool-is-given"),
            ("MOC_BUCKET", BUCKET),
            ("AUTH_BYPASS", "true"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .chain(s3_vars)
        .collect();
        let s3_endpoint = vars["S3_ENDPOINT"].clone();
        vars.insert("STAGE".into(), stage.clone());
        // scripts/redis-tls-check points every app at a TLS Redis with a
        // CA of its own.
        for (var, test_var) in [
            ("REDIS_URL", "MOC_TEST_REDIS_URL"),
            ("SSL_CERT_FILE", "MOC_TEST_SSL_CERT_FILE"),
        ] {
            if let Ok(value) = std::env::var(test_var) {
                vars.insert(var.into(), value);
            }
        }
        for (k, v) in env {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        let config =
            Config::from_lookup(|name| vars.get(name).cloned()).expect("test config is valid");
        // As a function chooses them from its environment.
        let credentials = AwsCredentials::from_lookup(
            &|name| vars.get(name).cloned(),
            &config.s3.region,
            &config.trust,
        );
        let state = AppState::with_db(config, db, credentials).expect("state builds");
        Self {
            state,
            router: VercelRouter::for_repo(),
            store,
            s3_endpoint,
            stage,
            _embedded: embedded,
            dir,
        }
    }

    /// The bucket the app writes to.
    pub fn bucket(&self) -> &str {
        &self.state.config().s3.bucket
    }

    pub async fn send(&self, request: Request<Full<Bytes>>) -> TestResponse {
        let response = moc_dev::server::handle(&self.router, self.state.clone(), request).await;
        let (parts, body) = response.into_parts();
        assert!(
            parts.headers.contains_key("x-request-id"),
            "every answer carries x-request-id"
        );
        assert_eq!(
            parts.headers.get("x-correlation-id"),
            parts.headers.get("x-request-id"),
            "every answer carries X-Correlation-Id equal to x-request-id"
        );
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()))
        };
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub fn request(method: Method, path: &str) -> http::request::Builder {
        Request::builder().method(method).uri(path)
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> TestResponse {
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        self.send(
            Self::request(method, path)
                .header("content-type", "application/json")
                .body(Full::new(bytes))
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: Value) -> TestResponse {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.call(Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> TestResponse {
        self.call(Method::DELETE, path, None).await
    }

    /// Calls the expiry sweeper as Vercel Cron does, with `secret` as the
    /// bearer token (none: no Authorization header).
    pub async fn sweep(&self, secret: Option<&str>) -> TestResponse {
        let mut request = Self::request(Method::GET, "/api/cron/expire-upload-sessions");
        if let Some(secret) = secret {
            request = request.header("authorization", format!("Bearer {secret}"));
        }
        self.send(request.body(Full::new(Bytes::new())).unwrap())
            .await
    }

    /// Moves a session's expiry `minutes` into the past (negative: future).
    pub async fn expire(&self, session: &str, minutes: i64) {
        Statement::new(
            "UPDATE upload_sessions
                SET expires_at = (now() AT TIME ZONE 'utc') - make_interval(mins => $2)
              WHERE id = $1::uuid",
        )
        .bind(session.to_owned())
        .bind(i32::try_from(minutes).expect("minutes fit an i32"))
        .execute(self.state.db())
        .await
        .expect("expire the session");
    }

    /// The S3 key and upload ID registration stored for a file.
    pub async fn file_upload(&self, file: &str) -> (String, String) {
        Statement::new("SELECT s3_key, upload_id FROM upload_session_files WHERE id = $1::uuid")
            .bind(file.to_owned())
            .reading::<(String, String)>()
            .fetch_one(self.state.db())
            .await
            .expect("the file row")
    }

    /// Aborts the file's S3 upload behind the API's back, as a store that
    /// lost it would; the file's key.
    pub async fn abort_upload_in_s3(&self, file: &str) -> String {
        let (key, upload_id) = self.file_upload(file).await;
        self.state
            .s3()
            .abort_multipart_upload(&key, &upload_id)
            .await
            .expect("AbortMultipartUpload");
        key
    }

    /// Whether S3 holds an object at `key`.
    pub async fn object_exists(&self, key: &str) -> bool {
        self.state
            .s3()
            .object_size(key)
            .await
            .expect("HeadObject")
            .is_some()
    }

    pub async fn put_part(
        &self,
        session: &str,
        file: &str,
        part: &str,
        bytes: Bytes,
    ) -> TestResponse {
        self.send(
            Self::request(
                Method::PUT,
                &format!("/api/mocs/uploads/sessions/{session}/files/{file}/parts/{part}"),
            )
            .header("content-type", "application/octet-stream")
            .header("content-length", bytes.len())
            .body(Full::new(bytes))
            .unwrap(),
        )
        .await
    }

    /// Creates a session declaring `files`, returning its ID.
    pub async fn create_session(&self, files: Value) -> String {
        let response = self
            .post("/api/mocs/uploads/sessions", json!({ "files": files }))
            .await;
        response.assert_status(201);
        response.body["sessionId"].as_str().unwrap().to_owned()
    }

    pub async fn register(&self, session: &str, file: Value) -> TestResponse {
        self.post(&format!("/api/mocs/uploads/sessions/{session}/files"), file)
            .await
    }

    pub async fn complete(&self, session: &str, file: &str, parts: Value) -> TestResponse {
        self.post(
            &format!("/api/mocs/uploads/sessions/{session}/files/{file}/complete"),
            json!({ "parts": parts }),
        )
        .await
    }

    /// A new session declaring `meta`, with that file registered; returns
    /// (sessionId, fileId).
    pub async fn registered_file(&self, meta: Value) -> (String, String) {
        let session = self.create_session(json!([meta.clone()])).await;
        let registered = self.register(&session, meta).await;
        registered.assert_status(201);
        let file_id = registered.body["fileId"].as_str().unwrap().to_owned();
        (session, file_id)
    }

    /// Registers a small file and uploads it as one proxied part; returns
    /// (fileId, etag).
    pub async fn upload_single_part(
        &self,
        session: &str,
        meta: Value,
        bytes: Bytes,
    ) -> (String, String) {
        let registered = self.register(session, meta).await;
        registered.assert_status(201);
        let file_id = registered.body["fileId"].as_str().unwrap().to_owned();
        let part = self.put_part(session, &file_id, "1", bytes).await;
        part.assert_status(200);
        (file_id, part.body["etag"].as_str().unwrap().to_owned())
    }

    /// Registers, uploads and completes a small single-part file.
    pub async fn completed_file(
        &self,
        session: &str,
        meta: Value,
        bytes: Bytes,
    ) -> (String, String) {
        let (file_id, etag) = self.upload_single_part(session, meta, bytes).await;
        let file_url = self.complete_single_part(session, &file_id, &etag).await;
        (file_id, file_url)
    }

    /// Uploads a registered file's bytes as its one proxied part and
    /// completes it; returns its `fileUrl`.
    pub async fn upload_and_complete(&self, session: &str, file_id: &str, bytes: Bytes) -> String {
        let part = self.put_part(session, file_id, "1", bytes).await;
        part.assert_status(200);
        let etag = part.body["etag"].as_str().unwrap().to_owned();
        self.complete_single_part(session, file_id, &etag).await
    }

    async fn complete_single_part(&self, session: &str, file_id: &str, etag: &str) -> String {
        let completed = self
            .complete(session, file_id, json!([{"partNumber": 1, "etag": etag}]))
            .await;
        completed.assert_status(200);
        completed.body["fileUrl"].as_str().unwrap().to_owned()
    }

    /// Serves the app on a real local port (the dev server's own loop).
    pub async fn serve_http(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = self.state.clone();
        tokio::spawn(async move { moc_dev::server::serve(listener, state).await });
        format!("http://{addr}")
    }

    /// Uploads part 1 of a newly registered file through an app on the
    /// same database and stage whose S3 is a port nobody listens on.
    pub async fn part_upload_with_s3_down(&self, pool: PgPool) -> TestResponse {
        let (session, file) = self.registered_file(pdf_meta("a.pdf", 10)).await;
        let broken = TestApp::with_env(
            pool,
            &[
                ("S3_ENDPOINT", "http://127.0.0.1:9"),
                ("STAGE", &self.stage),
            ],
        )
        .await;
        broken.put_part(&session, &file, "1", pdf_bytes(10)).await
    }

    /// A part upload over a real socket whose client sends five bytes,
    /// then stalls for 3 s: past a short `PART_UPLOAD_BUDGET_MS`.
    pub async fn stalled_part_upload(&self, session: &str, file: &str) -> TestResponse {
        use futures::StreamExt;
        let base = self.serve_http().await;
        let stalled = futures::stream::iter([Ok::<_, std::io::Error>(b"%PDF-".to_vec())]).chain(
            futures::stream::once(async {
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                Ok(b"rest".to_vec())
            }),
        );
        let answer = reqwest::Client::new()
            .put(format!(
                "{base}/api/mocs/uploads/sessions/{session}/files/{file}/parts/1"
            ))
            .body(reqwest::Body::wrap_stream(stalled))
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let headers = answer.headers().clone();
        TestResponse::of_json(status, headers, &answer.bytes().await.unwrap())
    }

    /// Finalizes a session of one completed PDF while an injected
    /// constraint makes the `moc_files` insert fail, after the MOC insert;
    /// returns the session and the answer.
    pub async fn finalize_failing_after_the_moc_insert(
        &self,
        pool: &PgPool,
    ) -> (String, TestResponse) {
        let session = self.create_session(json!([pdf_meta("a.pdf", 64)])).await;
        self.completed_file(&session, pdf_meta("a.pdf", 64), pdf_bytes(64))
            .await;
        sqlx::query(
            "ALTER TABLE moc_files ADD CONSTRAINT injected_failure CHECK (file_type <> 'instruction')",
        )
        .execute(pool)
        .await
        .unwrap();
        let body = json!({"uploadSessionId": session, "title": "Doomed"});
        let response = self.post("/api/mocs/uploads/finalize", body).await;
        (session, response)
    }

    /// The multipart uploads S3 holds open in the app's bucket.
    pub async fn uploads(&self) -> Vec<aws_sdk_s3::types::MultipartUpload> {
        self.state
            .s3()
            .client()
            .list_multipart_uploads()
            .bucket(self.bucket())
            .send()
            .await
            .expect("ListMultipartUploads")
            .uploads()
            .to_vec()
    }

    /// How many of them are under this app's stage (the bucket of an
    /// external store is shared by every test).
    pub async fn open_uploads(&self) -> usize {
        let own = format!("{}/", self.stage);
        let uploads = self.uploads().await;
        uploads
            .iter()
            .filter(|upload| upload.key().is_some_and(|key| key.starts_with(&own)))
            .count()
    }
}

/// moto's server for one test: the one scripts/oidc-check started
/// (`MOC_TEST_MOTO_URL`), else one of the test's own from `MOTO_SERVER`
/// (scripts/test and scripts/pgbouncer-check source scripts/moto), stopped
/// when the test ends.
pub struct Moto {
    pub url: String,
    _own: Option<tokio::process::Child>,
}

pub async fn moto() -> Moto {
    if let Ok(url) = std::env::var("MOC_TEST_MOTO_URL") {
        return Moto { url, _own: None };
    }
    let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let child = tokio::process::Command::new(&program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{program} (moto[server]; scripts/moto installs it): {e}"));
    for _ in 0..150 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            let url = format!("http://127.0.0.1:{port}");
            return Moto {
                url,
                _own: Some(child),
            };
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("moto does not answer on 127.0.0.1:{port}");
}

/// A bucket of the test's own in moto's S3.
pub async fn moto_bucket(moto: &str) -> String {
    let bucket = format!(
        "moc-moto-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(moto)
        .force_path_style(true)
        .http_client(moc_shared::s3::https_client())
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "moto", "moto", None, None, "moto",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(config)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("moto creates the bucket");
    bucket
}

/// moto's S3 at `moto`, behind a local proxy that holds each
/// CreateMultipartUpload for `delay` before it forwards it: an S3 slow to
/// open an upload. Everything passes as moto answered it.
pub async fn moto_s3_via_slow_proxy(moto: &str, delay: std::time::Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = moto.to_owned();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let service = hyper::service::service_fn(move |request| {
                forward(upstream.clone(), request, delay)
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    format!("http://{addr}")
}

async fn forward(
    upstream: String,
    request: Request<hyper::body::Incoming>,
    create_delay: std::time::Duration,
) -> Result<http::Response<Full<Bytes>>, std::convert::Infallible> {
    use http_body_util::BodyExt;
    let (parts, body) = request.into_parts();
    let creates_an_upload = parts.method == http::Method::POST
        && parts.uri.query().is_some_and(|query| {
            query
                .split('&')
                .any(|pair| pair == "uploads" || pair == "uploads=")
        });
    if creates_an_upload {
        tokio::time::sleep(create_delay).await;
    }
    let body = body.collect().await.expect("the request body").to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers;
    headers.remove(http::header::HOST);
    let answer = reqwest::Client::new()
        .request(parts.method, format!("{upstream}{path}"))
        .headers(headers)
        .body(body)
        .send()
        .await
        .expect("moto answers");
    let status = answer.status();
    let mut headers = answer.headers().clone();
    let body = answer.bytes().await.expect("moto's answer");
    headers.remove(http::header::TRANSFER_ENCODING);
    let mut response = http::Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

pub fn pdf_meta(name: &str, size: usize) -> Value {
    json!({"category": "instruction", "name": name, "size": size, "type": "application/pdf", "ext": "pdf"})
}

pub fn png_meta(name: &str, size: usize) -> Value {
    json!({"category": "image", "name": name, "size": size, "type": "image/png", "ext": "png"})
}

pub fn csv_meta(name: &str, size: usize) -> Value {
    json!({"category": "parts-list", "name": name, "size": size, "type": "text/csv", "ext": "csv"})
}

/// `len` bytes that start with the PDF signature.
pub fn pdf_bytes(len: usize) -> Bytes {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..len.saturating_sub(bytes.len())).map(|i| (i * 31 % 251).to_le_bytes()[0]));
    bytes.truncate(len);
    Bytes::from(bytes)
}

pub fn png_bytes(len: usize) -> Bytes {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    bytes.resize(len, 7);
    Bytes::from(bytes)
}
