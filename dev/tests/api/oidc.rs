//! AWS through OIDC: with `AWS_ROLE_ARN` set, S3 is reached with the
//! credentials STS `AssumeRoleWithWebIdentity` gives for the request's
//! `x-vercel-oidc-token` (else `VERCEL_OIDC_TOKEN`).
//!
//! STS and S3 are moto's server (`moto[server]`, tools/moto): the one
//! scripts/oidc-check starts and names in `MOC_TEST_MOTO_URL`, else one per
//! test from `MOTO_SERVER`, so the cases run, and can fail, in every suite
//! run; the no-token case needs no STS.

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;
use moc_shared::tls::TrustRoots;

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/moc-uploads";
/// moto takes any token; the shape is a JWT's, as Vercel's is.
const HEADER_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJoZWFkZXIifQ.c2lnbmF0dXJl";
const ENV_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJlbnYifQ.c2lnbmF0dXJl";

/// The app with S3 and STS on moto and `AWS_ROLE_ARN` set; `extra` adds
/// variables. The project's S3_* keys TestApp sets are still there: the role
/// comes first.
async fn oidc_app(pool: PgPool, moto: &str, extra: &[(&str, &str)]) -> TestApp {
    let bucket = moto_bucket(moto).await;
    let mut env = vec![
        ("S3_ENDPOINT", moto),
        ("MOC_BUCKET", bucket.as_str()),
        ("AWS_ROLE_ARN", ROLE_ARN),
        ("AWS_ENDPOINT_URL_STS", moto),
    ];
    env.extend_from_slice(extra);
    TestApp::with_env(pool, &env).await
}

/// POST with the OIDC header when `token` is given.
async fn post(app: &TestApp, path: &str, body: Value, token: Option<&str>) -> TestResponse {
    let mut request =
        TestApp::request(Method::POST, path).header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("x-vercel-oidc-token", token);
    }
    app.send(
        request
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap(),
    )
    .await
}

/// A session with a 6 MiB PDF registered for two presigned parts; returns
/// the registration's answer.
async fn register_two_parts(app: &TestApp, token: Option<&str>) -> TestResponse {
    let meta = pdf_meta("manual.pdf", 6 * MIB);
    let created = post(
        app,
        "/api/mocs/uploads/sessions",
        json!({"files": [meta]}),
        token,
    )
    .await;
    created.assert_status(201);
    let session = created.body["sessionId"].as_str().unwrap().to_owned();
    let mut meta = pdf_meta("manual.pdf", 6 * MIB);
    meta["partCount"] = json!(2);
    post(
        app,
        &format!("/api/mocs/uploads/sessions/{session}/files"),
        meta,
        token,
    )
    .await
}

/// A query parameter of a presigned URL, decoded.
fn query(url: &str, name: &str) -> Option<String> {
    let uri: http::Uri = url.parse().unwrap();
    moc_shared::http::query_param(&uri, name)
}

/// The part URLs carry the session token and the key id STS issued, and a
/// PUT of part 1 to its URL succeeds. Returns the key id.
async fn assert_signed_by_the_role(registered: &TestResponse) -> String {
    registered.assert_status(201);
    let part = &registered.body["presignedUrls"][0];
    let url = part["url"].as_str().unwrap();
    assert!(query(url, "X-Amz-Security-Token").is_some(), "{url}");
    let credential = query(url, "X-Amz-Credential").unwrap();
    let key_id = credential.split('/').next().unwrap().to_owned();
    assert!(key_id.starts_with("ASIA"), "an STS key id: {key_id}");
    assert_ne!(key_id, ACCESS_KEY);
    let put = reqwest::Client::new()
        .put(url)
        .body(pdf_bytes(6 * MIB).slice(..5 * MIB))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200, "{:?}", put.text().await);
    key_id
}

/// The key id the instance holds now (no STS call: it is fresh).
async fn current_key_id(app: &TestApp) -> String {
    let credentials = app
        .state
        .s3()
        .credentials()
        .resolve()
        .await
        .unwrap()
        .unwrap();
    credentials.access_key_id().to_owned()
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn part_urls_are_signed_with_the_role_assumed_with_the_request_token(pool: PgPool) {
    let moto = moto().await;
    let app = oidc_app(pool, &moto.url, &[]).await;
    let registered = register_two_parts(&app, Some(HEADER_TOKEN)).await;
    let key_id = assert_signed_by_the_role(&registered).await;
    assert_eq!(key_id, current_key_id(&app).await);
    // Cached for the instance: the next request signs with the same.
    let again = register_two_parts(&app, Some(HEADER_TOKEN)).await;
    assert_eq!(assert_signed_by_the_role(&again).await, key_id);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn without_the_header_the_environment_token_is_used(pool: PgPool) {
    let moto = moto().await;
    let app = oidc_app(pool, &moto.url, &[("VERCEL_OIDC_TOKEN", ENV_TOKEN)]).await;
    let registered = register_two_parts(&app, None).await;
    let key_id = assert_signed_by_the_role(&registered).await;
    assert_eq!(key_id, current_key_id(&app).await);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn expired_credentials_are_refreshed_and_urls_never_outlive_them(pool: PgPool) {
    let moto = moto().await;
    // STS issues 6-second credentials; URLs would otherwise live 15 minutes.
    let app = oidc_app(pool, &moto.url, &[("AWS_ROLE_DURATION_SECONDS", "6")]).await;
    let first = register_two_parts(&app, Some(HEADER_TOKEN)).await;
    let first_key = assert_signed_by_the_role(&first).await;
    let url = first.body["presignedUrls"][0]["url"].as_str().unwrap();
    let expires: u64 = query(url, "X-Amz-Expires").unwrap().parse().unwrap();
    assert!(
        expires <= 6,
        "X-Amz-Expires={expires} outlives the credentials"
    );
    let expires_at = first.body["presignedUrls"][0]["expiresAt"]
        .as_str()
        .unwrap();
    let expires_at = chrono::DateTime::parse_from_rfc3339(expires_at).unwrap();
    assert!(
        expires_at <= chrono::Utc::now() + chrono::Duration::seconds(7),
        "{expires_at}"
    );

    tokio::time::sleep(std::time::Duration::from_millis(6_500)).await;
    // Expired: the next request's token gets new ones.
    let second = register_two_parts(&app, Some(HEADER_TOKEN)).await;
    let second_key = assert_signed_by_the_role(&second).await;
    assert_ne!(second_key, first_key, "the credentials were refreshed");

    tokio::time::sleep(std::time::Duration::from_millis(6_500)).await;
    // Expired again, and this request has no token to refresh with.
    let stranded = register_two_parts(&app, None).await;
    stranded.assert_error(503, "AWS_CREDENTIALS_UNAVAILABLE");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_role_without_any_token_answers_503_on_the_routes_that_use_s3(pool: PgPool) {
    // STS is never reached: nothing listens at this endpoint.
    let app = TestApp::with_env(
        pool,
        &[
            ("AWS_ROLE_ARN", ROLE_ARN),
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1"),
        ],
    )
    .await;
    let refused = register_two_parts(&app, None).await;
    refused.assert_error(503, "AWS_CREDENTIALS_UNAVAILABLE");
    // The frontend's vocabulary: retryable, and says when.
    assert_eq!(refused.code(), "SERVICE_UNAVAILABLE");
    assert!(refused.headers.contains_key("retry-after"));
    // The body names no internals; the log line says what to fix.
    assert!(!refused.body.to_string().contains("VERCEL_OIDC_TOKEN"));
    // A token with STS unreachable: also 503, retryable.
    let unreachable = register_two_parts(&app, Some(HEADER_TOKEN)).await;
    unreachable.assert_error(503, "AWS_CREDENTIALS_UNAVAILABLE");
    assert_eq!(unreachable.body["error"]["details"]["retryable"], true);
}

#[tokio::test]
async fn sts_assume_role_with_web_identity_answers_temporary_credentials() {
    let moto = moto().await;
    use moc_shared::sts;
    let http = sts::http_client(&TrustRoots::builtin());
    let request = sts::WebIdentityRequest {
        endpoint: &sts::endpoint("us-east-1", Some(&moto.url)),
        role_arn: ROLE_ARN,
        session_name: "moc-uploads-test",
        token: HEADER_TOKEN,
        duration_seconds: Some(900),
    };
    let issued = sts::assume_role_with_web_identity(&http, &request)
        .await
        .unwrap();
    assert!(issued.access_key_id.starts_with("ASIA"), "{issued:?}");
    assert!(!issued.session_token.is_empty());
    let left = issued
        .expiration
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(left.as_secs() > 800 && left.as_secs() <= 900, "{left:?}");
}
