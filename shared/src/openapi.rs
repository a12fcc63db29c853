//! The API's machine-readable contract: an OpenAPI 3.1 document derived
//! from the types that serialize the bodies (docs/adr/0006-openapi-from-types.md),
//! and from the request body types the handlers read (each beside its
//! validation in `services`, `domain::FileMetadataBody` for a file's
//! metadata; `domain::validate` says how one type does both).
//! What OpenAPI cannot say (ordering of checks, concurrency, S3 layout, slug
//! rules) is in docs/contract.md.
//!
//! The document is committed as `docs/openapi.json`, and as
//! `public/api/mocs/uploads/openapi.json`, which a Vercel deployment and the
//! dev server serve as a static file. A test fails when either differs from
//! what the code generates; `UPDATE_OPENAPI=1 cargo test -p moc-shared
//! openapi` rewrites both.

use std::collections::BTreeMap;

use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Components, Content, OpenApi as Document, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;

mod operations;

/// IDs that `seeds/dev.sql` creates, so that examples reach the happy paths
/// of a seeded dev server (a test checks the seed file still has them).
pub mod examples {
    /// UR-HP-001: an active session of the dev user, five declared files.
    pub const RESUME_SESSION: &str = "33333333-3333-3333-3333-333333333333";
    /// resume-test.pdf in it: a live multipart upload with part 1 in S3.
    pub const RESUME_FILE: &str = "ffffffff-ffff-ffff-ffff-ffffffffffff";
    /// ID-HP-001: an active session holding one completed instruction file.
    pub const FINALIZABLE_SESSION: &str = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";
}

/// Bodies that exist only as schemas: the handlers write them as variants.
pub mod responses {
    use serde::Serialize;
    use utoipa::ToSchema;

    use crate::services::finalize::{FinalizeInProgress, MocView};

    /// The 200 answers of finalize: a replay, or a finalize still running.
    #[derive(Serialize, ToSchema)]
    #[serde(untagged)]
    #[allow(dead_code)]
    pub enum FinalizeReplay {
        Moc(Box<MocView>),
        InProgress(FinalizeInProgress),
    }

    /// The raw bytes of one part.
    #[derive(ToSchema)]
    #[schema(value_type = String, format = Binary)]
    pub struct PartBytes(#[allow(dead_code)] Vec<u8>);
}

/// Where the document is served, by the dev server and by Vercel (`public/`).
pub const PUBLIC_PATH: &str = "/api/mocs/uploads/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "MOC uploads API",
        description = "Server-coordinated S3 multipart uploads of LEGO MOC instruction files, images and parts lists: create a session, register files (presigned part URLs), upload parts, list parts to resume, complete each file, finalize into a MOC. Behaviour beyond the shapes: docs/contract.md.",
        license(name = "UNLICENSED"),
    ),
    paths(
        operations::list_sessions,
        operations::create_session,
        operations::register_file,
        operations::register_files,
        operations::upload_part,
        operations::list_parts,
        operations::complete_file,
        operations::finalize_session,
        operations::get_session,
        operations::cancel_session,
        operations::abort_file,
        operations::extend_session,
        operations::fresh_part_urls,
        operations::expire_upload_sessions,
    ),
    components(schemas(ErrorBody)),
    security(("cookieAuth" = []), ("bearerAuth" = [])),
    modifiers(&SharedAnswers),
    tags(
        (name = "sessions", description = "Upload sessions: create, read, extend, cancel."),
        (name = "files", description = "Files of a session: register, complete, abort."),
        (name = "parts", description = "Parts of a file: proxied upload, listing, fresh presigned URLs."),
        (name = "mocs", description = "Finalize a session into a MOC."),
        (name = "cron", description = "Scheduled jobs; Vercel Cron calls them with the cron secret."),
    ),
)]
struct ApiDoc;

/// The document, as the code describes the API.
pub fn document() -> Document {
    ApiDoc::openapi()
}

/// The document as committed: pretty JSON with a final newline.
pub fn document_json() -> String {
    let mut json = document()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    json.push('\n');
    json
}

/// The security schemes, and the answers every route shares, added to each
/// operation as references to `components.responses`.
struct SharedAnswers;

/// (component name, status, description, for which operations)
const SHARED_ANSWERS: [(&str, &str, &str, Applies); 6] = [
    (
        "MalformedBody",
        "400",
        "BAD_REQUEST: a missing body or invalid JSON.",
        Applies::JsonBody,
    ),
    (
        "Unauthorized",
        "401",
        "UNAUTHORIZED: no valid `auth_token` cookie or bearer token. The message never says which check failed.",
        Applies::UserRoute,
    ),
    (
        "CrossSiteRefused",
        "403",
        "FORBIDDEN: a cookie-authenticated change from an origin that is not allowed (CSRF).",
        Applies::UserStateChange,
    ),
    (
        "BodyTooLarge",
        "413",
        "SIZE_TOO_LARGE (`details.reason` PAYLOAD_TOO_LARGE): a JSON body over 1 MiB (`details.maxBodyBytes`).",
        Applies::JsonBody,
    ),
    (
        "ServerError",
        "500",
        "INTERNAL_ERROR (`details.reason` INTERNAL_ERROR or CONFIGURATION_ERROR); the cause is logged, never answered.",
        Applies::Every,
    ),
    (
        "Unavailable",
        "503",
        "SERVICE_UNAVAILABLE (`details.reason` DATABASE_UNAVAILABLE or S3_UNAVAILABLE, `details.retryable: true`); retry after `Retry-After` seconds.",
        Applies::Every,
    ),
];

#[derive(Clone, Copy)]
enum Applies {
    Every,
    UserRoute,
    UserStateChange,
    JsonBody,
}

impl Applies {
    fn to(self, method: HttpMethod, operation: &Operation) -> bool {
        // Operations without their own `security` are user routes (the
        // document's default is cookie or bearer).
        let user_route = operation.security.is_none();
        let json_body = operation
            .request_body
            .as_ref()
            .is_some_and(|body| body.content.contains_key("application/json"));
        match self {
            Applies::Every => true,
            Applies::UserRoute => user_route,
            Applies::UserStateChange => user_route && method != HttpMethod::Get,
            Applies::JsonBody => json_body,
        }
    }
}

impl Modify for SharedAnswers {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        add_security_schemes(components);
        let error_body = Content::new(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))));
        for (name, status, description, _) in SHARED_ANSWERS {
            let mut response = ResponseBuilder::new()
                .description(description)
                .content("application/json", error_body.clone());
            // Every 503 says when to retry (docs/contract.md §0).
            if status == "503" {
                response = response.header("Retry-After", retry_after_header());
            }
            let response = response.build();
            components
                .responses
                .insert(name.to_owned(), response.into());
        }

        for item in openapi.paths.paths.values_mut() {
            let operations = [
                (HttpMethod::Get, &mut item.get),
                (HttpMethod::Post, &mut item.post),
                (HttpMethod::Put, &mut item.put),
                (HttpMethod::Delete, &mut item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                for (name, status, _, applies) in SHARED_ANSWERS {
                    if applies.to(method.clone(), operation) {
                        operation
                            .responses
                            .responses
                            .entry(status.to_owned())
                            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                    }
                }
                if let Some(body) = &mut operation.request_body {
                    body.required = Some(Required::True);
                }
            }
        }
    }
}

/// `Retry-After`: whole seconds.
fn retry_after_header() -> Header {
    HeaderBuilder::new()
        .schema(Object::with_type(Type::Integer))
        .description(Some("Seconds to wait before retrying."))
        .build()
}

/// The credentials a request may carry: the frontend's cookie or a bearer
/// token for user routes, the cron secret for the sweeper.
fn add_security_schemes(components: &mut Components) {
    components.add_security_scheme(
        "cookieAuth",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            "auth_token",
            "The Cognito ID token the frontend's auth service sets (httpOnly). Checked first.",
        ))),
    );
    components.add_security_scheme(
        "bearerAuth",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("A Cognito access (or ID) token, RS256."))
                .build(),
        ),
    );
    components.add_security_scheme(
        "cronSecret",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("`CRON_SECRET`, as Vercel Cron sends it."))
                .build(),
        ),
    );
}

/// Path → methods, as the document lists them (`{name}` segments).
pub fn documented_methods(document: &Document) -> BTreeMap<String, Vec<&'static str>> {
    document
        .paths
        .paths
        .iter()
        .map(|(path, item)| {
            let methods = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("DELETE", item.delete.is_some()),
                ("PATCH", item.patch.is_some()),
                ("HEAD", item.head.is_some()),
            ]
            .into_iter()
            .filter_map(|(method, present)| present.then_some(method))
            .collect();
            (path.clone(), methods)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::routes::ROUTES;

    fn repo_file(relative: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(relative)
    }

    const COMMITTED: [&str; 2] = ["docs/openapi.json", "public/api/mocs/uploads/openapi.json"];

    #[test]
    fn the_committed_documents_match_the_code() {
        let generated = document_json();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            for file in COMMITTED {
                let path = repo_file(file);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &generated).unwrap();
            }
        }
        for file in COMMITTED {
            let committed = std::fs::read_to_string(repo_file(file)).unwrap_or_default();
            assert!(
                committed == generated,
                "{file} differs from the document the code generates.\n\
                 Regenerate it with: UPDATE_OPENAPI=1 cargo test -p moc-shared openapi\n\
                 then review the diff and commit it."
            );
        }
    }

    #[test]
    fn every_route_and_method_is_documented_and_nothing_else() {
        let mut documented = documented_methods(&document());
        let mut routed = BTreeMap::new();
        for route in ROUTES {
            let path = route
                .pattern
                .split('/')
                .map(|segment| match segment.strip_prefix(':') {
                    Some(name) => format!("{{{name}}}"),
                    None => segment.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("/");
            let methods: Vec<&'static str> = route.methods.iter().map(|m| m.as_str()).collect();
            routed.insert(path, methods);
        }
        for methods in routed.values_mut().chain(documented.values_mut()) {
            methods.sort_unstable();
        }
        assert_eq!(documented, routed);
    }

    #[test]
    fn every_error_answer_is_the_shared_envelope() {
        let json: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        let mut checked = 0;
        for (path, item) in json["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    if !status.starts_with('4') && !status.starts_with('5') {
                        continue;
                    }
                    checked += 1;
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    let shared = response["$ref"]
                        .as_str()
                        .is_some_and(|r| r.starts_with("#/components/responses/"));
                    assert!(
                        shared || schema == "#/components/schemas/ErrorBody",
                        "{method} {path} {status} does not answer the error envelope"
                    );
                }
            }
        }
        assert!(checked > 50, "only {checked} error answers documented");
    }

    #[test]
    fn the_error_code_is_an_enum_of_the_frontends_vocabulary() {
        let json: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        let schemas = &json["components"]["schemas"];
        let vocabulary: Vec<&str> = crate::error::ErrorCode::ALL
            .iter()
            .map(|c| c.as_str())
            .collect();
        assert_eq!(schemas["ErrorCode"]["enum"], serde_json::json!(vocabulary));
        for field in ["code", "type"] {
            assert_eq!(
                schemas["ErrorObject"]["properties"][field]["$ref"],
                "#/components/schemas/ErrorCode",
                "{field}"
            );
        }
        let required = |schema: &str| schemas[schema]["required"].as_array().unwrap().clone();
        assert!(required("ErrorObject").contains(&"details".into()));
        assert!(required("ErrorDetails").contains(&"reason".into()));
        assert_eq!(schemas["ErrorDetails"]["additionalProperties"], true);
        assert!(required("ErrorBody").contains(&"correlationId".into()));
        assert!(
            json["components"]["responses"]["Unavailable"]["headers"]["Retry-After"].is_object()
        );
    }

    #[test]
    fn user_routes_accept_the_cookie_or_the_bearer_token_and_the_cron_its_secret() {
        let json: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        assert_eq!(
            json["security"],
            serde_json::json!([{"cookieAuth": []}, {"bearerAuth": []}])
        );
        let schemes = &json["components"]["securitySchemes"];
        assert_eq!(schemes["cookieAuth"]["in"], "cookie");
        assert_eq!(schemes["cookieAuth"]["name"], "auth_token");
        assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
        assert_eq!(
            json["paths"]["/api/cron/expire-upload-sessions"]["get"]["security"],
            serde_json::json!([{"cronSecret": []}])
        );
        assert_eq!(json["openapi"], "3.1.0");
    }

    #[test]
    fn the_example_ids_are_seeded() {
        let seeds = std::fs::read_to_string(repo_file("seeds/dev.sql")).unwrap();
        for id in [
            examples::RESUME_SESSION,
            examples::RESUME_FILE,
            examples::FINALIZABLE_SESSION,
        ] {
            assert!(seeds.contains(id), "seeds/dev.sql no longer creates {id}");
        }
    }
}
