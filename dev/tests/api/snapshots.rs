//! The whole JSON body of one success and the main errors of each route,
//! pinned with insta (`dev/tests/api/snapshots/`). Values that differ per run
//! (request IDs, timestamps, IDs, upload IDs, URLs and keys that carry them)
//! are redacted; everything else, field names and nesting included, is
//! compared. A changed response shape shows up as a snapshot diff in review:
//! accept it with `cargo insta review` (or `INSTA_UPDATE=always`).

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

const S: &str = "/api/mocs/uploads/sessions";
const CRON_SECRET: &str = "snapshot-cron-secret";

/// Snapshots `{status, body}` of a response under `name`.
macro_rules! snapshot {
    ($name:expr, $response:expr) => {{
        let response = &$response;
        let pinned = json!({ "status": response.status.as_u16(), "body": response.body });
        insta::assert_json_snapshot!($name, pinned, {
            ".body.requestId" => "[request-id]",
            ".body.correlationId" => "[request-id]",
            ".body.timestamp" => "[timestamp]",
            ".**.sessionId" => "[uuid]",
            ".**.fileId" => "[uuid]",
            ".**.existingFileId" => "[uuid]",
            ".**.mocId" => "[uuid]",
            ".body.id" => "[uuid]",
            ".**.uploadId" => "[upload-id]",
            ".**.url" => "[presigned-url]",
            ".**.fileUrl" => "[object-url]",
            ".**.pdfKey" => "[object-url]",
            ".**.imageKeys[]" => "[object-url]",
            ".**.partsKeys[]" => "[object-url]",
            ".**.expiresAt" => "[timestamp]",
            ".**.createdAt" => "[timestamp]",
            ".**.uploadedAt" => "[timestamp]",
            ".**.now" => "[timestamp]",
            ".**.nextAllowedAt" => "[timestamp]",
            ".**.retryAfterSeconds" => "[seconds]",
            ".**.durationMs" => "[ms]",
        });
    }};
}

async fn app(pool: PgPool) -> TestApp {
    TestApp::with_env(pool, &[("CRON_SECRET", CRON_SECRET)]).await
}

fn session_path(session: &str) -> String {
    format!("{S}/{session}")
}

fn file_path(session: &str, file: &str) -> String {
    format!("{S}/{session}/files/{file}")
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn create_session_answers_are_pinned(pool: PgPool) {
    let app = app(pool).await;
    let created = app
        .post(S, json!({"files": [pdf_meta("castle.pdf", 12 * MIB)]}))
        .await;
    snapshot!("create_session_created", created);
    snapshot!(
        "create_session_empty_files",
        app.post(S, json!({"files": []})).await
    );
    snapshot!(
        "create_session_no_instruction",
        app.post(S, json!({"files": [png_meta("a.png", 100)]}))
            .await
    );
    snapshot!(
        "create_session_unsupported_type",
        app.post(
            S,
            json!({"files": [{"category": "instruction", "name": "a.pdf", "size": 10, "type": "image/png", "ext": "pdf"}]})
        )
        .await
    );
    snapshot!(
        "create_session_file_too_large",
        app.post(S, json!({"files": [pdf_meta("huge.pdf", 60 * MIB)]}))
            .await
    );
    snapshot!(
        "create_session_malformed_json",
        app.send(
            TestApp::request(Method::POST, S)
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(Bytes::from_static(
                    b"{\"files\": ["
                )))
                .unwrap()
        )
        .await
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn register_answers_are_pinned(pool: PgPool) {
    let app = app(pool).await;
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 12 * MIB), pdf_meta("b.pdf", 100)]))
        .await;
    let mut with_parts = pdf_meta("a.pdf", 12 * MIB);
    with_parts["partCount"] = json!(3);
    snapshot!(
        "register_created_with_urls",
        app.register(&session, with_parts).await
    );
    snapshot!(
        "register_duplicate",
        app.register(&session, pdf_meta("a.pdf", 12 * MIB)).await
    );
    let mut wrong_count = pdf_meta("b.pdf", 100);
    wrong_count["partCount"] = json!(2);
    snapshot!(
        "register_part_count_mismatch",
        app.register(&session, wrong_count).await
    );
    snapshot!(
        "register_unknown_session",
        app.register(
            "00000000-0000-0000-0000-000000000000",
            pdf_meta("a.pdf", 100)
        )
        .await
    );
    snapshot!(
        "register_path_id_not_a_uuid",
        app.register("not-a-uuid", pdf_meta("a.pdf", 100)).await
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn batch_answers_are_pinned(pool: PgPool) {
    let app = app(pool).await;
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 100), png_meta("p.png", 100)]))
        .await;
    let batch = format!("{}/files/batch", session_path(&session));
    snapshot!(
        "batch_partial_commit",
        app.post(
            &batch,
            json!({"files": [pdf_meta("a.pdf", 100), {"category": "image", "name": "p.png", "size": 0, "type": "image/png", "ext": "png"}]})
        )
        .await
    );
    let eleven: Vec<Value> = (0..11)
        .map(|i| pdf_meta(&format!("{i}.pdf"), 100))
        .collect();
    snapshot!(
        "batch_too_large",
        app.post(&batch, json!({ "files": eleven })).await
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn part_answers_are_pinned(pool: PgPool) {
    let app = app(pool).await;
    let (session, file) = app.registered_file(pdf_meta("a.pdf", 1000)).await;
    snapshot!(
        "upload_part_stored",
        app.put_part(&session, &file, "1", pdf_bytes(1000)).await
    );
    snapshot!(
        "upload_part_invalid_number",
        app.put_part(&session, &file, "1abc", pdf_bytes(10)).await
    );
    snapshot!(
        "upload_part_empty_body",
        app.put_part(&session, &file, "2", Bytes::new()).await
    );
    let parts = format!("{}/parts", file_path(&session, &file));
    snapshot!("list_parts", app.get(&parts).await);
    snapshot!(
        "list_parts_unknown_file",
        app.get(&format!(
            "{}/parts",
            file_path(&session, "00000000-0000-0000-0000-000000000000")
        ))
        .await
    );
    let urls = format!("{}/urls", file_path(&session, &file));
    snapshot!(
        "fresh_urls_listed",
        app.post(&urls, json!({"partNumbers": [1]})).await
    );
    snapshot!(
        "fresh_urls_beyond_the_file",
        app.post(&urls, json!({"partNumbers": [7]})).await
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn complete_answers_are_pinned(pool: PgPool) {
    let app = app(pool).await;
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 1000), pdf_meta("b.pdf", 1000)]))
        .await;
    let (file, etag) = app
        .upload_single_part(&session, pdf_meta("a.pdf", 1000), pdf_bytes(1000))
        .await;
    snapshot!(
        "complete_missing_parts",
        app.complete(&session, &file, json!([{"partNumber": 2, "etag": etag}]))
            .await
    );
    snapshot!(
        "complete_completed",
        app.complete(&session, &file, json!([{"partNumber": 1, "etag": etag}]))
            .await
    );
    snapshot!(
        "complete_schema_violation",
        app.complete(&session, &file, json!([{"partNumber": 0}]))
            .await
    );
    app.expire(&session, 5).await;
    snapshot!(
        "complete_expired_session",
        app.complete(&session, &file, json!([{"partNumber": 1, "etag": etag}]))
            .await
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn finalize_answers_are_pinned(pool: PgPool) {
    let app = app(pool).await;
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 1000), png_meta("p.png", 100)]))
        .await;
    app.completed_file(&session, pdf_meta("a.pdf", 1000), pdf_bytes(1000))
        .await;
    // Declared a PNG, holds a PDF: refused by its magic bytes.
    app.completed_file(&session, png_meta("p.png", 100), pdf_bytes(100))
        .await;
    let finalize = "/api/mocs/uploads/finalize";
    let body = json!({"uploadSessionId": session, "title": "Snapshot Castle", "tags": ["castle"]});
    snapshot!(
        "finalize_file_validation_failed",
        app.post(finalize, body.clone()).await
    );
    snapshot!(
        "finalize_schema_violation",
        app.post(finalize, json!({"title": ""})).await
    );

    let session = app.create_session(json!([pdf_meta("a.pdf", 1000)])).await;
    app.completed_file(&session, pdf_meta("a.pdf", 1000), pdf_bytes(1000))
        .await;
    let body = json!({"uploadSessionId": session, "title": "Snapshot Castle", "tags": ["castle"]});
    snapshot!("finalize_created", app.post(finalize, body.clone()).await);
    snapshot!("finalize_replayed", app.post(finalize, body).await);
    snapshot!(
        "finalize_unknown_session",
        app.post(
            finalize,
            json!({"uploadSessionId": "00000000-0000-0000-0000-000000000000", "title": "x"})
        )
        .await
    );
    snapshot!(
        "cancel_finalized_session",
        app.delete(&session_path(&session)).await
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn session_lifecycle_answers_are_pinned(pool: PgPool) {
    let app = app(pool).await;
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 1000), csv_meta("parts.csv", 10)]))
        .await;
    let (file, _) = app
        .upload_single_part(&session, pdf_meta("a.pdf", 1000), pdf_bytes(1000))
        .await;
    snapshot!("session_status", app.get(&session_path(&session)).await);
    snapshot!(
        "session_status_unknown",
        app.get(&session_path("00000000-0000-0000-0000-000000000000"))
            .await
    );
    snapshot!(
        "extend_session",
        app.post(&format!("{}/extend", session_path(&session)), json!({}))
            .await
    );
    snapshot!("abort_file", app.delete(&file_path(&session, &file)).await);
    snapshot!(
        "abort_file_again",
        app.delete(&file_path(&session, &file)).await
    );
    snapshot!("cancel_session", app.delete(&session_path(&session)).await);
    snapshot!(
        "extend_cancelled_session",
        app.post(&format!("{}/extend", session_path(&session)), json!({}))
            .await
    );
    let expired = app.create_session(json!([pdf_meta("a.pdf", 1000)])).await;
    app.expire(&expired, 5).await;
    snapshot!(
        "extend_expired_session",
        app.post(&format!("{}/extend", session_path(&expired)), json!({}))
            .await
    );
    snapshot!(
        "method_not_allowed",
        app.call(Method::PATCH, &session_path(&session), None).await
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn resume_answers_are_pinned(pool: PgPool) {
    let app = app(pool).await;
    let created = app
        .post(
            S,
            json!({"title": "Snapshot Castle", "files": [pdf_meta("a.pdf", 12 * MIB)]}),
        )
        .await;
    created.assert_status(201);
    let session = created.body["sessionId"].as_str().unwrap().to_owned();
    let mut meta = pdf_meta("a.pdf", 12 * MIB);
    meta["crc32c"] = json!("4waSgw==");
    let registered = app.register(&session, meta).await;
    registered.assert_status(201);
    let file = registered.body["fileId"].as_str().unwrap().to_owned();
    app.put_part(&session, &file, "3", pdf_bytes(2 * MIB))
        .await
        .assert_status(200);
    snapshot!("session_list", app.get(S).await);
    snapshot!(
        "session_list_invalid_query",
        app.get(&format!("{S}?status=open&limit=0")).await
    );
    snapshot!(
        "fresh_urls_file_mismatch",
        app.post(
            &format!("{}/urls", file_path(&session, &file)),
            json!({"size": 12 * MIB, "crc32c": "AAAAAQ=="})
        )
        .await
    );
    snapshot!(
        "complete_without_parts_missing",
        app.post(
            &format!("{}/complete", file_path(&session, &file)),
            json!({})
        )
        .await
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn sweeper_answers_are_pinned(pool: PgPool) {
    let app = app(pool).await;
    snapshot!("sweep_report", app.sweep(Some(CRON_SECRET)).await);
    snapshot!("sweep_without_secret", app.sweep(None).await);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn the_openapi_document_is_served_where_a_deployment_serves_it(pool: PgPool) {
    let app = app(pool).await;
    // A static file of public/, as on Vercel: no function answers it, so it
    // carries no request ID (TestApp::send would insist on one).
    let request = TestApp::request(Method::GET, moc_shared::openapi::PUBLIC_PATH)
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let served = moc_dev::server::handle(&app.router, app.state.clone(), request).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "application/json");
    let served: Value = serde_json::from_slice(served.body()).unwrap();
    let generated: Value = serde_json::from_str(&moc_shared::openapi::document_json()).unwrap();
    assert_eq!(served, generated);
}
