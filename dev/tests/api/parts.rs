use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::helpers::*;

/// The production upload path over real HTTP: presigned part URLs straight
/// to S3, an interrupted upload, resume from the parts list, complete, and
/// the object byte-identical to the original.
#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_interrupted_presigned_upload_resumes_and_completes_byte_identical(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let base = app.serve_http().await;
    let http = reqwest::Client::new();
    let original: Vec<u8> = pdf_bytes(12 * MIB).to_vec();

    let created: serde_json::Value = http
        .post(format!("{base}/api/mocs/uploads/sessions"))
        .json(&json!({"files": [pdf_meta("manual.pdf", original.len())]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = created["sessionId"].as_str().unwrap();
    let mut meta = pdf_meta("manual.pdf", original.len());
    meta["partCount"] = json!(3);
    let registered = http
        .post(format!("{base}/api/mocs/uploads/sessions/{session}/files"))
        .json(&meta)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let registered: serde_json::Value = registered.json().await.unwrap();
    let file_id = registered["fileId"].as_str().unwrap();
    let urls = registered["presignedUrls"].as_array().unwrap().clone();

    let put = |n: usize| {
        let url = urls[n]["url"].as_str().unwrap().to_owned();
        let start = n * 5 * MIB;
        let end = (start + 5 * MIB).min(original.len());
        let chunk = original[start..end].to_vec();
        let http = http.clone();
        async move {
            let response = http.put(url).body(chunk).send().await.unwrap();
            assert_eq!(
                response.status(),
                200,
                "{}",
                response.text().await.unwrap_or_default()
            );
            response.headers()["etag"].to_str().unwrap().to_owned()
        }
    };
    put(0).await; // …and the client goes away.

    let parts_url = format!("{base}/api/mocs/uploads/sessions/{session}/files/{file_id}/parts");
    let listed: serde_json::Value = http
        .get(&parts_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = listed["parts"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["partNumber"], 1);
    assert_eq!(listed[0]["sizeBytes"], 5 * MIB);

    put(1).await;
    put(2).await;
    let listed: serde_json::Value = http
        .get(&parts_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let parts: Vec<_> = listed["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!({"partNumber": p["partNumber"], "etag": p["etag"]}))
        .collect();
    assert_eq!(parts.len(), 3);
    let completed = http
        .post(format!(
            "{base}/api/mocs/uploads/sessions/{session}/files/{file_id}/complete"
        ))
        .json(&json!({ "parts": parts }))
        .send()
        .await
        .unwrap();
    assert_eq!(completed.status(), 200);
    let completed: serde_json::Value = completed.json().await.unwrap();
    let url = completed["fileUrl"].as_str().unwrap();
    let key = url.split_once(&format!("/{}/", app.bucket())).unwrap().1;

    let stored = app
        .state
        .s3()
        .client()
        .get_object()
        .bucket(app.bucket())
        .key(key)
        .send()
        .await
        .unwrap();
    let stored = stored.body.collect().await.unwrap().into_bytes();
    assert_eq!(
        hex::encode(Sha256::digest(&stored)),
        hex::encode(Sha256::digest(&original))
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn tampered_and_expired_presigned_urls_are_refused_by_s3(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let s3 = app.state.s3();
    let key = format!("{}/moc-instructions/u/s/instruction/f.pdf", app.stage);
    let upload_id = s3
        .create_multipart_upload(&key, "application/pdf", false)
        .await
        .unwrap();
    let part = moc_shared::domain::PartNumber::new(1).unwrap();
    let http = reqwest::Client::new();

    let good = s3
        .presign_upload_part(&key, &upload_id, part, 4, None, Duration::from_secs(600))
        .await
        .unwrap();
    let tampered = good.url.replacen("partNumber=1", "partNumber=2", 1);
    assert_eq!(
        http.put(&tampered)
            .body("abcd")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    let short = s3
        .presign_upload_part(&key, &upload_id, part, 4, None, Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        http.put(&short.url)
            .body("abcd")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    assert_eq!(
        http.put(&good.url)
            .body("abcd")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn part_numbers_must_be_plain_integers_in_range(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (session, file) = app.registered_file(pdf_meta("a.pdf", 10)).await;
    for bad in ["0", "10001", "1abc", "-1"] {
        let response = app
            .put_part(&session, &file, bad, Bytes::from_static(b"x"))
            .await;
        response.assert_error(400, "INVALID_PART_NUMBER");
        assert_eq!(
            response.body["error"]["details"]["validRange"],
            json!([1, 10000])
        );
    }
    app.put_part(&session, &file, "1", Bytes::new())
        .await
        .assert_error(400, "BAD_REQUEST");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_body_over_four_and_a_half_megabytes_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (session, file) = app.registered_file(pdf_meta("a.pdf", 10)).await;
    let response = app
        .put_part(&session, &file, "1", Bytes::from(vec![0u8; 4_500_001]))
        .await;
    response.assert_error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(response.body["error"]["details"]["maxBodyBytes"], 4_500_000);

    // A streamed body without a Content-Length is cut off at the same limit.
    let base = app.serve_http().await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..5).map(|_| Ok(vec![1u8; 1_000_000])).collect();
    let streamed = reqwest::Client::new()
        .put(format!(
            "{base}/api/mocs/uploads/sessions/{session}/files/{file}/parts/1"
        ))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 413);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_proxied_part_is_recorded_and_moves_the_file_to_uploading(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 100)])).await;
    let (file_id, etag) = app
        .upload_single_part(&session, pdf_meta("a.pdf", 100), pdf_bytes(100))
        .await;
    assert!(etag.starts_with('"'));
    let (status, stored_etag, size): (String, String, i32) = sqlx::query_as(
        "SELECT f.status, p.etag, p.size FROM upload_session_files f JOIN upload_session_parts p ON p.file_id = f.id WHERE f.id = $1::uuid",
    ).bind(&file_id).fetch_one(&pool).await.unwrap();
    assert_eq!(
        (status.as_str(), stored_etag.as_str(), size),
        ("uploading", etag.as_str(), 100)
    );
    // Last write wins.
    let again = app.put_part(&session, &file_id, "1", pdf_bytes(99)).await;
    again.assert_status(200);
    let size: i32 =
        sqlx::query_scalar("SELECT size FROM upload_session_parts WHERE file_id = $1::uuid")
            .bind(&file_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(size, 99);
    let listed = app
        .get(&format!(
            "/api/mocs/uploads/sessions/{session}/files/{file_id}/parts"
        ))
        .await;
    listed.assert_status(200);
    assert_eq!(listed.body["parts"][0]["etag"], again.body["etag"]);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_part_for_an_upload_s3_no_longer_knows_is_a_400_not_a_500(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 100)])).await;
    let (file_id, _) = app
        .upload_single_part(&session, pdf_meta("a.pdf", 100), pdf_bytes(100))
        .await;
    app.abort_upload_in_s3(&file_id).await;
    let refused = app.put_part(&session, &file_id, "1", pdf_bytes(100)).await;
    refused.assert_error(400, "BAD_REQUEST");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("register it again"),
        "{}",
        refused.body
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_file_without_parts_lists_none(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (session, file) = app.registered_file(pdf_meta("a.pdf", 10)).await;
    let listed = app
        .get(&format!(
            "/api/mocs/uploads/sessions/{session}/files/{file}/parts"
        ))
        .await;
    listed.assert_status(200);
    assert_eq!(listed.body["parts"], json!([]));
    app.get(&format!(
        "/api/mocs/uploads/sessions/{session}/files/{}/parts",
        uuid::Uuid::new_v4()
    ))
    .await
    .assert_error(404, "NOT_FOUND");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_unreachable_s3_gives_a_retryable_503(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let response = app.part_upload_with_s3_down(pool).await;
    response.assert_error(503, "S3_UNAVAILABLE");
    assert_eq!(response.body["error"]["details"]["retryable"], true);
    assert!(response.headers.contains_key("retry-after"));
    assert!(
        !response.body.to_string().contains("127.0.0.1"),
        "no internals leak"
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_part_upload_past_its_time_budget_answers_408(pool: PgPool) {
    let app = TestApp::with_env(pool, &[("PART_UPLOAD_BUDGET_MS", "300")]).await;
    let (session, file) = app.registered_file(pdf_meta("a.pdf", 10)).await;
    let response = app.stalled_part_upload(&session, &file).await;
    response.assert_error(408, "REQUEST_TIMEOUT");
    let body = &response.body;
    assert!(body["error"]["details"]["elapsedMs"].as_u64().unwrap() >= 300);
    assert!(body["error"]["details"]["timeoutAt"].is_string());
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn cors_preflight_answers_only_listed_origins(pool: PgPool) {
    let path = "/api/mocs/uploads/sessions/s/files/f/parts/1";
    let preflight = |origin: &'static str| {
        TestApp::request(Method::OPTIONS, path)
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap()
    };
    let app = TestApp::with_env(
        pool.clone(),
        &[
            ("ALLOW_BROWSER_UPLOADS", "true"),
            (
                "ALLOWED_UPLOAD_ORIGINS",
                "https://app.example, http://localhost:5173",
            ),
        ],
    )
    .await;
    let allowed = app.send(preflight("http://localhost:5173")).await;
    allowed.assert_status(204);
    assert_eq!(
        allowed.headers["access-control-allow-origin"],
        "http://localhost:5173"
    );
    assert_eq!(
        allowed.headers["access-control-allow-methods"],
        "PUT, OPTIONS"
    );
    assert_eq!(
        allowed.headers["access-control-allow-headers"],
        "Content-Type, Authorization, X-Request-Id"
    );
    assert_eq!(allowed.headers["access-control-allow-credentials"], "true");
    assert_eq!(allowed.headers["access-control-max-age"], "86400");
    assert_eq!(allowed.headers["vary"], "Origin");
    let other = app.send(preflight("https://evil.example")).await;
    assert!(!other.headers.contains_key("access-control-allow-origin"));

    let disabled =
        TestApp::with_env(pool, &[("ALLOWED_UPLOAD_ORIGINS", "http://localhost:5173")]).await;
    let off = disabled.send(preflight("http://localhost:5173")).await;
    assert!(!off.headers.contains_key("access-control-allow-origin"));
}
