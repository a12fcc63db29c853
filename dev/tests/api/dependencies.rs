//! A dependency's bad configuration fails only what needs it: Redis is used
//! by finalize alone, so a Redis URL that cannot be used never takes down
//! the other routes (a Redis that does not answer, TLS or not:
//! `finalize::finalize_fails_open_when_redis_is_unreachable`).

use serde_json::json;
use sqlx::PgPool;

use crate::finalize::{FINALIZE, finalize_body};
use crate::helpers::*;

/// Create, register, upload, complete and read a session: none of it uses
/// Redis. Returns the session, ready to finalize.
pub(crate) async fn serves_without_redis(app: &TestApp) -> String {
    let session = app.create_session(json!([pdf_meta("a.pdf", 64)])).await;
    app.completed_file(&session, pdf_meta("a.pdf", 64), pdf_bytes(64))
        .await;
    app.get(&format!("/api/mocs/uploads/sessions/{session}"))
        .await
        .assert_status(200);
    session
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_unusable_redis_url_fails_only_finalize(pool: PgPool) {
    for (variable, url) in [
        (
            "REDIS_URL",
            "rediss://default:secret@127.0.0.1:6379#insecure",
        ),
        ("KV_URL", "memcached://127.0.0.1:11211"),
        ("REDIS_URL", "rediss://default:secret@127.0.0.1:notaport"),
    ] {
        let mut env = vec![(variable, url)];
        if variable == "KV_URL" {
            // KV_URL is read only when REDIS_URL is unset.
            env.push(("REDIS_URL", ""));
        }
        let app = TestApp::with_env(pool.clone(), &env).await;
        let session = serves_without_redis(&app).await;
        let refused = app.post(FINALIZE, finalize_body(&session, "Refused")).await;
        refused.assert_error(500, "CONFIGURATION_ERROR");
        assert!(
            !refused.body.to_string().contains("secret"),
            "{variable}={url}: {}",
            refused.body
        );
    }
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn kv_url_is_used_when_redis_url_is_unset(pool: PgPool) {
    let redis_url =
        std::env::var("MOC_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let app = TestApp::with_env(
        pool,
        &[
            ("REDIS_URL", ""),
            ("KV_URL", &redis_url),
            ("FINALIZE_RATE_LIMIT_PER_MINUTE", "1"),
        ],
    )
    .await;
    let missing = uuid::Uuid::new_v4().to_string();
    // Two in a row may straddle a minute boundary; three cannot both.
    let statuses = [
        app.post(FINALIZE, finalize_body(&missing, "x"))
            .await
            .status,
        app.post(FINALIZE, finalize_body(&missing, "x"))
            .await
            .status,
        app.post(FINALIZE, finalize_body(&missing, "x"))
            .await
            .status,
    ];
    assert!(
        statuses.contains(&http::StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn redis_answers_a_ping_with_the_configured_roots_and_tls_refuses_an_unknown_ca() {
    use moc_shared::kv::RedisTarget;
    use moc_shared::tls::TrustRoots;
    use std::time::Duration;
    let timeout = Duration::from_secs(2);
    // scripts/redis-tls-check: a TLS-only server whose CA is in SSL_CERT_FILE.
    let Ok(url) = std::env::var("MOC_TEST_REDIS_URL") else {
        let plain = RedisTarget::parse("redis://127.0.0.1:6379", &TrustRoots::builtin()).unwrap();
        plain
            .ping(timeout)
            .await
            .expect("the local Redis answers PING");
        return;
    };
    let ca = std::env::var("MOC_TEST_SSL_CERT_FILE").expect("the test CA");
    let trusted = TrustRoots::load(Some(&ca)).unwrap();
    assert_eq!(trusted.extra_count(), 1);
    let target = RedisTarget::parse(&url, &trusted).unwrap();
    assert!(target.is_tls());
    target
        .ping(timeout)
        .await
        .expect("PING over TLS with the CA trusted");
    // The compiled-in roots alone do not know the test CA: the handshake
    // fails, so the server really is verified.
    let untrusted = RedisTarget::parse(&url, &TrustRoots::builtin()).unwrap();
    let error = untrusted.ping(timeout).await.unwrap_err();
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "{error}"
    );
    // And the password is checked.
    let wrong = url.replacen("default:", "default:wrong", 1);
    let refused = RedisTarget::parse(&wrong, &trusted)
        .unwrap()
        .ping(timeout)
        .await;
    assert!(refused.is_err());
}
