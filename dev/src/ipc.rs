//! The production invocation path: a function binary driven the way Vercel
//! drives it, over the `VERCEL_IPC_PATH` Unix socket (dev only; never linked
//! into a function).
//!
//! The protocol, as the function side implements it (`vercel_runtime` 2.4.1,
//! `~/.cargo/registry/src/*/vercel_runtime-2.4.1/`, and the IPC proxy the
//! `@vercel/rust` 20.0.0 builder ships, `tools/vercel/node_modules/@vercel/rust/`):
//!
//! 1. The platform listens on a Unix socket and starts the function with
//!    `VERCEL_IPC_PATH` naming it. The runtime connects to it as a client
//!    before anything else (`src/lib.rs:296-304`), binds its HTTP listener on
//!    127.0.0.1:`VERCEL_DEV_PORT`, 3000 when unset (`src/lib.rs:306-311`), and
//!    sends `server-started` with that port (`src/lib.rs:313-323`;
//!    `src/ipc/core.rs:12-37`: `{"type":"server-started","payload":
//!    {"initDuration":0,"httpPort":PORT}}`). Frames are JSON, each ended by a
//!    NUL byte (`src/ipc_utils.rs:33-47`). The builder's IPC proxy, the same
//!    function side for non-Rust servers, has the same names in its binary
//!    (`bin/proxy-linux-amd64`: `VERCEL_IPC_PATH`, `server-started`,
//!    `json:"httpPort"`, `json:"initDuration"`, `main.connectIPC`,
//!    `main.StartMessage`, `main.EndMessage`).
//! 2. Each request carries `x-vercel-internal-invocation-id` (a string) and
//!    `x-vercel-internal-request-id` (a u64) (`src/lib.rs:403-416`; the proxy:
//!    `X-Vercel-Internal-Invocation-Id`, `X-Vercel-Internal-Request-Id`).
//!    With both present and the socket connected, the runtime sends one
//!    `end` frame per request once the response is returned and the request's
//!    `waitUntil` work has settled (`src/lib.rs:469-483`; `src/ipc/core.rs:
//!    3-9, 39-64`: `{"type":"end","payload":{"context":{"invocationId":…,
//!    "requestId":…},"error":null}}`). `log` and `metric` frames carry the
//!    same context (`src/ipc/log.rs`, `src/ipc/metric.rs`); the runtime's own
//!    test drives it the same way (`tests/request_lifecycle.rs:87-188`).
//! 3. `/_vercel/ping` answers 200 `OK` without reaching the handler and
//!    without an `end` frame (`src/lib.rs:434-440`; the builder's dev proxy,
//!    `dist/index.js:69,208-212`).
//! 4. Headers under `x-vercel-internal-` are the platform's, never the
//!    client's: the builder's dev proxy drops them from what it passes on
//!    (`dist/index.js:70,125-137`, `sanitizeHeaders`). The gateway drops them
//!    from what the client sends and from what the function answers.
//!
//! One thing differs from production on purpose: twelve functions share this
//! host, so each gets a free port in `VERCEL_DEV_PORT` instead of 3000. The
//! gateway still connects to the port the handshake announces, as the
//! platform does. `VERCEL_DEV` is not set (the runtime bounds its shutdown
//! drain only under `vc dev`, `src/lib.rs:365-385`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use moc_shared::box_error::BoxError;
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

/// The request headers the platform sets on every invocation.
pub const INVOCATION_ID: &str = "x-vercel-internal-invocation-id";
pub const INTERNAL_REQUEST_ID: &str = "x-vercel-internal-request-id";
/// Everything under this prefix is the platform's own.
pub const INTERNAL_PREFIX: &str = "x-vercel-internal-";
/// The health check the platform sends; the runtime answers it itself.
pub const PING_PATH: &str = "/_vercel/ping";

/// How long a function may take from spawn to `server-started`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a header name is the platform's own (any case).
pub fn is_internal(name: &str) -> bool {
    name.len() >= INTERNAL_PREFIX.len()
        && name[..INTERNAL_PREFIX.len()].eq_ignore_ascii_case(INTERNAL_PREFIX)
}

/// What to run for one route file in IPC mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpcSpec {
    pub executable: PathBuf,
    /// Where the process's stdout and stderr go (the gateway's own when unset).
    pub log: Option<PathBuf>,
}

/// One request as the platform hands it to a function.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub invocation_id: String,
    pub request_id: u64,
}

/// A running function process behind its IPC socket.
pub struct IpcFunction {
    pub route_file: &'static str,
    pub pid: u32,
    pub http_port: u16,
    ledger: Arc<Ledger>,
    next_request: AtomicU64,
    child: Mutex<Option<Child>>,
    socket: PathBuf,
    /// SIGKILLed by the gateway's chaos mode (`kill`): its requests in
    /// flight are answered 504, and the next request starts a fresh process.
    killed: AtomicBool,
}

impl IpcFunction {
    /// Spawns the function with a clean environment (`env` only, plus the
    /// IPC variables), waits for `server-started`, then checks
    /// `/_vercel/ping`. `socket_dir` holds the Unix socket.
    pub async fn start(
        route_file: &'static str,
        spec: &IpcSpec,
        env: &[(String, String)],
        socket_dir: &Path,
    ) -> Result<Self, BoxError> {
        let socket = socket_dir.join(format!("{}.sock", socket_name(route_file)));
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket)
            .map_err(|e| format!("{route_file}: cannot bind {}: {e}", socket.display()))?;
        let port = free_port()?;
        let mut child = spawn(spec, env, &socket, port).map_err(|e| {
            format!(
                "{route_file}: cannot start {}: {e}",
                spec.executable.display()
            )
        })?;
        let pid = child.id().unwrap_or_default();
        let started = handshake(&listener, &mut child).await;
        let (stream, http_port) = match started {
            Ok(ok) => ok,
            Err(error) => {
                let _ = child.start_kill();
                return Err(format!("{route_file} (pid {pid}): {error}").into());
            }
        };
        if http_port != port {
            tracing::warn!(
                route_file,
                port,
                http_port,
                "server-started names another port"
            );
        }
        let ledger = Arc::new(Ledger::default());
        tokio::spawn(read_frames(route_file, stream, ledger.clone()));
        ping(http_port)
            .await
            .map_err(|e| format!("{route_file} (pid {pid}): {PING_PATH}: {e}"))?;
        ledger.state().pings += 1;
        tracing::info!(route_file, pid, http_port, socket = %socket.display(), "function started over IPC");
        Ok(Self {
            route_file,
            pid,
            http_port,
            ledger,
            next_request: AtomicU64::new(1),
            child: Mutex::new(Some(child)),
            socket,
            killed: AtomicBool::new(false),
        })
    }

    /// The IDs of the next request, recorded as awaiting its `end` frame.
    pub fn invoke(&self) -> Invocation {
        let invocation = Invocation {
            invocation_id: uuid::Uuid::new_v4().to_string(),
            request_id: self.next_request.fetch_add(1, Ordering::Relaxed),
        };
        self.ledger.sent(&invocation);
        invocation
    }

    /// The request never reached the function (the connection failed), so
    /// no `end` frame is due for it.
    pub fn not_delivered(&self, invocation: &Invocation) {
        self.ledger.not_delivered(invocation.request_id);
    }

    /// The accounting so far, once every sent request has had its `end`
    /// frame or `wait` has passed.
    pub async fn report(&self, wait: Duration) -> FunctionReport {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.ledger.changed.notified();
            if self.ledger.state().awaiting() == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        let alive = self.alive();
        self.ledger.state().report(self.route_file, self.pid, alive)
    }

    /// SIGKILL, as the platform kills an instance at its `maxDuration`:
    /// no drain, no `end` frames for what was in flight.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        if let Some(pid) = i32::try_from(self.pid).ok().filter(|p| *p > 0) {
            // SAFETY: kill(2) with a pid this process spawned; the child is
            // reaped only by `stop` or `alive`, so the pid is still ours.
            #[expect(unsafe_code, reason = "a signal by pid has no safe API in std")]
            unsafe {
                libc::kill(pid, libc::SIGKILL)
            };
        }
    }

    /// Whether `kill` was called.
    pub fn killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Killed, or exited on its own: the next request needs a new process.
    pub fn dead(&self) -> bool {
        self.killed() || !self.alive()
    }

    fn alive(&self) -> bool {
        let mut child = self.child.lock().expect("child lock");
        child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGTERM, as the platform stops an instance; the runtime then drains
    /// its pending `end` frames. Killed after `grace`.
    pub async fn stop(&self, grace: Duration) {
        let child = self.child.lock().expect("child lock").take();
        let Some(mut child) = child else { return };
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) with a pid this process spawned and still owns.
            #[expect(unsafe_code, reason = "SIGTERM has no safe API in std or tokio")]
            unsafe {
                libc::kill(pid, libc::SIGTERM)
            };
        }
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A socket file name for a route file (`api/a/[b].rs` → `api_a__b_`).
fn socket_name(route_file: &str) -> String {
    route_file
        .trim_end_matches(".rs")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn free_port() -> Result<u16, BoxError> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(probe.local_addr()?.port())
}

fn spawn(
    spec: &IpcSpec,
    env: &[(String, String)],
    socket: &Path,
    port: u16,
) -> std::io::Result<Child> {
    let mut command = Command::new(&spec.executable);
    command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("VERCEL_IPC_PATH", socket)
        .env("VERCEL_DEV_PORT", port.to_string())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(log) = &spec.log {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        command.stdout(file.try_clone()?).stderr(file);
    }
    // SAFETY: prctl(2) only, between fork and exec: the function gets SIGTERM
    // when the gateway dies, so no orphan keeps its port.
    #[expect(
        unsafe_code,
        reason = "pre_exec is unsafe by signature; prctl is async-signal-safe"
    )]
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    command.spawn()
}

/// Accepts the function's connection and reads its `server-started` frame.
async fn handshake(
    listener: &UnixListener,
    child: &mut Child,
) -> Result<(BufReader<UnixStream>, u16), BoxError> {
    let first = async {
        let (stream, _) = listener.accept().await?;
        let mut stream = BufReader::new(stream);
        let frame = read_frame(&mut stream)
            .await?
            .ok_or("the IPC connection closed before server-started")?;
        Ok::<_, BoxError>((stream, frame))
    };
    let (stream, frame) = tokio::select! {
        first = tokio::time::timeout(START_TIMEOUT, first) => first.map_err(|_| format!(
            "no server-started within {} s (a runtime that cannot connect to VERCEL_IPC_PATH \
             prints \"Dev server listening\" instead)", START_TIMEOUT.as_secs()))??,
        status = child.wait() => return Err(format!("exited before server-started ({status:?})").into()),
    };
    Ok((stream, started_port(&frame)?))
}

/// The `httpPort` of a `server-started` frame.
fn started_port(frame: &Value) -> Result<u16, BoxError> {
    if frame["type"] != "server-started" {
        return Err(format!("the first IPC frame is not server-started: {frame}").into());
    }
    frame["payload"]["httpPort"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("server-started has no usable httpPort: {frame}").into())
}

/// One NUL-terminated JSON frame; `None` at the end of the stream.
async fn read_frame(stream: &mut BufReader<UnixStream>) -> Result<Option<Value>, BoxError> {
    let mut frame = Vec::new();
    if stream.read_until(0, &mut frame).await? == 0 {
        return Ok(None);
    }
    if frame.pop() != Some(0) {
        return Err("an IPC frame ended without its NUL terminator".into());
    }
    Ok(Some(serde_json::from_slice(&frame)?))
}

/// Reads the function's frames into the ledger until it closes the socket.
async fn read_frames(
    route_file: &'static str,
    mut stream: BufReader<UnixStream>,
    ledger: Arc<Ledger>,
) {
    loop {
        match read_frame(&mut stream).await {
            Ok(Some(frame)) => ledger.frame(route_file, &frame),
            Ok(None) => break,
            Err(error) => {
                ledger.violation(route_file, format!("unreadable IPC frame: {error}"));
                break;
            }
        }
    }
    tracing::info!(route_file, "the function closed its IPC connection");
    ledger.state().closed = true;
    ledger.changed.notify_waiters();
}

/// `GET /_vercel/ping` on the function's own port: 200 `OK`.
async fn ping(port: u16) -> Result<(), BoxError> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let request =
            format!("GET {PING_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok::<_, BoxError>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| "no answer within 5 s")??;
    let ok = answer.starts_with("HTTP/1.1 200")
        && answer
            .split_once("\r\n\r\n")
            .is_some_and(|(_, b)| b == "OK");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected 200 OK, got {:?}",
            answer.chars().take(200).collect::<String>()
        )
        .into())
    }
}

/// The `end` frames of one function process against the requests sent to it.
#[derive(Default)]
pub struct Ledger {
    state: Mutex<LedgerState>,
    changed: Notify,
}

#[derive(Default)]
struct LedgerState {
    /// By request ID: its invocation ID and the `end` frames seen for it.
    sent: HashMap<u64, (String, u32)>,
    not_delivered: u64,
    end_frames: u64,
    end_errors: u64,
    log_frames: u64,
    pings: u64,
    violations: Vec<String>,
    closed: bool,
}

impl Ledger {
    fn state(&self) -> std::sync::MutexGuard<'_, LedgerState> {
        self.state.lock().expect("ledger lock")
    }

    pub fn sent(&self, invocation: &Invocation) {
        self.state()
            .sent
            .insert(invocation.request_id, (invocation.invocation_id.clone(), 0));
    }

    pub fn not_delivered(&self, request_id: u64) {
        let mut state = self.state();
        if state.sent.remove(&request_id).is_some() {
            state.not_delivered += 1;
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// Accounts for one frame the function sent after `server-started`.
    pub fn frame(&self, route_file: &str, frame: &Value) {
        match frame["type"].as_str() {
            Some("end") => {
                if let Err(problem) = self.end(&frame["payload"]) {
                    self.violation(route_file, problem);
                }
            }
            Some("log") => {
                self.state().log_frames += 1;
                log_frame(route_file, &frame["payload"]);
            }
            Some("metric") => {}
            _ => self.violation(route_file, format!("unexpected IPC frame: {frame}")),
        }
        self.changed.notify_waiters();
    }

    fn end(&self, payload: &Value) -> Result<(), String> {
        let context = &payload["context"];
        let (Some(invocation_id), Some(request_id)) = (
            context["invocationId"].as_str(),
            context["requestId"].as_u64(),
        ) else {
            return Err(format!("an end frame without its context: {payload}"));
        };
        let mut state = self.state();
        state.end_frames += 1;
        if !payload["error"].is_null() {
            state.end_errors += 1;
            tracing::warn!(request_id, error = %payload["error"], "the function ended an invocation with an error");
        }
        let Some((sent_invocation, ends)) = state.sent.get_mut(&request_id) else {
            return Err(format!(
                "an end frame for request {request_id}, which was never sent"
            ));
        };
        if sent_invocation != invocation_id {
            return Err(format!(
                "the end frame of request {request_id} names invocation {invocation_id}, not {sent_invocation}"
            ));
        }
        *ends += 1;
        match *ends {
            1 => Ok(()),
            n => Err(format!("request {request_id} got end frame number {n}")),
        }
    }

    fn violation(&self, route_file: &str, problem: String) {
        tracing::error!(route_file, %problem, "IPC accounting");
        self.state().violations.push(problem);
    }
}

/// A `log` frame's message (base64) into the gateway's log.
fn log_frame(route_file: &str, payload: &Value) {
    let text = payload["message"]
        .as_str()
        .and_then(|m| base64::engine::general_purpose::STANDARD.decode(m).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let request_id = payload["context"]["requestId"].as_u64();
    tracing::info!(route_file, ?request_id, message = %text.trim_end(), "function log (IPC)");
}

impl LedgerState {
    /// Requests still waiting for their `end` frame.
    fn awaiting(&self) -> usize {
        if self.closed {
            return 0;
        }
        self.sent.values().filter(|(_, ends)| *ends == 0).count()
    }

    fn report(&self, route_file: &'static str, pid: u32, alive: bool) -> FunctionReport {
        let mut missing: Vec<u64> = self.ids(|ends| ends == 0);
        let mut duplicated: Vec<u64> = self.ids(|ends| ends > 1);
        missing.sort_unstable();
        duplicated.sort_unstable();
        FunctionReport {
            route_file,
            pid,
            alive,
            requests: u64::try_from(self.sent.len()).unwrap_or(u64::MAX),
            not_delivered: self.not_delivered,
            end_frames: self.end_frames,
            end_errors: self.end_errors,
            log_frames: self.log_frames,
            pings: self.pings,
            ok: missing.is_empty() && duplicated.is_empty() && self.violations.is_empty(),
            missing_end: missing,
            duplicate_end: duplicated,
            violations: self.violations.clone(),
        }
    }

    fn ids(&self, matches: impl Fn(u32) -> bool) -> Vec<u64> {
        self.sent
            .iter()
            .filter(|(_, (_, ends))| matches(*ends))
            .map(|(id, _)| *id)
            .collect()
    }
}

/// The accounting of one function process.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionReport {
    pub route_file: &'static str,
    pub pid: u32,
    pub alive: bool,
    /// Requests forwarded with the internal headers.
    pub requests: u64,
    /// Requests whose connection failed before the function had them.
    pub not_delivered: u64,
    pub end_frames: u64,
    pub end_errors: u64,
    pub log_frames: u64,
    /// `/_vercel/ping` checks that answered 200 OK.
    pub pings: u64,
    pub missing_end: Vec<u64>,
    pub duplicate_end: Vec<u64>,
    pub violations: Vec<String>,
    /// Exactly one `end` frame per request, and nothing unexpected.
    pub ok: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn end(invocation: &Invocation) -> Value {
        json!({"type": "end", "payload": {
            "context": {"invocationId": invocation.invocation_id, "requestId": invocation.request_id},
            "error": null}})
    }

    fn invocation(id: u64) -> Invocation {
        Invocation {
            invocation_id: format!("inv-{id}"),
            request_id: id,
        }
    }

    fn report(ledger: &Ledger) -> FunctionReport {
        ledger.state().report("api/x.rs", 1, true)
    }

    #[test]
    fn one_end_frame_per_request_balances_the_ledger() {
        let ledger = Ledger::default();
        for id in 1..=3 {
            ledger.sent(&invocation(id));
        }
        for id in [2, 1, 3] {
            ledger.frame("api/x.rs", &end(&invocation(id)));
        }
        let report = report(&ledger);
        assert!(report.ok, "{report:?}");
        assert_eq!((report.requests, report.end_frames), (3, 3));
    }

    #[test]
    fn a_missing_end_frame_fails_the_accounting() {
        let ledger = Ledger::default();
        ledger.sent(&invocation(1));
        ledger.sent(&invocation(2));
        ledger.frame("api/x.rs", &end(&invocation(1)));
        assert_eq!(ledger.state().awaiting(), 1);
        let report = report(&ledger);
        assert!(!report.ok);
        assert_eq!(report.missing_end, [2]);
    }

    #[test]
    fn a_duplicate_end_frame_fails_the_accounting() {
        let ledger = Ledger::default();
        ledger.sent(&invocation(7));
        ledger.frame("api/x.rs", &end(&invocation(7)));
        ledger.frame("api/x.rs", &end(&invocation(7)));
        let report = report(&ledger);
        assert!(!report.ok);
        assert_eq!(report.duplicate_end, [7]);
        assert_eq!(report.end_frames, 2);
    }

    #[test]
    fn end_frames_for_unknown_requests_or_invocations_are_violations() {
        let ledger = Ledger::default();
        ledger.sent(&invocation(1));
        ledger.frame("api/x.rs", &end(&invocation(9)));
        let mut wrong = invocation(1);
        wrong.invocation_id = "someone-else".into();
        ledger.frame("api/x.rs", &end(&wrong));
        ledger.frame(
            "api/x.rs",
            &json!({"type": "server-started", "payload": {}}),
        );
        ledger.frame("api/x.rs", &json!({"type": "end", "payload": {}}));
        let report = report(&ledger);
        assert!(!report.ok);
        assert_eq!(report.violations.len(), 4, "{:?}", report.violations);
        assert!(report.violations[0].contains("never sent"));
        assert!(report.violations[1].contains("someone-else"));
        assert_eq!(report.missing_end, [1]);
    }

    #[test]
    fn an_undelivered_request_owes_no_end_frame() {
        let ledger = Ledger::default();
        ledger.sent(&invocation(1));
        ledger.not_delivered(1);
        let report = report(&ledger);
        assert!(report.ok, "{report:?}");
        assert_eq!((report.requests, report.not_delivered), (0, 1));
    }

    #[test]
    fn log_frames_are_counted_not_accounted() {
        let ledger = Ledger::default();
        let log = json!({"type": "log", "payload": {
            "context": {"invocationId": "i", "requestId": 1}, "message": "aGVsbG8=", "level": "info"}});
        ledger.frame("api/x.rs", &log);
        let report = report(&ledger);
        assert!(report.ok);
        assert_eq!(report.log_frames, 1);
    }

    #[test]
    fn the_handshake_needs_server_started_with_a_port() {
        let frame =
            json!({"type": "server-started", "payload": {"initDuration": 0, "httpPort": 3001}});
        assert_eq!(started_port(&frame).unwrap(), 3001);
        assert!(started_port(&json!({"type": "end", "payload": {}})).is_err());
        assert!(
            started_port(&json!({"type": "server-started", "payload": {"httpPort": 0}})).is_err()
        );
    }

    #[test]
    fn internal_headers_are_recognised_in_any_case() {
        assert!(is_internal("x-vercel-internal-request-id"));
        assert!(is_internal("X-Vercel-Internal-Anything"));
        assert!(!is_internal("x-vercel-id"));
        assert!(!is_internal("x-vercel-internal"));
        assert_eq!(socket_name("api/a/[b]/c-d.rs"), "api_a__b__c_d");
    }
}
