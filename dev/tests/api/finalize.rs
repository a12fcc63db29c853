use futures::future::join_all;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

pub(crate) const FINALIZE: &str = "/api/mocs/uploads/finalize";

/// A session with a completed PDF (presigned, 12 MiB), PNG and CSV (proxied).
pub(crate) async fn session_ready_to_finalize(app: &TestApp) -> String {
    let session = app
        .create_session(json!([
            pdf_meta("manual.pdf", 12 * MIB),
            png_meta("cover.png", MIB),
            csv_meta("parts.csv", 64)
        ]))
        .await;
    let mut pdf = pdf_meta("manual.pdf", 12 * MIB);
    pdf["partCount"] = json!(3);
    let registered = app.register(&session, pdf).await;
    registered.assert_status(201);
    let file_id = registered.body["fileId"].as_str().unwrap().to_owned();
    let bytes = pdf_bytes(12 * MIB);
    let http = reqwest::Client::new();
    let mut parts = Vec::new();
    for (n, url) in registered.body["presignedUrls"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let start = n * 5 * MIB;
        let chunk = bytes.slice(start..(start + 5 * MIB).min(bytes.len()));
        let response = http
            .put(url["url"].as_str().unwrap())
            .body(chunk)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        parts.push(
            json!({"partNumber": n + 1, "etag": response.headers()["etag"].to_str().unwrap()}),
        );
    }
    app.complete(&session, &file_id, json!(parts))
        .await
        .assert_status(200);
    app.completed_file(&session, png_meta("cover.png", MIB), png_bytes(MIB))
        .await;
    app.completed_file(
        &session,
        csv_meta("parts.csv", 64),
        bytes::Bytes::from(vec![b'a'; 64]),
    )
    .await;
    session
}

pub(crate) fn finalize_body(session: &str, title: &str) -> Value {
    json!({"uploadSessionId": session, "title": title, "description": "A castle", "tags": ["castle"], "theme": "Castle"})
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn finalizing_creates_one_moc_and_replays_idempotently(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = session_ready_to_finalize(&app).await;
    let created = app
        .post(FINALIZE, finalize_body(&session, "Café MOC"))
        .await;
    created.assert_status(201);
    let moc = &created.body;
    assert_eq!(moc["slug"], "cafe-moc");
    assert_eq!(moc["status"], "private");
    assert!(moc["pdfKey"].as_str().unwrap().ends_with(".pdf"));
    assert_eq!(moc["imageKeys"].as_array().unwrap().len(), 1);
    assert_eq!(moc["partsKeys"].as_array().unwrap().len(), 1);
    assert_eq!(moc["tags"], json!(["castle"]));
    assert!(moc.get("idempotent").is_none());

    let moc_id: uuid::Uuid = moc["id"].as_str().unwrap().parse().unwrap();
    let files: i64 = sqlx::query_scalar("SELECT count(*) FROM moc_files WHERE moc_id = $1")
        .bind(moc_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(files, 3);
    let thumbnail: Option<String> =
        sqlx::query_scalar("SELECT thumbnail_url FROM moc_instructions WHERE id = $1")
            .bind(moc_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(thumbnail.as_deref(), moc["imageKeys"][0].as_str());
    let (status, linked, lock): (String, Option<uuid::Uuid>, Option<chrono::NaiveDateTime>) =
        sqlx::query_as("SELECT status, moc_instruction_id, finalizing_at FROM upload_sessions WHERE id = $1::uuid")
            .bind(&session).fetch_one(&pool).await.unwrap();
    assert_eq!(
        (status.as_str(), linked, lock),
        ("completed", Some(moc_id), None)
    );

    let replay = app
        .post(FINALIZE, finalize_body(&session, "Café MOC"))
        .await;
    replay.assert_status(200);
    assert_eq!(replay.body["idempotent"], true);
    assert_eq!(replay.body["id"], moc["id"]);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn ten_concurrent_finalizes_make_exactly_one_moc(pool: PgPool) {
    let app = TestApp::with_env(pool.clone(), &[("FINALIZE_RATE_LIMIT_PER_MINUTE", "100")]).await;
    let session = session_ready_to_finalize(&app).await;
    let answers =
        join_all((0..10).map(|_| app.post(FINALIZE, finalize_body(&session, "Race")))).await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        answers
            .iter()
            .map(|a| (a.status, a.body.clone()))
            .collect::<Vec<_>>()
    );
    for answer in answers.iter().filter(|a| a.status != 201) {
        answer.assert_status(200);
        assert_eq!(answer.body["idempotent"], true);
    }
    let mocs: i64 = sqlx::query_scalar("SELECT count(*) FROM moc_instructions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mocs, 1);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_pdf_that_is_not_a_pdf_fails_on_magic_bytes(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app.create_session(json!([pdf_meta("fake.pdf", 64)])).await;
    app.completed_file(
        &session,
        pdf_meta("fake.pdf", 64),
        bytes::Bytes::from(vec![b'x'; 64]),
    )
    .await;
    let response = app.post(FINALIZE, finalize_body(&session, "Fake")).await;
    response.assert_error(400, "FILE_VALIDATION_FAILED");
    assert_eq!(
        response.body["error"]["details"]["files"][0]["reason"],
        "magic-bytes"
    );
    assert_eq!(
        response.body["error"]["details"]["files"][0]["filename"],
        "fake.pdf"
    );
    let lock: Option<chrono::NaiveDateTime> =
        sqlx::query_scalar("SELECT finalizing_at FROM upload_sessions WHERE id = $1::uuid")
            .bind(&session)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(lock.is_none(), "a refused finalize releases its lock");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_failure_after_the_moc_insert_rolls_everything_back(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (session, response) = app.finalize_failing_after_the_moc_insert(&pool).await;
    response.assert_error(500, "INTERNAL_ERROR");
    assert!(!response.body.to_string().contains("injected_failure"));
    let mocs: i64 = sqlx::query_scalar("SELECT count(*) FROM moc_instructions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mocs, 0);
    let (status, lock): (String, Option<chrono::NaiveDateTime>) =
        sqlx::query_as("SELECT status, finalizing_at FROM upload_sessions WHERE id = $1::uuid")
            .bind(&session)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "active");
    assert!(lock.is_none());
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_stale_lock_is_taken_over_and_a_fresh_one_is_respected(pool: PgPool) {
    let app = TestApp::with_env(pool.clone(), &[("FINALIZE_WAIT_MS", "300")]).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 64)])).await;
    app.completed_file(&session, pdf_meta("a.pdf", 64), pdf_bytes(64))
        .await;
    let set_lock = |minutes: i32| {
        sqlx::query("UPDATE upload_sessions SET finalizing_at = (now() AT TIME ZONE 'utc') - make_interval(mins => $2) WHERE id = $1::uuid")
            .bind(session.clone()).bind(minutes).execute(&pool)
    };
    set_lock(1).await.unwrap();
    let started = std::time::Instant::now();
    let busy = app.post(FINALIZE, finalize_body(&session, "Locked")).await;
    busy.assert_status(200);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(300),
        "waits FINALIZE_WAIT_MS for the holder before giving up"
    );
    assert_eq!(
        busy.body,
        json!({"status": "finalizing", "idempotent": true, "message": "Finalization in progress"})
    );
    assert_eq!(busy.headers["retry-after"], "2");
    set_lock(10).await.unwrap();
    app.post(FINALIZE, finalize_body(&session, "Locked"))
        .await
        .assert_status(201);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_taken_title_gets_a_conflict_with_a_suggested_slug(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    sqlx::query("INSERT INTO moc_instructions (id, user_id, title, slug) VALUES (gen_random_uuid(), $1, 'Existing MOC Title', 'existing-moc-title')")
        .bind(DEV_USER).execute(&pool).await.unwrap();
    let session = app.create_session(json!([pdf_meta("a.pdf", 64)])).await;
    app.completed_file(&session, pdf_meta("a.pdf", 64), pdf_bytes(64))
        .await;
    let conflict = app
        .post(FINALIZE, finalize_body(&session, "Existing MOC Title"))
        .await;
    conflict.assert_error(409, "CONFLICT");
    assert_eq!(
        conflict.body["error"]["details"]["suggestedSlug"],
        "existing-moc-title-2"
    );
    assert_eq!(
        conflict.body["error"]["details"]["retryStrategy"],
        "AUTO_APPEND"
    );
    let retry = app
        .post(FINALIZE, finalize_body(&session, "Existing MOC Title (1)"))
        .await;
    retry.assert_status(201);
    assert_eq!(retry.body["slug"], "existing-moc-title-1");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn the_eleventh_finalize_in_a_minute_is_rate_limited(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let missing = uuid::Uuid::new_v4().to_string();
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(app.post(FINALIZE, finalize_body(&missing, "x")).await);
    }
    // A minute boundary may fall inside the loop; then the window restarts.
    let limited = statuses.iter().filter(|r| r.status == 429).count();
    let last = statuses.last().unwrap();
    if limited == 0 {
        assert!(statuses.iter().all(|r| r.status == 404));
        return;
    }
    last.assert_error(429, "RATE_LIMIT_EXCEEDED");
    assert!(last.headers.contains_key("retry-after"));
    assert_eq!(last.body["error"]["details"]["limit"], 10);
    assert_eq!(last.body["error"]["details"]["window"], "1m");
    assert!(statuses[..10].iter().all(|r| r.status == 404));
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn finalize_fails_open_when_redis_is_unreachable(pool: PgPool) {
    // Nothing listens on port 1, with or without TLS (`rediss://`, as the
    // Marketplace's Upstash URL): every other route serves, finalize allows.
    let urls = ["redis://127.0.0.1:1", "rediss://default:secret@127.0.0.1:1"];
    for (n, url) in urls.into_iter().enumerate() {
        let app = TestApp::with_env(
            pool.clone(),
            &[("REDIS_URL", url), ("FINALIZE_RATE_LIMIT_PER_MINUTE", "1")],
        )
        .await;
        let session = crate::dependencies::serves_without_redis(&app).await;
        app.post(
            FINALIZE,
            finalize_body(&uuid::Uuid::new_v4().to_string(), "x"),
        )
        .await
        .assert_error(404, "NOT_FOUND");
        app.post(FINALIZE, finalize_body(&session, &format!("Open {n}")))
            .await
            .assert_status(201);
    }
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn the_finalize_aliases_reach_the_same_function(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 64)])).await;
    app.completed_file(&session, pdf_meta("a.pdf", 64), pdf_bytes(64))
        .await;
    app.post(
        &format!("/api/mocs/uploads/sessions/{session}/finalize"),
        finalize_body(&session, "Alias"),
    )
    .await
    .assert_status(201);
    let replay = app
        .post(
            "/api/mocs/uploads/sessions/finalize",
            finalize_body(&session, "Alias"),
        )
        .await;
    replay.assert_status(200);
    assert_eq!(replay.body["idempotent"], true);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn finalizing_an_expired_session_is_gone_but_a_finalized_one_replays(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 64)])).await;
    app.completed_file(&session, pdf_meta("a.pdf", 64), pdf_bytes(64))
        .await;
    let expire = || {
        sqlx::query("UPDATE upload_sessions SET expires_at = (now() AT TIME ZONE 'utc') - interval '1 second' WHERE id = $1::uuid")
            .bind(session.clone())
            .execute(&pool)
    };
    expire().await.unwrap();
    let gone = app.post(FINALIZE, finalize_body(&session, "Late")).await;
    gone.assert_error(410, "GONE");
    assert_eq!(gone.body["error"]["details"]["sessionExpired"], true);

    sqlx::query("UPDATE upload_sessions SET expires_at = (now() AT TIME ZONE 'utc') + interval '1 hour' WHERE id = $1::uuid")
        .bind(&session).execute(&pool).await.unwrap();
    app.post(FINALIZE, finalize_body(&session, "Late"))
        .await
        .assert_status(201);
    expire().await.unwrap();
    let replay = app.post(FINALIZE, finalize_body(&session, "Late")).await;
    replay.assert_status(200);
    assert_eq!(replay.body["idempotent"], true);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_missing_object_or_wrong_size_is_reported_per_file(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 64), png_meta("b.png", 64)]))
        .await;
    let (pdf, _) = app
        .completed_file(&session, pdf_meta("a.pdf", 64), pdf_bytes(64))
        .await;
    let (png, _) = app
        .completed_file(&session, png_meta("b.png", 64), png_bytes(64))
        .await;
    sqlx::query("UPDATE upload_session_files SET size = 65 WHERE id = $1::uuid")
        .bind(&pdf)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE upload_session_files SET s3_key = s3_key || '.gone' WHERE id = $1::uuid")
        .bind(&png)
        .execute(&pool)
        .await
        .unwrap();
    let response = app.post(FINALIZE, finalize_body(&session, "Broken")).await;
    response.assert_error(400, "FILE_VALIDATION_FAILED");
    let mut reasons: Vec<String> = response.body["error"]["details"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["reason"].as_str().unwrap().to_owned())
        .collect();
    reasons.sort();
    assert_eq!(reasons, ["missing", "size"]);
}
