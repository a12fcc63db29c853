use futures::future::join_all;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn completing_twice_answers_the_same_url(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 100)])).await;
    let (file_id, etag) = app
        .upload_single_part(&session, pdf_meta("a.pdf", 100), pdf_bytes(100))
        .await;
    let parts = json!([{"partNumber": 1, "etag": etag}]);
    let first = app.complete(&session, &file_id, parts.clone()).await;
    first.assert_status(200);
    let url = first.body["fileUrl"].as_str().unwrap();
    assert!(url.starts_with(&format!(
        "{}/{}/{}/moc-instructions/",
        app.s3_endpoint,
        app.bucket(),
        app.stage
    )));
    let second = app.complete(&session, &file_id, parts).await;
    second.assert_status(200);
    assert_eq!(second.body["fileUrl"], url);
    let status: String =
        sqlx::query_scalar("SELECT status FROM upload_session_files WHERE id = $1::uuid")
            .bind(&file_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "completed");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn two_concurrent_completes_complete_once_and_agree(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 100)])).await;
    let (file_id, etag) = app
        .upload_single_part(&session, pdf_meta("a.pdf", 100), pdf_bytes(100))
        .await;
    let parts = json!([{"partNumber": 1, "etag": etag}]);
    let both = join_all((0..2).map(|_| app.complete(&session, &file_id, parts.clone()))).await;
    both[0].assert_status(200);
    both[1].assert_status(200);
    assert_eq!(both[0].body["fileUrl"], both[1].body["fileUrl"]);
    // A second S3 completion would have failed: the upload is gone after the first.
    assert_eq!(app.open_uploads().await, 0);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn completing_in_an_expired_session_is_gone(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 100)])).await;
    let (file_id, etag) = app
        .upload_single_part(&session, pdf_meta("a.pdf", 100), pdf_bytes(100))
        .await;
    sqlx::query("UPDATE upload_sessions SET expires_at = (now() AT TIME ZONE 'utc') - interval '1 second' WHERE id = $1::uuid")
        .bind(&session).execute(&pool).await.unwrap();
    let gone = app
        .complete(&session, &file_id, json!([{"partNumber": 1, "etag": etag}]))
        .await;
    gone.assert_error(410, "GONE");
    assert_eq!(gone.body["error"]["details"]["sessionExpired"], true);
    assert!(
        gone.body["error"]["details"]["expiresAt"].is_string()
            && gone.body["error"]["details"]["now"].is_string()
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn the_listed_parts_must_match_what_s3_holds(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let session = app
        .create_session(json!([pdf_meta("big.pdf", 12 * MIB)]))
        .await;
    let registered = app.register(&session, pdf_meta("big.pdf", 12 * MIB)).await;
    registered.assert_status(201);
    let file_id = registered.body["fileId"].as_str().unwrap().to_owned();
    // The last part fits through the proxied route; parts 1 and 2 do not.
    let last = app
        .put_part(&session, &file_id, "3", pdf_bytes(2 * MIB))
        .await;
    last.assert_status(200);
    let etag3 = last.body["etag"].as_str().unwrap().to_owned();

    let missing = app
        .complete(
            &session,
            &file_id,
            json!([{"partNumber": 3, "etag": etag3}]),
        )
        .await;
    missing.assert_error(400, "BAD_REQUEST");
    assert_eq!(
        missing.body["error"]["details"]["missingPartNumbers"],
        json!([1, 2])
    );

    let (key, upload_id): (String, String) = moc_shared::db::Statement::new(
        "SELECT s3_key, upload_id FROM upload_session_files WHERE id = $1::uuid",
    )
    .bind(file_id.clone())
    .reading::<(String, String)>()
    .fetch_one(app.state.db())
    .await
    .unwrap();
    let mut etags = Vec::new();
    for n in 1..=2 {
        let part = moc_shared::domain::PartNumber::new(n).unwrap();
        etags.push(
            app.state
                .s3()
                .upload_part(&key, &upload_id, part, pdf_bytes(5 * MIB), None)
                .await
                .unwrap(),
        );
    }
    let count = app
        .complete(
            &session,
            &file_id,
            json!([{"partNumber": 1, "etag": etags[0]}]),
        )
        .await;
    count.assert_error(400, "BAD_REQUEST");
    assert_eq!(count.body["error"]["details"]["expected"], 3);
    assert_eq!(count.body["error"]["details"]["received"], 1);

    let wrong = app
        .complete(
            &session,
            &file_id,
            json!([
                {"partNumber": 1, "etag": etags[0]},
                {"partNumber": 2, "etag": "\"00000000000000000000000000000000\""},
                {"partNumber": 3, "etag": etag3},
            ]),
        )
        .await;
    wrong.assert_error(400, "BAD_REQUEST");
    assert_eq!(wrong.body["error"]["details"]["partNumber"], 2);

    let done = app
        .complete(
            &session,
            &file_id,
            json!([
                {"partNumber": 1, "etag": etags[0]},
                {"partNumber": 2, "etag": etags[1]},
                {"partNumber": 3, "etag": etag3},
            ]),
        )
        .await;
    done.assert_status(200);
}

/// Completes the file's upload in S3 directly, as a complete whose function
/// died (or lost its database connection) between CompleteMultipartUpload
/// and its COMMIT leaves it: the object exists, the row is not completed.
async fn complete_in_s3_only(app: &TestApp, file_id: &str, etag: &str) -> String {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let (key, upload_id) = app.file_upload(file_id).await;
    let part = CompletedPart::builder().part_number(1).e_tag(etag).build();
    app.state
        .s3()
        .client()
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .upload_id(&upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().parts(part).build())
        .send()
        .await
        .expect("CompleteMultipartUpload");
    key
}

// Found by scripts/chaos (issue 26; docs/adr/0010-complete-after-a-lost-commit.md):
// the retry answered 500 for ever (ListParts: NoSuchUpload), and the object
// was left to the sweeper.
#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_complete_retried_after_s3_completed_but_the_commit_was_lost_answers_200(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 100)])).await;
    let (file_id, etag) = app
        .upload_single_part(&session, pdf_meta("a.pdf", 100), pdf_bytes(100))
        .await;
    let key = complete_in_s3_only(&app, &file_id, &etag).await;

    // The resume view still answers: the recorded parts.
    let listed = app
        .get(&format!(
            "/api/mocs/uploads/sessions/{session}/files/{file_id}/parts"
        ))
        .await;
    listed.assert_status(200);
    assert_eq!(listed.body["parts"][0]["etag"], etag);

    let retried = app
        .complete(&session, &file_id, json!([{"partNumber": 1, "etag": etag}]))
        .await;
    retried.assert_status(200);
    assert!(retried.body["fileUrl"].as_str().unwrap().ends_with(&key));
    let status: String =
        sqlx::query_scalar("SELECT status FROM upload_session_files WHERE id = $1::uuid")
            .bind(&file_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "completed");
    assert!(app.object_exists(&key).await);
    // And the session finalizes with it.
    let finalized = app
        .post(
            "/api/mocs/uploads/finalize",
            json!({"uploadSessionId": session, "title": "Lost commit"}),
        )
        .await;
    finalized.assert_status(201);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_complete_whose_upload_is_gone_without_an_object_is_a_400_not_a_500(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 100)])).await;
    let (file_id, etag) = app
        .upload_single_part(&session, pdf_meta("a.pdf", 100), pdf_bytes(100))
        .await;
    let key = app.abort_upload_in_s3(&file_id).await;
    let refused = app
        .complete(&session, &file_id, json!([{"partNumber": 1, "etag": etag}]))
        .await;
    refused.assert_error(400, "BAD_REQUEST");
    assert!(!app.object_exists(&key).await);
}
