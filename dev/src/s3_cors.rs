//! The embedded S3's answer to browsers: the CORS behaviour of a bucket that
//! carries the CORS configuration the README tells operators to put on the
//! real bucket (one rule: the listed origins, `PUT`, any request header,
//! `ExposeHeaders: ["ETag"]`, `MaxAgeSeconds: 3000`).
//!
//! Why it matters: the browser PUTs each part straight to S3 through a
//! presigned URL, from the page's origin. Without a matching rule the
//! preflight fails and nothing is uploaded; without `ETag` exposed the page
//! cannot read a part's ETag, and so can never complete the upload. A dev
//! S3 that skipped CORS would hide both.
//!
//! What S3 does, and this layer copies:
//! - `OPTIONS` is always a preflight. No `Origin` or no
//!   `Access-Control-Request-Method`: 400. An origin or method no rule allows:
//!   403 `AccessForbidden`. Otherwise 200 with the allow headers, echoing the
//!   requested headers (`AllowedHeaders: ["*"]`).
//! - Any other request is served as usual; when its `Origin` and method match
//!   the rule, the answer (errors included) carries `Access-Control-Allow-Origin`,
//!   `Access-Control-Allow-Credentials`, `Access-Control-Expose-Headers: ETag`
//!   and `Vary: Origin`. Otherwise no CORS header is sent, and `*` never is.

use std::sync::Arc;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, CONTENT_TYPE, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use s3s::Body;
use s3s::service::S3Service;

/// The one CORS rule of the bucket. The methods, exposed headers and max age
/// are those of the README's bucket CORS JSON; only the origins vary.
#[derive(Debug, Clone, Default)]
pub struct BucketCors {
    /// Exact origins (`scheme://host[:port]`, no trailing slash).
    pub allowed_origins: Vec<String>,
}

/// `AllowedMethods` of the rule: the browser only ever PUTs parts.
pub const ALLOWED_METHODS: &str = "PUT";
/// `ExposeHeaders` of the rule.
pub const EXPOSE_HEADERS: &str = "ETag";
/// `MaxAgeSeconds` of the rule.
pub const MAX_AGE_SECONDS: &str = "3000";

impl BucketCors {
    fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == origin)
    }

    fn allows_method(method: &str) -> bool {
        ALLOWED_METHODS.split(", ").any(|m| m == method)
    }

    /// The origin of a request the rule matches, if any.
    fn matching_origin<'a>(&self, headers: &'a HeaderMap, method: &str) -> Option<&'a HeaderValue> {
        let origin = headers.get(ORIGIN)?;
        (self.allows_origin(origin.to_str().ok()?) && Self::allows_method(method)).then_some(origin)
    }

    fn preflight(&self, headers: &HeaderMap) -> Response<Body> {
        let requested_method = headers
            .get(ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| v.to_str().ok());
        let (Some(_), Some(method)) = (headers.get(ORIGIN), requested_method) else {
            return xml_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Insufficient information. Origin request header needed.",
            );
        };
        let Some(origin) = self.matching_origin(headers, method) else {
            return xml_error(
                StatusCode::FORBIDDEN,
                "AccessForbidden",
                "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
            );
        };
        let mut response = Response::new(Body::empty());
        let out = response.headers_mut();
        out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        out.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        // AllowedHeaders ["*"]: whatever the browser asks for is allowed.
        if let Some(requested) = headers.get(ACCESS_CONTROL_REQUEST_HEADERS) {
            out.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
        }
        out.insert(
            ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE_SECONDS),
        );
        add_actual_headers(out, origin.clone());
        out.insert(
            VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
            ),
        );
        response
    }
}

fn add_actual_headers(out: &mut HeaderMap, origin: HeaderValue) {
    out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    out.insert(
        ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    out.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    out.append(VARY, HeaderValue::from_static("Origin"));
}

fn xml_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}

/// The S3 service behind the bucket's CORS rule; what each connection serves.
#[derive(Clone)]
pub(crate) struct CorsS3Service {
    pub(crate) inner: S3Service,
    pub(crate) cors: Arc<BucketCors>,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl hyper::service::Service<Request<hyper::body::Incoming>> for CorsS3Service {
    type Response = Response<Body>;
    type Error = s3s::HttpError;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn call(&self, request: Request<hyper::body::Incoming>) -> Self::Future {
        if request.method() == Method::OPTIONS {
            let response = self.cors.preflight(request.headers());
            return Box::pin(async move { Ok(response) });
        }
        let origin = self
            .cors
            .matching_origin(request.headers(), request.method().as_str())
            .cloned();
        let inner = self.inner.clone();
        Box::pin(async move {
            let mut response = hyper::service::Service::call(&inner, request).await?;
            if let Some(origin) = origin {
                add_actual_headers(response.headers_mut(), origin);
            }
            Ok(response)
        })
    }
}
