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
//! too). Each request is resolved by [`VercelRouter`], checked against the
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
use std::sync::atomic::Ordering;
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

use crate::platform;
use crate::router::VercelRouter;

/// Vercel's default `maxDuration` for a function `vercel.json` does not list.
const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(300);

pub type GatewayBody = UnsyncBoxBody<Bytes, BoxError>;
type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;

/// Where each function listens, by route file.
#[derive(Debug, Clone)]
pub struct Functions {
    by_file: HashMap<&'static str, Uri>,
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
            match upstream_uri(address) {
                Some(uri) => {
                    by_file.insert(route.file, uri);
                }
                None => problems.push(format!(
                    "{file}: {address} is not a port, host:port or http://host:port"
                )),
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

    pub fn get(&self, route: &Route) -> Option<&Uri> {
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
                Some(uri) => format!("    {uri}  {}", r.file),
                None => format!("    (unmapped: 502)  {}", r.file),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
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
    max_durations: HashMap<&'static str, Duration>,
    client: Client<HttpConnector, UpstreamBody>,
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
            max_durations,
            client,
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
        let call = Call::new(&request);
        match self.target(&request) {
            Ok(target) => {
                let response = self.forward(request, client, &call, &target).await;
                call.forwarded(&target, response)
            }
            Err(refusal) => call.answered_here(call.error(&refusal)),
        }
    }

    /// The function a request goes to, or the error the platform answers
    /// itself when none will run: an unrouted path, a declared body over the
    /// limit, a route no function process serves.
    fn target<B>(&self, request: &Request<B>) -> Result<Target<'_>, ApiError> {
        let resolved = self
            .router
            .resolve(request.uri().path())
            .ok_or(ApiError::NotFound("route"))?;
        if platform::declares_too_large(request.headers()) {
            return Err(platform::body_too_large());
        }
        let route = resolved.route;
        let upstream = self.functions.get(route).ok_or_else(|| {
            invocation_failed(format!(
                "no function process is configured for {}",
                route.file
            ))
        })?;
        let max_duration = self
            .max_durations
            .get(route.file)
            .copied()
            .unwrap_or(DEFAULT_MAX_DURATION);
        Ok(Target {
            route,
            upstream,
            params: resolved.params,
            max_duration,
        })
    }

    /// Sends the request on to its function, its body read whole under the
    /// platform limit, and turns what comes back (or does not) into the answer.
    async fn forward<B>(
        &self,
        request: Request<B>,
        client: Option<SocketAddr>,
        call: &Call,
        target: &Target<'_>,
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
        parts.uri = forwarded_uri(target.upstream, &parts.uri, &target.params);
        parts.version = Version::HTTP_11;
        forwarded_headers(&mut parts.headers, client, &call.vercel_id);
        let forwarded = Request::from_parts(parts, full(body));
        let answer = tokio::time::timeout(target.max_duration, self.client.request(forwarded));
        match answer.await {
            Ok(Ok(response)) => call.function_answer(response),
            Ok(Err(error)) => call.error(&invocation_failed(format!(
                "the function {} at {} failed: {}",
                target.route.file,
                target.upstream,
                error_chain(&error)
            ))),
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
struct Target<'a> {
    route: &'static Route,
    upstream: &'a Uri,
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

    /// The function's answer, streamed back as Vercel's proxy passes it on.
    fn function_answer(&self, response: Response<hyper::body::Incoming>) -> Response<GatewayBody> {
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        self.add_vercel_id(&mut parts.headers);
        Response::from_parts(parts, body.map_err(BoxError::from).boxed_unsync())
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

    fn forwarded(
        &self,
        target: &Target<'_>,
        response: Response<GatewayBody>,
    ) -> Response<GatewayBody> {
        tracing::info!(
            request_id = %self.request_id,
            method = %self.method,
            path = %self.path,
            function = target.route.file,
            upstream = %target.upstream,
            status = response.status().as_u16(),
            duration_ms = self.started.elapsed().as_millis() as u64,
            "gateway forwarded"
        );
        response
    }
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, gateway: Gateway) {
    let gateway = Arc::new(gateway);
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
        let uri = |r: &Route| functions.get(r).map(|u| u.to_string());
        assert_eq!(
            uri(&routes::CREATE_SESSION).unwrap(),
            "http://127.0.0.1:3201/"
        );
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
