//! The dev server: every route in one process, routed as Vercel routes, with
//! what the platform does in front of a function (`platform`).

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use moc_shared::box_error::BoxError;
use moc_shared::error::ApiError;
use moc_shared::{AppState, routes};
use tokio::net::TcpListener;

use crate::platform;
use crate::router::VercelRouter;

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, state: AppState) {
    let router = Arc::new(VercelRouter::for_repo());
    platform::serve(listener, move |request, _peer| {
        let (router, state) = (router.clone(), state.clone());
        async move { handle(&router, state, request).await.map(Full::new) }
    })
    .await
}

pub async fn handle<B>(
    router: &VercelRouter,
    state: AppState,
    request: Request<B>,
) -> Response<Bytes>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let Some(resolved) = router.resolve(request.uri().path()) else {
        // As on Vercel, what no function claims may be a file of public/.
        let public = crate::statics::public_dir();
        if let Some(file) =
            crate::statics::serve(&public, request.method(), request.uri().path()).await
        {
            return file;
        }
        return platform_error(&request, &ApiError::NotFound("route"));
    };
    if platform::declares_too_large(request.headers()) {
        return platform_error(&request, &platform::body_too_large());
    }
    let (mut parts, body) = request.into_parts();
    if let Ok(uri) = platform::path_with_params(&parts.uri, &resolved.params).parse() {
        parts.uri = uri;
    }
    let (body, _) = platform::limit_body(body);
    routes::dispatch(resolved.route, Ok(state), Request::from_parts(parts, body)).await
}

fn platform_error<B>(request: &Request<B>, error: &ApiError) -> Response<Bytes> {
    let request_id = platform::request_id(request.headers(), || uuid::Uuid::new_v4().to_string());
    platform::error_answer(error, &request_id)
}
