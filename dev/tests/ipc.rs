//! The gateway's IPC mode against a real function binary (a debug build of
//! `file-parts`, built here when missing): the `server-started` handshake,
//! `/_vercel/ping`, the `x-vercel-internal-*` headers and the `end` frame
//! accounting, as production drives a function (dev/src/ipc.rs).

#![allow(clippy::unwrap_used, reason = "in a test an unwrap is an assertion")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use moc_dev::gateway::{CHAOS_KILL_HEADER, Functions, Gateway};
use moc_dev::ipc::{INTERNAL_REQUEST_ID, INVOCATION_ID, IpcFunction, IpcSpec};
use serde_json::Value;
use tokio::sync::OnceCell;

const ROUTE_FILE: &str = "api/mocs/uploads/sessions/[sessionId]/files/[fileId]/parts.rs";
const BIN: &str = "file-parts";
/// A path its route serves with a 404 before any database or S3 call.
const BAD_IDS: &str = "/api/mocs/uploads/sessions/not-a-uuid/files/also-not-a-uuid/parts";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The debug function binary, built once per test run (`cargo build` is a
/// no-op when it is fresh).
async fn function_binary() -> &'static Path {
    static BINARY: OnceCell<PathBuf> = OnceCell::const_new();
    BINARY
        .get_or_init(|| async {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = tokio::process::Command::new(cargo)
                // The workspace's test build, so the dependencies are the ones
                // `cargo test --workspace --all-targets` compiled (one feature
                // set), and only the binary itself is linked here.
                .args(["build", "--quiet", "--workspace", "--tests", "--bin", BIN])
                .current_dir(repo())
                .status()
                .await
                .expect("cargo runs");
            assert!(status.success(), "cargo build --bin {BIN} failed");
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| repo().join("target"), PathBuf::from);
            target.join("debug").join(BIN)
        })
        .await
}

/// What a function gets on Vercel: only the project's variables.
fn function_env() -> Vec<(String, String)> {
    [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        (
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres".into(),
        ),
        ("MOC_BUCKET", "moc-ipc-test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("S3_ENDPOINT", "http://127.0.0.1:9".into()),
        ("AWS_ACCESS_KEY_ID", "ipc-test".into()),
        ("AWS_SECRET_ACCESS_KEY", "ipc-test".into()),
        ("AUTH_BYPASS", "true".into()),
        ("STAGE", "dev".into()),
        ("RUST_LOG", "info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("moc-ipc-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn started_gateway(dir: &Path) -> Gateway {
    let spec = serde_json::json!({ ROUTE_FILE: {
        "ipc": function_binary().await, "log": dir.join("function.log") } });
    let mut gateway = Gateway::for_repo(Functions::parse(&spec.to_string()).unwrap());
    gateway.start_functions(&function_env(), dir).await.unwrap();
    gateway
}

async fn accounting(gateway: &Gateway) -> (StatusCode, Value) {
    let request = Request::get("/_moc/ipc-accounting?waitMs=5000")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = gateway.handle(request, None).await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn every_request_through_the_gateway_gets_exactly_one_end_frame_and_no_internal_header() {
    let dir = scratch("gateway");
    let gateway = started_gateway(&dir).await;
    for n in 0..5 {
        let request = Request::get(BAD_IDS)
            .header("x-request-id", format!("ipc-test-{n}"))
            // A client pretending to be the platform: dropped at the gateway.
            .header(INVOCATION_ID, "spoofed")
            .header(INTERNAL_REQUEST_ID, "1")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = gateway.handle(request, None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let internal: Vec<_> = response
            .headers()
            .keys()
            .filter(|k| k.as_str().starts_with("x-vercel-internal-"))
            .collect();
        assert!(internal.is_empty(), "{internal:?}");
        assert_eq!(
            response.headers()["x-request-id"],
            format!("ipc-test-{n}").as_str()
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["type"], "NOT_FOUND");
    }
    let (status, report) = accounting(&gateway).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let totals = &report["totals"];
    assert_eq!(totals["functions"], 1);
    assert_eq!(totals["requests"], 5, "{report}");
    assert_eq!(totals["endFrames"], 5, "{report}");
    assert_eq!(totals["pings"], 1);
    assert_eq!(totals["internalHeadersStripped"]["fromRequests"], 10);
    let function = &report["functions"][0];
    assert_eq!(function["routeFile"], ROUTE_FILE);
    assert_eq!(function["alive"], true);
    let log = std::fs::read_to_string(dir.join("function.log")).unwrap();
    assert!(
        log.contains("ipc-test-4"),
        "the function did not log the request: {log}"
    );
    gateway.stop_functions().await;
    let (status, report) = accounting(&gateway).await;
    assert_eq!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "a stopped function is not ok"
    );
    assert_eq!(report["functions"][0]["alive"], false);
    let _ = std::fs::remove_dir_all(dir);
}

/// Sends a request straight to the function's port with the given IDs.
async fn direct(function: &IpcFunction, invocation_id: &str, request_id: u64) {
    let url = format!("http://127.0.0.1:{}{BAD_IDS}", function.http_port);
    let response = reqwest::Client::new()
        .get(url)
        .header(INVOCATION_ID, invocation_id)
        .header(INTERNAL_REQUEST_ID, request_id.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn missing_duplicate_and_unknown_end_frames_of_a_real_function_fail_the_accounting() {
    let dir = scratch("ledger");
    let spec = IpcSpec {
        executable: function_binary().await.to_owned(),
        log: Some(dir.join("function.log")),
    };
    let function = Arc::new(
        IpcFunction::start(ROUTE_FILE, &spec, &function_env(), &dir)
            .await
            .unwrap(),
    );
    let once = function.invoke();
    direct(&function, &once.invocation_id, once.request_id).await;
    let report = function.report(Duration::from_secs(5)).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(
        (report.requests, report.end_frames, report.pings),
        (1, 1, 1)
    );

    // The same request delivered twice: the runtime ends it twice.
    let twice = function.invoke();
    direct(&function, &twice.invocation_id, twice.request_id).await;
    direct(&function, &twice.invocation_id, twice.request_id).await;
    // Recorded but never delivered: its end frame never comes.
    let never = function.invoke();
    // Delivered with IDs the gateway never handed out.
    direct(&function, "not-from-the-gateway", 9_999).await;

    let report = function.report(Duration::from_millis(1500)).await;
    assert!(!report.ok);
    assert_eq!(report.duplicate_end, [twice.request_id], "{report:?}");
    assert_eq!(report.missing_end, [never.request_id], "{report:?}");
    assert_eq!(report.violations.len(), 2, "{report:?}");
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.contains("9999") && v.contains("never sent"))
    );
    assert_eq!((report.requests, report.end_frames), (3, 4));
    function.stop(Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_binary_that_never_completes_the_handshake_is_refused() {
    let dir = scratch("handshake");
    // `true` exits at once: no IPC connection, no server-started.
    let spec = IpcSpec {
        executable: "true".into(),
        log: None,
    };
    let error = IpcFunction::start(ROUTE_FILE, &spec, &function_env(), &dir)
        .await
        .err()
        .expect("no handshake, no function");
    assert!(
        error.to_string().contains("exited before server-started"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 26: `scripts/chaos` SIGKILLs functions mid-request through the
/// gateway. The request in flight gets the platform's 504, and the next
/// request to the route cold-starts a new process instead of a 502 for ever.
#[tokio::test]
async fn a_function_killed_mid_request_answers_504_and_the_next_request_cold_starts_a_new_one() {
    let dir = scratch("kill");
    let mut gateway = started_gateway(&dir).await;
    let kills = dir.join("kills.log");
    gateway.enable_chaos(&kills).unwrap();
    let first_pid = accounting(&gateway).await.1["functions"][0]["pid"].clone();
    // Valid IDs: the function connects to the database (slow enough for a
    // kill 0 ms after forwarding to land mid-request; tried a few times).
    let slow = format!(
        "/api/mocs/uploads/sessions/{}/files/{}/parts",
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4()
    );
    let mut killed = None;
    for _ in 0..5 {
        let request = Request::get(slow.as_str())
            .header(CHAOS_KILL_HEADER, "0")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = gateway.handle(request, None).await;
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        if status == StatusCode::GATEWAY_TIMEOUT {
            killed = Some(serde_json::from_slice::<Value>(&body).unwrap());
            break;
        }
    }
    let killed = killed.expect("a kill landed mid-request within 5 tries");
    assert_eq!(
        killed["error"]["details"]["reason"],
        "FUNCTION_INVOCATION_TIMEOUT"
    );
    let request = Request::get(BAD_IDS).body(Full::new(Bytes::new())).unwrap();
    assert_eq!(gateway.handle(request, None).await.status(), 404);
    let (_, report) = accounting(&gateway).await;
    assert_ne!(report["functions"][0]["pid"], first_pid);
    assert!(report["totals"]["restartsAfterKill"].as_u64().unwrap() >= 1);
    let log = std::fs::read_to_string(&kills).unwrap();
    assert!(log.contains(r#""fault":"kill""#), "{log}");
    gateway.stop_functions().await;
}
