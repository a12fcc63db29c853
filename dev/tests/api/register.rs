use futures::future::join_all;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn registering_a_file_starts_one_s3_multipart_upload(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 1000)])).await;
    let response = app.register(&session, pdf_meta("a.pdf", 1000)).await;
    response.assert_status(201);
    assert!(response.body["presignedUrls"].is_null());
    let upload_id = response.body["uploadId"].as_str().unwrap();
    let uploads = app.uploads().await;
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].upload_id(), Some(upload_id));
    let key = uploads[0].key().unwrap();
    assert!(key.starts_with(&format!(
        "{}/moc-instructions/{DEV_USER}/{session}/instruction/",
        app.stage
    )));
    assert!(key.ends_with(".pdf"));
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn unknown_foreign_and_malformed_sessions_are_not_found(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.register("not-a-uuid", pdf_meta("a.pdf", 1))
        .await
        .assert_error(404, "NOT_FOUND");
    app.register(&uuid::Uuid::new_v4().to_string(), pdf_meta("a.pdf", 1))
        .await
        .assert_error(404, "NOT_FOUND");
    let other = uuid::Uuid::new_v4();
    sqlx::query("INSERT INTO upload_sessions (id, user_id, part_size_bytes, expires_at) VALUES ($1, 'someone-else', 5242880, now() + interval '1 hour')")
        .bind(other).execute(&pool).await.unwrap();
    app.register(&other.to_string(), pdf_meta("a.pdf", 1))
        .await
        .assert_error(404, "NOT_FOUND");
    // The upload each opened while its session was looked up is aborted.
    assert_eq!(app.open_uploads().await, 0);
    app.post(
        "/api/mocs/uploads/sessions/x/files/y/complete",
        json!({"parts": [{"partNumber": 1, "etag": "e"}]}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_expired_session_refuses_registration_with_410_and_an_inactive_one_with_400(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 10)])).await;
    sqlx::query("UPDATE upload_sessions SET expires_at = (now() AT TIME ZONE 'utc') - interval '1 minute' WHERE id = $1::uuid")
        .bind(&session).execute(&pool).await.unwrap();
    let expired = app.register(&session, pdf_meta("a.pdf", 10)).await;
    expired.assert_error(410, "GONE");
    assert_eq!(expired.code(), "EXPIRED_SESSION");
    assert_eq!(expired.body["error"]["details"]["sessionExpired"], true);
    assert!(
        expired.body["error"]["details"]["expiresAt"].is_string()
            && expired.body["error"]["details"]["now"].is_string()
    );

    let session = app.create_session(json!([pdf_meta("a.pdf", 10)])).await;
    sqlx::query("UPDATE upload_sessions SET status = 'cancelled' WHERE id = $1::uuid")
        .bind(&session)
        .execute(&pool)
        .await
        .unwrap();
    app.register(&session, pdf_meta("a.pdf", 10))
        .await
        .assert_error(400, "BAD_REQUEST");
    assert_eq!(app.open_uploads().await, 0);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn twenty_concurrent_identical_registrations_give_one_file_and_one_upload(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app.create_session(json!([pdf_meta("same.pdf", 100)])).await;
    let responses =
        join_all((0..20).map(|_| app.register(&session, pdf_meta("same.pdf", 100)))).await;
    let created: Vec<_> = responses.iter().filter(|r| r.status == 201).collect();
    let conflicts: Vec<_> = responses.iter().filter(|r| r.status == 409).collect();
    assert_eq!(
        created.len(),
        1,
        "{:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(conflicts.len(), 19);
    let winner = created[0].body["fileId"].as_str().unwrap();
    for conflict in conflicts {
        conflict.assert_error(409, "CONFLICT");
        assert_eq!(conflict.body["error"]["details"]["existingFileId"], winner);
    }
    assert_eq!(app.open_uploads().await, 1);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn registering_past_the_declared_count_is_refused_counting_the_attempt(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 10), pdf_meta("b.pdf", 10)]))
        .await;
    app.register(&session, pdf_meta("one.pdf", 10))
        .await
        .assert_status(201);
    app.register(&session, pdf_meta("two.pdf", 10))
        .await
        .assert_status(201);
    let third = app.register(&session, pdf_meta("three.pdf", 10)).await;
    third.assert_error(400, "FILE_COUNT_EXCEEDED");
    assert_eq!(third.body["error"]["details"]["maxFiles"], 2);
    assert_eq!(third.body["error"]["details"]["registered"], 2);
    assert_eq!(app.open_uploads().await, 2);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn size_mime_and_part_count_are_checked_at_registration(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 10)])).await;
    app.register(&session, pdf_meta("a.pdf", 51 * MIB))
        .await
        .assert_error(413, "FILE_TOO_LARGE");
    let mut wrong = pdf_meta("a.pdf", 10);
    wrong["type"] = json!("image/png");
    app.register(&session, wrong)
        .await
        .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    let mut counted = pdf_meta("a.pdf", 12 * MIB);
    counted["partCount"] = json!(2);
    let mismatch = app.register(&session, counted).await;
    mismatch.assert_error(422, "VALIDATION_ERROR");
    assert_eq!(mismatch.body["error"]["details"]["expectedPartCount"], 3);
    let mut bad_ext = pdf_meta("a.pdf", 10);
    bad_ext["ext"] = json!("../x");
    app.register(&session, bad_ext)
        .await
        .assert_error(422, "VALIDATION_ERROR");
    assert_eq!(app.open_uploads().await, 0);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn part_count_returns_presigned_urls_and_reregistration_refreshes_them(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let session = app
        .create_session(json!([pdf_meta("big.pdf", 12 * MIB)]))
        .await;
    let mut meta = pdf_meta("big.pdf", 12 * MIB);
    meta["partCount"] = json!(3);
    let first = app.register(&session, meta.clone()).await;
    first.assert_status(201);
    let urls = first.body["presignedUrls"].as_array().unwrap();
    assert_eq!(urls.len(), 3);
    let sizes: Vec<u64> = urls
        .iter()
        .map(|u| u["sizeBytes"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, vec![5 * MIB as u64, 5 * MIB as u64, 2 * MIB as u64]);
    assert_eq!(urls[2]["headers"]["Content-Length"], (2 * MIB).to_string());
    assert!(
        urls[0]["url"]
            .as_str()
            .unwrap()
            .contains("X-Amz-Signature=")
    );
    assert!(urls[0]["expiresAt"].as_str().unwrap().ends_with('Z'));

    meta["fileId"] = first.body["fileId"].clone();
    let again = app.register(&session, meta.clone()).await;
    again.assert_status(200);
    assert_eq!(again.body["fileId"], first.body["fileId"]);
    assert_eq!(again.body["uploadId"], first.body["uploadId"]);
    assert_eq!(again.body["presignedUrls"].as_array().unwrap().len(), 3);
    assert_eq!(
        app.open_uploads().await,
        1,
        "re-registration reuses the upload"
    );

    meta["size"] = json!(12 * MIB - 1);
    app.register(&session, meta)
        .await
        .assert_error(409, "CONFLICT");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_batch_commits_each_item_and_reports_failures_in_order(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 10), pdf_meta("b.pdf", 10)]))
        .await;
    let batch = app
        .post(
            &format!("/api/mocs/uploads/sessions/{session}/files/batch"),
            json!({"files": [pdf_meta("a.pdf", 10), pdf_meta("b.pdf", 10), pdf_meta("c.pdf", 10)]}),
        )
        .await;
    batch.assert_status(201);
    let results = batch.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["index"], i);
    }
    assert!(results[0]["fileId"].is_string() && results[1]["uploadId"].is_string());
    assert_eq!(results[2]["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(
        results[2]["error"]["details"]["reason"],
        "FILE_COUNT_EXCEEDED"
    );
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM upload_session_files WHERE session_id = $1::uuid")
            .bind(&session)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, 2);
    assert_eq!(app.open_uploads().await, 2);

    let mixed = app
        .post(
            &format!("/api/mocs/uploads/sessions/{session}/files/batch"),
            json!({"files": [pdf_meta("a.pdf", 10), pdf_meta("huge.pdf", 99 * MIB), {"category": "instruction"}]}),
        )
        .await;
    mixed.assert_status(201);
    let codes: Vec<(&str, &str)> = mixed.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let error = &r["error"];
            (
                error["code"].as_str().unwrap(),
                error["details"]["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("CONFLICT", "CONFLICT"),
            ("SIZE_TOO_LARGE", "FILE_TOO_LARGE"),
            ("VALIDATION_ERROR", "VALIDATION_ERROR")
        ]
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_batch_over_max_batch_size_is_refused_whole(pool: PgPool) {
    let app = TestApp::with_env(pool, &[("MAX_BATCH_SIZE", "3")]).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 10)])).await;
    let files: Vec<_> = (0..4).map(|i| pdf_meta(&format!("{i}.pdf"), 10)).collect();
    let response = app
        .post(
            &format!("/api/mocs/uploads/sessions/{session}/files/batch"),
            json!({"files": files}),
        )
        .await;
    response.assert_error(400, "BATCH_TOO_LARGE");
    assert_eq!(response.body["error"]["details"]["maxBatchSize"], 3);
    assert_eq!(app.open_uploads().await, 0);
}

// Found by scripts/chaos (issue 26): a registration killed after its row's
// COMMIT and before recording its S3 upload left the name taken and the
// file without an upload; the retry (409 existingFileId, then fileId)
// answered 400 "This file has no S3 upload; register it again" for ever.
#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_registration_that_died_before_its_upload_is_finished_by_registering_again(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 100)])).await;
    let first = app.register(&session, pdf_meta("a.pdf", 100)).await;
    first.assert_status(201);
    let file_id = first.body["fileId"].as_str().unwrap().to_owned();
    // What the dead registration left: the row, no upload recorded or open.
    app.abort_upload_in_s3(&file_id).await;
    sqlx::query("UPDATE upload_session_files SET upload_id = NULL WHERE id = $1::uuid")
        .bind(&file_id)
        .execute(&pool)
        .await
        .unwrap();

    let retried = app.register(&session, pdf_meta("a.pdf", 100)).await;
    retried.assert_error(409, "CONFLICT");
    assert_eq!(retried.details()["existingFileId"], file_id.as_str());
    let mut meta = pdf_meta("a.pdf", 100);
    meta["fileId"] = json!(file_id);
    meta["partCount"] = json!(1);
    let again = app.register(&session, meta).await;
    again.assert_status(200);
    assert_eq!(again.body["fileId"], file_id.as_str());
    assert!(again.body["uploadId"].is_string());
    assert_eq!(again.body["presignedUrls"].as_array().unwrap().len(), 1);
    assert_eq!(app.open_uploads().await, 1);

    let part = app.put_part(&session, &file_id, "1", pdf_bytes(100)).await;
    part.assert_status(200);
    app.complete(
        &session,
        &file_id,
        json!([{"partNumber": 1, "etag": part.body["etag"]}]),
    )
    .await
    .assert_status(200);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_file_at_the_largest_size_limit_is_stored_with_its_exact_size(pool: PgPool) {
    // 2047 MiB, the largest limit the configuration takes (what an
    // `integer` size column holds): stored exactly, where a lossy cast once
    // wrapped a larger size to a negative one.
    let app = TestApp::with_env(pool.clone(), &[("UPLOAD_PDF_MAX_MB", "2047")]).await;
    let largest = 2047 * 1024 * 1024;
    let (session, file) = app.registered_file(pdf_meta("huge.pdf", largest)).await;
    let stored: i32 =
        sqlx::query_scalar("SELECT size FROM upload_session_files WHERE id = $1::uuid")
            .bind(&file)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(i64::from(stored), i64::try_from(largest).unwrap());
    let status = app
        .get(&format!("/api/mocs/uploads/sessions/{session}"))
        .await;
    status.assert_status(200);
    assert_eq!(status.body["files"][0]["size"], largest);
    // One byte more is past the limit: refused, never stored.
    let over = app
        .register(&session, pdf_meta("huger.pdf", largest + 1))
        .await;
    over.assert_error(413, "FILE_TOO_LARGE");
}
