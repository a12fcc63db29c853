//! Gateway mode of the dev server: the same Vercel routing in front of the
//! real function binaries, one process per route file, as Vercel runs them.
//!
//! `moc-dev` with `MOC_DEV_FUNCTIONS` set (inline JSON, or the path of a JSON
//! file) maps each route file to the address its function listens on:
//!
//! ```json
//! { "api/mocs/uploads/finalize.rs": 3207,
//!   "api/mocs/uploads/sessions/index.rs": "127.0.0.1:3201" }
//! ```
//!
//! (a port means `127.0.0.1:port`; `host:port` and `http://host:port` work
//! too: the `VERCEL_DEV_PORT` mode, functions someone else started). A value
//! `{"ipc": "/path/to/executable", "log": "/path/to.log"}` is the IPC mode,
//! the production invocation path (`crate::ipc`): the gateway starts that
//! executable itself with a clean environment (`MOC_DEV_FUNCTION_ENV`, a file
//! of `KEY=VALUE` lines), hands it a `VERCEL_IPC_PATH` socket, waits for its
//! `server-started` frame and checks `/_vercel/ping`; every request then
//! carries the `x-vercel-internal-*` headers and must get exactly one `end`
//! frame. `GET /_moc/ipc-accounting` reports that accounting. In both modes
//! no `x-vercel-internal-*` header crosses the gateway from the client to a
//! function or from a function to the client. Each request is resolved by [`VercelRouter`], checked against the
//! platform's 4.5 MB body limit, and forwarded over HTTP/1.1 with the path the
//! client sent, the bound parameters appended as query parameters, the
//! headers (hop-by-hop ones dropped, `x-forwarded-*` and an `x-vercel-id`
//! added, as Vercel adds them) and the body streamed. The function's answer is
//! streamed back. What the platform itself answers, it answers in the API's
//! error shape: 404 for an unrouted path, 413 over the body limit, 502
//! `FUNCTION_INVOCATION_FAILED` when the function is not answering, 504
//! `FUNCTION_INVOCATION_TIMEOUT` past the route's `maxDuration` in
//! `vercel.json`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use moc_shared::box_error::BoxError;
use moc_shared::error::ApiError;
use moc_shared::routes::{ROUTES, Route};
use serde::Deserialize;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::ipc::{self, IpcFunction, IpcSpec};
use crate::platform;
use crate::router::VercelRouter;

/// Vercel's default `maxDuration` for a function `vercel.json` does not list.
const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(300);

pub type GatewayBody = UnsyncBoxBody<Bytes, BoxError>;
type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;

/// How long `/_moc/ipc-accounting` waits, by default, for the `end` frames
/// of requests still in flight.
const ACCOUNTING_WAIT: Duration = Duration::from_secs(5);

/// What a value of the function map may be.
const ADDRESS_FORMS: &str =
    r#"a port, host:port, http://host:port or {"ipc": EXECUTABLE, "log": FILE}"#;

/// Where each function listens, by route file.
#[derive(Debug, Clone)]
pub struct Functions {
    by_file: HashMap<&'static str, Upstream>,
}

/// How the gateway reaches one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// A process already listening there (`VERCEL_DEV_PORT` mode).
    Http(Uri),
    /// An executable the gateway runs over IPC (production's path).
    Ipc(IpcSpec),
}

impl Functions {
    /// Reads `MOC_DEV_FUNCTIONS`: inline JSON when it starts with `{`, else
    /// the path of a JSON file.
    pub fn from_setting(setting: &str) -> Result<Self, BoxError> {
        let trimmed = setting.trim();
        if trimmed.starts_with("{") {
            return Self::parse(trimmed).map_err(|e| format!("MOC_DEV_FUNCTIONS: {e}").into());
        }
        let text = std::fs::read_to_string(trimmed)
            .map_err(|e| format!("MOC_DEV_FUNCTIONS: cannot read {trimmed}: {e}"))?;
        Self::parse(&text).map_err(|e| format!("MOC_DEV_FUNCTIONS ({trimmed}): {e}").into())
    }

    /// Parses the route file → address map; every key must be a route file.
    pub fn parse(json: &str) -> Result<Self, String> {
        let map: HashMap<String, Value> =
            serde_json::from_str(json).map_err(|e| format!("not a JSON object: {e}"))?;
        let mut by_file = HashMap::new();
        let mut problems = Vec::new();
        for (file, address) in &map {
            let Some(route) = ROUTES.iter().find(|r| r.file == file) else {
                problems.push(format!("{file:?} is not a route file"));
                continue;
            };
            match upstream(address) {
                Some(upstream) => {
                    by_file.insert(route.file, upstream);
                }
                None => problems.push(format!("{file}: {address} is not {ADDRESS_FORMS}")),
            }
        }
        if !problems.is_empty() {
            let known: Vec<&str> = ROUTES.iter().map(|r| r.file).collect();
            return Err(format!(
                "{}; the route files are: {}",
                problems.join("; "),
                known.join(", ")
            ));
        }
        Ok(Self { by_file })
    }

    pub fn get(&self, route: &Route) -> Option<&Upstream> {
        self.by_file.get(route.file)
    }

    /// The route files no function is mapped to (they answer 502).
    pub fn unmapped(&self) -> Vec<&'static str> {
        ROUTES
            .iter()
            .map(|r| r.file)
            .filter(|f| !self.by_file.contains_key(f))
            .collect()
    }

    /// One line per route file, for the banner.
    pub fn describe(&self) -> String {
        ROUTES
            .iter()
            .map(|r| match self.by_file.get(r.file) {
                Some(Upstream::Http(uri)) => format!("    {uri}  {}", r.file),
                Some(Upstream::Ipc(spec)) => {
                    format!("    IPC {}  {}", spec.executable.display(), r.file)
                }
                None => format!("    (unmapped: 502)  {}", r.file),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `MOC_DEV_FUNCTION_ENV`: the whole environment of the functions the
/// gateway starts, as `KEY=VALUE` lines (blank lines and `#` comments skipped).
pub fn read_env_file(path: &str) -> Result<Vec<(String, String)>, BoxError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("MOC_DEV_FUNCTION_ENV: cannot read {path}: {e}"))?;
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| match line.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(format!("MOC_DEV_FUNCTION_ENV ({path}): {line:?} is not KEY=VALUE").into()),
        })
        .collect()
}

fn upstream(address: &Value) -> Option<Upstream> {
    if let Value::Object(entry) = address {
        let executable = entry.get("ipc")?.as_str().filter(|e| !e.is_empty())?;
        let log = match entry.get("log") {
            None | Some(Value::Null) => None,
            Some(log) => Some(log.as_str()?.into()),
        };
        return Some(Upstream::Ipc(IpcSpec {
            executable: executable.into(),
            log,
        }));
    }
    upstream_uri(address).map(Upstream::Http)
}

fn upstream_uri(address: &Value) -> Option<Uri> {
    let text = match address {
        Value::Number(n) => {
            let port = u16::try_from(n.as_u64()?).ok().filter(|p| *p != 0)?;
            format!("http://127.0.0.1:{port}")
        }
        Value::String(s) if s.parse::<u16>().is_ok_and(|p| p != 0) => {
            format!("http://127.0.0.1:{s}")
        }
        Value::String(s) if s.starts_with("http://") => s.trim_end_matches('/').to_owned(),
        Value::String(s) if !s.contains('/') => format!("http://{s}"),
        _ => return None,
    };
    let uri: Uri = text.parse().ok()?;
    (uri.authority().is_some_and(|a| a.port_u16().is_some())
        && uri.path_and_query().is_none_or(|p| p.as_str() == "/"))
    .then_some(uri)
}

#[derive(Deserialize)]
struct VercelFunctions {
    #[serde(default)]
    functions: HashMap<String, FunctionSettings>,
}

#[derive(Deserialize)]
struct FunctionSettings {
    #[serde(rename = "maxDuration")]
    max_duration: Option<u64>,
}

/// The gateway: routing, platform limits and forwarding.
pub struct Gateway {
    router: VercelRouter,
    functions: Functions,
    /// The function processes the gateway runs over IPC, by route file.
    ipc: HashMap<&'static str, Arc<Slot>>,
    /// What a restarted function is started with (`start_functions`).
    ipc_env: Vec<(String, String)>,
    socket_dir: std::path::PathBuf,
    /// Chaos mode (`enable_chaos`): where its kills are logged.
    chaos_log: Option<std::sync::Mutex<std::fs::File>>,
    max_durations: HashMap<&'static str, Duration>,
    client: Client<HttpConnector, UpstreamBody>,
    /// `x-vercel-internal-*` headers dropped from functions' answers.
    stripped_from_responses: AtomicU64,
    /// `x-vercel-internal-*` headers a client sent, dropped before forwarding.
    stripped_from_requests: AtomicU64,
}

impl Gateway {
    /// The gateway of this repository: its route files and its `vercel.json`.
    pub fn for_repo(functions: Functions) -> Self {
        Self::new(
            VercelRouter::for_repo(),
            functions,
            include_str!("../../vercel.json"),
        )
        .expect("the repository's vercel.json is valid (checked by tests)")
    }

    pub fn new(
        router: VercelRouter,
        functions: Functions,
        vercel_json: &str,
    ) -> Result<Self, serde_json::Error> {
        let settings: VercelFunctions = serde_json::from_str(vercel_json)?;
        let max_durations = ROUTES
            .iter()
            .map(|route| {
                let seconds = settings
                    .functions
                    .get(route.file)
                    .and_then(|f| f.max_duration);
                (
                    route.file,
                    seconds.map_or(DEFAULT_MAX_DURATION, Duration::from_secs),
                )
            })
            .collect();
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build_http();
        Ok(Self {
            router,
            functions,
            ipc: HashMap::new(),
            ipc_env: Vec::new(),
            socket_dir: std::env::temp_dir(),
            chaos_log: None,
            max_durations,
            client,
            stripped_from_responses: AtomicU64::new(0),
            stripped_from_requests: AtomicU64::new(0),
        })
    }

    /// Starts the IPC-mode functions, each with `env` as its whole
    /// environment and its socket in `socket_dir`.
    pub async fn start_functions(
        &mut self,
        env: &[(String, String)],
        socket_dir: &std::path::Path,
    ) -> Result<(), BoxError> {
        let specs: Vec<(&'static str, IpcSpec)> = ROUTES
            .iter()
            .filter_map(|r| match self.functions.by_file.get(r.file) {
                Some(Upstream::Ipc(spec)) => Some((r.file, spec.clone())),
                _ => None,
            })
            .collect();
        let started = futures::future::join_all(
            specs
                .iter()
                .map(|(file, spec)| IpcFunction::start(file, spec, env, socket_dir)),
        )
        .await;
        self.ipc_env = env.to_vec();
        self.socket_dir = socket_dir.to_owned();
        let mut problems = Vec::new();
        for (result, (_, spec)) in started.into_iter().zip(specs) {
            match result {
                Ok(function) => {
                    self.ipc
                        .insert(function.route_file, Arc::new(Slot::new(function, spec)));
                }
                Err(error) => problems.push(error.to_string()),
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        self.stop_functions().await;
        Err(format!("IPC functions failed to start: {}", problems.join("; ")).into())
    }

    /// Stops the IPC-mode functions (SIGTERM, then SIGKILL after 5 s).
    pub async fn stop_functions(&self) {
        let stops = self.ipc.values().map(|slot| async move {
            let function = slot.current.lock().await.clone();
            function.stop(Duration::from_secs(5)).await;
        });
        futures::future::join_all(stops).await;
    }

    /// The IPC accounting: per function, the requests sent and the `end`
    /// frames seen, after waiting up to `wait` for those still in flight.
    pub async fn accounting(&self, wait: Duration) -> Value {
        let reports = futures::future::join_all(ROUTES.iter().filter_map(|r| {
            let slot = self.ipc.get(r.file)?;
            Some(async move { slot.current.lock().await.clone().report(wait).await })
        }))
        .await;
        let restarts: u64 = self
            .ipc
            .values()
            .map(|slot| slot.restarts.load(Ordering::Relaxed))
            .sum();
        let sum = |f: fn(&ipc::FunctionReport) -> u64| reports.iter().map(f).sum::<u64>();
        let count = |f: fn(&ipc::FunctionReport) -> usize| reports.iter().map(f).sum::<usize>();
        serde_json::json!({
            "ok": reports.iter().all(|r| r.ok && r.alive),
            "functions": reports,
            "totals": {
                "functions": reports.len(),
                "requests": sum(|r| r.requests),
                "endFrames": sum(|r| r.end_frames),
                "missingEnd": count(|r| r.missing_end.len()),
                "duplicateEnd": count(|r| r.duplicate_end.len()),
                "violations": count(|r| r.violations.len()),
                "pings": sum(|r| r.pings),
                "restartsAfterKill": restarts,
                "internalHeadersStripped": {
                    "fromResponses": self.stripped_from_responses.load(Ordering::Relaxed),
                    "fromRequests": self.stripped_from_requests.load(Ordering::Relaxed),
                },
            },
        })
    }

    /// Forwards one request to its function and streams the answer back.
    pub async fn handle<B>(
        &self,
        request: Request<B>,
        client: Option<SocketAddr>,
    ) -> Response<GatewayBody>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        if request.uri().path() == ACCOUNTING_PATH {
            return self.accounting_answer(request.uri()).await;
        }
        let mut request = request;
        let kill_after = chaos_kill_after(request.headers_mut());
        let call = Call::new(&request);
        let target = match self.target(&request) {
            Ok(target) => self.with_process(target).await,
            Err(refusal) => Err(refusal),
        };
        match target {
            Ok(target) => {
                let kill_after = kill_after.filter(|_| self.chaos_log.is_some());
                let response = self
                    .forward(request, client, &call, &target, kill_after)
                    .await;
                call.forwarded(&target, response)
            }
            Err(refusal) => call.answered_here(call.error(&refusal)),
        }
    }

    /// `GET /_moc/ipc-accounting[?waitMs=N]`: the IPC accounting as JSON,
    /// 200 when every request had exactly one `end` frame, else 500.
    async fn accounting_answer(&self, uri: &Uri) -> Response<GatewayBody> {
        let wait = uri
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("waitMs=")))
            .and_then(|ms| ms.parse().ok())
            .map_or(ACCOUNTING_WAIT, Duration::from_millis);
        let report = self.accounting(wait).await;
        let status = if report["ok"] == true {
            StatusCode::OK
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        let mut response = Response::new(full(Bytes::from(report.to_string())));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }

    /// The function a request goes to, or the error the platform answers
    /// itself when none will run: an unrouted path, a declared body over the
    /// limit, a route no function process serves.
    fn target<B>(&self, request: &Request<B>) -> Result<Target, ApiError> {
        let resolved = self
            .router
            .resolve(request.uri().path())
            .ok_or(ApiError::NotFound("route"))?;
        if platform::declares_too_large(request.headers()) {
            return Err(platform::body_too_large());
        }
        let route = resolved.route;
        let slot = self.ipc.get(route.file).cloned();
        let upstream = match (&slot, self.functions.get(route)) {
            // The process's port is known once `with_process` has it running.
            (Some(_), _) => Uri::from_static("http://127.0.0.1:1"),
            (None, Some(Upstream::Http(uri))) => uri.clone(),
            (None, Some(Upstream::Ipc(_))) | (None, None) => {
                return Err(invocation_failed(format!(
                    "no function process is configured for {}",
                    route.file
                )));
            }
        };
        let max_duration = self
            .max_durations
            .get(route.file)
            .copied()
            .unwrap_or(DEFAULT_MAX_DURATION);
        Ok(Target {
            route,
            upstream,
            slot,
            ipc: None,
            params: resolved.params,
            max_duration,
        })
    }

    /// The request as the function gets it: its address, the client's
    /// headers less any internal ones, what the proxy adds, and over IPC the
    /// invocation's internal headers (whose `end` frame is then awaited).
    fn prepare(
        &self,
        parts: &mut http::request::Parts,
        client: Option<SocketAddr>,
        call: &Call,
        target: &Target,
    ) -> Option<ipc::Invocation> {
        parts.uri = forwarded_uri(&target.upstream, &parts.uri, &target.params);
        parts.version = Version::HTTP_11;
        let spoofed = strip_internal(&mut parts.headers);
        self.stripped_from_requests
            .fetch_add(spoofed, Ordering::Relaxed);
        forwarded_headers(&mut parts.headers, client, &call.vercel_id);
        target.ipc.as_ref().map(|function| {
            let invocation = function.invoke();
            internal_headers(&mut parts.headers, &invocation);
            invocation
        })
    }

    /// Sends the request on to its function, its body read whole under the
    /// platform limit, and turns what comes back (or does not) into the answer.
    async fn forward<B>(
        &self,
        request: Request<B>,
        client: Option<SocketAddr>,
        call: &Call,
        target: &Target,
        kill_after: Option<Duration>,
    ) -> Response<GatewayBody>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let (mut parts, body) = request.into_parts();
        // Vercel invokes a function with the whole request body, so the
        // body is read here first: one over the limit is the platform's 413
        // before any function runs, not a race with a function that answers
        // (or closes the connection) before the rest has been sent.
        let (body, over_limit) = platform::limit_body(body);
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) if over_limit.load(Ordering::Relaxed) => {
                return call.error(&platform::body_too_large());
            }
            Err(error) => {
                return call.error(&ApiError::bad_request(format!(
                    "the request body could not be read: {error}"
                )));
            }
        };
        let invocation = self.prepare(&mut parts, client, call, target);
        let forwarded = Request::from_parts(parts, full(body));
        let in_flight = Arc::new(std::sync::atomic::AtomicBool::new(true));
        if let (Some(after), Some(function)) = (kill_after, &target.ipc) {
            self.schedule_kill(function.clone(), after, in_flight.clone(), &call.request_id);
        }
        let answer = tokio::time::timeout(target.max_duration, self.client.request(forwarded));
        let answer = answer.await;
        in_flight.store(false, Ordering::SeqCst);
        self.answer(answer, call, target, invocation.as_ref())
    }

    /// What the client gets for the function's answer, its failure (a
    /// killed process is the platform's 504), or its silence past
    /// `maxDuration`.
    fn answer(
        &self,
        answer: Result<
            Result<Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>,
            tokio::time::error::Elapsed,
        >,
        call: &Call,
        target: &Target,
        invocation: Option<&ipc::Invocation>,
    ) -> Response<GatewayBody> {
        if answer.as_ref().is_ok_and(Result::is_err)
            && let Some(function) = target.ipc.as_ref().filter(|f| f.killed())
        {
            return call.error(&killed_function(target, function));
        }
        match answer {
            Ok(Ok(response)) => {
                let (answer, stripped) = call.function_answer(response);
                self.stripped_from_responses
                    .fetch_add(stripped, Ordering::Relaxed);
                answer
            }
            Ok(Err(error)) => {
                if error.is_connect()
                    && let (Some(function), Some(invocation)) = (&target.ipc, invocation)
                {
                    function.not_delivered(invocation);
                }
                call.error(&unreachable_function(target, &error))
            }
            Err(_) => call.error(&ApiError::Platform {
                status: StatusCode::GATEWAY_TIMEOUT,
                code: "FUNCTION_INVOCATION_TIMEOUT",
                message: format!(
                    "the function {} did not answer within its maxDuration of {} s",
                    target.route.file,
                    target.max_duration.as_secs()
                ),
            }),
        }
    }
}

/// Where a routed request goes.
struct Target {
    route: &'static Route,
    upstream: Uri,
    /// The route's process slot, when the gateway runs it over IPC.
    slot: Option<Arc<Slot>>,
    /// The process serving this request (`Gateway::with_process`).
    ipc: Option<Arc<IpcFunction>>,
    params: Vec<(String, String)>,
    max_duration: Duration,
}

/// One request as the gateway answers and logs it.
struct Call {
    /// What Vercel adds to every request; the function takes it as its
    /// request ID when the caller sent no usable x-request-id.
    vercel_id: String,
    request_id: String,
    method: Method,
    path: String,
    started: Instant,
}

impl Call {
    fn new<B>(request: &Request<B>) -> Self {
        let vercel_id = format!("dev1::{}", uuid::Uuid::new_v4().simple());
        Self {
            request_id: platform::request_id(request.headers(), || vercel_id.clone()),
            vercel_id,
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
            started: Instant::now(),
        }
    }

    /// The function's answer, streamed back as Vercel's proxy passes it on,
    /// and how many internal headers were dropped from it.
    fn function_answer(
        &self,
        response: Response<hyper::body::Incoming>,
    ) -> (Response<GatewayBody>, u64) {
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let stripped = strip_internal(&mut parts.headers);
        if stripped > 0 {
            tracing::warn!(request_id = %self.request_id, stripped, "the function answered with x-vercel-internal-* headers; dropped");
        }
        self.add_vercel_id(&mut parts.headers);
        let body = body.map_err(BoxError::from).boxed_unsync();
        (Response::from_parts(parts, body), stripped)
    }

    /// An answer the platform gives before (or instead of) the function, in
    /// the API's error shape. Its own failures (502, 504) are logged.
    fn error(&self, error: &ApiError) -> Response<GatewayBody> {
        if let ApiError::Platform { code, message, .. } = error {
            tracing::warn!(request_id = %self.request_id, code, %message, "gateway error");
        }
        let mut response = platform::error_answer(error, &self.request_id).map(full);
        self.add_vercel_id(response.headers_mut());
        response
    }

    fn add_vercel_id(&self, headers: &mut HeaderMap) {
        if let Ok(value) = HeaderValue::from_str(&self.vercel_id) {
            headers.insert("x-vercel-id", value);
        }
    }

    fn answered_here(&self, response: Response<GatewayBody>) -> Response<GatewayBody> {
        tracing::info!(
            request_id = %self.request_id,
            method = %self.method,
            path = %self.path,
            status = response.status().as_u16(),
            "gateway answered itself: no function invoked"
        );
        response
    }

    fn forwarded(&self, target: &Target, response: Response<GatewayBody>) -> Response<GatewayBody> {
        tracing::info!(
            request_id = %self.request_id,
            method = %self.method,
            path = %self.path,
            function = target.route.file,
            upstream = %target.upstream,
            status = response.status().as_u16(),
            duration_ms = moc_shared::time::millis(self.started.elapsed()),
            "gateway forwarded"
        );
        response
    }
}

/// One route's function process over IPC; a dead one is replaced by a
/// fresh process (a cold start) when the next request comes.
struct Slot {
    current: tokio::sync::Mutex<Arc<IpcFunction>>,
    spec: IpcSpec,
    restarts: AtomicU64,
}

impl Slot {
    fn new(function: IpcFunction, spec: IpcSpec) -> Self {
        Self {
            current: tokio::sync::Mutex::new(Arc::new(function)),
            spec,
            restarts: AtomicU64::new(0),
        }
    }
}

/// The request header by which the chaos driver (`moc-dev chaos`) asks the
/// gateway to SIGKILL the function serving that request this many ms after
/// forwarding it, if it is still in flight. Only in chaos mode
/// (`MOC_DEV_CHAOS_LOG`); always dropped before forwarding.
pub const CHAOS_KILL_HEADER: &str = "x-moc-chaos-kill-after-ms";

fn chaos_kill_after(headers: &mut HeaderMap) -> Option<Duration> {
    let value = headers.remove(CHAOS_KILL_HEADER)?;
    value.to_str().ok()?.parse().ok().map(Duration::from_millis)
}

impl Gateway {
    /// Chaos mode: honours [`CHAOS_KILL_HEADER`] and logs each kill, with
    /// its timestamp, as a JSON line in `log`.
    pub fn enable_chaos(&mut self, log: &std::path::Path) -> std::io::Result<()> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        self.chaos_log = Some(std::sync::Mutex::new(file));
        Ok(())
    }

    /// The target with its running process: a route whose process was
    /// killed (or died) gets a new one first, as the platform cold-starts a
    /// new instance; requests for it wait for that start.
    async fn with_process(&self, mut target: Target) -> Result<Target, ApiError> {
        let Some(slot) = target.slot.clone() else {
            return Ok(target);
        };
        let mut current = slot.current.lock().await;
        if current.dead() {
            current.stop(Duration::ZERO).await;
            let started = IpcFunction::start(
                target.route.file,
                &slot.spec,
                &self.ipc_env,
                &self.socket_dir,
            )
            .await
            .map_err(|e| invocation_failed(format!("restarting the function: {e}")))?;
            slot.restarts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                route_file = target.route.file,
                pid = started.pid,
                "function restarted (cold start) after its process died"
            );
            *current = Arc::new(started);
        }
        target.upstream = format!("http://127.0.0.1:{}", current.http_port)
            .parse()
            .expect("a port makes a URI");
        target.ipc = Some(current.clone());
        Ok(target)
    }

    /// SIGKILLs `function` after `after` if the request is still in flight
    /// then, and logs the kill (or that the request had already finished).
    fn schedule_kill(
        &self,
        function: Arc<IpcFunction>,
        after: Duration,
        in_flight: Arc<std::sync::atomic::AtomicBool>,
        request_id: &str,
    ) {
        let Some(log) = self.chaos_log.as_ref() else {
            return;
        };
        let Some(file) = log.lock().ok().and_then(|f| f.try_clone().ok()) else {
            return;
        };
        let request_id = request_id.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let mid_request = in_flight.load(Ordering::SeqCst);
            if mid_request {
                function.kill();
            }
            let line = serde_json::json!({
                "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "fault": if mid_request { "kill" } else { "kill-too-late" },
                "route": function.route_file,
                "pid": function.pid,
                "requestId": request_id,
                "afterMs": after.as_millis(),
                "inFlight": mid_request,
            });
            let mut file = file;
            let _ = std::io::Write::write_all(&mut file, format!("{line}\n").as_bytes());
            tracing::warn!(%line, "chaos");
        });
    }
}

/// The 504 of a request whose function process was killed under it, as the
/// platform answers when it kills an instance at its `maxDuration`.
fn killed_function(target: &Target, function: &IpcFunction) -> ApiError {
    ApiError::Platform {
        status: StatusCode::GATEWAY_TIMEOUT,
        code: "FUNCTION_INVOCATION_TIMEOUT",
        message: format!(
            "the function {} (pid {}) was killed while serving the request",
            target.route.file, function.pid
        ),
    }
}

/// The dev server's own report of the IPC accounting (not a Vercel path).
pub const ACCOUNTING_PATH: &str = "/_moc/ipc-accounting";

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>) {
    platform::serve(listener, move |request, peer| {
        let gateway = gateway.clone();
        async move { gateway.handle(request, Some(peer)).await }
    })
    .await
}

fn full(bytes: Bytes) -> GatewayBody {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The 502 of a function whose connection failed.
fn unreachable_function(target: &Target, error: &dyn std::error::Error) -> ApiError {
    invocation_failed(format!(
        "the function {} at {} failed: {}",
        target.route.file,
        target.upstream,
        error_chain(error)
    ))
}

/// The 502 of a function that is not there or not answering.
fn invocation_failed(message: String) -> ApiError {
    ApiError::Platform {
        status: StatusCode::BAD_GATEWAY,
        code: "FUNCTION_INVOCATION_FAILED",
        message,
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The function's URI: the upstream's address, then the path, query and
/// bound parameters as the platform passes them.
fn forwarded_uri(upstream: &Uri, original: &Uri, params: &[(String, String)]) -> Uri {
    let authority = upstream
        .authority()
        .map(|a| a.as_str())
        .unwrap_or("127.0.0.1");
    let path_and_query = platform::path_with_params(original, params);
    format!("http://{authority}{path_and_query}")
        .parse()
        .expect("an authority and a path that parsed before make a URI")
}

/// Headers that describe one connection, not the request (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    // The length is the body's own; hyper frames the forwarded message itself.
    headers.remove(header::TRANSFER_ENCODING);
}

/// Drops every `x-vercel-internal-*` header; returns how many there were.
fn strip_internal(headers: &mut HeaderMap) -> u64 {
    let internal: Vec<HeaderName> = headers
        .keys()
        .filter(|name| ipc::is_internal(name.as_str()))
        .cloned()
        .collect();
    let mut dropped = 0;
    for name in internal {
        dropped += u64::try_from(headers.get_all(&name).iter().count()).unwrap_or(u64::MAX);
        headers.remove(name);
    }
    dropped
}

/// What the platform adds to each invocation it sends over IPC.
fn internal_headers(headers: &mut HeaderMap, invocation: &ipc::Invocation) {
    if let Ok(value) = HeaderValue::from_str(&invocation.invocation_id) {
        headers.insert(ipc::INVOCATION_ID, value);
    }
    headers.insert(
        ipc::INTERNAL_REQUEST_ID,
        HeaderValue::from(invocation.request_id),
    );
}

/// The request headers the function sees: the client's, less the hop-by-hop
/// ones, plus what Vercel's proxy adds.
fn forwarded_headers(headers: &mut HeaderMap, client: Option<SocketAddr>, vercel_id: &str) {
    strip_hop_by_hop(headers);
    // The gateway answered any `Expect: 100-continue` itself.
    headers.remove(header::EXPECT);
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.insert("x-forwarded-host", host);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Some(ip) = client.map(|c| c.ip().to_string())
        && let Ok(value) = HeaderValue::from_str(&ip)
    {
        headers.insert("x-forwarded-for", value.clone());
        headers.insert("x-real-ip", value);
    }
    if let Ok(value) = HeaderValue::from_str(vercel_id) {
        headers.insert("x-vercel-id", value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use moc_shared::routes;

    #[test]
    fn the_function_map_takes_ports_and_addresses_by_route_file() {
        let functions = Functions::parse(
            r#"{
                "api/mocs/uploads/sessions/index.rs": 3201,
                "api/mocs/uploads/finalize.rs": "127.0.0.1:3207",
                "api/mocs/uploads/sessions/[sessionId]/files/index.rs": "http://localhost:3202/",
                "api/mocs/uploads/sessions/[sessionId]/files/batch.rs": "3203"
            }"#,
        )
        .unwrap();
        let uri = |r: &Route| match functions.get(r) {
            Some(Upstream::Http(uri)) => Some(uri.to_string()),
            _ => None,
        };
        assert_eq!(uri(&routes::SESSIONS).unwrap(), "http://127.0.0.1:3201/");
        assert_eq!(uri(&routes::FINALIZE).unwrap(), "http://127.0.0.1:3207/");
        assert_eq!(
            uri(&routes::REGISTER_FILE).unwrap(),
            "http://localhost:3202/"
        );
        assert_eq!(
            uri(&routes::REGISTER_BATCH).unwrap(),
            "http://127.0.0.1:3203/"
        );
        assert_eq!(functions.unmapped().len(), ROUTES.len() - 4);
    }

    #[test]
    fn the_function_map_takes_executables_to_run_over_ipc() {
        let functions = Functions::parse(
            r#"{
                "api/mocs/uploads/finalize.rs": {"ipc": "/bin/finalize", "log": "/tmp/finalize.log"},
                "api/mocs/uploads/sessions/index.rs": {"ipc": "/bin/sessions"}
            }"#,
        )
        .unwrap();
        assert_eq!(
            functions.get(&routes::FINALIZE),
            Some(&Upstream::Ipc(IpcSpec {
                executable: "/bin/finalize".into(),
                log: Some("/tmp/finalize.log".into()),
            }))
        );
        assert_eq!(
            functions.get(&routes::SESSIONS),
            Some(&Upstream::Ipc(IpcSpec {
                executable: "/bin/sessions".into(),
                log: None,
            }))
        );
        for bad in [
            r#"{"ipc": ""}"#,
            r#"{"exe": "/bin/x"}"#,
            r#"{"ipc": "/x", "log": 1}"#,
        ] {
            let json = format!(r#"{{"api/mocs/uploads/finalize.rs": {bad}}}"#);
            assert!(Functions::parse(&json).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_function_map_refuses_unknown_files_and_bad_addresses() {
        let error =
            Functions::parse(r#"{"api/nope.rs": 1, "api/mocs/uploads/finalize.rs": "x/y"}"#)
                .unwrap_err();
        assert!(
            error.contains("\"api/nope.rs\" is not a route file"),
            "{error}"
        );
        assert!(error.contains("x/y"), "{error}");
        assert!(Functions::parse("[1]").is_err());
        assert!(Functions::parse(r#"{"api/mocs/uploads/finalize.rs": 0}"#).is_err());
    }

    #[test]
    fn the_function_is_called_at_its_own_address_with_the_client_path() {
        let upstream: Uri = "http://127.0.0.1:3205".parse().unwrap();
        let params = [("fileId".to_owned(), "f".to_owned())];
        assert_eq!(
            forwarded_uri(&upstream, &"/api/x?a=1".parse().unwrap(), &params).to_string(),
            "http://127.0.0.1:3205/api/x?a=1&fileId=f"
        );
    }

    /// A stand-in function: echoes what it received as JSON.
    async fn echo_function() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(platform::serve(listener, |request, _| echo(request)));
        addr
    }

    async fn echo(request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let headers: HashMap<String, String> = parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let echo = serde_json::json!({
            "uri": parts.uri.to_string(),
            "method": parts.method.as_str(),
            "headers": headers,
            "bodyLen": body.len(),
        });
        let mut response = Response::new(Full::new(Bytes::from(echo.to_string())));
        response
            .headers_mut()
            .insert("x-request-id", HeaderValue::from_static("from-function"));
        response
    }

    async fn json_of(response: Response<GatewayBody>) -> (StatusCode, HeaderMap, Value) {
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    fn gateway(port: u16) -> Gateway {
        let mapped = format!(
            r#"{{"api/mocs/uploads/sessions/[sessionId]/files/[fileId]/parts/[partNumber].rs": {port},
                "api/mocs/uploads/finalize.rs": 1}}"#
        );
        Gateway::for_repo(Functions::parse(&mapped).unwrap())
    }

    #[tokio::test]
    async fn requests_reach_their_function_with_params_headers_and_body() {
        let function = echo_function().await;
        let gateway = gateway(function.port());
        let request = Request::put("/api/mocs/uploads/sessions/s1/files/f1/parts/2?x=y")
            .header("host", "example.test")
            .header("connection", "keep-alive, x-drop")
            .header("x-drop", "1")
            .header("authorization", "Bearer t")
            .body(Full::new(Bytes::from(vec![7u8; 1000])))
            .unwrap();
        let (status, headers, echo) = json_of(
            gateway
                .handle(request, Some("10.0.0.9:1234".parse().unwrap()))
                .await,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-request-id"], "from-function");
        assert!(
            headers["x-vercel-id"]
                .to_str()
                .unwrap()
                .starts_with("dev1::")
        );
        assert_eq!(
            echo["uri"],
            "/api/mocs/uploads/sessions/s1/files/f1/parts/2?x=y&sessionId=s1&fileId=f1&partNumber=2"
        );
        assert_eq!(echo["method"], "PUT");
        assert_eq!(echo["bodyLen"], 1000);
        let sent = &echo["headers"];
        assert_eq!(sent["host"], "example.test");
        assert_eq!(sent["authorization"], "Bearer t");
        assert_eq!(sent["x-forwarded-for"], "10.0.0.9");
        assert_eq!(sent["x-forwarded-host"], "example.test");
        assert!(sent.get("x-drop").is_none());
        assert!(sent["x-vercel-id"].as_str().unwrap().starts_with("dev1::"));
    }

    #[tokio::test]
    async fn internal_headers_never_cross_the_gateway_in_either_direction() {
        // A function that leaks internal headers and echoes what it got.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(platform::serve(listener, |request, _| async move {
            let mut response = echo(request).await;
            let headers = response.headers_mut();
            headers.insert(
                "x-vercel-internal-request-id",
                HeaderValue::from_static("7"),
            );
            headers.append("X-Vercel-Internal-Trace", HeaderValue::from_static("a"));
            headers.append("X-Vercel-Internal-Trace", HeaderValue::from_static("b"));
            response
        }));
        let gateway = gateway(port);
        let request = Request::get("/api/mocs/uploads/sessions/s1/files/f1/parts/1")
            .header("x-vercel-internal-invocation-id", "spoofed")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let (status, headers, echo) = json_of(gateway.handle(request, None).await).await;
        assert_eq!(status, 200);
        let leaked: Vec<_> = headers
            .keys()
            .filter(|k| ipc::is_internal(k.as_str()))
            .collect();
        assert!(leaked.is_empty(), "{leaked:?}");
        let sent = echo["headers"].as_object().unwrap();
        assert!(sent.keys().all(|k| !ipc::is_internal(k)), "{sent:?}");
        let totals = &gateway.accounting(Duration::ZERO).await["totals"];
        assert_eq!(totals["internalHeadersStripped"]["fromResponses"], 3);
        assert_eq!(totals["internalHeadersStripped"]["fromRequests"], 1);
    }

    fn bodiless(method: Method, path: &str) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.method_mut() = method;
        *request.uri_mut() = path.parse().unwrap();
        request
    }

    /// The platform's answer to `request`, checked to be the error whose
    /// finer code (`details.reason`) is `reason`.
    async fn platform_answer<B>(
        gateway: &Gateway,
        request: Request<B>,
        status: u16,
        reason: &str,
    ) -> (HeaderMap, Value)
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let (got, headers, body) = json_of(gateway.handle(request, None).await).await;
        assert_eq!(
            (got.as_u16(), body["error"]["details"]["reason"].as_str()),
            (status, Some(reason))
        );
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], body["error"]["type"]);
        assert_eq!(body["correlationId"], body["requestId"]);
        assert_eq!(
            headers["x-request-id"].to_str().unwrap(),
            body["requestId"].as_str().unwrap()
        );
        (headers, body)
    }

    #[tokio::test]
    async fn the_platform_answers_what_never_reaches_a_function() {
        let function = echo_function().await;
        let gateway = gateway(function.port());
        let part = "/api/mocs/uploads/sessions/s1/files/f1/parts/1";

        let mut unrouted = bodiless(Method::GET, "/api/other");
        unrouted
            .headers_mut()
            .insert("x-request-id", HeaderValue::from_static("rid-1"));
        let (headers, body) = platform_answer(&gateway, unrouted, 404, "NOT_FOUND").await;
        assert_eq!(headers["x-correlation-id"], "rid-1");
        assert_eq!(body["requestId"], "rid-1");

        // Declared over the limit: refused before forwarding.
        let mut declared = bodiless(Method::PUT, part);
        declared
            .headers_mut()
            .insert("content-length", HeaderValue::from_static("4500001"));
        platform_answer(&gateway, declared, 413, "PAYLOAD_TOO_LARGE").await;

        // Undeclared and over the limit: cut off while streaming.
        let chunks: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> = (0..5)
            .map(|_| Ok(http_body::Frame::data(Bytes::from(vec![0u8; 1_000_000]))))
            .collect();
        let streamed = http_body_util::StreamBody::new(futures::stream::iter(chunks));
        let request = Request::put(part).body(streamed).unwrap();
        platform_answer(&gateway, request, 413, "PAYLOAD_TOO_LARGE").await;

        // Mapped to a port nothing listens on; and not mapped at all.
        for path in ["/api/mocs/uploads/finalize", "/api/mocs/uploads/sessions"] {
            let request = bodiless(Method::POST, path);
            platform_answer(&gateway, request, 502, "FUNCTION_INVOCATION_FAILED").await;
        }
    }

    #[tokio::test]
    async fn an_undeclared_body_over_the_limit_never_reaches_a_function_that_answers_early() {
        // A function that answers without reading the body, as `sessions`
        // answers 413 after 1 MiB of JSON: forwarded while still streaming,
        // the request raced it and the caller sometimes got a 502.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        tokio::spawn(platform::serve(listener, move |_request, _| {
            counted.fetch_add(1, Ordering::Relaxed);
            async { Response::new(Full::new(Bytes::from_static(b"early"))) }
        }));
        let gateway = gateway(port);
        for _ in 0..5 {
            let chunks: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> = (0..5)
                .map(|_| Ok(http_body::Frame::data(Bytes::from(vec![0u8; 1_000_000]))))
                .collect();
            let streamed = http_body_util::StreamBody::new(futures::stream::iter(chunks));
            let part = "/api/mocs/uploads/sessions/s1/files/f1/parts/1";
            let request = Request::put(part).body(streamed).unwrap();
            platform_answer(&gateway, request, 413, "PAYLOAD_TOO_LARGE").await;
        }
        assert_eq!(calls.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn every_route_has_its_max_duration_from_vercel_json() {
        let gateway = Gateway::for_repo(Functions::parse("{}").unwrap());
        assert_eq!(gateway.max_durations.len(), ROUTES.len());
        assert_eq!(
            gateway.max_durations[routes::FINALIZE.file],
            Duration::from_secs(60)
        );
    }
}
