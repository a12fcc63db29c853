//! Session status, cancel, abort a file, extend and fresh URLs (docs/contract.md
//! §4.8–§4.12), black-box over the embedded S3.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

const S: &str = "/api/mocs/uploads/sessions";

/// Registers a 12 MiB PDF with presigned URLs for its 3 parts and PUTs
/// part 1 straight to S3; returns (fileId, the URLs).
async fn presigned_pdf_with_part_one(app: &TestApp, session: &str) -> (String, Vec<Value>) {
    let mut pdf = pdf_meta("manual.pdf", 12 * MIB);
    pdf["partCount"] = json!(3);
    let registered = app.register(session, pdf).await;
    registered.assert_status(201);
    let urls = registered.body["presignedUrls"].as_array().unwrap().clone();
    let response = put_presigned(&urls[0], pdf_bytes(5 * MIB).to_vec()).await;
    assert_eq!(response.status(), 200);
    (registered.body["fileId"].as_str().unwrap().to_owned(), urls)
}

async fn put_presigned(url: &Value, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .put(url["url"].as_str().unwrap())
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn foreign_session(pool: &PgPool) -> String {
    let other = uuid::Uuid::new_v4();
    sqlx::query("INSERT INTO upload_sessions (id, user_id, part_size_bytes, expires_at) VALUES ($1, 'someone-else', 5242880, (now() AT TIME ZONE 'utc') + interval '1 hour')")
        .bind(other).execute(pool).await.unwrap();
    other.to_string()
}

async fn file_rows(pool: &PgPool, session: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM upload_session_files WHERE session_id = $1::uuid),
                (SELECT count(*) FROM upload_session_parts WHERE session_id = $1::uuid)",
    )
    .bind(session)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn the_status_lists_declared_and_registered_files_and_says_when_it_expired(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 100), png_meta("b.png", 50)]))
        .await;
    let (pdf, _) = app
        .upload_single_part(&session, pdf_meta("a.pdf", 100), pdf_bytes(100))
        .await;
    let (png, png_url) = app
        .completed_file(&session, png_meta("b.png", 50), png_bytes(50))
        .await;

    let status = app.get(&format!("{S}/{session}")).await;
    status.assert_status(200);
    let body = &status.body;
    assert_eq!(body["sessionId"], session);
    assert_eq!(body["status"], "active");
    assert_eq!(body["partSizeBytes"], 5 * MIB);
    assert!(body["expiresAt"].is_string() && body["createdAt"].is_string());
    assert_eq!(body["declaredFiles"].as_array().unwrap().len(), 2);
    assert_eq!(body["declaredFiles"][0]["name"], "a.pdf");
    assert!(body.get("mocId").is_none());
    let files = body["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["fileId"], pdf);
    assert_eq!(files[0]["status"], "uploading");
    assert_eq!(files[0]["partCount"], 1);
    assert_eq!(files[0]["uploadedParts"], json!([1]));
    assert_eq!(files[0]["type"], "application/pdf");
    assert!(files[0].get("fileUrl").is_none());
    assert_eq!(files[1]["fileId"], png);
    assert_eq!(files[1]["status"], "completed");
    assert_eq!(files[1]["fileUrl"], png_url);

    app.expire(&session, 1).await;
    let expired = app.get(&format!("{S}/{session}")).await;
    expired.assert_status(200);
    assert_eq!(expired.body["status"], "expired");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn unknown_foreign_and_malformed_ids_are_not_found_on_every_lifecycle_route(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let foreign = foreign_session(&pool).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let (mine, file) = app.registered_file(pdf_meta("a.pdf", 10)).await;
    for session in [foreign.as_str(), unknown.as_str(), "not-a-uuid"] {
        app.get(&format!("{S}/{session}"))
            .await
            .assert_error(404, "NOT_FOUND");
        app.delete(&format!("{S}/{session}"))
            .await
            .assert_error(404, "NOT_FOUND");
        app.post(&format!("{S}/{session}/extend"), json!({}))
            .await
            .assert_error(404, "NOT_FOUND");
        app.delete(&format!("{S}/{session}/files/{file}"))
            .await
            .assert_error(404, "NOT_FOUND");
        app.post(&format!("{S}/{session}/files/{file}/urls"), json!({}))
            .await
            .assert_error(404, "NOT_FOUND");
    }
    for file in [unknown.as_str(), "nope"] {
        app.delete(&format!("{S}/{mine}/files/{file}"))
            .await
            .assert_error(404, "NOT_FOUND");
        app.post(&format!("{S}/{mine}/files/{file}/urls"), json!({}))
            .await
            .assert_error(404, "NOT_FOUND");
    }
    // The foreign session is untouched.
    let status: String =
        sqlx::query_scalar("SELECT status FROM upload_sessions WHERE id = $1::uuid")
            .bind(&foreign)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "active");
    // A method the route does not serve.
    app.call(http::Method::PUT, &format!("{S}/{mine}"), None)
        .await
        .assert_error(405, "METHOD_NOT_ALLOWED");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn cancelling_aborts_uploads_deletes_objects_and_rows_and_repeats_as_no_content(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app
        .create_session(json!([
            pdf_meta("manual.pdf", 12 * MIB),
            png_meta("b.png", 50)
        ]))
        .await;
    let (pdf, urls) = presigned_pdf_with_part_one(&app, &session).await;
    let (png, _) = app
        .completed_file(&session, png_meta("b.png", 50), png_bytes(50))
        .await;
    let (png_key, _) = app.file_upload(&png).await;
    assert!(app.object_exists(&png_key).await);
    assert_eq!(app.open_uploads().await, 1);
    // The presigned part is not recorded until someone lists the parts.
    assert_eq!(file_rows(&pool, &session).await, (2, 1));

    let cancelled = app.delete(&format!("{S}/{session}")).await;
    cancelled.assert_status(204);
    assert_eq!(cancelled.body, Value::Null);

    // S3: the upload is gone (an old presigned URL gets 404), so is the object.
    let late = put_presigned(&urls[1], pdf_bytes(5 * MIB).to_vec()).await;
    assert_eq!(late.status(), 404);
    assert!(late.text().await.unwrap().contains("NoSuchUpload"));
    assert_eq!(app.open_uploads().await, 0);
    assert!(!app.object_exists(&png_key).await);
    assert_eq!(file_rows(&pool, &session).await, (0, 0));
    let status = app.get(&format!("{S}/{session}")).await;
    assert_eq!(status.body["status"], "cancelled");
    assert_eq!(status.body["files"], json!([]));

    app.delete(&format!("{S}/{session}"))
        .await
        .assert_status(204);
    // Nothing else moves a cancelled session.
    app.post(&format!("{S}/{session}/extend"), json!({}))
        .await
        .assert_error(409, "CONFLICT");
    app.register(&session, pdf_meta("manual.pdf", 100))
        .await
        .assert_error(400, "BAD_REQUEST");
    app.delete(&format!("{S}/{session}/files/{pdf}"))
        .await
        .assert_error(409, "CONFLICT");
    app.post(
        "/api/mocs/uploads/finalize",
        json!({"uploadSessionId": session, "title": "Cancelled"}),
    )
    .await
    .assert_error(409, "CONFLICT");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_finalized_or_finalizing_session_cannot_be_cancelled_extended_or_lose_a_file(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 100)])).await;
    let (file, _) = app
        .completed_file(&session, pdf_meta("a.pdf", 100), pdf_bytes(100))
        .await;
    let finalized = app
        .post(
            "/api/mocs/uploads/finalize",
            json!({"uploadSessionId": session, "title": "Kept"}),
        )
        .await;
    finalized.assert_status(201);
    let (key, _) = app.file_upload(&file).await;
    for response in [
        app.delete(&format!("{S}/{session}")).await,
        app.post(&format!("{S}/{session}/extend"), json!({})).await,
        app.delete(&format!("{S}/{session}/files/{file}")).await,
        app.post(&format!("{S}/{session}/files/{file}/urls"), json!({}))
            .await,
    ] {
        response.assert_error(409, "CONFLICT");
    }
    assert!(app.object_exists(&key).await, "the MOC keeps its object");
    let status = app.get(&format!("{S}/{session}")).await;
    assert_eq!(status.body["status"], "completed");
    assert_eq!(status.body["mocId"], finalized.body["id"]);

    let (session, file) = app.registered_file(pdf_meta("b.pdf", 100)).await;
    sqlx::query(
        "UPDATE upload_sessions SET finalizing_at = now() AT TIME ZONE 'utc' WHERE id = $1::uuid",
    )
    .bind(&session)
    .execute(&pool)
    .await
    .unwrap();
    for response in [
        app.delete(&format!("{S}/{session}")).await,
        app.post(&format!("{S}/{session}/extend"), json!({})).await,
        app.delete(&format!("{S}/{session}/files/{file}")).await,
    ] {
        response.assert_error(409, "CONFLICT");
        assert_eq!(response.body["error"]["details"]["status"], "finalizing");
    }
    assert_eq!(app.open_uploads().await, 1);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_expired_session_is_gone_for_changes_but_can_still_be_cancelled(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (session, file) = app.registered_file(pdf_meta("a.pdf", 100)).await;
    app.expire(&session, 1).await;
    for response in [
        app.post(&format!("{S}/{session}/extend"), json!({})).await,
        app.delete(&format!("{S}/{session}/files/{file}")).await,
        app.post(&format!("{S}/{session}/files/{file}/urls"), json!({}))
            .await,
    ] {
        response.assert_error(410, "GONE");
        assert_eq!(response.body["error"]["details"]["sessionExpired"], true);
    }
    assert_eq!(file_rows(&pool, &session).await.0, 1);
    app.delete(&format!("{S}/{session}"))
        .await
        .assert_status(204);
    assert_eq!(app.open_uploads().await, 0);
    assert_eq!(file_rows(&pool, &session).await.0, 0);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn aborting_a_file_frees_its_name_and_slot_and_its_old_url_gets_not_found(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app
        .create_session(json!([
            pdf_meta("manual.pdf", 12 * MIB),
            png_meta("b.png", 50)
        ]))
        .await;
    let (pdf, urls) = presigned_pdf_with_part_one(&app, &session).await;

    let aborted = app.delete(&format!("{S}/{session}/files/{pdf}")).await;
    aborted.assert_status(204);
    let late = put_presigned(&urls[1], pdf_bytes(5 * MIB).to_vec()).await;
    assert_eq!(late.status(), 404);
    assert_eq!(app.open_uploads().await, 0);
    assert_eq!(file_rows(&pool, &session).await, (0, 0));
    app.delete(&format!("{S}/{session}/files/{pdf}"))
        .await
        .assert_error(404, "NOT_FOUND");

    // The name and the one declared instruction slot are free again.
    let again = app
        .register(&session, pdf_meta("manual.pdf", 12 * MIB))
        .await;
    again.assert_status(201);
    let again_id = again.body["fileId"].as_str().unwrap().to_owned();

    // An upload S3 no longer knows is not an error.
    app.abort_upload_in_s3(&again_id).await;
    app.delete(&format!("{S}/{session}/files/{again_id}"))
        .await
        .assert_status(204);

    // A completed file's object goes with it.
    let (png, _) = app
        .completed_file(&session, png_meta("b.png", 50), png_bytes(50))
        .await;
    let (png_key, _) = app.file_upload(&png).await;
    assert!(app.object_exists(&png_key).await);
    app.delete(&format!("{S}/{session}/files/{png}"))
        .await
        .assert_status(204);
    assert!(!app.object_exists(&png_key).await);
    app.completed_file(&session, png_meta("b.png", 50), png_bytes(50))
        .await;
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn extending_pushes_the_expiry_later_but_never_past_the_maximum_lifetime(pool: PgPool) {
    let app = TestApp::with_env(
        pool.clone(),
        &[
            ("UPLOAD_SESSION_TTL_MINUTES", "15"),
            ("UPLOAD_SESSION_MAX_LIFETIME_MINUTES", "20"),
        ],
    )
    .await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 100)])).await;
    let when = |body: &Value, field: &str| {
        chrono::DateTime::parse_from_rfc3339(body[field].as_str().unwrap())
            .unwrap()
            .to_utc()
    };

    // Two minutes left: extending gives the full TTL again.
    app.expire(&session, -2).await;
    let extended = app.post(&format!("{S}/{session}/extend"), json!({})).await;
    extended.assert_status(200);
    assert_eq!(extended.body["sessionId"], session);
    let left = when(&extended.body, "expiresAt") - chrono::Utc::now();
    assert!(
        left > chrono::Duration::minutes(14) && left <= chrono::Duration::minutes(15),
        "{left}"
    );

    // Created 10 minutes ago: the cap (created + 20) is 10 minutes away.
    sqlx::query("UPDATE upload_sessions SET created_at = created_at - interval '10 minutes' WHERE id = $1::uuid")
        .bind(&session)
        .execute(&pool)
        .await
        .unwrap();
    app.expire(&session, -2).await;
    let capped = app.post(&format!("{S}/{session}/extend"), json!({})).await;
    capped.assert_status(200);
    let status = app.get(&format!("{S}/{session}")).await;
    let cap = when(&status.body, "createdAt") + chrono::Duration::minutes(20);
    assert_eq!(when(&capped.body, "expiresAt"), cap);
    assert_eq!(status.body["expiresAt"], capped.body["expiresAt"]);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn fresh_urls_for_an_empty_body_cover_exactly_the_parts_s3_lacks(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let session = app
        .create_session(json!([pdf_meta("manual.pdf", 12 * MIB)]))
        .await;
    // Registered without URLs; the client asks for part 2 only, uploads it.
    let registered = app
        .register(&session, pdf_meta("manual.pdf", 12 * MIB))
        .await;
    registered.assert_status(201);
    let file = registered.body["fileId"].as_str().unwrap().to_owned();
    let urls_path = format!("{S}/{session}/files/{file}/urls");
    let two = app.post(&urls_path, json!({"partNumbers": [2]})).await;
    two.assert_status(200);
    assert_eq!(two.body["fileId"], file);
    let listed = two.body["presignedUrls"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["partNumber"], 2);
    assert_eq!(listed[0]["sizeBytes"], 5 * MIB);
    let put = put_presigned(&listed[0], pdf_bytes(5 * MIB).to_vec()).await;
    assert_eq!(put.status(), 200);

    // `{}`: every part S3 does not hold, i.e. 1 and 3, with their sizes.
    let missing = app.post(&urls_path, json!({})).await;
    missing.assert_status(200);
    let missing = missing.body["presignedUrls"].as_array().unwrap().clone();
    let numbers: Vec<_> = missing.iter().map(|u| u["partNumber"].clone()).collect();
    assert_eq!(numbers, [json!(1), json!(3)]);
    assert_eq!(missing[1]["sizeBytes"], 2 * MIB);
    assert_eq!(
        missing[1]["headers"]["Content-Length"],
        (2 * MIB).to_string()
    );
    let put = put_presigned(&missing[1], pdf_bytes(2 * MIB).to_vec()).await;
    assert_eq!(put.status(), 200);
    let missing = app.post(&urls_path, json!({})).await;
    let numbers: Vec<_> = missing.body["presignedUrls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["partNumber"].clone())
        .collect();
    assert_eq!(numbers, [json!(1)]);

    // Out of range for the file, or not part numbers at all: 422.
    for bad in [
        json!({"partNumbers": [4]}),
        json!({"partNumbers": [0]}),
        json!({"partNumbers": "1"}),
    ] {
        app.post(&urls_path, bad)
            .await
            .assert_error(422, "VALIDATION_ERROR");
    }
    app.call(http::Method::POST, &urls_path, None)
        .await
        .assert_error(400, "BAD_REQUEST");

    // A completed file takes no new URLs.
    let (png_session, png) = {
        let s = app
            .create_session(json!([pdf_meta("c.pdf", 10), png_meta("d.png", 9)]))
            .await;
        let (png, _) = app
            .completed_file(&s, png_meta("d.png", 9), png_bytes(9))
            .await;
        (s, png)
    };
    app.post(&format!("{S}/{png_session}/files/{png}/urls"), json!({}))
        .await
        .assert_error(409, "CONFLICT");
}
