//! Issue 25: uploads that survive expired URLs, dropped networks, another
//! device and the wrong file (docs/contract.md §2 `PRESIGN_TTL_SECONDS`,
//! §4.6 complete without ETags, §4.12 the file check, §4.15 the listing).

use bytes::Bytes;
use moc_shared::domain::{Crc32c, PartNumber};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

const S: &str = "/api/mocs/uploads/sessions";

fn with(mut meta: Value, key: &str, value: Value) -> Value {
    meta[key] = value;
    meta
}

/// A query parameter of a presigned URL, decoded.
fn query(url: &str, name: &str) -> Option<String> {
    let uri: http::Uri = url.parse().unwrap();
    moc_shared::http::query_param(&uri, name)
}

async fn put(url: &str, bytes: Bytes) -> reqwest::StatusCode {
    reqwest::Client::new()
        .put(url)
        .body(bytes)
        .send()
        .await
        .unwrap()
        .status()
}

/// Puts part `n` of a registered file straight into S3, as a client with a
/// presigned URL does (the proxied route carries at most 4.5 MB).
/// PUTs part `n` straight to S3, as a presigned URL would; its ETag.
async fn s3_part(app: &TestApp, file: &str, n: u16, bytes: Bytes) -> String {
    let (key, upload_id) = app.file_upload(file).await;
    app.state
        .s3()
        .upload_part(&key, &upload_id, PartNumber::new(n).unwrap(), bytes, None)
        .await
        .unwrap()
}

async fn complete_without_a_list(app: &TestApp, session: &str, file: &str) -> TestResponse {
    app.post(&format!("{S}/{session}/files/{file}/complete"), json!({}))
        .await
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn presign_ttl_seconds_is_the_urls_lifetime_and_an_expired_url_is_replaced(pool: PgPool) {
    let app = TestApp::with_env(pool, &[("PRESIGN_TTL_SECONDS", "2")]).await;
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 6 * MIB)]))
        .await;
    let registered = app
        .register(
            &session,
            with(pdf_meta("a.pdf", 6 * MIB), "partCount", json!(2)),
        )
        .await;
    registered.assert_status(201);
    let file = registered.body["fileId"].as_str().unwrap().to_owned();
    let first = &registered.body["presignedUrls"][0];
    let url = first["url"].as_str().unwrap();
    assert_eq!(query(url, "X-Amz-Expires").as_deref(), Some("2"), "{url}");
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(first["expiresAt"].as_str().unwrap()).unwrap();
    assert!(expires_at <= chrono::Utc::now() + chrono::Duration::seconds(2));

    tokio::time::sleep(std::time::Duration::from_millis(3_000)).await;
    let part = pdf_bytes(6 * MIB).slice(..5 * MIB);
    assert_eq!(
        put(url, part.clone()).await,
        403,
        "S3 refuses an expired URL"
    );
    let fresh = app
        .post(
            &format!("{S}/{session}/files/{file}/urls"),
            json!({"partNumbers": [1]}),
        )
        .await;
    fresh.assert_status(200);
    let url = fresh.body["presignedUrls"][0]["url"].as_str().unwrap();
    assert_eq!(put(url, part).await, 200);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn the_same_name_with_other_content_gets_409_and_no_url(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let registered_bytes = pdf_bytes(6 * MIB);
    let crc = Crc32c::of(&registered_bytes).to_string();
    let mut other = registered_bytes.to_vec();
    other[100] ^= 0xff;
    let other_crc = Crc32c::of(&other).to_string();
    let meta = with(pdf_meta("castle.pdf", 6 * MIB), "crc32c", json!(crc));
    let (session, file) = app.registered_file(meta).await;
    let urls = format!("{S}/{session}/files/{file}/urls");

    let refused = app
        .post(&urls, json!({"crc32c": other_crc, "size": 6 * MIB}))
        .await;
    refused.assert_error(409, "FILE_MISMATCH");
    assert_eq!(refused.code(), "FILE_ERROR");
    assert!(
        refused.body.get("presignedUrls").is_none(),
        "{}",
        refused.body
    );
    let details = refused.details();
    assert_eq!(details["mismatches"], json!(["crc32c"]));
    assert_eq!(details["fileId"], file.as_str());
    assert_eq!(details["fileName"], "castle.pdf");
    assert_eq!(details["expected"], json!({"size": 6 * MIB, "crc32c": crc}));
    assert_eq!(
        details["received"],
        json!({"size": 6 * MIB, "crc32c": other_crc})
    );

    let both = app
        .post(&urls, json!({"crc32c": other_crc, "size": 5}))
        .await;
    both.assert_error(409, "FILE_MISMATCH");
    assert_eq!(both.details()["mismatches"], json!(["size", "crc32c"]));

    let same = app
        .post(&urls, json!({"crc32c": crc, "size": 6 * MIB}))
        .await;
    same.assert_status(200);
    assert_eq!(same.body["presignedUrls"].as_array().unwrap().len(), 2);

    let malformed = app.post(&urls, json!({"crc32c": "nope", "size": 0})).await;
    malformed.assert_error(422, "VALIDATION_ERROR");
    assert!(malformed.details()["errors"]["crc32c"].is_array());
    assert!(malformed.details()["errors"]["size"].is_array());
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_file_registered_without_a_crc32c_is_held_to_its_size_only(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (session, file) = app.registered_file(pdf_meta("a.pdf", 100)).await;
    let urls = format!("{S}/{session}/files/{file}/urls");
    app.post(&urls, json!({"crc32c": "AAAAAQ==", "size": 100}))
        .await
        .assert_status(200);
    app.post(&urls, json!({"size": 101}))
        .await
        .assert_error(409, "FILE_MISMATCH");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn complete_without_a_part_list_uses_the_parts_s3_holds_once_none_is_missing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (session, file) = app.registered_file(pdf_meta("big.pdf", 12 * MIB)).await;
    s3_part(&app, &file, 1, pdf_bytes(5 * MIB)).await;
    app.put_part(&session, &file, "3", pdf_bytes(2 * MIB))
        .await
        .assert_status(200);

    let missing = complete_without_a_list(&app, &session, &file).await;
    missing.assert_error(400, "BAD_REQUEST");
    assert_eq!(missing.code(), "PARTS_VALIDATION_ERROR");
    assert_eq!(missing.details()["missingPartNumbers"], json!([2]));
    assert_eq!(missing.details()["expected"], 3);

    s3_part(&app, &file, 2, pdf_bytes(5 * MIB)).await;
    let done = complete_without_a_list(&app, &session, &file).await;
    done.assert_status(200);
    assert!(done.body["fileUrl"].is_string());
    assert_eq!(app.open_uploads().await, 0);
    // `parts: null` is the same as no list.
    let (session, file) = app.registered_file(pdf_meta("small.pdf", 100)).await;
    app.put_part(&session, &file, "1", pdf_bytes(100))
        .await
        .assert_status(200);
    app.post(
        &format!("{S}/{session}/files/{file}/complete"),
        json!({"parts": null}),
    )
    .await
    .assert_status(200);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn complete_with_a_full_part_list_refuses_a_small_part_that_is_not_the_last(pool: PgPool) {
    // A list naming every part once goes to S3 at once (one S3 call when it
    // completes); what S3 refuses is answered as precisely as without a list.
    let app = TestApp::spawn(pool).await;
    let (session, file) = app.registered_file(pdf_meta("big.pdf", 12 * MIB)).await;
    let mut parts = Vec::new();
    for (n, size) in [(1, 5 * MIB), (2, MIB), (3, 2 * MIB)] {
        let etag = s3_part(&app, &file, n, pdf_bytes(size)).await;
        parts.push(json!({"partNumber": n, "etag": etag}));
    }
    let complete = |parts: Vec<Value>| {
        let path = format!("{S}/{session}/files/{file}/complete");
        let app = &app;
        async move { app.post(&path, json!({ "parts": parts })).await }
    };

    let small = complete(parts.clone()).await;
    small.assert_error(400, "BAD_REQUEST");
    assert_eq!(small.code(), "PARTS_VALIDATION_ERROR");
    assert_eq!(small.details()["smallPartNumbers"], json!([2]));
    // A wrong ETag, every part named: S3 refuses, and the answer says which.
    let etag = s3_part(&app, &file, 2, pdf_bytes(5 * MIB)).await;
    parts[1] = json!({"partNumber": 2, "etag": "\"00000000000000000000000000000000\""});
    let wrong = complete(parts.clone()).await;
    wrong.assert_error(400, "BAD_REQUEST");
    assert_eq!(wrong.details()["problem"], "etag-mismatch");
    assert_eq!(wrong.details()["partNumber"], 2);
    // Right: completed, and the parts are recorded as listed.
    parts[1] = json!({"partNumber": 2, "etag": etag});
    let done = complete(parts).await;
    done.assert_status(200);
    assert_eq!(app.open_uploads().await, 0);
    let listed = app.get(&format!("{S}/{session}/files/{file}/parts")).await;
    listed.assert_status(200);
    let numbers: Vec<u64> = listed.body["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["partNumber"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn complete_without_a_part_list_refuses_a_small_part_that_is_not_the_last(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (session, file) = app.registered_file(pdf_meta("big.pdf", 12 * MIB)).await;
    s3_part(&app, &file, 1, pdf_bytes(5 * MIB)).await;
    s3_part(&app, &file, 2, pdf_bytes(MIB)).await;
    s3_part(&app, &file, 3, pdf_bytes(2 * MIB)).await;

    let small = complete_without_a_list(&app, &session, &file).await;
    small.assert_error(400, "BAD_REQUEST");
    assert_eq!(small.code(), "PARTS_VALIDATION_ERROR");
    let details = small.details();
    assert_eq!(details["partNumber"], 2);
    assert_eq!(details["smallPartNumbers"], json!([2]));
    assert_eq!(details["sizeBytes"], MIB);
    assert_eq!(details["minBytes"], 5 * MIB);
    // Nothing was completed: the part can be sent again, then it completes.
    s3_part(&app, &file, 2, pdf_bytes(5 * MIB)).await;
    complete_without_a_list(&app, &session, &file)
        .await
        .assert_status(200);
}

/// The IDs of a listing's sessions, in its order.
fn ids(page: &TestResponse) -> Vec<String> {
    page.assert_status(200);
    page.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sessionId"].as_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn the_active_list_holds_only_the_callers_resumable_sessions_with_their_files(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let bytes = pdf_bytes(100);
    let crc = Crc32c::of(&bytes).to_string();
    let meta = with(pdf_meta("castle.pdf", 100), "crc32c", json!(crc));
    let created = app
        .post(
            S,
            json!({"files": [meta], "title": "  Castle on the hill "}),
        )
        .await;
    created.assert_status(201);
    let active = created.body["sessionId"].as_str().unwrap().to_owned();
    let (file, _) = app.upload_single_part(&active, meta, bytes).await;

    let cancelled = app.create_session(json!([pdf_meta("c.pdf", 10)])).await;
    app.delete(&format!("{S}/{cancelled}"))
        .await
        .assert_status(204);
    let expired = app.create_session(json!([pdf_meta("e.pdf", 10)])).await;
    app.expire(&expired, 1).await;
    let finalized = app.create_session(json!([pdf_meta("f.pdf", 100)])).await;
    app.completed_file(&finalized, pdf_meta("f.pdf", 100), pdf_bytes(100))
        .await;
    app.post(
        "/api/mocs/uploads/finalize",
        json!({"uploadSessionId": finalized, "title": "Finalized"}),
    )
    .await
    .assert_status(201);
    let others = app.create_session(json!([pdf_meta("o.pdf", 10)])).await;
    sqlx::query("UPDATE upload_sessions SET user_id = 'someone-else' WHERE id = $1::uuid")
        .bind(&others)
        .execute(&pool)
        .await
        .unwrap();

    let page = app.get(&format!("{S}?status=active")).await;
    assert_eq!(ids(&page), std::slice::from_ref(&active));
    assert_eq!(page.body["nextCursor"], Value::Null);
    let listed = &page.body["sessions"][0];
    assert_eq!(listed["status"], "active");
    assert_eq!(listed["title"], "Castle on the hill");
    assert!(listed["expiresAt"].is_string());
    let listed_file = &listed["files"][0];
    assert_eq!(listed_file["fileId"], file.as_str());
    assert_eq!(listed_file["name"], "castle.pdf");
    assert_eq!(listed_file["size"], 100);
    assert_eq!(listed_file["category"], "instruction");
    assert_eq!(listed_file["crc32c"], crc.as_str());
    assert_eq!(listed_file["partCount"], 1);
    assert_eq!(listed_file["uploadedParts"], json!([1]));
    // The default is the active list.
    assert_eq!(ids(&app.get(S).await), std::slice::from_ref(&active));

    for (status, expected) in [
        ("cancelled", vec![cancelled.clone()]),
        ("expired", vec![expired.clone()]),
        ("completed", vec![finalized.clone()]),
        ("all", vec![finalized, expired, cancelled, active]),
    ] {
        let page = app.get(&format!("{S}?status={status}")).await;
        assert_eq!(ids(&page), expected, "status={status}");
    }
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn the_list_pages_newest_first_without_skipping_or_repeating(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(
            app.create_session(json!([pdf_meta(&format!("{n}.pdf"), 10)]))
                .await,
        );
    }
    created.reverse();
    let mut seen = Vec::new();
    let mut path = format!("{S}?limit=2");
    let mut pages = 0;
    loop {
        let page = app.get(&path).await;
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 2);
        seen.extend(page_ids);
        pages += 1;
        match page.body["nextCursor"].as_str() {
            Some(cursor) => path = format!("{S}?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_bad_listing_query_is_400_and_listing_never_counts_against_the_create_limit(
    pool: PgPool,
) {
    let app = TestApp::with_env(pool, &[("UPLOAD_RATE_LIMIT_PER_DAY", "1")]).await;
    for query in [
        "status=open",
        "status=",
        "limit=0",
        "limit=51",
        "limit=x",
        "cursor=nope",
    ] {
        let refused = app.get(&format!("{S}?{query}")).await;
        refused.assert_error(400, "INVALID_QUERY");
        assert_eq!(refused.code(), "VALIDATION_ERROR", "{query}");
        let name = query.split('=').next().unwrap();
        assert!(refused.details()["errors"][name].is_array(), "{query}");
    }
    for _ in 0..3 {
        app.get(S).await.assert_status(200);
    }
    app.create_session(json!([pdf_meta("a.pdf", 10)])).await;
}
