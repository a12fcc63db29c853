use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Method;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

pub const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test";
pub const AUDIENCE: &str = "moc-web-client";

/// An RSA key made for this test, and its JWKS.
pub struct Signer {
    encoding: EncodingKey,
    pub jwks: String,
}

impl Signer {
    pub fn new(kid: &str) -> Self {
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key");
        let pem = key.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8");
        let jwks = json!({"keys": [{
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        }]});
        Self {
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).expect("PEM key"),
            jwks: jwks.to_string(),
        }
    }

    pub fn token(&self, kid: &str, claims: Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("token")
    }
}

/// Claims of a Cognito access token (the `Authorization` header's).
pub fn claims(sub: &str, issuer: &str, exp_offset: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": sub, "iss": issuer, "exp": now + exp_offset, "iat": now, "token_use": "access", "client_id": AUDIENCE, "cognito:groups": ["users"]})
}

/// Claims of a Cognito ID token (what the frontend's `auth_token` cookie holds).
pub fn id_claims(sub: &str, exp_offset: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": sub, "iss": ISSUER, "exp": now + exp_offset, "iat": now, "token_use": "id", "aud": AUDIENCE, "cognito:groups": ["users"]})
}

/// A test app that verifies real JWTs signed by `signer` (no bypass).
pub async fn app_with_jwts(pool: PgPool, signer: &Signer, env: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("AUTH_BYPASS", "false"),
        ("AUTH_JWKS_JSON", signer.jwks.as_str()),
        ("AUTH_ISSUER", ISSUER),
        ("AUTH_AUDIENCE", AUDIENCE),
    ];
    vars.extend_from_slice(env);
    TestApp::with_env(pool, &vars).await
}

async fn create_with(app: &TestApp, token: Option<&str>) -> TestResponse {
    let mut request = TestApp::request(Method::POST, "/api/mocs/uploads/sessions")
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = json!({"files": [pdf_meta("a.pdf", 10)]}).to_string();
    app.send(
        request
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap(),
    )
    .await
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn jwts_are_verified_for_signature_issuer_expiry_audience_and_kid(pool: PgPool) {
    let signer = Signer::new("key-1");
    let app = TestApp::with_env(
        pool.clone(),
        &[
            ("AUTH_BYPASS", "false"),
            ("AUTH_JWKS_JSON", &signer.jwks),
            ("AUTH_ISSUER", ISSUER),
            ("AUTH_AUDIENCE", AUDIENCE),
        ],
    )
    .await;

    let valid = create_with(
        &app,
        Some(&signer.token("key-1", claims("user-a", ISSUER, 600))),
    )
    .await;
    valid.assert_status(201);
    let owner: String =
        sqlx::query_scalar("SELECT user_id FROM upload_sessions WHERE id = $1::uuid")
            .bind(valid.body["sessionId"].as_str().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(owner, "user-a");
    create_with(&app, Some(&signer.token("key-1", id_claims("user-b", 600))))
        .await
        .assert_status(201);

    let refused = [
        ("no credentials", None),
        (
            "expired",
            Some(signer.token("key-1", claims("user-a", ISSUER, -600))),
        ),
        (
            "wrong issuer",
            Some(signer.token("key-1", claims("user-a", "https://evil.example", 600))),
        ),
        (
            "unknown kid",
            Some(signer.token("key-2", claims("user-a", ISSUER, 600))),
        ),
        (
            "bad signature",
            Some(Signer::new("key-1").token("key-1", claims("user-a", ISSUER, 600))),
        ),
        (
            "wrong audience",
            Some(signer.token("key-1", {
                let mut c = claims("user-a", ISSUER, 600);
                c["client_id"] = json!("someone-else");
                c
            })),
        ),
        (
            "access token without token_use",
            Some(signer.token("key-1", {
                let mut c = claims("user-a", ISSUER, 600);
                c.as_object_mut().unwrap().remove("token_use");
                c
            })),
        ),
        (
            "ID token for another audience",
            Some(signer.token("key-1", {
                let mut c = id_claims("user-a", 600);
                c["aud"] = json!("someone-else");
                c
            })),
        ),
        (
            "HS256 signed with the public key",
            Some(
                jsonwebtoken::encode(
                    &{
                        let mut h = Header::new(Algorithm::HS256);
                        h.kid = Some("key-1".into());
                        h
                    },
                    &claims("user-a", ISSUER, 600),
                    &EncodingKey::from_secret(signer.jwks.as_bytes()),
                )
                .unwrap(),
            ),
        ),
        ("garbage", Some("not.a.jwt".to_owned())),
    ];
    for (case, token) in refused {
        let response = create_with(&app, token.as_deref()).await;
        assert_eq!(response.status, 401, "{case}: {}", response.body);
        assert_eq!(response.body["error"]["code"], "UNAUTHORIZED", "{case}");
        assert_eq!(
            response.body["error"]["message"], "authentication required",
            "{case}: says nothing of the failed check"
        );
    }
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn the_bypass_acts_as_the_dev_user_but_still_refuses_bad_tokens(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    create_with(&app, None).await.assert_status(201);
    create_with(&app, Some("forged"))
        .await
        .assert_error(401, "UNAUTHORIZED");
}

#[test]
fn the_bypass_is_refused_in_production() {
    let env = [
        ("DATABASE_URL", "postgres://x"),
        ("MOC_BUCKET", "b"),
        ("AUTH_BYPASS", "true"),
        ("STAGE", "production"),
    ];
    let error = moc_shared::config::Config::from_lookup(|name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap_err();
    assert!(error.to_string().contains("AUTH_BYPASS"));
}
