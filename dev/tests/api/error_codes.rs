//! One test per row of the error mapping table (docs/contract.md §0, ADR
//! 0008): each provokes the error for real and checks the status, the
//! frontend's code in `error.code` and `error.type`, the finer code in
//! `error.details.reason`, `correlationId` (equal to `requestId` and both
//! headers) and whether `Retry-After` is sent.

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::*;

const S: &str = "/api/mocs/uploads/sessions";
const FINALIZE: &str = "/api/mocs/uploads/finalize";

/// Whether the row's answer says when to retry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Retry {
    After,
    Never,
}

/// The row `status`, `code`, `reason`, with `Retry-After` as `retry` says.
#[track_caller]
fn assert_row(response: &TestResponse, status: u16, code: &str, reason: &str, retry: Retry) {
    response.assert_error(status, reason);
    assert_eq!(response.body["error"]["code"], code, "{}", response.body);
    assert_eq!(response.body["error"]["type"], code, "{}", response.body);
    let request_id = response.body["requestId"].as_str().unwrap();
    assert_eq!(response.body["correlationId"], request_id);
    assert_eq!(response.headers["x-correlation-id"], request_id);
    let retry_after = response
        .headers
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().expect("whole seconds"));
    match retry {
        Retry::After => assert!(
            retry_after.is_some_and(|seconds| seconds > 0),
            "{status} {code} says when to retry: {:?}",
            response.headers
        ),
        Retry::Never => assert_eq!(retry_after, None, "{status} {code}"),
    }
}

fn post_raw(path: &str, body: &'static [u8]) -> Request<Full<Bytes>> {
    TestApp::request(Method::POST, path)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_malformed_body_is_bad_request(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let response = app.send(post_raw(S, b"{not json")).await;
    assert_row(&response, 400, "BAD_REQUEST", "BAD_REQUEST", Retry::Never);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_batch_over_the_limit_is_bad_request_with_reason_batch_too_large(pool: PgPool) {
    let app = TestApp::with_env(pool, &[("MAX_BATCH_SIZE", "1")]).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 10)])).await;
    let files = json!([pdf_meta("a.pdf", 10), pdf_meta("b.pdf", 10)]);
    let response = app
        .post(
            &format!("{S}/{session}/files/batch"),
            json!({ "files": files }),
        )
        .await;
    assert_row(
        &response,
        400,
        "BAD_REQUEST",
        "BATCH_TOO_LARGE",
        Retry::Never,
    );
    assert_eq!(response.details()["maxBatchSize"], 1);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_part_number_out_of_range_is_bad_request_with_reason_invalid_part_number(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (session, file) = app.registered_file(pdf_meta("a.pdf", 10)).await;
    let response = app.put_part(&session, &file, "0", pdf_bytes(10)).await;
    assert_row(
        &response,
        400,
        "BAD_REQUEST",
        "INVALID_PART_NUMBER",
        Retry::Never,
    );
    assert_eq!(response.details()["validRange"], json!([1, 10000]));
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_file_past_the_declared_count_is_a_validation_error_with_reason_file_count_exceeded(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 10)])).await;
    app.register(&session, pdf_meta("a.pdf", 10))
        .await
        .assert_status(201);
    let response = app.register(&session, pdf_meta("b.pdf", 10)).await;
    assert_row(
        &response,
        400,
        "VALIDATION_ERROR",
        "FILE_COUNT_EXCEEDED",
        Retry::Never,
    );
    assert_eq!(response.details()["fileCountExceeded"], true);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_file_that_fails_verification_is_a_file_error_listing_the_file(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 64)])).await;
    let mut zip = b"PK\x03\x04".to_vec();
    zip.resize(64, 0);
    app.completed_file(&session, pdf_meta("a.pdf", 64), Bytes::from(zip))
        .await;
    let response = app
        .post(
            FINALIZE,
            json!({"uploadSessionId": session, "title": "Zip"}),
        )
        .await;
    assert_row(
        &response,
        400,
        "FILE_ERROR",
        "FILE_VALIDATION_FAILED",
        Retry::Never,
    );
    assert_eq!(response.details()["files"][0]["reason"], "magic-bytes");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_part_list_that_cannot_complete_the_upload_is_a_parts_validation_error(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 10)])).await;
    let (file, etag) = app
        .upload_single_part(&session, pdf_meta("a.pdf", 10), pdf_bytes(10))
        .await;
    let listed = json!([{"partNumber": 1, "etag": etag}, {"partNumber": 2, "etag": etag}]);
    let response = app.complete(&session, &file, listed).await;
    assert_row(
        &response,
        400,
        "PARTS_VALIDATION_ERROR",
        "BAD_REQUEST",
        Retry::Never,
    );
    assert_eq!(response.details()["expected"], 1);
    assert_eq!(response.details()["received"], 2);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_request_without_valid_credentials_is_unauthorized(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let request = TestApp::request(Method::GET, &format!("{S}/{}", uuid::Uuid::new_v4()))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = app.send(request).await;
    assert_row(&response, 401, "UNAUTHORIZED", "UNAUTHORIZED", Retry::Never);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_cron_call_without_the_secret_is_forbidden(pool: PgPool) {
    let app = TestApp::with_env(pool, &[("CRON_SECRET", "the-secret")]).await;
    let response = app.sweep(Some("not-the-secret")).await;
    assert_row(&response, 403, "FORBIDDEN", "FORBIDDEN", Retry::Never);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_unknown_session_is_not_found(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let response = app.get(&format!("{S}/{}", uuid::Uuid::new_v4())).await;
    assert_row(&response, 404, "NOT_FOUND", "NOT_FOUND", Retry::Never);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_method_the_route_does_not_serve_is_bad_request_with_reason_method_not_allowed(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let response = app.get(FINALIZE).await;
    assert_row(
        &response,
        405,
        "BAD_REQUEST",
        "METHOD_NOT_ALLOWED",
        Retry::Never,
    );
    assert_eq!(response.headers["allow"], "POST");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_part_upload_past_its_time_budget_is_a_retryable_external_service_error(pool: PgPool) {
    let app = TestApp::with_env(pool, &[("PART_UPLOAD_BUDGET_MS", "300")]).await;
    let (session, file) = app.registered_file(pdf_meta("a.pdf", 10)).await;
    let response = app.stalled_part_upload(&session, &file).await;
    assert_row(
        &response,
        408,
        "EXTERNAL_SERVICE_ERROR",
        "REQUEST_TIMEOUT",
        Retry::Never,
    );
    assert_eq!(response.details()["retryable"], true);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_query_parameter_the_route_does_not_accept_is_a_validation_error_with_reason_invalid_query(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let response = app.get(&format!("{S}?status=open")).await;
    assert_row(
        &response,
        400,
        "VALIDATION_ERROR",
        "INVALID_QUERY",
        Retry::Never,
    );
    assert!(response.details()["errors"]["status"].is_array());
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn fresh_urls_for_another_file_than_the_registered_one_are_a_file_error_with_reason_file_mismatch(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let (session, file) = app.registered_file(pdf_meta("a.pdf", 10)).await;
    let response = app
        .post(
            &format!("{S}/{session}/files/{file}/urls"),
            json!({"size": 11}),
        )
        .await;
    assert_row(&response, 409, "FILE_ERROR", "FILE_MISMATCH", Retry::Never);
    assert_eq!(response.details()["mismatches"], json!(["size"]));
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_file_registered_twice_is_a_conflict(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 10), pdf_meta("b.pdf", 10)]))
        .await;
    app.register(&session, pdf_meta("a.pdf", 10))
        .await
        .assert_status(201);
    let response = app.register(&session, pdf_meta("a.pdf", 10)).await;
    assert_row(&response, 409, "CONFLICT", "CONFLICT", Retry::Never);
    assert!(response.details()["existingFileId"].is_string());
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_title_already_taken_is_a_duplicate_slug_with_a_suggestion(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let mut answers = Vec::new();
    for name in ["a.pdf", "b.pdf"] {
        let session = app.create_session(json!([pdf_meta(name, 64)])).await;
        app.completed_file(&session, pdf_meta(name, 64), pdf_bytes(64))
            .await;
        let body = json!({"uploadSessionId": session, "title": "Castle"});
        answers.push(app.post(FINALIZE, body).await);
    }
    answers[0].assert_status(201);
    assert_row(&answers[1], 409, "DUPLICATE_SLUG", "CONFLICT", Retry::Never);
    assert_eq!(answers[1].details()["suggestedSlug"], "castle-2");
}

/// The calls of every route that acts on a session, made on `session` with
/// its registered file `file`, named for the failure message.
async fn calls_on_a_session(
    app: &TestApp,
    session: &str,
    file: &str,
) -> Vec<(&'static str, TestResponse)> {
    let file_path = format!("{S}/{session}/files/{file}");
    vec![
        (
            "register",
            app.register(session, pdf_meta("b.pdf", 10)).await,
        ),
        (
            "register batch",
            app.post(
                &format!("{S}/{session}/files/batch"),
                json!({"files": [pdf_meta("b.pdf", 10)]}),
            )
            .await,
        ),
        (
            "part upload",
            app.put_part(session, file, "1", pdf_bytes(10)).await,
        ),
        (
            "complete",
            app.complete(session, file, json!([{"partNumber": 1, "etag": "e"}]))
                .await,
        ),
        (
            "fresh URLs",
            app.post(&format!("{file_path}/urls"), json!({})).await,
        ),
        (
            "extend",
            app.post(&format!("{S}/{session}/extend"), json!({})).await,
        ),
        ("abort file", app.delete(&file_path).await),
        (
            "finalize",
            app.post(
                FINALIZE,
                json!({"uploadSessionId": session, "title": "Late"}),
            )
            .await,
        ),
    ]
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn every_route_answers_an_expired_session_as_expired_session(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 10), pdf_meta("b.pdf", 10)]))
        .await;
    let registered = app.register(&session, pdf_meta("a.pdf", 10)).await;
    registered.assert_status(201);
    let file = registered.body["fileId"].as_str().unwrap().to_owned();
    app.expire(&session, 1).await;
    for (route, response) in calls_on_a_session(&app, &session, &file).await {
        assert_eq!(response.status, 410, "{route}: {}", response.body);
        assert_row(&response, 410, "EXPIRED_SESSION", "GONE", Retry::Never);
        let details = response.details();
        assert_eq!(details["sessionExpired"], true, "{route}");
        assert!(
            details["expiresAt"].is_string() && details["now"].is_string(),
            "{route}: {details}"
        );
    }
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_file_over_its_category_limit_is_size_too_large(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let response = app
        .post(S, json!({"files": [pdf_meta("a.pdf", 100 * MIB)]}))
        .await;
    assert_row(
        &response,
        413,
        "SIZE_TOO_LARGE",
        "FILE_TOO_LARGE",
        Retry::Never,
    );
    assert_eq!(response.details()["maxBytes"], 52_428_800);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_body_over_its_limit_is_size_too_large(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let padding = "x".repeat(MIB);
    let response = app
        .post(
            S,
            json!({"files": [pdf_meta("a.pdf", 10)], "padding": padding}),
        )
        .await;
    assert_row(
        &response,
        413,
        "SIZE_TOO_LARGE",
        "PAYLOAD_TOO_LARGE",
        Retry::Never,
    );
    assert_eq!(response.details()["maxBodyBytes"], MIB);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_type_its_category_does_not_allow_is_invalid_type(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let mut meta = pdf_meta("a.pdf", 10);
    meta["type"] = json!("image/png");
    let response = app.post(S, json!({ "files": [meta] })).await;
    assert_row(
        &response,
        415,
        "INVALID_TYPE",
        "UNSUPPORTED_MEDIA_TYPE",
        Retry::Never,
    );
    assert!(response.details()["allowedTypes"].is_array());
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_schema_violation_is_a_validation_error_by_field(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let response = app.post(S, json!({"files": []})).await;
    assert_row(
        &response,
        422,
        "VALIDATION_ERROR",
        "VALIDATION_ERROR",
        Retry::Never,
    );
    assert!(response.details()["errors"]["files"].is_array());
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn the_daily_session_limit_is_too_many_requests_with_retry_after(pool: PgPool) {
    let app = TestApp::with_env(pool, &[("UPLOAD_RATE_LIMIT_PER_DAY", "1")]).await;
    app.create_session(json!([pdf_meta("a.pdf", 10)])).await;
    let response = app.post(S, json!({"files": [pdf_meta("a.pdf", 10)]})).await;
    assert_row(
        &response,
        429,
        "TOO_MANY_REQUESTS",
        "TOO_MANY_REQUESTS",
        Retry::After,
    );
    assert_eq!(response.details()["limit"], 1);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn the_finalize_rate_limit_is_too_many_requests_with_retry_after(pool: PgPool) {
    let app = TestApp::with_env(pool, &[("FINALIZE_RATE_LIMIT_PER_MINUTE", "1")]).await;
    let finalize = || {
        let body = json!({"uploadSessionId": uuid::Uuid::new_v4(), "title": "Nope"});
        app.post(FINALIZE, body)
    };
    finalize().await.assert_error(404, "NOT_FOUND");
    let response = finalize().await;
    assert_row(
        &response,
        429,
        "TOO_MANY_REQUESTS",
        "RATE_LIMIT_EXCEEDED",
        Retry::After,
    );
    assert_eq!(response.details()["window"], "1m");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_invalid_configuration_is_an_internal_error(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let misconfigured = Err(moc_shared::ApiError::Configuration(
        "MOC_BUCKET is required".into(),
    ));
    let answer = moc_shared::routes::dispatch(
        &moc_shared::routes::SESSIONS,
        misconfigured,
        post_raw(S, b"{}"),
    )
    .await;
    let (parts, body) = answer.into_parts();
    let response = TestResponse::of_json(parts.status, parts.headers, &body);
    assert_row(
        &response,
        500,
        "INTERNAL_ERROR",
        "CONFIGURATION_ERROR",
        Retry::Never,
    );
    drop(app);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_unexpected_failure_is_an_internal_error(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (_, response) = app.finalize_failing_after_the_moc_insert(&pool).await;
    assert_row(
        &response,
        500,
        "INTERNAL_ERROR",
        "INTERNAL_ERROR",
        Retry::Never,
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_unreachable_s3_is_service_unavailable_with_retry_after(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let response = app.part_upload_with_s3_down(pool).await;
    assert_row(
        &response,
        503,
        "SERVICE_UNAVAILABLE",
        "S3_UNAVAILABLE",
        Retry::After,
    );
    assert_eq!(response.details()["retryable"], true);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_unreachable_database_is_service_unavailable_with_retry_after(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let config = moc_shared::config::Config {
        database_url: "postgres://postgres@127.0.0.1:1/nowhere".into(),
        ..app.state.config().clone()
    };
    let state =
        moc_shared::AppState::new(config, moc_shared::credentials::AwsCredentials::none()).unwrap();
    let body = json!({"files": [pdf_meta("a.pdf", 10)]}).to_string();
    let request = TestApp::request(Method::POST, S)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let answer =
        moc_shared::routes::dispatch(&moc_shared::routes::SESSIONS, Ok(state), request).await;
    let (parts, body) = answer.into_parts();
    let response = TestResponse::of_json(parts.status, parts.headers, &body);
    assert_row(
        &response,
        503,
        "SERVICE_UNAVAILABLE",
        "DATABASE_UNAVAILABLE",
        Retry::After,
    );
    assert_eq!(response.details()["retryable"], true);
}

#[tokio::test]
async fn a_function_the_gateway_cannot_reach_is_an_external_service_error() {
    use moc_dev::gateway::{Functions, Gateway};
    // No function is mapped: the gateway answers 502 itself.
    let gateway = Gateway::for_repo(Functions::parse("{}").unwrap());
    let request = TestApp::request(Method::POST, S)
        .header("x-request-id", "rid-502")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let answer = gateway.handle(request, None).await;
    let (parts, body) = answer.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let response = TestResponse::of_json(parts.status, parts.headers, &body);
    assert_row(
        &response,
        502,
        "EXTERNAL_SERVICE_ERROR",
        "FUNCTION_INVOCATION_FAILED",
        Retry::Never,
    );
    assert_eq!(response.body["correlationId"], "rid-502");
}
