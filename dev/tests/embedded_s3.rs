//! The embedded S3 against the real AWS SDK and plain HTTP, the way the upload
//! API and browsers will use it. Every test runs its own server on a free
//! port over its own temporary directory. The checksum tests (`crc32c_*`)
//! run as they are against a real store too: with `MOC_TEST_S3` set
//! (scripts/garage-check), on garage 2.5 instead (`store`).

#![allow(clippy::unwrap_used, reason = "in a test an unwrap is an assertion")]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadError;
use aws_sdk_s3::operation::complete_multipart_upload::{
    CompleteMultipartUploadError, CompleteMultipartUploadOutput,
};
use aws_sdk_s3::operation::head_object::{HeadObjectError, HeadObjectOutput};
use aws_sdk_s3::operation::upload_part::UploadPartError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use moc_dev::s3::{BucketCors, EmbeddedS3, EmbeddedS3Config};
use rand::RngCore;
use s3s::crypto::{Checksum, Md5};
use sha2::{Digest, Sha256};

// The API-level ways of the stores are for dev/tests/api.
#[allow(dead_code)]
#[path = "support/store.rs"]
mod store;
use store::{StoreKind, external_store};

const ACCESS_KEY: &str = "moc-test-access";
const SECRET_KEY: &str = "moc-test-secret";
const REGION: &str = "us-east-1";
const BUCKET: &str = "moc-uploads";
const MIB: usize = 1024 * 1024;

struct TestServer {
    // Declared first so the server stops before its directory is removed.
    s3: EmbeddedS3,
    dir: PathBuf,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unique_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_nanos();
    std::env::temp_dir().join(format!(
        "moc-embedded-s3-{name}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

async fn start(name: &str) -> TestServer {
    start_with_cors(name, BucketCors::default()).await
}

async fn start_with_cors(name: &str, cors: BucketCors) -> TestServer {
    let dir = unique_dir(name);
    let s3 = EmbeddedS3::start_with_cors(
        EmbeddedS3Config {
            data_dir: dir.clone(),
            bind: "127.0.0.1:0".parse().unwrap(),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            region: REGION.into(),
            buckets: vec![BUCKET.into()],
        },
        cors,
    )
    .await
    .expect("embedded S3 starts");
    TestServer { s3, dir }
}

fn client_with(endpoint: &str, secret_key: &str, region: &str) -> Client {
    client_as(endpoint, ACCESS_KEY, secret_key, region)
}

fn client_as(endpoint: &str, access_key: &str, secret_key: &str, region: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(moc_shared::s3::https_client())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "test"))
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    Client::from_conf(config)
}

fn client(server: &TestServer) -> Client {
    client_with(&server.s3.endpoint(), SECRET_KEY, REGION)
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut buf);
    buf
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::checksum(data))
}

async fn create_upload(client: &Client, key: &str) -> String {
    client
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .content_type("application/zip")
        .send()
        .await
        .expect("CreateMultipartUpload")
        .upload_id()
        .expect("upload id")
        .to_owned()
}

async fn presign_part(
    client: &Client,
    key: &str,
    upload_id: &str,
    part_number: i32,
    expires_in: Duration,
) -> String {
    let presigned = client
        .upload_part()
        .bucket(BUCKET)
        .key(key)
        .upload_id(upload_id)
        .part_number(part_number)
        .presigned(PresigningConfig::expires_in(expires_in).unwrap())
        .await
        .expect("presign UploadPart");
    assert_eq!(presigned.method(), "PUT");
    // A browser can only send what the URL carries: no extra signed headers.
    assert_eq!(
        presigned.headers().count(),
        0,
        "presigned UploadPart needs no headers"
    );
    presigned.uri().to_owned()
}

/// PUTs `body` the way a browser would: no SDK, no signing, just the URL.
async fn put_url(url: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .put(url)
        .body(body)
        .send()
        .await
        .expect("HTTP PUT reaches the server")
}

fn completed_upload(parts: &[(i32, String)]) -> CompletedMultipartUpload {
    let parts = parts
        .iter()
        .map(|(n, etag)| CompletedPart::builder().part_number(*n).e_tag(etag).build())
        .collect();
    CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build()
}

async fn complete(
    client: &Client,
    key: &str,
    upload_id: &str,
    parts: &[(i32, String)],
) -> Result<CompleteMultipartUploadOutput, SdkError<CompleteMultipartUploadError>> {
    client
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(completed_upload(parts))
        .send()
        .await
}

/// Uploads one part with the SDK's signing (what the API's proxied part
/// route does); its ETag.
async fn upload_part(
    client: &Client,
    key: &str,
    upload_id: &str,
    number: i32,
    body: Vec<u8>,
) -> Result<String, SdkError<UploadPartError>> {
    let out = client
        .upload_part()
        .bucket(BUCKET)
        .key(key)
        .upload_id(upload_id)
        .part_number(number)
        .body(ByteStream::from(body))
        .send()
        .await?;
    Ok(out
        .e_tag()
        .expect("UploadPart answers with an ETag")
        .to_owned())
}

/// Uploads `bodies` as parts 1, 2, …; each part's number and ETag.
async fn upload_parts(
    client: &Client,
    key: &str,
    upload_id: &str,
    bodies: &[Vec<u8>],
) -> Vec<(i32, String)> {
    let mut etags = Vec::new();
    for (number, body) in (1..).zip(bodies) {
        let etag = upload_part(client, key, upload_id, number, body.clone())
            .await
            .expect("UploadPart");
        etags.push((number, etag));
    }
    etags
}

/// An object the way the API stores every file: a completed multipart
/// upload, here of one part. The object's ETag.
async fn store_object(client: &Client, key: &str, body: Vec<u8>) -> String {
    let upload_id = create_upload(client, key).await;
    let etag = upload_part(client, key, &upload_id, 1, body)
        .await
        .expect("UploadPart");
    let done = complete(client, key, &upload_id, &[(1, etag)])
        .await
        .expect("CompleteMultipartUpload");
    done.e_tag().expect("ETag").to_owned()
}

async fn part_numbers(client: &Client, key: &str, upload_id: &str) -> Vec<i32> {
    client
        .list_parts()
        .bucket(BUCKET)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
        .expect("ListParts")
        .parts()
        .iter()
        .filter_map(|p| p.part_number())
        .collect()
}

async fn abort(
    client: &Client,
    key: &str,
    upload_id: &str,
) -> Result<(), SdkError<AbortMultipartUploadError>> {
    client
        .abort_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
        .map(drop)
}

/// The object's bytes, or those of `range`.
async fn read_object(client: &Client, key: &str, range: Option<String>) -> Vec<u8> {
    client
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .set_range(range)
        .send()
        .await
        .expect("GetObject")
        .body
        .collect()
        .await
        .expect("object body")
        .into_bytes()
        .to_vec()
}

async fn head(client: &Client, key: &str) -> Result<HeadObjectOutput, SdkError<HeadObjectError>> {
    client.head_object().bucket(BUCKET).key(key).send().await
}

/// The open uploads under `prefix`, as (key, upload id).
async fn open_uploads(client: &Client, prefix: &str) -> Vec<(String, String)> {
    client
        .list_multipart_uploads()
        .bucket(BUCKET)
        .prefix(prefix)
        .send()
        .await
        .expect("ListMultipartUploads")
        .uploads()
        .iter()
        .map(|u| {
            (
                u.key().unwrap().to_owned(),
                u.upload_id().unwrap().to_owned(),
            )
        })
        .collect()
}

fn status_of<E>(err: &SdkError<E>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// The production path end to end: an upload opened with the SDK, its parts
/// PUT through presigned URLs as a browser would, listed, completed, then
/// read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_through_presigned_urls_round_trips() {
    let server = start("presigned").await;
    let endpoint = server.s3.endpoint();
    assert_eq!(
        endpoint,
        format!("http://127.0.0.1:{}", server.s3.local_addr().port())
    );
    let client = client(&server);
    let key = "sessions/abc/files/archive.zip";

    let parts = [
        random_bytes(5 * MIB),
        random_bytes(5 * MIB),
        random_bytes(2 * MIB),
    ];
    let original: Vec<u8> = parts.concat();
    let upload_id = create_upload(&client, key).await;

    let mut etags = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let number = i32::try_from(i + 1).unwrap();
        let url = presign_part(&client, key, &upload_id, number, Duration::from_secs(300)).await;
        let resp = put_url(&url, part.clone()).await;
        assert_eq!(resp.status(), 200, "part {number}: {:?}", resp.text().await);
        let etag = resp
            .headers()
            .get("etag")
            .expect("UploadPart answers with an ETag")
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            etag,
            format!("\"{}\"", md5_hex(part)),
            "part ETag is the quoted MD5"
        );
        etags.push((number, etag));
    }

    let listed = client
        .list_parts()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&upload_id)
        .send()
        .await
        .expect("ListParts");
    assert_eq!(listed.is_truncated(), Some(false));
    let sizes: Vec<_> = listed.parts().iter().filter_map(|p| p.size()).collect();
    let mib = i64::try_from(MIB).unwrap();
    assert_eq!(sizes, [5 * mib, 5 * mib, 2 * mib]);
    let listed: Vec<_> = listed
        .parts()
        .iter()
        .map(|p| (p.part_number().unwrap(), p.e_tag().unwrap().to_owned()))
        .collect();
    assert_eq!(
        listed, etags,
        "ListParts reports the ETags UploadPart returned"
    );

    let done = complete(&client, key, &upload_id, &listed)
        .await
        .expect("CompleteMultipartUpload");
    let etag = done.e_tag().expect("completed object has an ETag");
    assert!(etag.ends_with("-3\""), "multipart ETag format, got {etag}");

    let body = read_object(&client, key, None).await;
    assert_eq!(body.len(), original.len());
    assert_eq!(
        hex::encode(Sha256::digest(&body)),
        hex::encode(Sha256::digest(&original))
    );
    let err = client
        .list_parts()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&upload_id)
        .send()
        .await
        .expect_err("ListParts of a completed upload");
    assert_eq!(err.code(), Some("NoSuchUpload"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_or_expired_presigned_urls_are_rejected() {
    let server = start("tamper").await;
    let client = client(&server);
    let key = "tampered.bin";
    let upload_id = create_upload(&client, key).await;

    let url = presign_part(&client, key, &upload_id, 1, Duration::from_secs(300)).await;
    let sig_at =
        url.find("X-Amz-Signature=").expect("signature in query") + "X-Amz-Signature=".len();
    let mut tampered = url.clone().into_bytes();
    tampered[sig_at] = if tampered[sig_at] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_ne!(tampered, url);

    let resp = put_url(&tampered, b"payload".to_vec()).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("SignatureDoesNotMatch"));

    // Without the query string nothing is signed at all.
    let unsigned =
        url.split('?').next().unwrap().to_owned() + &format!("?partNumber=1&uploadId={upload_id}");
    let resp = put_url(&unsigned, b"payload".to_vec()).await;
    assert_eq!(resp.status(), 403);

    let short = presign_part(&client, key, &upload_id, 2, Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let resp = put_url(&short, b"payload".to_vec()).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("AccessDenied"));

    // Control: the untouched URL is accepted, so the 403s above came from
    // the signature and expiry checks and nothing else.
    let resp = put_url(&url, b"payload".to_vec()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        part_numbers(&client, key, &upload_id).await,
        [1],
        "rejected requests stored nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_or_region_are_rejected() {
    let server = start("creds").await;
    let endpoint = server.s3.endpoint();

    let bad_secret = client_with(&endpoint, "not-the-secret", REGION);
    let err = bad_secret
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("x")
        .send()
        .await
        .expect_err("wrong secret key");
    assert_eq!(status_of(&err), Some(403));
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"));

    let other_region = client_with(&endpoint, SECRET_KEY, "eu-west-1");
    let err = other_region
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("x")
        .send()
        .await
        .expect_err("request signed for another region");
    assert_eq!(err.code(), Some("AuthorizationHeaderMalformed"));

    // Control: nothing was opened before, and the right key is accepted.
    let good = client(&server);
    assert!(open_uploads(&good, "").await.is_empty());
    create_upload(&good, "x").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_multipart_upload_answers_the_real_key_and_needs_the_bucket() {
    let server = start("create").await;
    let client = client(&server);
    let key = format!("dev/moc-instructions/{}/manual.pdf", "k".repeat(200));
    let created = client
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .content_type("application/pdf")
        .send()
        .await
        .expect("CreateMultipartUpload");
    assert_eq!(created.key(), Some(key.as_str()));
    assert_eq!(created.bucket(), Some(BUCKET));
    let upload_id = created.upload_id().expect("upload id");
    assert!(part_numbers(&client, &key, upload_id).await.is_empty());

    let err = client
        .create_multipart_upload()
        .bucket("no-such-bucket")
        .key("k")
        .send()
        .await
        .expect_err("upload into a missing bucket");
    assert_eq!(err.code(), Some("NoSuchBucket"));
    assert_eq!(status_of(&err), Some(404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_answers_the_md5_etag_and_refuses_bad_part_numbers() {
    let server = start("upload-part").await;
    let client = client(&server);
    let key = "part.bin";
    let upload_id = create_upload(&client, key).await;

    let body = random_bytes(1000);
    let etag = upload_part(&client, key, &upload_id, 1, body.clone())
        .await
        .expect("SDK-signed UploadPart");
    assert_eq!(etag, format!("\"{}\"", md5_hex(&body)));
    // Uploaded again: the new bytes, the new ETag.
    let again = upload_part(&client, key, &upload_id, 1, b"again".to_vec())
        .await
        .expect("UploadPart again");
    assert_eq!(again, format!("\"{}\"", md5_hex(b"again")));

    let err = upload_part(&client, key, &upload_id, 0, b"x".to_vec())
        .await
        .expect_err("part number 0");
    assert_eq!(err.code(), Some("InvalidArgument"));
    let err = upload_part(&client, "other.bin", &upload_id, 2, b"x".to_vec())
        .await
        .expect_err("an upload id of another key");
    assert_eq!(err.code(), Some("NoSuchUpload"));
    assert_eq!(part_numbers(&client, key, &upload_id).await, [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_parts_paginates_in_part_order_with_etags() {
    let server = start("paginate").await;
    let client = client(&server);
    let key = "paged.bin";
    let upload_id = create_upload(&client, key).await;

    // Uploaded out of order: the listing must still come back sorted.
    let mut etags = std::collections::BTreeMap::new();
    for number in [3, 1, 2] {
        let body = format!("part {number} body").into_bytes();
        let etag = upload_part(&client, key, &upload_id, number, body)
            .await
            .expect("UploadPart");
        etags.insert(number, etag);
    }

    let mut seen = Vec::new();
    let mut marker = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 3, "pagination does not terminate");
        let page = client
            .list_parts()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&upload_id)
            .max_parts(2)
            .set_part_number_marker(marker.clone())
            .send()
            .await
            .expect("ListParts page");
        assert!(page.parts().len() <= 2, "max-parts is honoured");
        assert_eq!(page.key(), Some(key));
        for part in page.parts() {
            let number = part.part_number().unwrap();
            assert_eq!(part.e_tag(), Some(etags[&number].as_str()));
            seen.push(number);
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        marker = page.next_part_number_marker().map(str::to_owned);
    }
    assert_eq!(seen, [1, 2, 3]);
    assert_eq!(pages, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_parts_reads_the_part_index_and_a_legacy_upload_is_still_listed() {
    let server = start("part-index").await;
    let client = client(&server);
    let (indexed, legacy, other) = ("indexed.bin", "legacy.bin", "other.bin");
    let indexed_id = create_upload(&client, indexed).await;
    let legacy_id = create_upload(&client, legacy).await;
    let other_id = create_upload(&client, other).await;
    for (key, id) in [
        (indexed, &indexed_id),
        (legacy, &legacy_id),
        (other, &other_id),
    ] {
        for number in [2, 1] {
            upload_part(
                &client,
                key,
                id,
                number,
                format!("{key} {number}").into_bytes(),
            )
            .await
            .expect("UploadPart");
        }
    }
    let index_of = |id: &str| server.dir.join(format!(".moc-parts-{id}"));
    assert!(
        index_of(&indexed_id).is_dir(),
        "each upload has a part index"
    );
    // A data directory kept from before the index: no index, parts in the root.
    std::fs::remove_dir_all(index_of(&legacy_id)).unwrap();

    assert_eq!(part_numbers(&client, indexed, &indexed_id).await, [1, 2]);
    assert_eq!(part_numbers(&client, legacy, &legacy_id).await, [1, 2]);

    let parts_in_root = |id: &str| {
        std::fs::read_dir(&server.dir)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_str()
                    .unwrap()
                    .starts_with(&format!(".upload_id-{id}.part-"))
            })
            .count()
    };
    for (key, id) in [(indexed, &indexed_id), (legacy, &legacy_id)] {
        abort(&client, key, id).await.expect("AbortMultipartUpload");
        assert_eq!(parts_in_root(id), 0, "{key}: no part file is left");
    }
    assert!(
        !index_of(&indexed_id).exists(),
        "the index goes with the upload"
    );
    assert_eq!(part_numbers(&client, other, &other_id).await, [1, 2]);
    assert_eq!(parts_in_root(&other_id), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_multipart_upload_checks_the_parts_and_keeps_a_rejected_upload() {
    let server = start("complete").await;
    let client = client(&server);
    let key = "completed.bin";
    let upload_id = create_upload(&client, key).await;
    let bodies = [
        random_bytes(5 * MIB),
        b"part 2".to_vec(),
        b"part 3".to_vec(),
    ];
    let etags = upload_parts(&client, key, &upload_id, &bodies).await;

    let bogus = "\"0123456789abcdef0123456789abcdef\"".to_owned();
    let refused = [
        (vec![(1, bogus)], "InvalidPart"),
        (vec![(4, etags[0].1.clone())], "InvalidPart"),
        (vec![etags[0].clone(), etags[0].clone()], "InvalidPartOrder"),
        // Every part but the last must be 5 MiB or more.
        (etags.clone(), "EntityTooSmall"),
    ];
    for (parts, code) in refused {
        let err = complete(&client, key, &upload_id, &parts)
            .await
            .expect_err(code);
        assert_eq!(err.code(), Some(code), "{parts:?}");
    }
    assert_eq!(
        part_numbers(&client, key, &upload_id).await,
        [1, 2, 3],
        "the upload survives a rejected completion, as on S3"
    );

    let done = complete(&client, key, &upload_id, &etags[..2])
        .await
        .expect("CompleteMultipartUpload");
    assert_eq!(done.key(), Some(key));
    assert!(done.e_tag().unwrap().ends_with("-2\""));
    assert_eq!(read_object(&client, key, None).await, bodies[..2].concat());
    assert!(
        open_uploads(&client, "").await.is_empty(),
        "completed upload is no longer open"
    );
}

/// S3 completes an upload atomically: of concurrent completions, each
/// either completes it or finds it gone with the object already whole, and
/// nothing reading the key meanwhile sees it half done (s3s-fs alone
/// forgets the upload before it writes the object).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_completions_see_the_upload_open_or_the_object_whole() {
    let server = start("complete-race").await;
    let client = client(&server);
    let key = "raced.bin";
    let upload_id = create_upload(&client, key).await;
    let bodies = [
        random_bytes(5 * MIB),
        random_bytes(5 * MIB),
        random_bytes(MIB),
    ];
    let etags = upload_parts(&client, key, &upload_id, &bodies).await;

    let racers = (0..8).map(|_| {
        let (client, upload_id, etags) = (client.clone(), upload_id.clone(), etags.clone());
        tokio::spawn(async move {
            match complete(&client, key, &upload_id, &etags).await {
                Ok(_) => "completed".to_owned(),
                Err(err) => {
                    assert_eq!(err.code(), Some("NoSuchUpload"), "{err:?}");
                    let object = head(&client, key).await;
                    let size = object
                        .as_ref()
                        .ok()
                        .and_then(HeadObjectOutput::content_length);
                    assert_eq!(
                        size,
                        Some(11 * i64::try_from(MIB).unwrap()),
                        "the upload is gone, so the object is whole: {object:?}"
                    );
                    "found it completed".to_owned()
                }
            }
        })
    });
    let answers: Vec<String> = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(|joined| joined.expect("racer"))
        .collect();
    assert!(answers.iter().any(|a| a == "completed"), "{answers:?}");
    assert_eq!(read_object(&client, key, None).await, bodies.concat());
    assert!(open_uploads(&client, "").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_and_unknown_uploads() {
    let server = start("abort").await;
    let client = client(&server);
    let upload_id = create_upload(&client, "aborted.bin").await;
    upload_part(&client, "aborted.bin", &upload_id, 1, b"x".to_vec())
        .await
        .expect("UploadPart");

    // An upload id is only valid for its own key.
    let err = client
        .list_parts()
        .bucket(BUCKET)
        .key("other.bin")
        .upload_id(&upload_id)
        .send()
        .await
        .expect_err("ListParts under another key");
    assert_eq!(err.code(), Some("NoSuchUpload"));

    abort(&client, "aborted.bin", &upload_id)
        .await
        .expect("AbortMultipartUpload");

    let err = upload_part(&client, "aborted.bin", &upload_id, 2, b"x".to_vec())
        .await
        .expect_err("UploadPart after abort");
    assert_eq!(err.code(), Some("NoSuchUpload"));
    assert_eq!(status_of(&err), Some(404));

    let err = abort(&client, "aborted.bin", &upload_id)
        .await
        .expect_err("a second abort of the same upload");
    assert_eq!(err.code(), Some("NoSuchUpload"));

    let err = abort(&client, "aborted.bin", "not-an-upload")
        .await
        .expect_err("abort of an unknown upload");
    assert_eq!(err.code(), Some("NoSuchUpload"));

    assert!(open_uploads(&client, "").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_object_describes_the_object_and_404s_a_missing_key() {
    let server = start("head").await;
    let client = client(&server);
    let etag = store_object(&client, "head.bin", random_bytes(1234)).await;

    let described = head(&client, "head.bin").await.expect("HeadObject");
    assert_eq!(described.content_length(), Some(1234));
    assert_eq!(described.content_type(), Some("application/zip"));
    assert_eq!(described.e_tag(), Some(etag.as_str()));

    // What the API reads as "no object here" (`object_size` → None).
    let err = head(&client, "missing.bin")
        .await
        .expect_err("HeadObject of a missing key");
    assert_eq!(status_of(&err), Some(404));
    assert!(err.into_service_error().is_not_found());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_object_returns_the_whole_object_or_the_requested_range() {
    let server = start("range").await;
    let client = client(&server);
    let data = random_bytes(1000);
    store_object(&client, "ranged.bin", data.clone()).await;

    assert_eq!(read_object(&client, "ranged.bin", None).await, data);
    let out = client
        .get_object()
        .bucket(BUCKET)
        .key("ranged.bin")
        .range("bytes=0-3")
        .send()
        .await
        .expect("ranged GetObject");
    assert_eq!(out.content_length(), Some(4));
    assert_eq!(out.content_range(), Some("bytes 0-3/1000"));
    let body = out.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], &data[..4]);
    let suffix = read_object(&client, "ranged.bin", Some("bytes=-10".into())).await;
    assert_eq!(suffix, &data[990..]);

    let err = client
        .get_object()
        .bucket(BUCKET)
        .key("missing.bin")
        .send()
        .await
        .expect_err("GetObject of a missing key");
    assert_eq!(err.code(), Some("NoSuchKey"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_object_removes_the_object_and_a_missing_key_is_no_error() {
    let server = start("delete").await;
    let client = client(&server);
    store_object(&client, "doomed.bin", b"doomed".to_vec()).await;
    store_object(&client, "kept.bin", b"kept".to_vec()).await;

    for key in ["doomed.bin", "doomed.bin", "never-there.bin"] {
        client
            .delete_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DeleteObject {key}: {e:?}"));
    }
    let err = head(&client, "doomed.bin")
        .await
        .expect_err("HeadObject of a deleted object");
    assert_eq!(status_of(&err), Some(404));
    assert_eq!(read_object(&client, "kept.bin", None).await, b"kept");
}

/// Keys as the upload API builds them are far longer than a file name may
/// be once s3s-fs has base64-encoded them into its metadata file names; the
/// server must store them under short names and still answer with the
/// real keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_keys_work_everywhere() {
    let server = start("long-keys").await;
    let client = client(&server);
    let key = format!(
        "dev/moc-instructions/dev-user-00000000-0000-0000-0000-000000000001/\
         aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa/instruction/{}/\
         cccccccc-cccc-cccc-cccc-cccccccccccc.pdf",
        "b".repeat(44)
    );
    assert!(key.len() >= 200, "key is {} bytes", key.len());
    assert!(key.matches('/').count() >= 5);

    let upload_id = create_upload(&client, &key).await;
    assert_eq!(
        open_uploads(&client, "dev/moc-instructions/").await,
        [(key.clone(), upload_id.clone())]
    );

    let parts = [random_bytes(5 * MIB), random_bytes(1000)];
    let original = parts.concat();
    let mut etags = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let number = i32::try_from(i + 1).unwrap();
        let url = presign_part(&client, &key, &upload_id, number, Duration::from_secs(300)).await;
        let resp = put_url(&url, part.clone()).await;
        assert_eq!(resp.status(), 200, "part {number}: {:?}", resp.text().await);
        let etag = resp.headers().get("etag").expect("ETag").to_str().unwrap();
        etags.push((number, etag.to_owned()));
    }
    assert_eq!(part_numbers(&client, &key, &upload_id).await, [1, 2]);
    let done = complete(&client, &key, &upload_id, &etags)
        .await
        .expect("CompleteMultipartUpload with a long key");
    assert_eq!(done.key(), Some(key.as_str()));
    assert!(done.e_tag().unwrap().ends_with("-2\""));

    let described = head(&client, &key)
        .await
        .expect("HeadObject with a long key");
    assert_eq!(
        described.content_length(),
        Some(i64::try_from(original.len()).unwrap())
    );
    assert_eq!(described.content_type(), Some("application/zip"));

    // Across the boundary between the two parts.
    let (first, last) = (5 * MIB - 10, 5 * MIB + 9);
    let range = format!("bytes={first}-{last}");
    let body = read_object(&client, &key, Some(range)).await;
    assert_eq!(&body[..], &original[first..=last]);

    // ~300 bytes, one segment alone longer than a file name may be.
    let long_segment = format!("dev/{}/{}.bin", "s".repeat(260), "t".repeat(10));
    store_object(&client, &long_segment, b"small object".to_vec()).await;
    assert_eq!(
        read_object(&client, &long_segment, None).await,
        b"small object"
    );
    client
        .delete_object()
        .bucket(BUCKET)
        .key(&long_segment)
        .send()
        .await
        .expect("DeleteObject with a long key");
    let err = head(&client, &long_segment)
        .await
        .expect_err("HeadObject of a deleted object");
    assert_eq!(status_of(&err), Some(404));
}

/// What the expiry sweeper relies on: ListMultipartUploads filtered by
/// prefix and paged with key and upload-ID markers (several uploads of one
/// key included), and an abort after which an already issued presigned part
/// URL gets S3's 404 NoSuchUpload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_multipart_uploads_pages_by_prefix_and_abort_kills_presigned_urls() {
    let server = start("list-uploads").await;
    let client = client(&server);
    let mut mine = Vec::new();
    for key in [
        "stage/a.pdf",
        "stage/b.pdf",
        "stage/b.pdf",
        "stage/c.pdf",
        "stage/d.pdf",
    ] {
        mine.push((key.to_owned(), create_upload(&client, key).await));
    }
    create_upload(&client, "other/a.pdf").await;
    create_upload(&client, "stagecoach/x.pdf").await;

    let mut seen = Vec::new();
    let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
    let mut pages = 0;
    loop {
        let page = client
            .list_multipart_uploads()
            .bucket(BUCKET)
            .prefix("stage/")
            .max_uploads(2)
            .set_key_marker(key_marker.take())
            .set_upload_id_marker(id_marker.take())
            .send()
            .await
            .expect("ListMultipartUploads page");
        pages += 1;
        assert!(page.uploads().len() <= 2);
        for upload in page.uploads() {
            assert!(upload.initiated().is_some(), "uploads carry Initiated");
            seen.push((
                upload.key().unwrap().to_owned(),
                upload.upload_id().unwrap().to_owned(),
            ));
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        id_marker = page.next_upload_id_marker().map(str::to_owned);
        assert!(key_marker.is_some() && id_marker.is_some());
        assert!(pages < 10, "pagination does not advance");
    }
    assert_eq!(pages, 3);
    let mut want = mine.clone();
    want.sort();
    let mut got = seen.clone();
    got.sort();
    assert_eq!(got, want, "every upload under the prefix exactly once");
    let keys: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert!(keys.windows(2).all(|w| w[0] <= w[1]), "key order: {keys:?}");

    // An issued presigned URL stops working once its upload is aborted.
    let (key, upload_id) = &mine[0];
    let url = presign_part(&client, key, upload_id, 1, Duration::from_secs(300)).await;
    abort(&client, key, upload_id)
        .await
        .expect("AbortMultipartUpload");
    let resp = put_url(&url, b"late part".to_vec()).await;
    assert_eq!(resp.status(), 404);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("<Code>NoSuchUpload</Code>")
    );
    let left = client
        .list_multipart_uploads()
        .bucket(BUCKET)
        .prefix("stage/")
        .send()
        .await
        .expect("ListMultipartUploads");
    assert_eq!(left.uploads().len(), 4);
    assert!(
        left.uploads()
            .iter()
            .all(|u| u.upload_id() != Some(upload_id))
    );
}

/// Only what the API, the seeds and the scripts use is served; anything
/// else is refused as S3 refuses what it does not implement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_nothing_here_uses_are_not_implemented() {
    let server = start("unused").await;
    let client = client(&server);
    let err = client
        .put_object()
        .bucket(BUCKET)
        .key("x")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("PutObject");
    assert_eq!(
        (err.code(), status_of(&err)),
        (Some("NotImplemented"), Some(501))
    );
    let err = client
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .expect_err("ListObjectsV2");
    assert_eq!(
        (err.code(), status_of(&err)),
        (Some("NotImplemented"), Some(501))
    );
}

const PAGE_ORIGIN: &str = "http://127.0.0.1:3000";

async fn preflight(url: &str, origin: Option<&str>, method: &str) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, url)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "content-type");
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.expect("OPTIONS reaches the server")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_from_an_allowed_origin_can_put_parts_and_read_their_etags() {
    let server = start_with_cors(
        "cors",
        BucketCors {
            allowed_origins: vec![PAGE_ORIGIN.to_owned()],
        },
    )
    .await;
    let client = client(&server);
    let key = "dev/moc-instructions/u/s/instruction/f.pdf";
    let upload_id = create_upload(&client, key).await;
    let url = presign_part(&client, key, &upload_id, 1, Duration::from_secs(300)).await;

    // The preflight a browser sends before a cross-origin PUT.
    let allowed = preflight(&url, Some(PAGE_ORIGIN), "PUT").await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        header(&allowed, "access-control-allow-origin"),
        Some(PAGE_ORIGIN)
    );
    assert_eq!(
        header(&allowed, "access-control-allow-methods"),
        Some("PUT")
    );
    assert_eq!(
        header(&allowed, "access-control-allow-headers"),
        Some("content-type")
    );
    assert_eq!(
        header(&allowed, "access-control-expose-headers"),
        Some("ETag")
    );
    assert_eq!(header(&allowed, "access-control-max-age"), Some("3000"));
    assert!(header(&allowed, "vary").is_some_and(|v| v.contains("Origin")));

    // The PUT itself: stored, and its ETag readable by the page.
    let body = random_bytes(1024);
    let put = reqwest::Client::new()
        .put(&url)
        .header("origin", PAGE_ORIGIN)
        .body(body.clone())
        .send()
        .await
        .expect("PUT reaches the server");
    assert_eq!(put.status(), 200);
    assert_eq!(
        header(&put, "access-control-allow-origin"),
        Some(PAGE_ORIGIN)
    );
    assert_eq!(
        header(&put, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(header(&put, "access-control-expose-headers"), Some("ETag"));
    assert_eq!(
        header(&put, "etag"),
        Some(format!("\"{}\"", md5_hex(&body)).as_str())
    );

    // Errors to an allowed origin carry the headers too, so the page can
    // read the status instead of seeing an opaque network failure.
    let tampered = url.replace("partNumber=1", "partNumber=2");
    let refused = reqwest::Client::new()
        .put(&tampered)
        .header("origin", PAGE_ORIGIN)
        .body(vec![1u8; 16])
        .send()
        .await
        .expect("PUT reaches the server");
    assert_eq!(refused.status(), 403);
    assert_eq!(
        header(&refused, "access-control-allow-origin"),
        Some(PAGE_ORIGIN)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_origins_and_methods_get_no_cors_and_never_a_wildcard() {
    let server = start_with_cors(
        "cors-refused",
        BucketCors {
            allowed_origins: vec![PAGE_ORIGIN.to_owned()],
        },
    )
    .await;
    let client = client(&server);
    let key = "dev/moc-instructions/u/s/instruction/g.pdf";
    let upload_id = create_upload(&client, key).await;
    let url = presign_part(&client, key, &upload_id, 1, Duration::from_secs(300)).await;

    for (origin, method) in [
        (Some("https://evil.example"), "PUT"),
        // A prefix or a trailing slash is not the origin.
        (Some("http://127.0.0.1:30000"), "PUT"),
        (Some("http://127.0.0.1:3000/"), "PUT"),
        // The rule allows PUT only.
        (Some(PAGE_ORIGIN), "DELETE"),
    ] {
        let refused = preflight(&url, origin, method).await;
        assert_eq!(refused.status(), 403, "{origin:?} {method}");
        assert_eq!(header(&refused, "access-control-allow-origin"), None);
        assert!(refused.text().await.unwrap().contains("AccessForbidden"));
    }
    let no_origin = preflight(&url, None, "PUT").await;
    assert_eq!(no_origin.status(), 400);

    // The PUT from another origin is still served (CORS binds browsers,
    // not S3), but without any header that would let a page read it.
    let put = reqwest::Client::new()
        .put(&url)
        .header("origin", "https://evil.example")
        .body(vec![7u8; 64])
        .send()
        .await
        .expect("PUT reaches the server");
    assert_eq!(put.status(), 200);
    for name in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-expose-headers",
    ] {
        assert_eq!(header(&put, name), None, "{name}");
    }

    // A server started without origins refuses every preflight.
    let closed = start("cors-none").await;
    let closed_client = self::client(&closed);
    let upload_id = create_upload(&closed_client, key).await;
    let url = presign_part(&closed_client, key, &upload_id, 1, Duration::from_secs(300)).await;
    assert_eq!(
        preflight(&url, Some(PAGE_ORIGIN), "PUT").await.status(),
        403
    );
}

#[test]
fn the_readme_bucket_cors_rule_is_the_one_the_embedded_s3_applies() {
    // docs/bucket-cors.json is what the README tells operators to put on the
    // real bucket; the embedded S3 must answer browsers as that rule does.
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/bucket-cors.json")).expect("valid JSON");
    let rules = doc["CORSRules"].as_array().expect("CORSRules");
    assert_eq!(rules.len(), 1);
    let rule = &rules[0];
    let list = |name: &str| -> Vec<&str> {
        rule[name]
            .as_array()
            .unwrap_or_else(|| panic!("{name}"))
            .iter()
            .map(|v| v.as_str().expect("string"))
            .collect()
    };
    use moc_dev::s3_cors::{ALLOWED_METHODS, EXPOSE_HEADERS, MAX_AGE_SECONDS};
    assert_eq!(list("AllowedMethods").join(", "), ALLOWED_METHODS);
    assert_eq!(list("ExposeHeaders").join(", "), EXPOSE_HEADERS);
    assert_eq!(list("AllowedHeaders"), ["*"]);
    assert_eq!(rule["MaxAgeSeconds"].to_string(), MAX_AGE_SECONDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_bucket_cors_answers_the_readme_rule_and_head_bucket_knows_the_bucket() {
    // `moc-dev doctor` reads the bucket's CORS rule and HEADs the bucket.
    let cors = BucketCors {
        allowed_origins: vec![PAGE_ORIGIN.to_owned()],
    };
    let server = start_with_cors("get-bucket-cors", cors).await;
    let client = client(&server);
    let answer = client
        .get_bucket_cors()
        .bucket(BUCKET)
        .send()
        .await
        .expect("GetBucketCors");
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/bucket-cors.json")).expect("valid JSON");
    let documented = &doc["CORSRules"][0];
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    let [rule] = answer.cors_rules() else {
        panic!("one rule: {answer:?}")
    };
    assert_eq!(rule.allowed_origins(), [PAGE_ORIGIN]);
    assert_eq!(
        rule.allowed_methods(),
        strings(&documented["AllowedMethods"])
    );
    assert_eq!(
        rule.allowed_headers(),
        strings(&documented["AllowedHeaders"])
    );
    assert_eq!(rule.expose_headers(), strings(&documented["ExposeHeaders"]));
    assert_eq!(
        rule.max_age_seconds().map(i64::from),
        documented["MaxAgeSeconds"].as_i64()
    );
    client
        .head_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("HeadBucket");
    let missing = client
        .head_bucket()
        .bucket("moc-no-such-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        missing.raw_response().map(|r| r.status().as_u16()),
        Some(404)
    );

    // Without origins, the bucket has no CORS configuration, as S3 says.
    let closed = start("get-bucket-cors-none").await;
    let error = self::client(&closed)
        .get_bucket_cors()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("NoSuchCORSConfiguration"));
}

fn crc32c_of(data: &[u8]) -> String {
    moc_shared::domain::Crc32c::of(data).to_string()
}

/// Where a checksum test runs: a fresh embedded S3, or the external store
/// `MOC_TEST_S3` names, with keys under a prefix of the test's own (an
/// external bucket is shared).
struct ChecksumStore {
    kind: StoreKind,
    client: Client,
    bucket: String,
    prefix: String,
    _server: Option<TestServer>,
}

async fn checksum_store(name: &str) -> ChecksumStore {
    let prefix = unique_dir(name)
        .file_name()
        .and_then(|dir| dir.to_str())
        .map(|dir| format!("{dir}/"))
        .expect("a unique name");
    match external_store() {
        Some(external) => ChecksumStore {
            kind: external.kind,
            client: client_as(
                &external.endpoint,
                &external.access_key_id,
                &external.secret_access_key,
                &external.region,
            ),
            bucket: external.bucket,
            prefix,
            _server: None,
        },
        None => {
            let server = start(name).await;
            ChecksumStore {
                kind: StoreKind::Embedded,
                client: client(&server),
                bucket: BUCKET.into(),
                prefix,
                _server: Some(server),
            }
        }
    }
}

impl ChecksumStore {
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Opens an upload, with `ChecksumAlgorithm=CRC32C` and
    /// `ChecksumType=FULL_OBJECT` when `crc32c` (as the API does when a
    /// checksum is declared).
    async fn create(&self, key: &str, crc32c: bool) -> String {
        let request = self.client.create_multipart_upload().bucket(&self.bucket);
        let request = match crc32c {
            true => request
                .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32C)
                .checksum_type(aws_sdk_s3::types::ChecksumType::FullObject),
            false => request,
        };
        request
            .key(key)
            .send()
            .await
            .expect("CreateMultipartUpload")
            .upload_id()
            .expect("upload id")
            .to_owned()
    }

    /// UploadPart, declaring `crc32c` when given; the part's ETag.
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Vec<u8>,
        crc32c: Option<&str>,
    ) -> Result<String, SdkError<UploadPartError>> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .set_checksum_crc32_c(crc32c.map(str::to_owned))
            .body(ByteStream::from(body))
            .send()
            .await?;
        if crc32c.is_some() {
            assert_eq!(
                out.checksum_crc32_c(),
                crc32c,
                "S3 echoes the part's CRC32C"
            );
        }
        Ok(out.e_tag().expect("ETag").to_owned())
    }

    /// The (number, ETag) of every part the upload holds.
    async fn parts(&self, key: &str, upload_id: &str) -> Vec<(i32, String)> {
        self.client
            .list_parts()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .expect("ListParts")
            .parts()
            .iter()
            .map(|p| (p.part_number().unwrap(), p.e_tag().unwrap().to_owned()))
            .collect()
    }

    /// CompleteMultipartUpload, declaring the full-object `crc32c` when given.
    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
        crc32c: Option<&str>,
    ) -> Result<CompleteMultipartUploadOutput, SdkError<CompleteMultipartUploadError>> {
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(completed_upload(parts))
            .set_checksum_crc32_c(crc32c.map(str::to_owned))
            .set_checksum_type(crc32c.map(|_| aws_sdk_s3::types::ChecksumType::FullObject))
            .send()
            .await
    }

    /// HeadObject, in checksum mode when `checksums`.
    async fn head(
        &self,
        key: &str,
        checksums: bool,
    ) -> Result<HeadObjectOutput, SdkError<HeadObjectError>> {
        let mode = checksums.then_some(aws_sdk_s3::types::ChecksumMode::Enabled);
        self.client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_checksum_mode(mode)
            .send()
            .await
    }
}

/// Issue 24, as AWS S3 does it: a part whose bytes do not match its CRC32C
/// is refused and the part held before stays; a wrong full-object CRC32C at
/// completion is refused and the upload stays open; the right one completes
/// and HeadObject answers it in checksum mode.
#[tokio::test]
async fn crc32c_is_checked_per_part_and_for_the_whole_object() {
    let store = checksum_store("crc32c").await;
    let refusal = store.kind.checksum_mismatch_code();
    let key = &store.key("checksums/a.pdf");
    let upload_id = store.create(key, true).await;
    let (first, last) = (random_bytes(5 * 1024 * 1024), random_bytes(1000));
    let first_crc = crc32c_of(&first);
    let etag1 = store
        .upload_part(key, &upload_id, 1, first.clone(), Some(&first_crc))
        .await
        .expect("a matching part is stored");
    let mut flipped = first.clone();
    flipped[4096] ^= 0x01;
    let refused = store
        .upload_part(key, &upload_id, 1, flipped, Some(&first_crc))
        .await
        .expect_err("one flipped byte is refused");
    assert_eq!(status_of(&refused), Some(400));
    assert_eq!(refused.code(), Some(refusal));
    assert_eq!(
        store.parts(key, &upload_id).await,
        [(1, etag1.clone())],
        "the good part stays"
    );
    if store.kind.refused_part_hides_the_held_one() {
        let hidden = store
            .complete(key, &upload_id, &[(1, etag1.clone())], Some(&first_crc))
            .await
            .expect_err("the held part is hidden by the refused attempt");
        assert_eq!(hidden.code(), Some("InvalidPart"));
        let again = store
            .upload_part(key, &upload_id, 1, first.clone(), Some(&first_crc))
            .await
            .expect("the part sent again");
        assert_eq!(again, etag1);
    }
    let last_crc = crc32c_of(&last);
    let etag2 = store
        .upload_part(key, &upload_id, 2, last.clone(), Some(&last_crc))
        .await
        .unwrap();
    let parts = [(1, etag1), (2, etag2)];

    let whole = crc32c_of(&[first.as_slice(), last.as_slice()].concat());
    let wrong = store
        .complete(key, &upload_id, &parts, Some(&crc32c_of(b"other")))
        .await
        .expect_err("a wrong full-object CRC32C is refused");
    assert_eq!(status_of(&wrong), Some(400));
    assert_eq!(wrong.code(), Some(refusal));
    assert_eq!(
        store.parts(key, &upload_id).await,
        parts,
        "the upload stays open"
    );

    let done = store
        .complete(key, &upload_id, &parts, Some(&whole))
        .await
        .unwrap();
    assert_eq!(done.checksum_crc32_c(), Some(whole.as_str()));
    let with_mode = store.head(key, true).await.unwrap();
    assert_eq!(with_mode.checksum_crc32_c(), Some(whole.as_str()));
    assert_eq!(
        with_mode.checksum_type(),
        Some(&aws_sdk_s3::types::ChecksumType::FullObject)
    );
    let without = store.head(key, false).await.unwrap();
    assert_eq!(without.checksum_crc32_c(), None, "only in checksum mode");
}

/// A completion without a declared CRC32C still gets the object's computed
/// (a part sent without its CRC32C: AWS computes it, Garage refuses the
/// part); one declaring a CRC32C for an upload opened without it is refused.
#[tokio::test]
async fn crc32c_at_completion_follows_how_the_upload_was_opened() {
    let store = checksum_store("crc32c-open").await;
    let body = random_bytes(3000);

    let key = &store.key("checksums/computed.png");
    let upload_id = store.create(key, true).await;
    let unchecked = store
        .upload_part(key, &upload_id, 1, body.clone(), None)
        .await;
    let etag = match store.kind.parts_need_their_crc32c() {
        false => unchecked.expect("S3 computes the part's CRC32C"),
        true => {
            let refused = unchecked.expect_err("a part without its CRC32C is refused");
            assert_eq!(status_of(&refused), Some(400));
            assert_eq!(refused.code(), Some("InvalidRequest"));
            store
                .upload_part(key, &upload_id, 1, body.clone(), Some(&crc32c_of(&body)))
                .await
                .unwrap()
        }
    };
    store
        .complete(key, &upload_id, &[(1, etag)], None)
        .await
        .unwrap();
    let headed = store.head(key, true).await.unwrap();
    assert_eq!(headed.checksum_crc32_c(), Some(crc32c_of(&body).as_str()));

    let plain = &store.key("checksums/plain.png");
    let upload_id = store.create(plain, false).await;
    let etag = store
        .upload_part(plain, &upload_id, 1, body.clone(), None)
        .await
        .unwrap();
    let refused = store
        .complete(
            plain,
            &upload_id,
            &[(1, etag.clone())],
            Some(&crc32c_of(&body)),
        )
        .await
        .expect_err("no CRC32C was asked for at creation");
    assert_eq!(status_of(&refused), Some(400));
    store
        .complete(plain, &upload_id, &[(1, etag)], None)
        .await
        .unwrap();
    store
        .client
        .delete_object()
        .bucket(&store.bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    assert!(store.head(key, false).await.is_err());
}
