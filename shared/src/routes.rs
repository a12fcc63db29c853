//! The route table: every function of the API, with its file under `api/`,
//! its public path, its methods and its handler. The Vercel binaries, the
//! dev server and the tests all dispatch through [`dispatch`].

use std::future::Future;

use bytes::Bytes;
use http::{Method, StatusCode};
use tracing::Instrument;

use crate::auth::{self, User};
use crate::domain::PartNumber;
use crate::error::{ApiError, BoxError};
use crate::http::{self as api_http, ApiRequest, REQUEST_ID, Response};
use crate::services::finalize::FinalizeOutcome;
use crate::services::{files, finalize, parts, sessions};
use crate::state::AppState;

/// A handler runs as its own task: a panic becomes a 500 for its request, not
/// a dead instance.
type HandlerTask = tokio::task::JoinHandle<Result<Response, ApiError>>;
pub type Handler = fn(AppState, User, ApiRequest) -> HandlerTask;

fn task<F>(work: F) -> HandlerTask
where
    F: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    tokio::spawn(work.in_current_span())
}

pub struct Route {
    /// The route file under `api/`; Vercel makes one function of each.
    pub file: &'static str,
    /// The public path, `:name` for a dynamic segment.
    pub pattern: &'static str,
    /// Older public paths served by the same function.
    pub aliases: &'static [&'static str],
    pub methods: &'static [Method],
    /// Whether browser uploads may call it cross-origin (contract §7).
    pub cors: bool,
    pub handler: Handler,
}

pub static CREATE_SESSION: Route = Route {
    file: "api/mocs/uploads/sessions/index.rs",
    pattern: "/api/mocs/uploads/sessions",
    aliases: &[],
    methods: &[Method::POST],
    cors: false,
    handler: create_session,
};

fn create_session(state: AppState, user: User, req: ApiRequest) -> HandlerTask {
    task(async move {
        let mut req = req;
        let body = req.json().await?;
        let created = sessions::create(&state, &user, body).await?;
        Ok(api_http::json(StatusCode::CREATED, &created))
    })
}

pub static REGISTER_FILE: Route = Route {
    file: "api/mocs/uploads/sessions/[sessionId]/files/index.rs",
    pattern: "/api/mocs/uploads/sessions/:sessionId/files",
    aliases: &[],
    methods: &[Method::POST],
    cors: false,
    handler: register_file,
};

fn register_file(state: AppState, user: User, req: ApiRequest) -> HandlerTask {
    task(async move {
        let mut req = req;
        let session_id = req.uuid_param("sessionId", "upload session")?;
        let body = req.json().await?;
        let registration = files::register(&state, &user, session_id, body).await?;
        let status = if registration.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok(api_http::json(status, &registration))
    })
}

pub static REGISTER_BATCH: Route = Route {
    file: "api/mocs/uploads/sessions/[sessionId]/files/batch.rs",
    pattern: "/api/mocs/uploads/sessions/:sessionId/files/batch",
    aliases: &[],
    methods: &[Method::POST],
    cors: false,
    handler: register_batch,
};

fn register_batch(state: AppState, user: User, req: ApiRequest) -> HandlerTask {
    task(async move {
        let mut req = req;
        let session_id = req.uuid_param("sessionId", "upload session")?;
        let body = req.json().await?;
        let results = files::register_batch(&state, &user, session_id, body).await?;
        Ok(api_http::json(
            StatusCode::CREATED,
            &serde_json::json!({ "results": results }),
        ))
    })
}

pub static COMPLETE_FILE: Route = Route {
    file: "api/mocs/uploads/sessions/[sessionId]/files/[fileId]/complete.rs",
    pattern: "/api/mocs/uploads/sessions/:sessionId/files/:fileId/complete",
    aliases: &[],
    methods: &[Method::POST],
    cors: false,
    handler: complete_file,
};

fn complete_file(state: AppState, user: User, req: ApiRequest) -> HandlerTask {
    task(async move {
        let mut req = req;
        let session_id = req.uuid_param("sessionId", "upload session")?;
        let file_id = req.uuid_param("fileId", "file")?;
        let body = req.json().await?;
        let completed = files::complete(&state, &user, session_id, file_id, body).await?;
        Ok(api_http::json(StatusCode::OK, &completed))
    })
}

pub static LIST_PARTS: Route = Route {
    file: "api/mocs/uploads/sessions/[sessionId]/files/[fileId]/parts.rs",
    pattern: "/api/mocs/uploads/sessions/:sessionId/files/:fileId/parts",
    aliases: &[],
    methods: &[Method::GET],
    cors: false,
    handler: list_parts,
};

fn list_parts(state: AppState, user: User, req: ApiRequest) -> HandlerTask {
    task(async move {
        let session_id = req.uuid_param("sessionId", "upload session")?;
        let file_id = req.uuid_param("fileId", "file")?;
        let parts = parts::list(&state, &user, session_id, file_id).await?;
        Ok(api_http::json(
            StatusCode::OK,
            &serde_json::json!({ "parts": parts }),
        ))
    })
}

pub static UPLOAD_PART: Route = Route {
    file: "api/mocs/uploads/sessions/[sessionId]/files/[fileId]/parts/[partNumber].rs",
    pattern: "/api/mocs/uploads/sessions/:sessionId/files/:fileId/parts/:partNumber",
    aliases: &[],
    methods: &[Method::PUT],
    cors: true,
    handler: upload_part,
};

fn upload_part(state: AppState, user: User, req: ApiRequest) -> HandlerTask {
    task(async move {
        let mut req = req;
        let part_number = req
            .param("partNumber")
            .and_then(|raw| PartNumber::parse(&raw))
            .ok_or(ApiError::InvalidPartNumber)?;
        let session_id = req.uuid_param("sessionId", "upload session")?;
        let file_id = req.uuid_param("fileId", "file")?;
        let uploaded =
            parts::upload(&state, &user, session_id, file_id, part_number, &mut req).await?;
        Ok(api_http::json(StatusCode::OK, &uploaded))
    })
}

pub static FINALIZE: Route = Route {
    file: "api/mocs/uploads/finalize.rs",
    pattern: "/api/mocs/uploads/finalize",
    aliases: &[
        "/api/mocs/uploads/sessions/finalize",
        "/api/mocs/uploads/sessions/:sessionId/finalize",
    ],
    methods: &[Method::POST],
    cors: false,
    handler: finalize,
};

fn finalize(state: AppState, user: User, req: ApiRequest) -> HandlerTask {
    task(async move {
        let mut req = req;
        let body = req.json().await?;
        Ok(match finalize::finalize(&state, &user, body).await? {
            FinalizeOutcome::Created(moc) => api_http::json(StatusCode::CREATED, &moc),
            FinalizeOutcome::Replayed(moc) => api_http::json(StatusCode::OK, &moc),
            FinalizeOutcome::InProgress => api_http::json(
                StatusCode::OK,
                &serde_json::json!({
                    "status": "finalizing",
                    "idempotent": true,
                    "message": "Finalization in progress",
                }),
            ),
        })
    })
}

/// Every route, most specific first.
pub static ROUTES: [&Route; 7] = [
    &CREATE_SESSION,
    &REGISTER_BATCH,
    &REGISTER_FILE,
    &COMPLETE_FILE,
    &UPLOAD_PART,
    &LIST_PARTS,
    &FINALIZE,
];

/// Serves one request on `route`: request ID, logging span, method check,
/// CORS, authentication, the handler, and the error mapping. It never fails
/// and never panics the process: every outcome is a response.
pub async fn dispatch<B>(
    route: &Route,
    state: Result<AppState, ApiError>,
    request: http::Request<B>,
) -> http::Response<Bytes>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let request = ApiRequest::new(request, route.pattern);
    let request_id = request.request_id.clone();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %request.method,
        path = %request.uri.path(),
    );
    async move {
        let started = request.started;
        let origin = state
            .as_ref()
            .ok()
            .filter(|_| route.cors)
            .and_then(|s| api_http::allowed_origin(s.config(), &request.headers).cloned());
        let is_preflight = request.method == Method::OPTIONS;
        let mut response = match handle(route, state, request).await {
            Ok(response) => response,
            Err(error) => {
                error.log();
                api_http::error_response(&error, &request_id)
            }
        };
        if let Some(origin) = &origin {
            api_http::add_cors_headers(&mut response, origin, is_preflight);
        }
        if let Ok(value) = http::HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        tracing::info!(
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_millis() as u64,
            "request finished"
        );
        response
    }
    .instrument(span)
    .await
}

async fn handle(
    route: &Route,
    state: Result<AppState, ApiError>,
    request: ApiRequest,
) -> Result<Response, ApiError> {
    if request.method == Method::OPTIONS {
        let mut response = http::Response::new(Bytes::new());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let allow: Vec<&str> = route
            .methods
            .iter()
            .map(Method::as_str)
            .chain(["OPTIONS"])
            .collect();
        if let Ok(value) = http::HeaderValue::from_str(&allow.join(", ")) {
            response.headers_mut().insert(http::header::ALLOW, value);
        }
        return Ok(response);
    }
    if !route.methods.contains(&request.method) {
        return Err(ApiError::MethodNotAllowed {
            allow: route.methods,
        });
    }
    let state = state?;
    let user = auth::authenticate(&state.config().auth, state.jwks(), &request.headers).await?;
    tracing::Span::current().record("user_id", tracing::field::display(&user.id));
    match (route.handler)(state, user, request).await {
        Ok(result) => result,
        Err(join_error) => Err(ApiError::internal(format!(
            "handler panicked: {join_error}"
        ))),
    }
}
