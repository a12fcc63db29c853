//! Issue 24: a CRC32C the client declares, checked at every hop.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

/// The CRC32C of `123456789`, as S3 writes it.
const CHECK_CRC: &str = "4waSgw==";
/// Another valid CRC32C (of the empty string's neighbour), for re-declaring.
const OTHER_CRC: &str = "AAAAAQ==";

fn with_crc(mut meta: Value, crc32c: &str) -> Value {
    meta["crc32c"] = json!(crc32c);
    meta
}

/// The file row's declared CRC32C and verified flag.
async fn stored_checksum(pool: &PgPool, file_id: &str) -> (Option<String>, bool) {
    sqlx::query_as("SELECT crc32c, checksum_verified FROM upload_session_files WHERE id = $1::uuid")
        .bind(file_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_declared_crc32c_is_recorded_and_a_file_without_one_is_unverified(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 1000), pdf_meta("b.pdf", 1000)]))
        .await;
    let declared = app
        .register(&session, with_crc(pdf_meta("a.pdf", 1000), CHECK_CRC))
        .await;
    declared.assert_status(201);
    assert_eq!(declared.body["crc32c"], CHECK_CRC);
    let declared_id = declared.body["fileId"].as_str().unwrap();
    assert_eq!(
        stored_checksum(&pool, declared_id).await,
        (Some(CHECK_CRC.to_owned()), false)
    );

    let plain = app.register(&session, pdf_meta("b.pdf", 1000)).await;
    plain.assert_status(201);
    assert!(plain.body.get("crc32c").is_none(), "{}", plain.body);
    let plain_id = plain.body["fileId"].as_str().unwrap();
    assert_eq!(stored_checksum(&pool, plain_id).await, (None, false));
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_crc32c_not_spelt_as_s3_writes_it_is_a_validation_error(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 1000)])).await;
    for bad in [
        json!("e3069283"),
        json!("4waSgx=="),
        json!(3808858755u64),
        json!(""),
    ] {
        let mut meta = pdf_meta("a.pdf", 1000);
        meta["crc32c"] = bad.clone();
        let refused = app.register(&session, meta).await;
        refused.assert_error(422, "VALIDATION_ERROR");
        assert!(
            refused.details()["errors"]["crc32c"].is_array(),
            "{bad}: {}",
            refused.body
        );
    }
    assert_eq!(app.open_uploads().await, 0);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn reregistering_replaces_a_declared_crc32c_but_cannot_add_one(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 1000), pdf_meta("b.pdf", 1000)]))
        .await;
    let meta = with_crc(pdf_meta("a.pdf", 1000), CHECK_CRC);
    let first = app.register(&session, meta.clone()).await;
    let file_id = first.body["fileId"].as_str().unwrap().to_owned();

    let mut lost_urls = pdf_meta("a.pdf", 1000);
    lost_urls["fileId"] = json!(file_id);
    let again = app.register(&session, lost_urls.clone()).await;
    again.assert_status(200);
    assert_eq!(
        again.body["crc32c"], CHECK_CRC,
        "left out, the declared one stands"
    );

    let fixed = app.register(&session, with_crc(lost_urls, OTHER_CRC)).await;
    fixed.assert_status(200);
    assert_eq!(fixed.body["crc32c"], OTHER_CRC);
    assert_eq!(fixed.body["uploadId"], first.body["uploadId"]);
    assert_eq!(
        stored_checksum(&pool, &file_id).await,
        (Some(OTHER_CRC.to_owned()), false)
    );

    let plain = app.register(&session, pdf_meta("b.pdf", 1000)).await;
    let mut late = with_crc(pdf_meta("b.pdf", 1000), CHECK_CRC);
    late["fileId"] = plain.body["fileId"].clone();
    app.register(&session, late)
        .await
        .assert_error(409, "CONFLICT");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_batch_item_records_its_declared_crc32c(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 10), pdf_meta("b.pdf", 10)]))
        .await;
    let batch = app
        .post(
            &format!("/api/mocs/uploads/sessions/{session}/files/batch"),
            json!({"files": [with_crc(pdf_meta("a.pdf", 10), CHECK_CRC), pdf_meta("b.pdf", 10)]}),
        )
        .await;
    batch.assert_status(201);
    let results = batch.body["results"].as_array().unwrap();
    assert_eq!(results[0]["crc32c"], CHECK_CRC);
    assert!(results[1].get("crc32c").is_none());
    let id = results[0]["fileId"].as_str().unwrap();
    assert_eq!(
        stored_checksum(&pool, id).await.0.as_deref(),
        Some(CHECK_CRC)
    );
}

/// PUTs `body` to a presigned part URL with exactly the headers it lists.
async fn put_presigned(url: &Value, body: Vec<u8>) -> reqwest::Response {
    let mut request = reqwest::Client::new().put(url["url"].as_str().unwrap());
    for (name, value) in url["headers"].as_object().unwrap() {
        request = request.header(name, value.as_str().unwrap());
    }
    request.body(body).send().await.unwrap()
}

/// The `X-Amz-SignedHeaders` of a presigned URL.
fn signed_headers(url: &Value) -> Vec<String> {
    let url = reqwest::Url::parse(url["url"].as_str().unwrap()).unwrap();
    let (_, signed) = url
        .query_pairs()
        .find(|(name, _)| name == "X-Amz-SignedHeaders")
        .expect("a presigned URL names its signed headers");
    signed.split(';').map(str::to_owned).collect()
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_part_url_is_signed_for_its_crc32c_and_s3_refuses_a_flipped_byte(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    // Small enough to sit in the socket buffers whole: Garage answers a
    // request that lacks a signed header before reading its body, and
    // closes, which a larger body meets as a broken pipe.
    const SIZE: usize = 64 * 1024;
    let part = pdf_bytes(SIZE).to_vec();
    let crc = moc_shared::domain::Crc32c::of(&part).to_string();
    let mut meta = with_crc(pdf_meta("a.pdf", SIZE), &crc);
    meta["partCount"] = json!(1);
    meta["partChecksums"] = json!([{"partNumber": 1, "crc32c": crc}]);
    let session = app.create_session(json!([pdf_meta("a.pdf", SIZE)])).await;
    let registered = app.register(&session, meta).await;
    registered.assert_status(201);
    let url = &registered.body["presignedUrls"][0];
    // aws-sdk-rust#1103: presigners drop checksum headers; these must be signed.
    let signed = signed_headers(url);
    for header in [
        "content-length",
        "x-amz-checksum-crc32c",
        "x-amz-sdk-checksum-algorithm",
    ] {
        assert!(
            signed.iter().any(|h| h == header),
            "{header} not in {signed:?}"
        );
    }
    assert_eq!(url["headers"]["x-amz-checksum-crc32c"], crc.as_str());
    assert_eq!(url["headers"]["x-amz-sdk-checksum-algorithm"], "CRC32C");

    // Without the checksum header the signature does not hold.
    let unsigned = reqwest::Client::new()
        .put(url["url"].as_str().unwrap())
        .body(part.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), app.store.missing_signed_header_status());
    // One flipped byte: S3 refuses the part at once (AWS: BadDigest).
    let mut flipped = part.clone();
    flipped[1000] ^= 0x20;
    let refused = put_presigned(url, flipped).await;
    assert_eq!(refused.status(), 400);
    let code = format!("<Code>{}</Code>", app.store.checksum_mismatch_code());
    let answer = refused.text().await.unwrap();
    assert!(answer.contains(&code), "{answer}");
    assert_eq!(put_presigned(url, part).await.status(), 200);
}

/// A part URL of a file declared with a CRC32C, the part's own not listed
/// in `partChecksums`: AWS S3 computes the part's CRC32C and takes it;
/// Garage 2.5 refuses the PUT (400), and there a fresh URL signed for the
/// part's CRC32C uploads it. Either way the file completes and verifies.
#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_part_url_without_its_crc32c_uploads_where_the_store_computes_it(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let part = pdf_bytes(1000).to_vec();
    let crc = moc_shared::domain::Crc32c::of(&part).to_string();
    let mut meta = with_crc(pdf_meta("a.pdf", 1000), &crc);
    meta["partCount"] = json!(1);
    let session = app.create_session(json!([pdf_meta("a.pdf", 1000)])).await;
    let registered = app.register(&session, meta).await;
    registered.assert_status(201);
    let file = registered.body["fileId"].as_str().unwrap();
    let url = &registered.body["presignedUrls"][0];
    assert!(url["headers"].get("x-amz-checksum-crc32c").is_none());

    let mut put = put_presigned(url, part.clone()).await;
    if app.store.parts_need_their_crc32c() {
        assert_eq!(put.status(), 400, "{}", put.text().await.unwrap());
        let fresh = app
            .post(
                &format!("/api/mocs/uploads/sessions/{session}/files/{file}/urls"),
                json!({"partChecksums": [{"partNumber": 1, "crc32c": crc}]}),
            )
            .await;
        fresh.assert_status(200);
        put = put_presigned(&fresh.body["presignedUrls"][0], part).await;
    }
    assert_eq!(put.status(), 200);
    let etag = put.headers()["etag"].to_str().unwrap();
    app.complete(&session, file, json!([{"partNumber": 1, "etag": etag}]))
        .await
        .assert_status(200);
    let moc = finalize(&app, &session).await;
    moc.assert_status(201);
    assert_eq!(moc.body["files"][0]["checksumVerified"], true);
}

/// A part held, then an attempt at it refused for its CRC32C: AWS S3 keeps
/// the held part and complete completes; Garage 2.5 still lists it but
/// refuses it at completion (InvalidPart), which complete answers as 400
/// PARTS_VALIDATION_ERROR (`problem: invalid-part`) until the part is sent
/// again.
#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn completing_after_a_refused_attempt_at_a_held_part(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let part = pdf_bytes(64 * 1024).to_vec();
    let crc = moc_shared::domain::Crc32c::of(&part).to_string();
    let mut meta = with_crc(pdf_meta("a.pdf", part.len()), &crc);
    meta["partCount"] = json!(1);
    meta["partChecksums"] = json!([{"partNumber": 1, "crc32c": crc}]);
    let session = app
        .create_session(json!([pdf_meta("a.pdf", part.len())]))
        .await;
    let registered = app.register(&session, meta).await;
    let file = registered.body["fileId"].as_str().unwrap();
    let url = &registered.body["presignedUrls"][0];
    let held = put_presigned(url, part.clone()).await;
    assert_eq!(held.status(), 200);
    let parts = json!([{"partNumber": 1, "etag": held.headers()["etag"].to_str().unwrap()}]);
    let mut flipped = part.clone();
    flipped[1000] ^= 0x20;
    assert_eq!(put_presigned(url, flipped).await.status(), 400);

    if app.store.refused_part_hides_the_held_one() {
        let refused = app.complete(&session, file, parts.clone()).await;
        refused.assert_error(400, "BAD_REQUEST");
        assert_eq!(refused.code(), "PARTS_VALIDATION_ERROR");
        assert_eq!(refused.details()["problem"], "invalid-part");
        assert_eq!(refused.details()["partNumbers"], json!([1]));
        assert_eq!(put_presigned(url, part).await.status(), 200);
    }
    app.complete(&session, file, parts).await.assert_status(200);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn fresh_urls_are_signed_for_the_checksums_listed_per_part(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let session = app
        .create_session(json!([pdf_meta("a.pdf", 12 * MIB)]))
        .await;
    let registered = app
        .register(&session, with_crc(pdf_meta("a.pdf", 12 * MIB), CHECK_CRC))
        .await;
    let file = registered.body["fileId"].as_str().unwrap();
    let path = format!("/api/mocs/uploads/sessions/{session}/files/{file}/urls");
    let fresh = app
        .post(
            &path,
            json!({"partNumbers": [1], "partChecksums": [{"partNumber": 3, "crc32c": OTHER_CRC}]}),
        )
        .await;
    fresh.assert_status(200);
    let urls = fresh.body["presignedUrls"].as_array().unwrap();
    let numbers: Vec<u64> = urls
        .iter()
        .map(|u| u["partNumber"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 3]);
    assert!(urls[0]["headers"].get("x-amz-checksum-crc32c").is_none());
    assert!(!signed_headers(&urls[0]).contains(&"x-amz-checksum-crc32c".to_owned()));
    assert_eq!(urls[1]["headers"]["x-amz-checksum-crc32c"], OTHER_CRC);
    assert!(signed_headers(&urls[1]).contains(&"x-amz-checksum-crc32c".to_owned()));

    for bad in [
        json!({"partChecksums": [{"partNumber": 4, "crc32c": OTHER_CRC}]}),
        json!({"partChecksums": [{"partNumber": 1, "crc32c": "nope"}]}),
        json!({"partChecksums": [{"partNumber": 1}]}),
        json!({"partChecksums": [{"partNumber": 1, "crc32c": OTHER_CRC}, {"partNumber": 1, "crc32c": CHECK_CRC}]}),
    ] {
        app.post(&path, bad.clone())
            .await
            .assert_error(422, "VALIDATION_ERROR");
    }
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn part_checksums_need_the_files_crc32c(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 100)])).await;
    let mut meta = pdf_meta("a.pdf", 100);
    meta["partCount"] = json!(1);
    meta["partChecksums"] = json!([{"partNumber": 1, "crc32c": CHECK_CRC}]);
    let refused = app.register(&session, meta).await;
    refused.assert_error(422, "VALIDATION_ERROR");
    assert!(refused.details()["errors"]["partChecksums"].is_array());
}

/// PUTs `bytes` as a proxied part with `x-amz-checksum-crc32c: crc32c`.
async fn put_part_declaring(
    app: &TestApp,
    session: &str,
    file: &str,
    bytes: bytes::Bytes,
    crc32c: &str,
) -> TestResponse {
    let path = format!("/api/mocs/uploads/sessions/{session}/files/{file}/parts/1");
    app.send(
        TestApp::request(http::Method::PUT, &path)
            .header("content-type", "application/octet-stream")
            .header("content-length", bytes.len())
            .header("x-amz-checksum-crc32c", crc32c)
            .body(http_body_util::Full::new(bytes))
            .unwrap(),
    )
    .await
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_proxied_part_with_a_mismatching_crc32c_is_refused_before_s3(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body = pdf_bytes(3000);
    let crc = moc_shared::domain::Crc32c::of(&body).to_string();
    let meta = with_crc(pdf_meta("a.pdf", 3000), &crc);
    let (session, file) = app.registered_file(meta).await;

    let refused = put_part_declaring(&app, &session, &file, body.clone(), CHECK_CRC).await;
    refused.assert_error(400, "CHECKSUM_MISMATCH");
    assert_eq!(refused.code(), "FILE_ERROR");
    assert_eq!(refused.details()["expected"], CHECK_CRC);
    assert_eq!(refused.details()["found"], crc.as_str());
    assert_eq!(refused.details()["partNumber"], 1);
    let (key, upload_id) = app.file_upload(&file).await;
    let held = app.state.s3().list_parts(&key, &upload_id).await.unwrap();
    assert!(held.is_empty(), "nothing reached S3");

    let malformed = put_part_declaring(&app, &session, &file, body.clone(), "nope").await;
    malformed.assert_error(400, "BAD_REQUEST");

    put_part_declaring(&app, &session, &file, body, &crc)
        .await
        .assert_status(200);
    let held = app.state.s3().list_parts(&key, &upload_id).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(
        held[0].crc32c.map(|c| c.to_string()),
        Some(crc.clone()),
        "forwarded to S3"
    );
}

const FINALIZE: &str = "/api/mocs/uploads/finalize";

async fn finalize(app: &TestApp, session: &str) -> TestResponse {
    app.post(
        FINALIZE,
        json!({"uploadSessionId": session, "title": format!("Castle {session}")}),
    )
    .await
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_wrong_full_object_crc32c_is_422_and_the_right_one_completes_and_finalizes(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let body = pdf_bytes(3000);
    let right = moc_shared::domain::Crc32c::of(&body).to_string();
    let session = app.create_session(json!([pdf_meta("a.pdf", 3000)])).await;
    let meta = with_crc(pdf_meta("a.pdf", 3000), OTHER_CRC);
    let (file, etag) = app.upload_single_part(&session, meta, body).await;
    let parts = json!([{"partNumber": 1, "etag": etag}]);

    let refused = app.complete(&session, &file, parts.clone()).await;
    refused.assert_error(422, "CHECKSUM_MISMATCH");
    assert_eq!(refused.code(), "FILE_ERROR");
    assert_eq!(refused.details()["expected"], OTHER_CRC);
    assert_eq!(refused.details()["found"], right.as_str());
    let again = app.complete(&session, &file, parts.clone()).await;
    again.assert_error(422, "CHECKSUM_MISMATCH");

    let mut fixed = with_crc(pdf_meta("a.pdf", 3000), &right);
    fixed["fileId"] = json!(file);
    app.register(&session, fixed).await.assert_status(200);
    app.complete(&session, &file, parts)
        .await
        .assert_status(200);
    let status_path = format!("/api/mocs/uploads/sessions/{session}");
    let status = app.get(&status_path).await;
    assert_eq!(status.body["files"][0]["crc32c"], right.as_str());
    assert_eq!(
        status.body["files"][0]["checksumVerified"], false,
        "not before finalize"
    );
    let moc = finalize(&app, &session).await;
    moc.assert_status(201);
    assert_eq!(moc.body["files"][0]["crc32c"], right.as_str());
    assert_eq!(moc.body["files"][0]["checksumVerified"], true);
    assert_eq!(
        stored_checksum(&pool, &file).await,
        (Some(right.clone()), true)
    );
    let status = app.get(&status_path).await;
    assert_eq!(status.body["files"][0]["checksumVerified"], true);
    let replay = finalize(&app, &session).await;
    replay.assert_status(200);
    assert_eq!(replay.body["files"][0]["crc32c"], right.as_str());
    assert_eq!(replay.body["files"][0]["checksumVerified"], true);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_file_registered_without_a_checksum_completes_and_finalizes_unverified(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 3000)])).await;
    let (file, _) = app
        .completed_file(&session, pdf_meta("a.pdf", 3000), pdf_bytes(3000))
        .await;
    let moc = finalize(&app, &session).await;
    moc.assert_status(201);
    assert!(moc.body["files"][0].get("crc32c").is_none(), "{}", moc.body);
    assert_eq!(moc.body["files"][0]["checksumVerified"], false);
    assert_eq!(stored_checksum(&pool, &file).await, (None, false));
    let status = app
        .get(&format!("/api/mocs/uploads/sessions/{session}"))
        .await;
    assert!(status.body["files"][0].get("crc32c").is_none());
    assert_eq!(status.body["files"][0]["checksumVerified"], false);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn finalize_refuses_a_stored_object_whose_crc32c_differs(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let body = pdf_bytes(3000);
    let crc = moc_shared::domain::Crc32c::of(&body);
    let session = app.create_session(json!([pdf_meta("a.pdf", 3000)])).await;
    let meta = with_crc(pdf_meta("a.pdf", 3000), &crc.to_string());
    let (file, _) = app.completed_file(&session, meta, body.clone()).await;

    // Behind the API's back: the same key, same size and magic bytes, other bytes.
    let mut other = body.to_vec();
    other[2000] ^= 0x01;
    let other_crc = moc_shared::domain::Crc32c::of(&other);
    let (key, _) = app.file_upload(&file).await;
    let s3 = app.state.s3();
    let upload = s3
        .create_multipart_upload(&key, "application/pdf", true)
        .await
        .unwrap();
    let part = moc_shared::domain::PartNumber::new(1).unwrap();
    let etag = s3
        .upload_part(&key, &upload, part, other.into(), Some(other_crc))
        .await
        .unwrap();
    s3.complete_multipart_upload(&key, &upload, &[(part, etag)], Some(other_crc))
        .await
        .unwrap();

    let refused = finalize(&app, &session).await;
    refused.assert_error(400, "FILE_VALIDATION_FAILED");
    let files = refused.details()["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["fileId"], file.as_str());
    assert_eq!(files[0]["reason"], "checksum");
    assert!(!stored_checksum(&pool, &file).await.1, "not verified");
}

/// moto (tools/moto, as it is: its ListParts answer's root element,
/// `ListPartsResponse`, is read like S3's `ListPartsResult`) takes the
/// checksum headers and checks none: a part whose bytes are not its
/// declared CRC32C is stored, a completion declaring the wrong full-object
/// CRC32C succeeds, and (without its `crc32c` extra) HeadObject answers a
/// CRC32 under the name CRC32C. On such
/// a store a verified-registered upload still completes and finalizes, and
/// the store's word decides nothing: finalize reads the object and verifies
/// the declared CRC32C itself, and refuses a file whose bytes are not it.
#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn on_a_store_that_ignores_checksums_finalize_checks_the_bytes_itself(pool: PgPool) {
    let moto = moto().await;
    let bucket = moto_bucket(&moto.url).await;
    let env = [
        ("S3_ENDPOINT", moto.url.as_str()),
        ("S3_REGION", "us-east-1"),
        ("MOC_BUCKET", bucket.as_str()),
    ];
    let app = TestApp::with_env(pool.clone(), &env).await;
    let body = pdf_bytes(3000);
    let crc = moc_shared::domain::Crc32c::of(&body);
    let meta = with_crc(pdf_meta("a.pdf", 3000), &crc.to_string());

    // moto names ListParts' root element `ListPartsResponse`; it is read
    // as S3's `ListPartsResult` (the SDK refused it).
    let s3 = app.state.s3();
    let open = s3
        .create_multipart_upload("probe/listed.pdf", "application/pdf", false)
        .await
        .unwrap();
    let one = moc_shared::domain::PartNumber::new(1).unwrap();
    let etag = s3
        .upload_part("probe/listed.pdf", &open, one, body.clone(), None)
        .await
        .unwrap();
    let listed = s3.list_parts("probe/listed.pdf", &open).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|part| (part.part_number, part.etag.as_str(), part.size))
            .collect::<Vec<_>>(),
        [(one, etag.as_str(), 3000)]
    );

    let good = app.create_session(json!([pdf_meta("a.pdf", 3000)])).await;
    let (file, _) = app.completed_file(&good, meta.clone(), body.clone()).await;
    let (key, _) = app.file_upload(&file).await;
    let stored = app.state.s3().stored_object(&key).await.unwrap().unwrap();
    assert!(
        stored.crc32c.is_some_and(|answered| answered != crc),
        "moto answers a CRC32C that is not the object's: {stored:?}"
    );
    let moc = finalize(&app, &good).await;
    moc.assert_status(201);
    assert_eq!(
        moc.body["files"][0]["checksumVerified"], true,
        "by our own reading"
    );
    assert_eq!(
        stored_checksum(&pool, &file).await,
        (Some(crc.to_string()), true)
    );

    let mut other = body.to_vec();
    other[2000] ^= 0x01;
    let bad = app.create_session(json!([pdf_meta("a.pdf", 3000)])).await;
    let (file, _) = app.completed_file(&bad, meta, other.into()).await;
    let refused = finalize(&app, &bad).await;
    refused.assert_error(400, "FILE_VALIDATION_FAILED");
    let files = refused.details()["files"].as_array().unwrap();
    assert_eq!(files[0]["fileId"], file.as_str());
    assert_eq!(files[0]["reason"], "checksum");
    assert!(!stored_checksum(&pool, &file).await.1, "not verified");
}
