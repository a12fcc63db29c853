//! The route table: every function of the API, with its file under `api/`,
//! its public path, its methods, its `maxDuration` and its handler, a plain
//! `async fn`. The Vercel binaries, the dev server and the tests all
//! dispatch through [`dispatch`], which runs the handler as its own task.
//! `vercel.json` and the root `Cargo.toml` repeat some of these facts for
//! Vercel and Cargo; `routes/route_facts.rs` checks that they agree.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http::{Method, StatusCode};
use tracing::Instrument;

use crate::auth::{self, Credential, User};
use crate::box_error::BoxError;
use crate::credentials;
use crate::domain::PartNumber;
use crate::error::ApiError;
use crate::http::{self as api_http, ApiRequest, Response};
use crate::services::finalize::FinalizeOutcome;
use crate::services::{files, finalize, lifecycle, parts, sessions};
use crate::state::AppState;

#[cfg(test)]
mod route_facts;
#[cfg(test)]
mod tests;

/// What a handler answers: its response, or the error that becomes one.
pub type HandlerResult = Result<Response, ApiError>;

/// A handler's `async fn`, boxed so that one function pointer type holds
/// every route's handler.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;

/// Who may call a route, and what its handler is handed.
#[derive(Clone, Copy)]
pub enum Handler {
    /// A user route: cookie or bearer JWT (docs/contract.md §1); the
    /// handler gets the user.
    User(fn(AppState, User, ApiRequest) -> HandlerFuture),
    /// The scheduled job: `Authorization: Bearer $CRON_SECRET` only (§4.13).
    /// No user credential applies, and the handler gets no user.
    Cron(fn(AppState, ApiRequest) -> HandlerFuture),
}

pub struct Route {
    /// The route file under `api/`; Vercel makes one function of each.
    pub file: &'static str,
    /// The public path, `:name` for a dynamic segment.
    pub pattern: &'static str,
    /// The methods it serves; they also make its `Allow` and
    /// `Access-Control-Allow-Methods` lists. CORS and the CSRF check apply to
    /// every route through [`dispatch`], so a route declares nothing for them.
    pub methods: &'static [Method],
    /// Seconds Vercel lets the function run (`maxDuration` in `vercel.json`,
    /// which a test holds to this value).
    pub max_duration: u32,
    pub handler: Handler,
}

pub static SESSIONS: Route = Route {
    file: "api/mocs/uploads/sessions/index.rs",
    pattern: "/api/mocs/uploads/sessions",
    methods: &[Method::GET, Method::POST],
    max_duration: 10,
    handler: Handler::User(|state, user, req| Box::pin(sessions(state, user, req))),
};

/// GET: the caller's sessions (§4.15); POST: create one (§4.1). One route
/// file for the one path, as Vercel maps a path to a function.
async fn sessions(state: AppState, user: User, mut req: ApiRequest) -> HandlerResult {
    if req.method == Method::GET {
        let query = lifecycle::ListQuery::parse(|name| req.param(name))?;
        let page = lifecycle::list(&state, &user, query).await?;
        return Ok(api_http::json(StatusCode::OK, &page));
    }
    let body = req.json().await?;
    let created = sessions::create(&state, &user, body).await?;
    Ok(api_http::json(StatusCode::CREATED, &created))
}

pub static REGISTER_FILE: Route = Route {
    file: "api/mocs/uploads/sessions/[sessionId]/files/index.rs",
    pattern: "/api/mocs/uploads/sessions/:sessionId/files",
    methods: &[Method::POST],
    max_duration: 15,
    handler: Handler::User(|state, user, req| Box::pin(register_file(state, user, req))),
};

async fn register_file(state: AppState, user: User, mut req: ApiRequest) -> HandlerResult {
    let session_id = req.session_id()?;
    let body = req.json().await?;
    let registration = files::register(&state, &user, session_id, body).await?;
    let status = if registration.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(api_http::json(status, &registration))
}

pub static REGISTER_BATCH: Route = Route {
    file: "api/mocs/uploads/sessions/[sessionId]/files/batch.rs",
    pattern: "/api/mocs/uploads/sessions/:sessionId/files/batch",
    methods: &[Method::POST],
    max_duration: 30,
    handler: Handler::User(|state, user, req| Box::pin(register_batch(state, user, req))),
};

async fn register_batch(state: AppState, user: User, mut req: ApiRequest) -> HandlerResult {
    let session_id = req.session_id()?;
    let body = req.json().await?;
    let results = files::register_batch(&state, &user, session_id, body).await?;
    Ok(api_http::json(StatusCode::CREATED, &results))
}

pub static COMPLETE_FILE: Route = Route {
    file: "api/mocs/uploads/sessions/[sessionId]/files/[fileId]/complete.rs",
    pattern: "/api/mocs/uploads/sessions/:sessionId/files/:fileId/complete",
    methods: &[Method::POST],
    max_duration: 30,
    handler: Handler::User(|state, user, req| Box::pin(complete_file(state, user, req))),
};

async fn complete_file(state: AppState, user: User, mut req: ApiRequest) -> HandlerResult {
    let (session_id, file_id) = (req.session_id()?, req.file_id()?);
    let body = req.json().await?;
    let completed = files::complete(&state, &user, session_id, file_id, body).await?;
    Ok(api_http::json(StatusCode::OK, &completed))
}

pub static LIST_PARTS: Route = Route {
    file: "api/mocs/uploads/sessions/[sessionId]/files/[fileId]/parts.rs",
    pattern: "/api/mocs/uploads/sessions/:sessionId/files/:fileId/parts",
    methods: &[Method::GET],
    max_duration: 15,
    handler: Handler::User(|state, user, req| Box::pin(list_parts(state, user, req))),
};

async fn list_parts(state: AppState, user: User, req: ApiRequest) -> HandlerResult {
    let (session_id, file_id) = (req.session_id()?, req.file_id()?);
    let parts = parts::list(&state, &user, session_id, file_id).await?;
    Ok(api_http::json(StatusCode::OK, &parts))
}

pub static UPLOAD_PART: Route = Route {
    file: "api/mocs/uploads/sessions/[sessionId]/files/[fileId]/parts/[partNumber].rs",
    pattern: "/api/mocs/uploads/sessions/:sessionId/files/:fileId/parts/:partNumber",
    methods: &[Method::PUT],
    max_duration: 30,
    handler: Handler::User(|state, user, req| Box::pin(upload_part(state, user, req))),
};

async fn upload_part(state: AppState, user: User, mut req: ApiRequest) -> HandlerResult {
    let part_number = req
        .param("partNumber")
        .and_then(|raw| PartNumber::parse(&raw))
        .ok_or(ApiError::InvalidPartNumber)?;
    let (session_id, file_id) = (req.session_id()?, req.file_id()?);
    let uploaded = parts::upload(&state, &user, session_id, file_id, part_number, &mut req).await?;
    Ok(api_http::json(StatusCode::OK, &uploaded))
}

/// Also reached at the older `/api/mocs/uploads/sessions/finalize` and
/// `/api/mocs/uploads/sessions/:sessionId/finalize`, which `vercel.json`
/// rewrites to this file.
pub static FINALIZE: Route = Route {
    file: "api/mocs/uploads/finalize.rs",
    pattern: "/api/mocs/uploads/finalize",
    methods: &[Method::POST],
    max_duration: 60,
    handler: Handler::User(|state, user, req| Box::pin(finalize(state, user, req))),
};

async fn finalize(state: AppState, user: User, mut req: ApiRequest) -> HandlerResult {
    let body = req.json().await?;
    Ok(match finalize::finalize(&state, &user, body).await? {
        FinalizeOutcome::Created(moc) => api_http::json(StatusCode::CREATED, &moc),
        FinalizeOutcome::Replayed(moc) => api_http::json(StatusCode::OK, &moc),
        FinalizeOutcome::InProgress => {
            let mut response =
                api_http::json(StatusCode::OK, &finalize::FinalizeInProgress::default());
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("2"),
            );
            response
        }
    })
}

pub static SESSION: Route = Route {
    file: "api/mocs/uploads/sessions/[sessionId]/index.rs",
    pattern: "/api/mocs/uploads/sessions/:sessionId",
    methods: &[Method::GET, Method::DELETE],
    max_duration: 30,
    handler: Handler::User(|state, user, req| Box::pin(session(state, user, req))),
};

/// GET: the session's status (§4.8); DELETE: cancel it (§4.9).
async fn session(state: AppState, user: User, req: ApiRequest) -> HandlerResult {
    let session_id = req.session_id()?;
    if req.method == Method::DELETE {
        lifecycle::cancel(&state, &user, session_id).await?;
        return Ok(api_http::empty(StatusCode::NO_CONTENT));
    }
    let view = lifecycle::status(&state, &user, session_id).await?;
    Ok(api_http::json(StatusCode::OK, &view))
}

pub static ABORT_FILE: Route = Route {
    file: "api/mocs/uploads/sessions/[sessionId]/files/[fileId]/index.rs",
    pattern: "/api/mocs/uploads/sessions/:sessionId/files/:fileId",
    methods: &[Method::DELETE],
    max_duration: 15,
    handler: Handler::User(|state, user, req| Box::pin(abort_file(state, user, req))),
};

async fn abort_file(state: AppState, user: User, req: ApiRequest) -> HandlerResult {
    let (session_id, file_id) = (req.session_id()?, req.file_id()?);
    lifecycle::abort_file(&state, &user, session_id, file_id).await?;
    Ok(api_http::empty(StatusCode::NO_CONTENT))
}

pub static EXTEND_SESSION: Route = Route {
    file: "api/mocs/uploads/sessions/[sessionId]/extend.rs",
    pattern: "/api/mocs/uploads/sessions/:sessionId/extend",
    methods: &[Method::POST],
    max_duration: 10,
    handler: Handler::User(|state, user, req| Box::pin(extend_session(state, user, req))),
};

async fn extend_session(state: AppState, user: User, req: ApiRequest) -> HandlerResult {
    let extended = lifecycle::extend(&state, &user, req.session_id()?).await?;
    Ok(api_http::json(StatusCode::OK, &extended))
}

pub static FRESH_URLS: Route = Route {
    file: "api/mocs/uploads/sessions/[sessionId]/files/[fileId]/urls.rs",
    pattern: "/api/mocs/uploads/sessions/:sessionId/files/:fileId/urls",
    methods: &[Method::POST],
    max_duration: 15,
    handler: Handler::User(|state, user, req| Box::pin(fresh_urls(state, user, req))),
};

async fn fresh_urls(state: AppState, user: User, mut req: ApiRequest) -> HandlerResult {
    let (session_id, file_id) = (req.session_id()?, req.file_id()?);
    let body = req.json().await?;
    let urls = files::fresh_urls(&state, &user, session_id, file_id, body).await?;
    Ok(api_http::json(StatusCode::OK, &urls))
}

pub static EXPIRE_SESSIONS: Route = Route {
    file: "api/cron/expire-upload-sessions.rs",
    pattern: "/api/cron/expire-upload-sessions",
    methods: &[Method::GET],
    max_duration: 60,
    handler: Handler::Cron(|state, req| Box::pin(expire_sessions(state, req))),
};

async fn expire_sessions(state: AppState, req: ApiRequest) -> HandlerResult {
    lifecycle::authorize_cron(&state, req.header(http::header::AUTHORIZATION))?;
    let report = lifecycle::sweep(&state).await?;
    Ok(api_http::json(StatusCode::OK, &report))
}

/// Every route. The dev router orders them as Vercel does (static paths,
/// then `vercel.json` rewrites, then dynamic segments), not by this list.
pub static ROUTES: [&Route; 12] = [
    &SESSIONS,
    &REGISTER_BATCH,
    &REGISTER_FILE,
    &COMPLETE_FILE,
    &UPLOAD_PART,
    &LIST_PARTS,
    &FINALIZE,
    &SESSION,
    &ABORT_FILE,
    &EXTEND_SESSION,
    &FRESH_URLS,
    &EXPIRE_SESSIONS,
];

/// Serves one request on `route`: request ID, logging span, method check,
/// CORS, authentication, the CSRF check, the handler, and the error mapping.
/// It never fails and never panics the process: every outcome is a response.
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
        user_id = tracing::field::Empty,
    );
    async move {
        let started = request.started;
        // Decided before the handler runs, so that every answer to a listed
        // origin carries the CORS headers, errors included (docs/contract.md §7).
        let origin = state
            .as_ref()
            .ok()
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
            api_http::add_cors_headers(
                &mut response,
                origin,
                is_preflight.then_some(route.methods),
            );
        }
        api_http::set_request_id(response.headers_mut(), &request_id);
        tracing::info!(
            status = response.status().as_u16(),
            duration_ms = crate::time::millis(started.elapsed()),
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
        if let Ok(value) = http::HeaderValue::from_str(&api_http::method_list(route.methods)) {
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
    // The request's OIDC token, for the S3 credentials (`crate::credentials`).
    let oidc_token = credentials::oidc_token(&request.headers);
    let work = match route.handler {
        Handler::User(handler) => {
            let (user, credential) =
                auth::authenticate(&state.config().auth, state.jwks(), &request.headers).await?;
            tracing::Span::current().record("user_id", tracing::field::display(&user.id));
            check_csrf(&state, credential, &request)?;
            handler(state, user, request)
        }
        Handler::Cron(handler) => handler(state, request),
    };
    run_isolated(Box::pin(credentials::with_request_token(oidc_token, work))).await
}

/// Runs a handler as its own task, in the request's span: a panic becomes a
/// 500 for its request, not a dead instance (the release profile unwinds).
async fn run_isolated(work: HandlerFuture) -> HandlerResult {
    match tokio::spawn(work.in_current_span()).await {
        Ok(result) => result,
        Err(join_error) => Err(ApiError::internal(format!(
            "handler panicked: {join_error}"
        ))),
    }
}

/// docs/contract.md §1: a cookie-authenticated state change that names its `Origin`
/// must come from a CORS-allowed origin or from the API's own origin. The
/// browser attaches the cookie to requests any page makes; the `Origin` it
/// sets cannot be forged by that page. Header-authenticated calls are exempt:
/// another origin's script cannot read the token to send it. A request
/// without `Origin` is not a cross-site browser request (browsers send it on
/// every cross-origin POST, PUT and DELETE) and passes.
fn check_csrf(
    state: &AppState,
    credential: Credential,
    request: &ApiRequest,
) -> Result<(), ApiError> {
    let changes_state = matches!(request.method, Method::POST | Method::PUT | Method::DELETE);
    if credential != Credential::Cookie || !changes_state {
        return Ok(());
    }
    let Some(origin) = request.headers.get(http::header::ORIGIN) else {
        return Ok(());
    };
    if api_http::allowed_origin(state.config(), &request.headers).is_some() {
        return Ok(());
    }
    let own = api_http::own_origin(&request.headers);
    let origin = origin
        .to_str()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_ascii_lowercase();
    if own.is_some_and(|own| own == origin) {
        return Ok(());
    }
    tracing::warn!(%origin, "cookie-authenticated state change from a foreign origin refused");
    Err(ApiError::Forbidden(
        "This request comes from an origin that may not change data with your session cookie",
    ))
}
