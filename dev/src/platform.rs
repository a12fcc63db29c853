//! What the Vercel platform does in front of every function, written once for
//! both ways the dev server runs the functions: in-process (`server`) and as
//! the real binaries behind the gateway (`gateway`).
//!
//! - The 4.5 MB request body limit: a declared `Content-Length` over it is
//!   refused before any function runs; a body that never declared its length
//!   is cut off once it runs past it.
//! - The request ID of an answer the platform gives itself (404, 413, 502,
//!   504), in the API's error envelope.
//! - The path parameters a route binds, appended to the query string, which
//!   is how a Vercel function receives them.
//! - The accept loop, one task per connection (the embedded S3 runs on it
//!   too).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use moc_shared::box_error::BoxError;
use moc_shared::error::ApiError;
use moc_shared::http::{PlatformBodyLimit, callers_request_id, error_response, set_request_id};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Vercel refuses request bodies over 4.5 MB before the function runs.
pub const PLATFORM_MAX_BODY_BYTES: u64 = 4_500_000;

/// The platform's 413.
pub fn body_too_large() -> ApiError {
    ApiError::PayloadTooLarge {
        message: "The request body is over the platform limit of 4.5 MB",
        max_body_bytes: PLATFORM_MAX_BODY_BYTES,
    }
}

/// Whether the request declares a body over the limit, so it is refused
/// before any function runs.
pub fn declares_too_large(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > PLATFORM_MAX_BODY_BYTES)
}

/// `body`, failing once it runs past the limit, and the flag that says it
/// did (the function then sees a broken body; the platform answers 413).
pub fn limit_body<B>(body: B) -> (BodyLimit<B>, Arc<AtomicBool>) {
    let tripped = Arc::new(AtomicBool::new(false));
    let limited = BodyLimit {
        inner: body,
        remaining: PLATFORM_MAX_BODY_BYTES,
        tripped: tripped.clone(),
    };
    (limited, tripped)
}

/// The caller's `x-request-id` when usable (what a function would take),
/// else `fallback`. Odd values are replaced, not echoed, as a function does.
pub fn request_id(headers: &HeaderMap, fallback: impl FnOnce() -> String) -> String {
    callers_request_id(headers).unwrap_or_else(fallback)
}

/// An answer the platform gives before (or instead of) any function, in the
/// API's error envelope, rendered by the shared error type as every route's
/// errors are. No CORS headers: on Vercel the platform, not a function,
/// answers it, and it knows no allowed origins.
pub fn error_answer(error: &ApiError, request_id: &str) -> Response<Bytes> {
    let mut response = error_response(error, request_id);
    set_request_id(response.headers_mut(), request_id);
    response
}

/// The path the client sent and its query, then the bound parameters, as
/// Vercel passes them to the function.
pub fn path_with_params(uri: &Uri, params: &[(String, String)]) -> String {
    let mut query: Vec<String> = uri
        .query()
        .filter(|q| !q.is_empty())
        .map(|q| vec![q.to_owned()])
        .unwrap_or_default();
    for (name, value) in params {
        query.push(format!("{}={}", encode(name), encode(value)));
    }
    if query.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{}", uri.path(), query.join("&"))
    }
}

/// Percent-encodes a query parameter name or value (RFC 3986 unreserved kept).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Fails the body once it runs past the platform limit, for bodies that did
/// not declare their length, and says so through `tripped`.
pub struct BodyLimit<B> {
    inner: B,
    remaining: u64,
    tripped: Arc<AtomicBool>,
}

impl<B> Body for BodyLimit<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > self.remaining {
                        self.tripped.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(PlatformBodyLimit(
                            PLATFORM_MAX_BODY_BYTES,
                        )))));
                    }
                    self.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            other => other.map(|_| None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves HTTP/1.1 on `listener` until the task is dropped, answering each
/// request with `handle(request, peer)`. Connections belong to this task, so
/// dropping it closes them too and a test's server cannot outlive it.
pub async fn serve<H, F, B>(listener: TcpListener, handle: H)
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    serve_connections(listener, move |peer| {
        let handle = handle.clone();
        hyper::service::service_fn(move |request| {
            let answer = handle(request, peer);
            async move { Ok::<_, Infallible>(answer.await) }
        })
    })
    .await
}

/// The accept loop under [`serve`], for a hyper service made per connection
/// (the embedded S3 serves its own).
pub async fn serve_connections<S, B>(listener: TcpListener, service_for: impl Fn(SocketAddr) -> S)
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Small answers would otherwise wait on Nagle.
                    let _ = stream.set_nodelay(true);
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service_for(peer));
                    connections.spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%peer, %error, "connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    // Typically EMFILE: back off rather than spin on it.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set does not grow forever.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use moc_shared::http::REQUEST_ID;

    use super::*;

    #[test]
    fn the_function_sees_the_client_path_and_query_then_the_params() {
        let params = vec![
            ("sessionId".to_owned(), "s 1".to_owned()),
            ("fileId".to_owned(), "f".to_owned()),
        ];
        let uri: Uri = "/api/x/s1/files?a=1".parse().unwrap();
        assert_eq!(
            path_with_params(&uri, &params),
            "/api/x/s1/files?a=1&sessionId=s%201&fileId=f"
        );
        assert_eq!(path_with_params(&"/p?".parse().unwrap(), &[]), "/p");
        assert_eq!(
            path_with_params(&"/p".parse().unwrap(), &params[1..]),
            "/p?fileId=f"
        );
    }

    #[test]
    fn odd_request_ids_are_replaced_not_echoed() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID, value.parse().unwrap());
            request_id(&headers, || "fallback".to_owned())
        };
        assert_eq!(with(" rid-1 "), "rid-1");
        assert_eq!(with("two words"), "fallback");
        assert_eq!(with(&"x".repeat(129)), "fallback");
        assert_eq!(request_id(&HeaderMap::new(), || "new".to_owned()), "new");
    }
}
