//! The dispatcher's own guarantees, without a database: a handler's panic is
//! its request's 500, and the request's log lines carry its user.

use std::sync::LazyLock;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::Empty;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

use super::{Handler, Route, dispatch};
use crate::config::Config;
use crate::http as api_http;
use crate::state::AppState;
use crate::telemetry::CapturedLines;

const DEV_USER: &str = "dev-user-for-routes-tests";

/// State that authenticates every request as [`DEV_USER`] (`AUTH_BYPASS`)
/// and opens no connection: no route here touches the database.
fn state() -> AppState {
    let config = Config::from_lookup(|name| {
        let value = match name {
            "DATABASE_URL" => "postgres://127.0.0.1:1/unused",
            "MOC_BUCKET" => "bucket",
            "AUTH_BYPASS" => "true",
            "DEV_USER_SUB" => DEV_USER,
            _ => return None,
        };
        Some(value.to_owned())
    })
    .expect("test config is valid");
    AppState::new(config, crate::credentials::AwsCredentials::none()).expect("test state builds")
}

fn request() -> http::Request<Empty<Bytes>> {
    http::Request::get("/test").body(Empty::new()).unwrap()
}

static GET: [Method; 1] = [Method::GET];

/// A GET route at `/test` with `handler`; only the handler matters here.
const fn test_route(handler: Handler) -> Route {
    Route {
        file: "api/test.rs",
        pattern: "/test",
        methods: &GET,
        max_duration: 10,
        handler,
    }
}

static PANICS: Route = test_route(Handler::User(|_, _, _| {
    Box::pin(async { panic!("a bug in a handler") })
}));

static LOGS: Route = test_route(Handler::User(|_, _, _| {
    Box::pin(async {
        tracing::info!("handler ran");
        Ok(api_http::empty(StatusCode::NO_CONTENT))
    })
}));

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_instance_serves_on() {
    let state = state();
    let response = dispatch(&PANICS, Ok(state.clone()), request()).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
    assert!(!body.to_string().contains("a bug"), "{body}");

    let next = dispatch(&LOGS, Ok(state), request()).await;
    assert_eq!(next.status(), StatusCode::NO_CONTENT);
}

/// Every log line of this test binary, as `telemetry::init` writes them.
///
/// One global subscriber, not a per-test `set_default`: tracing caches
/// whether a callsite is enabled, and tests on other threads registering and
/// dropping their own subscribers race that cache, so a thread's default
/// can miss a span. Each test picks its own request's lines by request ID.
static LOG: LazyLock<CapturedLines> = LazyLock::new(|| {
    let captured = CapturedLines::default();
    let writer = captured.clone();
    let subscriber =
        tracing_subscriber::registry().with(crate::telemetry::json_lines(move || writer.clone()));
    tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
    captured
});

/// Sends `request` to `route` with a fresh request ID, and returns the log
/// lines written inside its request span.
async fn logged_lines<B>(route: &Route, request: http::Request<B>) -> Vec<Value>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::box_error::BoxError>,
{
    LazyLock::force(&LOG);
    let request_id = uuid::Uuid::new_v4().to_string();
    let (mut parts, body) = request.into_parts();
    parts
        .headers
        .insert("x-request-id", request_id.parse().unwrap());
    dispatch(route, Ok(state()), http::Request::from_parts(parts, body)).await;
    LOG.lines()
        .into_iter()
        .filter(|line| line["spans"][0]["request_id"] == request_id.as_str())
        .collect()
}

/// A field of a log line's innermost span that has it.
fn innermost<'l>(line: &'l Value, field: &str) -> &'l Value {
    line["spans"]
        .as_array()
        .and_then(|spans| spans.iter().rev().find_map(|span| span.get(field)))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn every_log_line_of_a_request_carries_its_user() {
    let lines = logged_lines(&LOGS, request()).await;
    for message in ["handler ran", "request finished"] {
        let line = lines
            .iter()
            .find(|line| line["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line in {lines:?}"));
        assert_eq!(innermost(line, "user_id"), DEV_USER, "{line}");
        // The current span is the list's last; it is not written twice.
        assert!(line.get("span").is_none(), "{line}");
    }
}

/// Finalize names its session in its span once it has read the body; the
/// lines after that (here the warning that no rate limit store is set, then
/// the failure to reach the database) carry it.
#[tokio::test]
async fn finalize_lines_carry_the_session_once_it_is_known() {
    let session_id = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";
    let body = serde_json::json!({"uploadSessionId": session_id, "title": "Castle"});
    let request = http::Request::post("/api/mocs/uploads/finalize")
        .body(http_body_util::Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let lines = logged_lines(&super::FINALIZE, request).await;
    let warning = lines
        .iter()
        .find(|line| line["action"] == "finalize")
        .unwrap_or_else(|| panic!("no rate limit line in {lines:?}"));
    assert_eq!(innermost(warning, "session_id"), session_id, "{warning}");
    assert_eq!(innermost(warning, "user_id"), DEV_USER, "{warning}");
}

/// What `AppState::log_cold_start` writes for `vars` over the test state's,
/// inside a span of its own.
fn cold_start_lines(vars: &[(&str, &str)]) -> Vec<Value> {
    LazyLock::force(&LOG);
    let lookup = |name: &str| {
        vars.iter()
            .find(|(var, _)| *var == name)
            .map(|(_, value)| value.to_string())
            .or_else(|| match name {
                "DATABASE_URL" => Some("postgres://127.0.0.1:1/unused".into()),
                "MOC_BUCKET" => Some("bucket".into()),
                "AUTH_BYPASS" => Some("true".into()),
                _ => None,
            })
    };
    let config = Config::from_lookup(lookup).expect("valid");
    let credentials =
        crate::credentials::AwsCredentials::from_lookup(&lookup, &config.s3.region, &config.trust);
    let state = AppState::new(config, credentials).expect("a bad Redis URL still builds");
    let marker = uuid::Uuid::new_v4().to_string();
    tracing::info_span!("cold_start", marker = %marker).in_scope(|| state.log_cold_start());
    LOG.lines()
        .into_iter()
        .filter(|line| line["spans"][0]["marker"] == marker.as_str())
        .collect()
}

#[test]
fn a_refused_redis_url_is_one_error_line_at_cold_start_naming_the_variable() {
    let lines = cold_start_lines(&[("KV_URL", "rediss://default:secret@kv:6379#insecure")]);
    let errors: Vec<_> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert_eq!(errors.len(), 1, "{lines:?}");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(message.starts_with("KV_URL is unusable: "), "{message}");
    assert!(message.contains("fragment"), "{message}");
    assert!(!errors[0].to_string().contains("secret"), "{}", errors[0]);
}

#[test]
fn injected_aws_keys_on_vercel_warn_once_at_cold_start() {
    let injected = [
        ("VERCEL", "1"),
        ("AWS_ACCESS_KEY_ID", "ASIAINJECTED"),
        ("AWS_SECRET_ACCESS_KEY", "x"),
        ("AWS_SESSION_TOKEN", "y"),
    ];
    let hazard = |lines: &[Value]| {
        lines
            .iter()
            .filter(|l| l["level"] == "WARN")
            .filter(|l| l["message"].as_str().unwrap().contains("AWS_ACCESS_KEY_ID"))
            .count()
    };
    assert_eq!(hazard(&cold_start_lines(&injected)), 1);
    let mut own = injected.to_vec();
    own.extend([
        ("S3_ACCESS_KEY_ID", "AKIAOWN"),
        ("S3_SECRET_ACCESS_KEY", "own"),
    ]);
    assert_eq!(hazard(&cold_start_lines(&own)), 0);
}
