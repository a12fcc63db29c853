//! What the production frontend needs (issue 8): the error envelope, cookie
//! authentication with its CSRF rule, credentialed CORS on every route, a
//! finalize that waits for a concurrent one, and clean text input.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::join_all;
use http::{Method, Request};
use http_body_util::Full;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::auth::{ISSUER, Signer, app_with_jwts, claims, id_claims};
use crate::helpers::*;

const SESSIONS: &str = "/api/mocs/uploads/sessions";
const FINALIZE: &str = "/api/mocs/uploads/finalize";
const APP_ORIGIN: &str = "https://app.example";
const EXPOSED: &str = "ETag, X-Request-Id, X-Correlation-Id, Retry-After";

fn request(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Request<Full<Bytes>> {
    let mut builder = TestApp::request(method, path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    builder
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap()
}

fn create_body() -> Value {
    json!({"files": [pdf_meta("a.pdf", 10)]})
}

fn finalize_body(session: &str, title: &str) -> Value {
    json!({"uploadSessionId": session, "title": title})
}

#[track_caller]
fn assert_credentialed_cors(response: &TestResponse, origin: &str) {
    let h = &response.headers;
    assert_eq!(h["access-control-allow-origin"], origin, "{:?}", h);
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["vary"], "Origin");
    assert_eq!(h["access-control-expose-headers"], EXPOSED);
}

#[track_caller]
fn assert_no_cors(response: &TestResponse) {
    assert!(
        !response
            .headers
            .keys()
            .any(|name| name.as_str().starts_with("access-control-")),
        "{:?}",
        response.headers
    );
}

/// A session holding one completed, genuine single-part PDF.
async fn finalizable_session(app: &TestApp) -> (String, String) {
    let session = app.create_session(json!([pdf_meta("a.pdf", 64)])).await;
    let (file_id, _) = app
        .completed_file(&session, pdf_meta("a.pdf", 64), pdf_bytes(64))
        .await;
    (session, file_id)
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn the_dev_servers_own_answers_and_batch_items_use_the_envelope(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let base = app.serve_http().await;
    let http = reqwest::Client::new();

    let answer = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let headers = http::HeaderMap::from_iter(
            response
                .headers()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        (status, headers, response.json::<Value>().await.unwrap())
    };
    // Unrouted path: the platform's 404.
    let (status, headers, body) = answer(
        http.get(format!("{base}/api/nope"))
            .header("x-request-id", "rid-404")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_envelope(&body, &headers, "NOT_FOUND");
    assert_eq!(body["requestId"], "rid-404");
    // A method the function does not serve.
    let (status, headers, body) =
        answer(http.get(format!("{base}{FINALIZE}")).send().await.unwrap()).await;
    assert_eq!(status, 405);
    assert_envelope(&body, &headers, "METHOD_NOT_ALLOWED");
    assert_eq!(headers["allow"], "POST");

    // Over the platform's 4.5 MB, declared: refused before any function.
    let too_large = app
        .send(request(
            Method::POST,
            SESSIONS,
            &[("content-length", "4600000")],
            None,
        ))
        .await;
    too_large.assert_error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(too_large.details()["maxBodyBytes"], 4_500_000);

    // A batch item error is the same `error` object.
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 10), pdf_meta("b.pdf", 10)]))
        .await;
    let batch = app
        .post(
            &format!("{SESSIONS}/{session}/files/batch"),
            json!({"files": [pdf_meta("a.pdf", 10), pdf_meta("b.pdf", 100 * MIB)]}),
        )
        .await;
    batch.assert_status(201);
    let item = &batch.body["results"][1]["error"];
    assert_eq!(item["code"], "SIZE_TOO_LARGE");
    assert_eq!(item["type"], "SIZE_TOO_LARGE");
    assert_eq!(item["details"]["reason"], "FILE_TOO_LARGE");
    assert!(item["message"].is_string());
    assert_eq!(item["details"]["maxBytes"], 52_428_800);
    assert!(
        batch.body["results"][0].get("error").is_none(),
        "success items stay flat"
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_zip_sent_as_a_pdf_is_listed_per_file_in_error_details(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let session = app
        .create_session(json!([pdf_meta("manual.pdf", 64)]))
        .await;
    let mut zip = b"PK\x03\x04".to_vec();
    zip.resize(64, 0);
    let (file_id, _) = app
        .completed_file(&session, pdf_meta("manual.pdf", 64), Bytes::from(zip))
        .await;
    let response = app.post(FINALIZE, finalize_body(&session, "Zip")).await;
    response.assert_error(400, "FILE_VALIDATION_FAILED");
    let files = response.details()["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{}", response.body);
    assert_eq!(files[0]["fileId"], file_id.as_str());
    assert_eq!(files[0]["filename"], "manual.pdf");
    assert_eq!(files[0]["reason"], "magic-bytes");
    assert!(files[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_cookie_alone_authenticates_and_an_invalid_cookie_beats_a_valid_header(pool: PgPool) {
    let signer = Signer::new("key-1");
    let app = app_with_jwts(pool.clone(), &signer, &[]).await;
    let cookie = format!(
        "theme=dark; auth_token={}",
        signer.token("key-1", id_claims("cookie-user", 600))
    );
    let created = app
        .send(request(
            Method::POST,
            SESSIONS,
            &[("cookie", &cookie)],
            Some(create_body()),
        ))
        .await;
    created.assert_status(201);
    let owner: String =
        sqlx::query_scalar("SELECT user_id FROM upload_sessions WHERE id = $1::uuid")
            .bind(created.body["sessionId"].as_str().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(owner, "cookie-user");

    let valid_header = format!(
        "Bearer {}",
        signer.token("key-1", claims("header-user", ISSUER, 600))
    );
    let refused = [
        (
            "expired",
            signer.token("key-1", id_claims("cookie-user", -600)),
        ),
        (
            "access token in the cookie",
            signer.token("key-1", claims("cookie-user", ISSUER, 600)),
        ),
        ("garbage", "not-a-jwt".to_owned()),
    ];
    for (case, token) in refused {
        let response = app
            .send(request(
                Method::POST,
                SESSIONS,
                &[
                    ("cookie", &format!("auth_token={token}")),
                    ("authorization", &valid_header),
                ],
                Some(create_body()),
            ))
            .await;
        assert_eq!(response.status, 401, "{case}: {}", response.body);
        response.assert_error(401, "UNAUTHORIZED");
    }
    // The header alone still works, and the cookie name is configurable.
    app.send(request(
        Method::POST,
        SESSIONS,
        &[("authorization", &valid_header)],
        Some(create_body()),
    ))
    .await
    .assert_status(201);
    let renamed = app_with_jwts(pool, &signer, &[("AUTH_COOKIE_NAME", "session")]).await;
    let token = signer.token("key-1", id_claims("cookie-user", 600));
    renamed
        .send(request(
            Method::POST,
            SESSIONS,
            &[("cookie", &format!("session={token}"))],
            Some(create_body()),
        ))
        .await
        .assert_status(201);
    renamed
        .send(request(
            Method::POST,
            SESSIONS,
            &[("cookie", &format!("auth_token={token}"))],
            Some(create_body()),
        ))
        .await
        .assert_error(401, "UNAUTHORIZED");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn cookie_state_changes_must_come_from_an_allowed_or_the_apis_own_origin(pool: PgPool) {
    let signer = Signer::new("key-1");
    let app = app_with_jwts(
        pool,
        &signer,
        &[
            ("ALLOW_BROWSER_UPLOADS", "true"),
            ("CORS_ALLOWED_ORIGINS", APP_ORIGIN),
        ],
    )
    .await;
    let cookie = format!("auth_token={}", signer.token("key-1", id_claims("u", 600)));
    let bearer = format!("Bearer {}", signer.token("key-1", claims("u", ISSUER, 600)));
    let post = |headers: &[(&str, &str)]| {
        app.send(request(
            Method::POST,
            SESSIONS,
            headers,
            Some(create_body()),
        ))
    };

    let foreign = post(&[("cookie", &cookie), ("origin", "https://evil.example")]).await;
    foreign.assert_error(403, "FORBIDDEN");
    assert_no_cors(&foreign);
    post(&[("cookie", &cookie), ("origin", "null")])
        .await
        .assert_error(403, "FORBIDDEN");

    // Exempt: a header credential, which another origin's script cannot hold.
    post(&[
        ("authorization", &bearer),
        ("origin", "https://evil.example"),
    ])
    .await
    .assert_status(201);
    // The API's own origin, as Vercel forwards it, and as a plain Host.
    post(&[
        ("cookie", &cookie),
        ("origin", "https://api.example"),
        ("host", "internal.vercel.app"),
        ("x-forwarded-host", "api.example"),
        ("x-forwarded-proto", "https"),
    ])
    .await
    .assert_status(201);
    post(&[
        ("cookie", &cookie),
        ("origin", "http://localhost:3800"),
        ("host", "localhost:3800"),
    ])
    .await
    .assert_status(201);
    // No Origin: not a cross-site browser request.
    post(&[("cookie", &cookie)]).await.assert_status(201);

    let allowed = post(&[("cookie", &cookie), ("origin", APP_ORIGIN)]).await;
    allowed.assert_status(201);
    assert_credentialed_cors(&allowed, APP_ORIGIN);
    assert!(
        allowed
            .headers
            .get("access-control-allow-methods")
            .is_none(),
        "only preflights list methods"
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn every_route_answers_preflights_and_errors_with_credentialed_cors(pool: PgPool) {
    let app = TestApp::with_env(
        pool.clone(),
        &[
            ("ALLOW_BROWSER_UPLOADS", "true"),
            ("CORS_ALLOWED_ORIGINS", APP_ORIGIN),
            (
                "ALLOWED_UPLOAD_ORIGINS",
                "https://only-the-fallback.example",
            ),
        ],
    )
    .await;
    let preflight = |path: &str, origin: &str| {
        app.send(request(
            Method::OPTIONS,
            path,
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
            ],
            None,
        ))
    };
    for (path, methods) in [
        (FINALIZE, "POST, OPTIONS"),
        (SESSIONS, "GET, POST, OPTIONS"),
        ("/api/mocs/uploads/sessions/x/finalize", "POST, OPTIONS"),
    ] {
        let answer = preflight(path, APP_ORIGIN).await;
        answer.assert_status(204);
        assert_credentialed_cors(&answer, APP_ORIGIN);
        assert_eq!(answer.headers["access-control-allow-methods"], methods);
        assert_eq!(
            answer.headers["access-control-allow-headers"],
            "Content-Type, Authorization, X-Request-Id"
        );
        assert_eq!(answer.headers["access-control-max-age"], "86400");
        // CORS_ALLOWED_ORIGINS wins over the fallback list.
        let other = preflight(path, "https://only-the-fallback.example").await;
        other.assert_status(204);
        assert_no_cors(&other);
    }
    let parts = preflight("/api/mocs/uploads/sessions/s/files/f/parts", APP_ORIGIN).await;
    assert_eq!(
        parts.headers["access-control-allow-methods"],
        "GET, OPTIONS"
    );

    // Errors carry the headers too: a 404 of a route, a 422, a 401.
    let missing = app
        .send(request(
            Method::GET,
            &format!(
                "{SESSIONS}/{}/files/{}/parts",
                uuid::Uuid::new_v4(),
                uuid::Uuid::new_v4()
            ),
            &[("origin", APP_ORIGIN)],
            None,
        ))
        .await;
    missing.assert_error(404, "NOT_FOUND");
    assert_credentialed_cors(&missing, APP_ORIGIN);
    let invalid = app
        .send(request(
            Method::POST,
            SESSIONS,
            &[("origin", APP_ORIGIN)],
            Some(json!({"files": []})),
        ))
        .await;
    invalid.assert_error(422, "VALIDATION_ERROR");
    assert_credentialed_cors(&invalid, APP_ORIGIN);
    let strict = app_with_jwts(
        pool,
        &Signer::new("k"),
        &[
            ("ALLOW_BROWSER_UPLOADS", "true"),
            ("ALLOWED_UPLOAD_ORIGINS", APP_ORIGIN),
        ],
    )
    .await;
    let unauthorized = strict
        .send(request(
            Method::POST,
            FINALIZE,
            &[("origin", APP_ORIGIN)],
            Some(json!({})),
        ))
        .await;
    unauthorized.assert_error(401, "UNAUTHORIZED");
    assert_credentialed_cors(&unauthorized, APP_ORIGIN);

    // The platform's own 404 for an unrouted path is Vercel's, before any
    // function: no CORS there, but the same envelope.
    let unrouted = app
        .send(request(
            Method::GET,
            "/api/nope",
            &[("origin", APP_ORIGIN)],
            None,
        ))
        .await;
    unrouted.assert_error(404, "NOT_FOUND");
    assert_no_cors(&unrouted);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn control_characters_in_text_fields_are_named_422s(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    for (name, what) in [
        ("a\u{0}b.pdf", "NUL"),
        ("bell\u{7}.pdf", "BEL"),
        ("tab\t.pdf", "tab"),
    ] {
        let created = app
            .post(SESSIONS, json!({"files": [pdf_meta(name, 10)]}))
            .await;
        created.assert_error(422, "VALIDATION_ERROR");
        assert!(
            created.details()["errors"]["files[0].name"].is_array(),
            "{what}: {}",
            created.body
        );
    }
    let session = app.create_session(json!([pdf_meta("a.pdf", 10)])).await;
    let registered = app.register(&session, pdf_meta("a\u{0}.pdf", 10)).await;
    registered.assert_error(422, "VALIDATION_ERROR");
    assert!(registered.details()["errors"]["name"].is_array());

    let finalize = |body: Value| app.post(FINALIZE, body);
    let nul_title = finalize(finalize_body(&session, "Castle\u{0}")).await;
    nul_title.assert_error(422, "VALIDATION_ERROR");
    assert!(nul_title.details()["errors"]["title"].is_array());
    let bad_tag =
        finalize(json!({"uploadSessionId": session, "title": "T", "tags": ["ok", "x\u{1b}"]}))
            .await;
    bad_tag.assert_error(422, "VALIDATION_ERROR");
    assert!(bad_tag.details()["errors"]["tags[1]"].is_array());
    let bad_theme =
        finalize(json!({"uploadSessionId": session, "title": "T", "theme": "\u{0}"})).await;
    assert!(bad_theme.details()["errors"]["theme"].is_array());
    // Tabs and line breaks belong in a description; other controls do not.
    let bad_description =
        finalize(json!({"uploadSessionId": session, "title": "T", "description": "a\u{0}"})).await;
    assert!(bad_description.details()["errors"]["description"].is_array());
    let unknown = uuid::Uuid::new_v4().to_string();
    finalize(json!({"uploadSessionId": unknown, "title": "T", "description": "Steps:\n\t1. base\r\n\t2. roof"}))
        .await
        .assert_error(404, "NOT_FOUND");

    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM upload_session_files")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "nothing with a control character was stored");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn unicode_text_round_trips_byte_exact(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    // Decomposed "é" (e + U+0301) must not be normalized on the way.
    let name = "Ünïcode 🧱 مرحبا e\u{301}.pdf";
    let session = app.create_session(json!([pdf_meta(name, 64)])).await;
    let (file_id, _) = app
        .completed_file(&session, pdf_meta(name, 64), pdf_bytes(64))
        .await;
    let stored: String =
        sqlx::query_scalar("SELECT name FROM upload_session_files WHERE id = $1::uuid")
            .bind(&file_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored.as_bytes(), name.as_bytes());
    // And back out through the session status, the route a client resumes from.
    let status = app
        .get(&format!("/api/mocs/uploads/sessions/{session}"))
        .await;
    status.assert_status(200);
    assert_eq!(status.body["files"][0]["name"], name);
    assert_eq!(status.body["declaredFiles"][0]["name"], name);

    let body = json!({
        "uploadSessionId": session,
        "title": "Château 城 🏰 קסטל",
        "description": "Ωmega\tlines\nעברית",
        "tags": ["日本", "e\u{301}"],
        "theme": "Ünïcode",
    });
    let created = app.post(FINALIZE, body.clone()).await;
    created.assert_status(201);
    let replayed = app.post(FINALIZE, body.clone()).await;
    replayed.assert_status(200);
    for answer in [&created.body, &replayed.body] {
        for key in ["title", "description", "tags", "theme"] {
            assert_eq!(answer[key], body[key], "{key}");
        }
    }
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn six_concurrent_finalizes_all_answer_the_same_moc(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (session, _) = finalizable_session(&app).await;
    let answers =
        join_all((0..6).map(|_| app.post(FINALIZE, finalize_body(&session, "Race")))).await;
    let summary: Vec<_> = answers.iter().map(|a| (a.status, a.body.clone())).collect();
    assert!(
        answers.iter().all(|a| !a.status.is_server_error()),
        "{summary:?}"
    );
    assert_eq!(
        answers.iter().filter(|a| a.status == 201).count(),
        1,
        "{summary:?}"
    );
    let id = answers[0].body["id"]
        .as_str()
        .expect("every answer is the MOC");
    for answer in &answers {
        assert_eq!(answer.body["id"], id, "{summary:?}");
        if answer.status != 201 {
            answer.assert_status(200);
            assert_eq!(answer.body["idempotent"], true);
        }
    }
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_finalize_waits_for_the_lock_holder_and_answers_its_moc(pool: PgPool) {
    let app = TestApp::with_env(pool.clone(), &[("FINALIZE_WAIT_MS", "5000")]).await;
    let (session, _) = finalizable_session(&app).await;
    let first = app.post(FINALIZE, finalize_body(&session, "Held")).await;
    first.assert_status(201);
    let moc_id = first.body["id"].as_str().unwrap().to_owned();
    // Rewind to "a holder is mid-way": lock fresh, not yet finalized.
    sqlx::query(
        "UPDATE upload_sessions SET status = 'active', finalized_at = NULL, moc_instruction_id = NULL,
                finalizing_at = now() AT TIME ZONE 'utc' WHERE id = $1::uuid",
    )
    .bind(&session)
    .execute(&pool)
    .await
    .unwrap();
    let started = Instant::now();
    let waiter = app.post(FINALIZE, finalize_body(&session, "Held"));
    let holder_commits = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        sqlx::query(
            "UPDATE upload_sessions SET status = 'completed', finalized_at = now() AT TIME ZONE 'utc',
                    moc_instruction_id = $2::uuid, finalizing_at = NULL WHERE id = $1::uuid",
        )
        .bind(&session)
        .bind(&moc_id)
        .execute(&pool)
        .await
        .unwrap();
    };
    let (answer, ()) = tokio::join!(waiter, holder_commits);
    answer.assert_status(200);
    assert_eq!(answer.body["id"], moc_id.as_str());
    assert_eq!(answer.body["idempotent"], true);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_finalize_takes_the_lock_a_failed_holder_released(pool: PgPool) {
    let app = TestApp::with_env(pool.clone(), &[("FINALIZE_WAIT_MS", "5000")]).await;
    let (session, _) = finalizable_session(&app).await;
    sqlx::query(
        "UPDATE upload_sessions SET finalizing_at = now() AT TIME ZONE 'utc' WHERE id = $1::uuid",
    )
    .bind(&session)
    .execute(&pool)
    .await
    .unwrap();
    let waiter = app.post(FINALIZE, finalize_body(&session, "Released"));
    let holder_fails = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::query("UPDATE upload_sessions SET finalizing_at = NULL WHERE id = $1::uuid")
            .bind(&session)
            .execute(&pool)
            .await
            .unwrap();
    };
    let (answer, ()) = tokio::join!(waiter, holder_fails);
    answer.assert_status(201);
    assert_eq!(answer.body["title"], "Released");
}
