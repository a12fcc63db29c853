use futures::future::join_all;
use http::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::*;

const SESSIONS: &str = "/api/mocs/uploads/sessions";

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn creating_a_session_answers_flat_json_and_stores_the_declared_files(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let response = app
        .post(SESSIONS, json!({"files": [pdf_meta("a.pdf", 1000), png_meta("b.png", 10), csv_meta("c.csv", 5)]}))
        .await;
    response.assert_status(201);
    assert_eq!(response.body["partSizeBytes"], 5_242_880);
    assert!(response.body["expiresAt"].as_str().unwrap().ends_with('Z'));
    let id: uuid::Uuid = response.body["sessionId"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, declared): (String, serde_json::Value) = sqlx::query_as(
        "SELECT status, metadata->'declaredFiles' FROM upload_sessions WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(status, "active");
    assert_eq!(
        declared,
        json!({"instruction": 1, "image": 1, "parts-list": 1})
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn invalid_create_requests_get_their_contract_codes(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.post(SESSIONS, json!({"files": []}))
        .await
        .assert_error(422, "VALIDATION_ERROR");
    let wrong_type = app.post(SESSIONS, json!({"files": [{"category": "instruction", "name": "a", "size": "big", "type": "application/pdf", "ext": "pdf"}]})).await;
    wrong_type.assert_error(422, "VALIDATION_ERROR");
    assert!(wrong_type.body["error"]["details"]["errors"]["files[0].size"].is_array());
    app.post(SESSIONS, json!({"files": [png_meta("a.png", 1)]}))
        .await
        .assert_error(400, "BAD_REQUEST");
    let too_many: Vec<_> = (0..6)
        .map(|i| csv_meta(&format!("{i}.csv"), 1))
        .chain([pdf_meta("a.pdf", 1)])
        .collect();
    let exceeded = app.post(SESSIONS, json!({"files": too_many})).await;
    exceeded.assert_error(400, "FILE_COUNT_EXCEEDED");
    assert_eq!(exceeded.body["error"]["details"]["fileCountExceeded"], true);
    let big = app
        .post(
            SESSIONS,
            json!({"files": [pdf_meta("a.pdf", 50 * MIB + 1)]}),
        )
        .await;
    big.assert_error(413, "FILE_TOO_LARGE");
    assert_eq!(big.body["error"]["details"]["maxBytes"], 52_428_800);
    let gif = app.post(SESSIONS, json!({"files": [pdf_meta("a.pdf", 1), {"category": "image", "name": "x.gif", "size": 1, "type": "image/gif", "ext": "gif"}]})).await;
    gif.assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    assert!(
        gif.body["error"]["details"]["allowedTypes"]
            .as_array()
            .unwrap()
            .contains(&json!("image/png"))
    );

    let raw = |body: &'static str| {
        TestApp::request(Method::POST, SESSIONS)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                body.as_bytes(),
            )))
            .unwrap()
    };
    app.send(raw("{not json"))
        .await
        .assert_error(400, "BAD_REQUEST");
    app.send(raw("")).await.assert_error(400, "BAD_REQUEST");
    // GET lists the sessions (§4.15); DELETE is served by no function here.
    let delete = app.delete(SESSIONS).await;
    delete.assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(delete.headers["allow"], "GET, POST");

    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM user_daily_uploads")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0, "invalid requests never use up quota");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn the_daily_limit_holds_exactly_under_twenty_concurrent_creates(pool: PgPool) {
    let app = TestApp::with_env(pool.clone(), &[("UPLOAD_RATE_LIMIT_PER_DAY", "7")]).await;
    let body = json!({"files": [pdf_meta("a.pdf", 10)]});
    let responses = join_all((0..20).map(|_| app.post(SESSIONS, body.clone()))).await;
    let created = responses.iter().filter(|r| r.status == 201).count();
    let limited: Vec<_> = responses.iter().filter(|r| r.status == 429).collect();
    assert_eq!(created, 7);
    assert_eq!(limited.len(), 13);
    for response in limited {
        response.assert_error(429, "TOO_MANY_REQUESTS");
        assert!(response.headers.contains_key("retry-after"));
        assert_eq!(response.body["error"]["details"]["limit"], 7);
        assert!(
            response.body["error"]["details"]["nextAllowedAt"]
                .as_str()
                .unwrap()
                .ends_with("T00:00:00.000Z")
        );
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM upload_sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 7);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn rate_limit_bypass_counts_past_the_limit_but_never_denies(pool: PgPool) {
    let app = TestApp::with_env(
        pool.clone(),
        &[
            ("UPLOAD_RATE_LIMIT_PER_DAY", "2"),
            ("RATE_LIMIT_BYPASS", "true"),
        ],
    )
    .await;
    for _ in 0..4 {
        app.create_session(json!([pdf_meta("a.pdf", 10)])).await;
    }
    let count: i32 = sqlx::query_scalar("SELECT count FROM user_daily_uploads WHERE user_id = $1")
        .bind(DEV_USER)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 4);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn the_part_size_follows_multipart_part_size_mb(pool: PgPool) {
    let app = TestApp::with_env(pool, &[("MULTIPART_PART_SIZE_MB", "8")]).await;
    let response = app
        .post(SESSIONS, json!({"files": [pdf_meta("a.pdf", 10)]}))
        .await;
    response.assert_status(201);
    assert_eq!(response.body["partSizeBytes"], 8 * MIB);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_incoming_request_id_is_echoed(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let response = app
        .send(
            TestApp::request(Method::POST, SESSIONS)
                .header("x-request-id", "trace-me-123")
                .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
                .unwrap(),
        )
        .await;
    response.assert_error(422, "VALIDATION_ERROR");
    assert_eq!(response.body["requestId"], "trace-me-123");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_json_body_over_one_mebibyte_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let padding = "x".repeat(1024 * 1024);
    let response = app
        .post(
            SESSIONS,
            json!({"files": [pdf_meta("a.pdf", 10)], "padding": padding}),
        )
        .await;
    response.assert_error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(
        response.body["error"]["details"]["maxBodyBytes"],
        1024 * 1024
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_misconfigured_function_answers_configuration_error(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let request = TestApp::request(Method::POST, SESSIONS)
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
        .unwrap();
    let misconfigured = Err(moc_shared::ApiError::Configuration(
        "MOC_BUCKET is required".into(),
    ));
    let response =
        moc_shared::routes::dispatch(&moc_shared::routes::SESSIONS, misconfigured, request).await;
    assert_eq!(response.status(), 500);
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_envelope(&body, response.headers(), "CONFIGURATION_ERROR");
    assert!(
        !body.to_string().contains("MOC_BUCKET"),
        "the cause stays in the log"
    );
    drop(app);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_unreachable_database_gives_a_retryable_503(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let config = moc_shared::config::Config {
        database_url: "postgres://postgres@127.0.0.1:1/nowhere".into(),
        ..app.state.config().clone()
    };
    let credentials = app.state.s3().credentials().clone();
    let state = moc_shared::AppState::new(config, credentials).unwrap();
    let request = TestApp::request(Method::POST, SESSIONS)
        .body(http_body_util::Full::new(bytes::Bytes::from(
            json!({"files": [pdf_meta("a.pdf", 10)]}).to_string(),
        )))
        .unwrap();
    let response =
        moc_shared::routes::dispatch(&moc_shared::routes::SESSIONS, Ok(state), request).await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_envelope(&body, response.headers(), "DATABASE_UNAVAILABLE");
    assert_eq!(body["error"]["details"]["retryable"], true);
}
