//! HTTP plumbing shared by every route: request IDs, path parameters the way
//! Vercel passes them, bounded body reading, JSON answers and CORS.

use std::time::Instant;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::box_error::BoxError;
use crate::config::Config;
use crate::error::ApiError;

/// Any request body, boxed once at the edge so the handlers are not generic.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub type Response = http::Response<Bytes>;

/// Largest JSON body any route reads (docs/contract.md §0).
pub const MAX_JSON_BODY_BYTES: u64 = 1024 * 1024;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The old Lambdas' name for the request ID; the frontend may read either.
pub const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");

/// Puts the request ID on an answer under both of its names (docs/contract.md §0).
pub fn set_request_id(headers: &mut HeaderMap, request_id: &str) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(CORRELATION_ID, value.clone());
        headers.insert(REQUEST_ID, value);
    }
}

pub struct ApiRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    body: Option<Body>,
    pub request_id: String,
    pub started: Instant,
    /// The route's public path with `:name` segments, used to read path
    /// parameters when the platform did not pass them as query parameters.
    pattern: &'static str,
}

/// Turns any body into [`Body`]. Errors from the transport keep their type
/// so a body-limit overrun can be told apart from a broken connection.
pub fn box_body<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

impl ApiRequest {
    pub fn new<B>(request: http::Request<B>, pattern: &'static str) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        let request_id = request_id(&parts.headers);
        Self {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body: Some(box_body(body)),
            request_id,
            started: Instant::now(),
            pattern,
        }
    }

    pub fn header(&self, name: impl http::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A path parameter. Vercel passes a `[param]` segment as a query
    /// parameter and leaves the path as the client sent it, so the query
    /// wins; matching the path against the route pattern is the fallback.
    pub fn param(&self, name: &str) -> Option<String> {
        query_param(&self.uri, name).or_else(|| match_pattern(self.pattern, self.uri.path(), name))
    }

    /// A path ID. Anything that is not a UUID is simply not found: it must
    /// never reach SQL as a cast error.
    fn uuid_param(&self, name: &str, resource: &'static str) -> Result<Uuid, ApiError> {
        self.param(name)
            .and_then(|raw| Uuid::parse_str(&raw).ok())
            .ok_or(ApiError::NotFound(resource))
    }

    /// The `sessionId` path parameter.
    pub fn session_id(&self) -> Result<Uuid, ApiError> {
        self.uuid_param("sessionId", "upload session")
    }

    /// The `fileId` path parameter.
    pub fn file_id(&self) -> Result<Uuid, ApiError> {
        self.uuid_param("fileId", "file")
    }

    pub fn take_body(&mut self) -> Body {
        self.body
            .take()
            .unwrap_or_else(|| box_body(http_body_util::Empty::<Bytes>::new()))
    }

    pub fn content_length(&self) -> Option<u64> {
        self.header(CONTENT_LENGTH).and_then(|v| v.parse().ok())
    }

    /// Reads the whole body, refusing more than `max` bytes with 413 before
    /// reading past the limit. One buffer, sized from `Content-Length` when
    /// the client sent it.
    pub async fn read_body(&mut self, max: u64) -> Result<Bytes, ApiError> {
        self.read_body_with(max, |_| {}).await
    }

    /// [`Self::read_body`], handing each chunk to `on_chunk` as it arrives
    /// (a checksum computed while the body streams in).
    pub async fn read_body_with(
        &mut self,
        max: u64,
        mut on_chunk: impl FnMut(&[u8]),
    ) -> Result<Bytes, ApiError> {
        let too_large = ApiError::PayloadTooLarge {
            message: "The request body is too large",
            max_body_bytes: max,
        };
        let declared = self.content_length();
        if declared.is_some_and(|len| len > max) {
            return Err(too_large);
        }
        let mut body = self.take_body();
        let mut buffer =
            bytes::BytesMut::with_capacity(usize::try_from(declared.unwrap_or(0)).unwrap_or(0));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|error| {
                // A platform body limit in front of the function (the dev
                // server's 4.5 MB) surfaces as this error mid-stream.
                if let Some(limit) = error.downcast_ref::<PlatformBodyLimit>() {
                    return ApiError::PayloadTooLarge {
                        message: "The request body is over the platform limit",
                        max_body_bytes: limit.0,
                    };
                }
                ApiError::bad_request_with(
                    "The request body could not be read",
                    serde_json::json!({"cause": error.to_string()}),
                )
            })?;
            if let Ok(data) = frame.into_data() {
                if u64::try_from(buffer.len() + data.len()).unwrap_or(u64::MAX) > max {
                    return Err(too_large);
                }
                on_chunk(&data);
                buffer.extend_from_slice(&data);
            }
        }
        Ok(buffer.freeze())
    }

    /// Reads a JSON body: 400 when missing or malformed, 413 over 1 MiB.
    pub async fn json(&mut self) -> Result<Value, ApiError> {
        let bytes = self.read_body(MAX_JSON_BODY_BYTES).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request("A JSON request body is required"));
        }
        serde_json::from_slice(&bytes).map_err(|error| {
            ApiError::bad_request_with(
                "The request body is not valid JSON",
                serde_json::json!({"line": error.line(), "column": error.column()}),
            )
        })
    }
}

/// The error a platform body limit raises when a body runs past it. It lives
/// here, not in the dev crate that raises it, because the body reader above
/// must recognise it to answer 413 exactly as Vercel's own limit does.
#[derive(Debug, thiserror::Error)]
#[error("request body over the platform limit of {0} bytes")]
pub struct PlatformBodyLimit(pub u64);

/// The request's correlation ID: the caller's `x-request-id`, else Vercel's
/// `x-vercel-id`, else a new UUID.
fn request_id(headers: &HeaderMap) -> String {
    callers_request_id(headers)
        .or_else(|| usable_id(headers, "x-vercel-id"))
        .unwrap_or_else(|| Uuid::new_v4().to_string())
}

/// The caller's `x-request-id`, when usable as a correlation ID (the dev
/// platform takes it the same way). The one rule for an ID taken from a
/// header: trimmed, 1 to 128 visible ASCII characters; an odd value is
/// replaced, never echoed.
pub fn callers_request_id(headers: &HeaderMap) -> Option<String> {
    usable_id(headers, REQUEST_ID.as_str())
}

fn usable_id(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
}

pub fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode(value))
    })
}

/// Matches `path` against `pattern` (`/a/:id/b`) and returns the segment
/// bound to `:name`.
pub fn match_pattern(pattern: &str, path: &str, name: &str) -> Option<String> {
    let pattern_segments: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let path_segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if pattern_segments.len() != path_segments.len() {
        return None;
    }
    let mut found = None;
    for (expected, actual) in pattern_segments.iter().zip(&path_segments) {
        match expected.strip_prefix(':') {
            Some(param) if param == name => found = Some(percent_decode(actual)),
            Some(_) => {}
            None if expected == actual => {}
            None => return None,
        }
    }
    found
}

pub fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let hex = |b: u8| {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(hi, lo)| hi << 4 | lo),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = http::Response::new(Bytes::from(bytes));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An answer without a body (204).
pub fn empty(status: StatusCode) -> Response {
    let mut response = http::Response::new(Bytes::new());
    *response.status_mut() = status;
    response
}

pub fn error_response(error: &ApiError, request_id: &str) -> Response {
    let mut response = json(error.status(), &error.to_body(request_id));
    if let Some(seconds) = error.retry_after() {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(allow) = error.allow_header() {
        response.headers_mut().insert(http::header::ALLOW, allow);
    }
    response
}

/// The request's `Origin`, when it is one CORS serves (docs/contract.md §7): CORS is
/// on and the origin is listed exactly. Otherwise no CORS header is sent, and
/// `*` never is: the frontend calls with credentials.
pub fn allowed_origin<'a>(config: &Config, headers: &'a HeaderMap) -> Option<&'a HeaderValue> {
    if !config.allow_browser_uploads {
        return None;
    }
    let origin = headers.get(http::header::ORIGIN)?;
    let text = origin.to_str().ok()?.trim_end_matches('/');
    config
        .cors_allowed_origins
        .iter()
        .any(|allowed| allowed == text)
        .then_some(origin)
}

/// The API's own origin, as the client addressed it: `X-Forwarded-Proto`
/// (default `http`) and `X-Forwarded-Host`, else `Host`. Vercel sets both
/// forwarded headers; without them the request reached a plain-HTTP server
/// directly (the dev server). Defaulting to `http` fails closed: a browser on
/// an `https` page never sends an `http` origin.
pub fn own_origin(headers: &HeaderMap) -> Option<String> {
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let host = first("x-forwarded-host").or_else(|| first("host"))?;
    let proto = first("x-forwarded-proto").unwrap_or("http");
    Some(format!(
        "{}://{}",
        proto.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    ))
}

/// Headers a preflight allows (docs/contract.md §7).
const ALLOW_HEADERS: &str = "Content-Type, Authorization, X-Request-Id";
/// Response headers a cross-origin script may read (docs/contract.md §7).
const EXPOSE_HEADERS: &str = "ETag, X-Request-Id, X-Correlation-Id, Retry-After";

/// Credentialed CORS headers for `origin` (already checked by
/// [`allowed_origin`]). A preflight also gets the route's methods.
pub fn add_cors_headers(
    response: &mut Response,
    origin: &HeaderValue,
    preflight: Option<&[Method]>,
) {
    use http::header::*;
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(
        ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.append(VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    if let Some(methods) = preflight {
        if let Ok(value) = HeaderValue::from_str(&method_list(methods)) {
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, value);
        }
        headers.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    }
}

/// A route's methods plus `OPTIONS`, as `Allow` and
/// `Access-Control-Allow-Methods` list them.
pub fn method_list(methods: &[Method]) -> String {
    let mut list: Vec<&str> = methods.iter().map(Method::as_str).collect();
    if !methods.contains(&Method::OPTIONS) {
        list.push("OPTIONS");
    }
    list.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_params_come_from_the_query_first_then_the_path() {
        let pattern = "/api/s/:sessionId/files/:fileId/complete";
        let uri: Uri = "/api/s/abc/files/def/complete?sessionId=q".parse().unwrap();
        assert_eq!(query_param(&uri, "sessionId").as_deref(), Some("q"));
        assert_eq!(
            match_pattern(pattern, uri.path(), "fileId").as_deref(),
            Some("def")
        );
        assert_eq!(match_pattern(pattern, "/api/s/abc/files", "fileId"), None);
        assert_eq!(
            match_pattern(pattern, "/api/x/abc/files/def/complete", "fileId"),
            None
        );
    }

    #[test]
    fn percent_decoding_handles_truncated_escapes() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn the_own_origin_prefers_the_forwarded_host_and_proto() {
        let mut headers = HeaderMap::new();
        assert_eq!(own_origin(&headers), None);
        headers.insert("host", HeaderValue::from_static("localhost:3000"));
        assert_eq!(
            own_origin(&headers).as_deref(),
            Some("http://localhost:3000")
        );
        headers.insert(
            "x-forwarded-host",
            HeaderValue::from_static("API.example.com"),
        );
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(
            own_origin(&headers).as_deref(),
            Some("https://api.example.com")
        );
    }

    #[test]
    fn request_ids_prefer_the_callers_then_vercels() {
        let mut headers = HeaderMap::new();
        headers.insert("x-vercel-id", HeaderValue::from_static("iad1::abc"));
        assert_eq!(request_id(&headers), "iad1::abc");
        headers.insert("x-request-id", HeaderValue::from_static("mine"));
        assert_eq!(request_id(&headers), "mine");
        headers.insert("x-request-id", HeaderValue::from_static("has space"));
        assert_eq!(request_id(&headers), "iad1::abc");
    }
}
