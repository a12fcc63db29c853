//! The expiry sweeper (docs/contract.md §4.13), called as Vercel Cron calls it.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

const SECRET: &str = "cron-test-secret";

async fn sweeper_app(pool: PgPool, env: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![("CRON_SECRET", SECRET)];
    vars.extend_from_slice(env);
    TestApp::with_env(pool, &vars).await
}

async fn sweep(app: &TestApp) -> Value {
    let response = app.sweep(Some(SECRET)).await;
    response.assert_status(200);
    response.body
}

async fn status_of(pool: &PgPool, session: &str) -> String {
    sqlx::query_scalar("SELECT status FROM upload_sessions WHERE id = $1::uuid")
        .bind(session)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Inserts `count` active sessions of the dev user that expired long ago,
/// the first one longest ago; returns their IDs in that order.
async fn long_expired_sessions(pool: &PgPool, count: i32) -> Vec<uuid::Uuid> {
    sqlx::query_scalar(
        "INSERT INTO upload_sessions (id, user_id, status, part_size_bytes, expires_at, created_at)
         SELECT gen_random_uuid(), $1, 'active', 5242880,
                (now() AT TIME ZONE 'utc') - interval '3 hours' + make_interval(secs => n),
                (now() AT TIME ZONE 'utc') - interval '4 hours'
           FROM generate_series(1, $2) AS n
         RETURNING id",
    )
    .bind(DEV_USER)
    .bind(count)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_wrong_or_missing_secret_is_forbidden_and_an_unset_one_forbids_everyone(pool: PgPool) {
    let app = sweeper_app(pool.clone(), &[]).await;
    for secret in [None, Some("wrong"), Some(""), Some("cron-test-secret2")] {
        app.sweep(secret).await.assert_error(403, "FORBIDDEN");
    }
    // A user's credentials are no substitute.
    let with_basic = app
        .send(
            TestApp::request(http::Method::GET, "/api/cron/expire-upload-sessions")
                .header("authorization", format!("Basic {SECRET}"))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await;
    with_basic.assert_error(403, "FORBIDDEN");
    let ok = sweep(&app).await;
    assert_eq!(ok["sessionsExpired"], 0);
    assert_eq!(ok["remaining"], false);
    assert!(ok["durationMs"].is_u64());

    let unset = TestApp::spawn(pool).await;
    for secret in [None, Some(""), Some(SECRET)] {
        unset.sweep(secret).await.assert_error(403, "FORBIDDEN");
    }
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_long_expired_session_is_swept_and_a_finalized_or_recent_one_is_untouched(pool: PgPool) {
    let app = sweeper_app(pool.clone(), &[]).await;

    // Expired 2 hours ago (grace: 60 minutes), with an upload in progress
    // and a completed file.
    let stale = app
        .create_session(json!([
            pdf_meta("manual.pdf", 12 * MIB),
            png_meta("b.png", 50)
        ]))
        .await;
    let mut pdf = pdf_meta("manual.pdf", 12 * MIB);
    pdf["partCount"] = json!(3);
    let registered = app.register(&stale, pdf).await;
    registered.assert_status(201);
    let urls = registered.body["presignedUrls"].as_array().unwrap().clone();
    let (png, _) = app
        .completed_file(&stale, png_meta("b.png", 50), png_bytes(50))
        .await;
    let (png_key, _) = app.file_upload(&png).await;
    app.expire(&stale, 120).await;

    // Finalized, and just as old.
    let finalized = app.create_session(json!([pdf_meta("a.pdf", 100)])).await;
    let (kept, _) = app
        .completed_file(&finalized, pdf_meta("a.pdf", 100), pdf_bytes(100))
        .await;
    app.post(
        "/api/mocs/uploads/finalize",
        json!({"uploadSessionId": finalized, "title": "Kept"}),
    )
    .await
    .assert_status(201);
    app.expire(&finalized, 120).await;
    let (kept_key, _) = app.file_upload(&kept).await;

    // Expired 10 minutes ago: still within the grace period.
    let (recent, _) = app.registered_file(pdf_meta("c.pdf", 100)).await;
    app.expire(&recent, 10).await;

    // A young upload no row refers to is not an orphan yet.
    let young_orphan = format!("{}/moc-instructions/u/s/instruction/young.pdf", app.stage);
    app.state
        .s3()
        .create_multipart_upload(&young_orphan, "application/pdf", false)
        .await
        .unwrap();
    assert_eq!(app.open_uploads().await, 3);

    let report = sweep(&app).await;
    assert_eq!(
        report,
        json!({
            "sessionsExpired": 1, "uploadsAborted": 1, "objectsDeleted": 1,
            "orphanUploadsAborted": 0, "sessionsFailed": 0, "remaining": false,
            "durationMs": report["durationMs"],
        })
    );

    assert_eq!(status_of(&pool, &stale).await, "expired");
    let late = reqwest::Client::new()
        .put(urls[0]["url"].as_str().unwrap())
        .body(pdf_bytes(5 * MIB).to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 404, "the swept upload is aborted in S3");
    assert!(!app.object_exists(&png_key).await);
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM upload_session_files WHERE session_id = $1::uuid")
            .bind(&stale)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(rows, 0);
    let swept = app
        .get(&format!("/api/mocs/uploads/sessions/{stale}"))
        .await;
    assert_eq!(swept.body["status"], "expired");

    assert_eq!(status_of(&pool, &finalized).await, "completed");
    assert!(
        app.object_exists(&kept_key).await,
        "the MOC keeps its object"
    );
    assert_eq!(status_of(&pool, &recent).await, "active");
    let open: Vec<String> = app
        .uploads()
        .await
        .iter()
        .map(|u| u.key().unwrap().to_owned())
        .collect();
    assert_eq!(open.len(), 2, "{open:?}");
    assert!(open.contains(&young_orphan));

    // Nothing is processed twice.
    let again = sweep(&app).await;
    assert_eq!(again["sessionsExpired"], 0);
    assert_eq!(again["uploadsAborted"], 0);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_old_upload_no_row_refers_to_is_aborted_as_an_orphan(pool: PgPool) {
    let app = sweeper_app(pool, &[("EXPIRED_SESSION_GRACE_MINUTES", "0")]).await;
    let s3 = app.state.s3();
    let orphan = format!("{}/moc-instructions/u/s/instruction/orphan.pdf", app.stage);
    s3.create_multipart_upload(&orphan, "application/pdf", false)
        .await
        .unwrap();
    let other_stage = "another-stage/moc-instructions/u/s/instruction/theirs.pdf";
    s3.create_multipart_upload(other_stage, "application/pdf", false)
        .await
        .unwrap();
    let (_session, file) = app.registered_file(pdf_meta("live.pdf", 100)).await;
    let (live_key, _) = app.file_upload(&file).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let report = sweep(&app).await;
    assert_eq!(report["orphanUploadsAborted"], 1, "{report}");
    assert_eq!(report["sessionsExpired"], 0);
    let mut open: Vec<String> = app
        .uploads()
        .await
        .iter()
        .map(|u| u.key().unwrap().to_owned())
        .collect();
    open.sort();
    let mut want = vec![other_stage.to_owned(), live_key];
    want.sort();
    assert_eq!(open, want, "only the orphan under this stage is aborted");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_upload_the_session_pass_released_is_not_counted_again_as_an_orphan(pool: PgPool) {
    // The orphan listing runs beside the session pass, so it lists the
    // expired session's upload before that pass aborts it.
    let app = sweeper_app(pool, &[("EXPIRED_SESSION_GRACE_MINUTES", "0")]).await;
    let (expired, _file) = app.registered_file(pdf_meta("late.pdf", 100)).await;
    app.expire(&expired, 1).await;
    let orphan = format!("{}/moc-instructions/u/s/instruction/orphan.pdf", app.stage);
    app.state
        .s3()
        .create_multipart_upload(&orphan, "application/pdf", false)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(app.open_uploads().await, 2);

    let report = sweep(&app).await;
    assert_eq!(report["sessionsExpired"], 1, "{report}");
    assert_eq!(report["uploadsAborted"], 1, "{report}");
    assert_eq!(report["orphanUploadsAborted"], 1, "{report}");
    assert_eq!(report["sessionsFailed"], 0, "{report}");
    assert_eq!(app.open_uploads().await, 0);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn two_concurrent_sweeps_process_each_session_once(pool: PgPool) {
    let app = sweeper_app(pool.clone(), &[("SWEEP_BATCH_SIZE", "20")]).await;
    let mut sessions = Vec::new();
    for i in 0..30 {
        let (session, _) = app
            .registered_file(pdf_meta(&format!("f{i}.pdf"), 100))
            .await;
        app.expire(&session, 120).await;
        sessions.push(session);
    }
    assert_eq!(app.open_uploads().await, 30);

    let (a, b) = tokio::join!(sweep(&app), sweep(&app));
    let total = |field: &str| a[field].as_u64().unwrap() + b[field].as_u64().unwrap();
    assert_eq!(total("sessionsExpired"), 30, "{a} {b}");
    assert_eq!(total("uploadsAborted"), 30, "{a} {b}");
    assert!(a["sessionsExpired"].as_u64().unwrap() <= 20);
    assert!(b["sessionsExpired"].as_u64().unwrap() <= 20);
    assert_eq!(app.open_uploads().await, 0);
    for session in &sessions {
        assert_eq!(status_of(&pool, session).await, "expired");
    }
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn two_hundred_fifty_expired_sessions_drain_over_three_runs_oldest_first(pool: PgPool) {
    let app = sweeper_app(pool.clone(), &[]).await;
    assert_eq!(app.state.config().sweep_batch_size, 100);
    let ids = long_expired_sessions(&pool, 250).await;

    let first = sweep(&app).await;
    assert_eq!(first["sessionsExpired"], 100);
    assert_eq!(first["remaining"], true);
    let expired: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM upload_sessions WHERE status = 'expired' ORDER BY expires_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(expired, ids[..100], "the oldest hundred go first");

    let second = sweep(&app).await;
    assert_eq!(second["sessionsExpired"], 100);
    assert_eq!(second["remaining"], true);
    let third = sweep(&app).await;
    assert_eq!(third["sessionsExpired"], 50);
    assert_eq!(third["remaining"], false);
    let active: i64 =
        sqlx::query_scalar("SELECT count(*) FROM upload_sessions WHERE status = 'active'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(active, 0);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_cancel_that_died_midway_is_finished_by_the_sweeper(pool: PgPool) {
    let app = sweeper_app(pool.clone(), &[]).await;
    let (session, _) = app.registered_file(pdf_meta("a.pdf", 100)).await;
    // What a cancel leaves when its function dies after the claim: status
    // cancelled, a claim older than the lease, the file and its upload.
    sqlx::query("UPDATE upload_sessions SET status = 'cancelled', cleanup_claimed_at = (now() AT TIME ZONE 'utc') - interval '10 minutes' WHERE id = $1::uuid")
        .bind(&session)
        .execute(&pool)
        .await
        .unwrap();
    let report = sweep(&app).await;
    assert_eq!(report["sessionsExpired"], 0);
    assert_eq!(report["uploadsAborted"], 1);
    assert_eq!(status_of(&pool, &session).await, "cancelled");
    assert_eq!(app.open_uploads().await, 0);
}
