//! Which keys S3 requests and presigned URLs are signed with, against the
//! embedded S3, which checks every SigV4 signature: the project's own
//! `S3_*` keys, never the `AWS_*` variables Vercel may inject.

use serde_json::json;
use sqlx::PgPool;

use crate::finalize::{FINALIZE, finalize_body, session_ready_to_finalize};
use crate::helpers::*;

/// What Vercel may put in every function's environment: not usable keys.
const INJECTED: [(&str, &str); 4] = [
    ("VERCEL", "1"),
    ("AWS_ACCESS_KEY_ID", "ASIAINJECTEDBOGUS"),
    ("AWS_SECRET_ACCESS_KEY", "injected-bogus-secret"),
    ("AWS_SESSION_TOKEN", "injected-bogus-session-token"),
];

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn the_upload_flow_signs_with_the_projects_keys_despite_injected_aws_ones(pool: PgPool) {
    // TestApp sets S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY to the embedded
    // S3's keys.
    let app = TestApp::with_env(pool, &INJECTED).await;
    let session = app
        .create_session(json!([pdf_meta("probe.pdf", 6 * MIB)]))
        .await;
    let mut meta = pdf_meta("probe.pdf", 6 * MIB);
    meta["partCount"] = json!(2);
    let registered = app.register(&session, meta).await;
    registered.assert_status(201);
    let url = registered.body["presignedUrls"][0]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", registered.body));
    assert!(
        url.contains(&format!("X-Amz-Credential={ACCESS_KEY}%2F")),
        "{url}"
    );
    assert!(!url.contains("X-Amz-Security-Token"), "{url}");

    let session = session_ready_to_finalize(&app).await;
    app.post(FINALIZE, finalize_body(&session, "Signed right"))
        .await
        .assert_status(201);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn injected_aws_keys_alone_are_refused_by_the_store(pool: PgPool) {
    // Without the project's keys, the injected ones are the last resort,
    // and the embedded S3 refuses their signature: what every S3 call did
    // on Vercel before S3_ACCESS_KEY_ID existed.
    let mut env = INJECTED.to_vec();
    env.extend([("S3_ACCESS_KEY_ID", ""), ("S3_SECRET_ACCESS_KEY", "")]);
    let app = TestApp::with_env(pool, &env).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 64)])).await;
    let refused = app.register(&session, pdf_meta("a.pdf", 64)).await;
    assert!(
        refused.is_server_error(),
        "{:?} {}",
        refused.status,
        refused.body
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn half_a_key_pair_fails_only_the_routes_that_use_s3(pool: PgPool) {
    let app = TestApp::with_env(pool, &[("S3_SECRET_ACCESS_KEY", "")]).await;
    let session = app.create_session(json!([pdf_meta("a.pdf", 64)])).await;
    app.get(&format!("/api/mocs/uploads/sessions/{session}"))
        .await
        .assert_status(200);
    app.register(&session, pdf_meta("a.pdf", 64))
        .await
        .assert_error(500, "CONFIGURATION_ERROR");
}
