//! The dev server: every route in one process, routed as Vercel routes, with
//! Vercel's 4.5 MB request body limit.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use moc_shared::error::ApiError;
use moc_shared::http::{PlatformBodyLimit, REQUEST_ID, error_response, set_request_id};
use moc_shared::{AppState, routes};
use tokio::net::TcpListener;

use crate::router::VercelRouter;

/// Vercel refuses request bodies over 4.5 MB before the function runs.
pub const PLATFORM_MAX_BODY_BYTES: u64 = 4_500_000;

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    let router = Arc::new(VercelRouter::for_repo());
    loop {
        let (stream, _) = listener.accept().await?;
        let state = state.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                let router = router.clone();
                async move { Ok::<_, Infallible>(handle(&router, state, request).await.map(Full::new)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

pub async fn handle<B>(
    router: &VercelRouter,
    state: AppState,
    request: Request<B>,
) -> Response<Bytes>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<moc_shared::error::BoxError>,
{
    let Some(resolved) = router.resolve(request.uri().path()) else {
        // As on Vercel, what no function claims may be a file of public/.
        let public = crate::statics::public_dir();
        if let Some(file) =
            crate::statics::serve(&public, request.method(), request.uri().path()).await
        {
            return file;
        }
        return platform_error(&request, ApiError::NotFound("route"));
    };
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > PLATFORM_MAX_BODY_BYTES) {
        return platform_error(
            &request,
            ApiError::PayloadTooLarge {
                message: "The request body is over the platform limit of 4.5 MB",
                max_body_bytes: PLATFORM_MAX_BODY_BYTES,
            },
        );
    }
    let (mut parts, body) = request.into_parts();
    parts.uri = with_query_params(&parts.uri, &resolved.params);
    let request = Request::from_parts(
        parts,
        BodyLimit {
            inner: body,
            remaining: PLATFORM_MAX_BODY_BYTES,
            tripped: Arc::default(),
        },
    );
    routes::dispatch(resolved.route, Ok(state), request).await
}

/// An answer the platform gives before any function runs, in the API's error
/// envelope (rendered by the shared error type, as every route's errors are).
/// No CORS headers: on Vercel the platform, not a function, answers an
/// unrouted path or an oversized body, and it knows no allowed origins.
fn platform_error<B>(request: &Request<B>, error: ApiError) -> Response<Bytes> {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut response = error_response(&error, &request_id);
    set_request_id(response.headers_mut(), &request_id);
    response
}

fn with_query_params(uri: &Uri, params: &[(String, String)]) -> Uri {
    if params.is_empty() {
        return uri.clone();
    }
    let mut query: Vec<String> = uri.query().map(|q| vec![q.to_owned()]).unwrap_or_default();
    for (name, value) in params {
        query.push(format!("{name}={}", encode(value)));
    }
    format!("{}?{}", uri.path(), query.join("&"))
        .parse()
        .unwrap_or_else(|_| uri.clone())
}

/// Percent-encodes a query parameter value (RFC 3986 unreserved kept).
pub(crate) fn encode(value: &str) -> String {
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
pub(crate) struct BodyLimit<B> {
    pub(crate) inner: B,
    pub(crate) remaining: u64,
    pub(crate) tripped: Arc<AtomicBool>,
}

impl<B> Body for BodyLimit<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<moc_shared::error::BoxError>,
{
    type Data = Bytes;
    type Error = moc_shared::error::BoxError;

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
