//! `moc-dev doctor` against the local services: real Postgres (a fresh
//! database per test), the local Redis, the embedded S3 with the README's
//! bucket CORS rule and, for OIDC, moto's STS and S3. One environment that
//! passes every check, then one broken environment per check, each failing
//! that check with its fix. The last tests run the real `moc-dev doctor`
//! binary on an env file as `vercel env pull` writes it.

#![allow(clippy::unwrap_used, reason = "in a test an unwrap is an assertion")]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use moc_dev::doctor::{self, DoctorEnv, Report};
use moc_dev::s3::{BucketCors, EmbeddedS3, EmbeddedS3Config};
use moc_shared::config::S3Config;
use moc_shared::s3::{S3Store, StaticCredentials};
use sqlx::PgPool;

const ACCESS_KEY: &str = "moc-doctor-access";
const SECRET_KEY: &str = "moc-doctor-secret";
const BUCKET: &str = "moc-doctor";
const REGION: &str = "us-east-1";
/// The page the browser uploads from, in the API's and the bucket's CORS.
const PAGE_ORIGIN: &str = "https://mocs.example.com";
/// A closed local port: whatever points here is unreachable.
const CLOSED: &str = "127.0.0.1:1";
/// The public half of an RSA key, as an issuer publishes it.
const JWKS: &str = r#"{"keys":[{"kty":"RSA","kid":"doctor-test","use":"sig","alg":"RS256","e":"AQAB","n":"pEtk81qrd4g9ud951UUpeMGApJcJampiUJDg_z9ZPkDHGe7jMt8xAh35Q3gMj-TKMJYZImSKsCbYdwc7RMwImEox4ggolA1Tfvk_jKfmfouUHZj7FMHFpGH9sT8FNcWuEz8syXBYGAgn_NicBW9tfAgrVebKvhZTE-npN3S87aVfshbnIMIHDDlLvo-hXVeejb232r9pHAPq-BAJg0auB7p7NdLNcBJQ3UGk_8aulFqB68xxhQywDjgU82FZT-x_kKvy5ocSsQWKhsl4QkCRm5MH5MqVVN2-JPKB6abgvoEtFtiVUBKO8TR28m-znufUZJuAQA9CULzq4k-18U2BbQ"}]}"#;

/// The embedded S3 of one test, over its own directory.
struct Bucket {
    // Declared first so the server stops before its directory is removed.
    s3: EmbeddedS3,
    dir: PathBuf,
}

impl Drop for Bucket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Bucket {
    /// A bucket carrying the README's CORS rule for `origins` (none: no
    /// CORS configuration at all).
    async fn start(origins: &[&str]) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "moc-doctor-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4().simple()
        ));
        let cors = BucketCors {
            allowed_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
        };
        let settings = EmbeddedS3Config {
            data_dir: dir.clone(),
            bind: "127.0.0.1:0".parse().unwrap(),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            region: REGION.into(),
            buckets: vec![BUCKET.into()],
        };
        let s3 = EmbeddedS3::start_with_cors(settings, cors)
            .await
            .expect("embedded S3 starts");
        Self { s3, dir }
    }
}

/// The test database's URL (the local server trusts user postgres).
fn database_url(pool: &PgPool) -> String {
    let options = pool.connect_options();
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().expect("a test database")
    )
}

/// A production deployment as Vercel provisions it, every service real:
/// what `vercel env pull --environment=production` would write, with the
/// variables Vercel may inject (`VERCEL`, unusable `AWS_*` keys) included.
fn good_env(pool: &PgPool, bucket: &Bucket) -> Vec<(String, String)> {
    let url = database_url(pool);
    [
        ("VERCEL", "1"),
        ("VERCEL_ENV", "production"),
        ("STAGE", "production"),
        ("DATABASE_URL", url.as_str()),
        ("DATABASE_URL_UNPOOLED", url.as_str()),
        ("REDIS_URL", "redis://127.0.0.1:6379"),
        ("MOC_BUCKET", BUCKET),
        ("AWS_REGION", REGION),
        ("S3_ENDPOINT", bucket.s3.endpoint().as_str()),
        ("S3_ACCESS_KEY_ID", ACCESS_KEY),
        ("S3_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_ACCESS_KEY_ID", "ASIAINJECTEDBYTHEPLATFORM"),
        ("AWS_SECRET_ACCESS_KEY", "injected-and-unusable"),
        ("AWS_SESSION_TOKEN", "injected-and-unusable"),
        ("AUTH_JWKS_JSON", JWKS),
        (
            "AUTH_ISSUER",
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_doctor",
        ),
        ("CORS_ALLOWED_ORIGINS", PAGE_ORIGIN),
        ("ALLOW_BROWSER_UPLOADS", "true"),
        ("CRON_SECRET", "0123456789abcdef0123456789abcdef"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    // scripts/redis-tls-check: Redis as Upstash serves it (rediss://, a
    // password), trusted through a CA of its own in SSL_CERT_FILE.
    .chain(
        [
            ("REDIS_URL", "MOC_TEST_REDIS_URL"),
            ("SSL_CERT_FILE", "MOC_TEST_SSL_CERT_FILE"),
        ]
        .into_iter()
        .filter_map(|(var, test_var)| Some((var.to_owned(), std::env::var(test_var).ok()?))),
    )
    .collect()
}

async fn doctor_with(
    pool: &PgPool,
    bucket: &Bucket,
    change: impl FnOnce(&mut DoctorEnv),
) -> Report {
    let mut env = DoctorEnv::from_pairs(good_env(pool, bucket));
    change(&mut env);
    doctor::run(&env).await
}

/// `name` failed, naming `problem` and suggesting `fix`, and every check
/// in `passing` still passed.
#[track_caller]
fn assert_fails(report: &Report, name: &str, problem: &str, fix: &str, passing: &[&str]) {
    let check = report
        .check(name)
        .unwrap_or_else(|| panic!("no {name} line:\n{report}"));
    let failure = check
        .result
        .as_ref()
        .expect_err(&format!("{name} passed:\n{report}"));
    assert!(
        failure.problem.contains(problem),
        "{name}: {failure:?}\n{report}"
    );
    assert!(failure.fix.contains(fix), "{name}: {failure:?}\n{report}");
    assert!(!report.passed());
    for other in passing {
        let line = report
            .check(other)
            .unwrap_or_else(|| panic!("no {other} line:\n{report}"));
        assert!(line.result.is_ok(), "{other} failed too:\n{report}");
    }
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_deployment_as_vercel_provisions_it_passes_every_check(pool: PgPool) {
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let report = doctor_with(&pool, &bucket, |_| {}).await;
    assert!(report.passed(), "{report}");
    let names: Vec<&str> = report.checks.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            doctor::CONFIGURATION,
            doctor::POSTGRES_POOLED,
            doctor::POSTGRES_UNPOOLED,
            doctor::MIGRATIONS,
            doctor::REDIS,
            doctor::BUCKET,
            doctor::BUCKET_CORS,
            doctor::PRESIGNED_UPLOAD,
            doctor::AWS_ROLE,
            doctor::AWS_CREDENTIALS,
            doctor::JWKS,
            doctor::CRON_SECRET,
            doctor::PRODUCTION_BYPASS,
        ]
    );
    let text = report.to_string();
    assert_eq!(text.lines().count(), names.len(), "{text}");
    assert!(text.lines().all(|line| line.starts_with("✔ ")), "{text}");
    assert!(
        text.contains("PUT allowed from [\"https://mocs.example.com\"]"),
        "{text}"
    );
    assert!(
        text.contains("S3_ACCESS_KEY_ID; AWS_* keys are not used"),
        "{text}"
    );
    if std::env::var("MOC_TEST_REDIS_URL").is_ok_and(|url| url.starts_with("rediss://")) {
        assert!(text.contains("answers PING over TLS"), "{text}");
    }
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_configuration_the_functions_refuse_is_the_only_line(pool: PgPool) {
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let report = doctor_with(&pool, &bucket, |env| {
        env.remove("MOC_BUCKET");
        env.set("AUTH_BYPASS", "true");
    })
    .await;
    assert_fails(
        &report,
        doctor::CONFIGURATION,
        "MOC_BUCKET (or LEGO_API_BUCKET_NAME) is required",
        "Environment Variables",
        &[],
    );
    let failure = report.checks[0].result.as_ref().unwrap_err();
    assert!(
        failure
            .problem
            .contains("AUTH_BYPASS=true is forbidden when STAGE=production"),
        "{report}"
    );
    assert_eq!(report.checks.len(), 1, "{report}");
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_unreachable_pooled_database_fails_with_the_pooled_url_as_the_fix(pool: PgPool) {
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let report = doctor_with(&pool, &bucket, |env| {
        env.set("DATABASE_URL", format!("postgres://postgres@{CLOSED}/moc"));
    })
    .await;
    assert_fails(
        &report,
        doctor::POSTGRES_POOLED,
        "refused",
        "DATABASE_URL (or POSTGRES_URL)",
        &[doctor::POSTGRES_UNPOOLED, doctor::MIGRATIONS],
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_unreachable_direct_database_fails_with_the_unpooled_url_as_the_fix(pool: PgPool) {
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let report = doctor_with(&pool, &bucket, |env| {
        env.remove("DATABASE_URL_UNPOOLED");
        env.set(
            "POSTGRES_URL_NON_POOLING",
            format!("postgres://postgres@{CLOSED}/moc"),
        );
    })
    .await;
    assert_fails(
        &report,
        doctor::POSTGRES_UNPOOLED,
        "refused",
        "DATABASE_URL_UNPOOLED",
        &[doctor::POSTGRES_POOLED],
    );
    assert_fails(
        &report,
        doctor::MIGRATIONS,
        "refused",
        "DATABASE_URL_UNPOOLED",
        &[],
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_database_missing_the_latest_migration_fails_with_scripts_migrate_as_the_fix(
    pool: PgPool,
) {
    let latest = moc_shared::db::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
        .bind(latest)
        .execute(&pool)
        .await
        .unwrap();
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let report = doctor_with(&pool, &bucket, |_| {}).await;
    let count = moc_shared::db::MIGRATOR.iter().count();
    assert_fails(
        &report,
        doctor::MIGRATIONS,
        &format!("1 of {count} migrations not applied: [{latest}]"),
        "scripts/migrate",
        &[doctor::POSTGRES_POOLED, doctor::POSTGRES_UNPOOLED],
    );
}

#[sqlx::test(migrations = false)]
async fn a_database_never_migrated_fails_with_scripts_migrate_as_the_fix(pool: PgPool) {
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let report = doctor_with(&pool, &bucket, |_| {}).await;
    assert_fails(
        &report,
        doctor::MIGRATIONS,
        "no migration was ever applied",
        "scripts/migrate",
        &[doctor::POSTGRES_POOLED, doctor::POSTGRES_UNPOOLED],
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn redis_that_does_not_answer_or_is_unset_fails_with_upstash_as_the_fix(pool: PgPool) {
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let report = doctor_with(&pool, &bucket, |env| {
        env.set("REDIS_URL", format!("redis://default:secret@{CLOSED}"));
    })
    .await;
    assert_fails(
        &report,
        doctor::REDIS,
        "redis://default:***@127.0.0.1:1",
        "Upstash",
        &[doctor::POSTGRES_POOLED, doctor::BUCKET],
    );
    let failure = report
        .check(doctor::REDIS)
        .unwrap()
        .result
        .as_ref()
        .unwrap_err();
    assert!(
        !failure.problem.contains("secret"),
        "the password is never shown: {failure:?}"
    );

    let report = doctor_with(&pool, &bucket, |env| env.remove("REDIS_URL")).await;
    assert_fails(
        &report,
        doctor::REDIS,
        "REDIS_URL is unset",
        "REDIS_URL and KV_URL",
        &[],
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_bucket_that_does_not_exist_fails_head_bucket_with_its_fix(pool: PgPool) {
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let report = doctor_with(&pool, &bucket, |env| {
        env.set("MOC_BUCKET", "moc-no-such-bucket")
    })
    .await;
    assert_fails(
        &report,
        doctor::BUCKET,
        "HeadBucket answered 404",
        "create the bucket, or set MOC_BUCKET",
        &[doctor::REDIS, doctor::AWS_CREDENTIALS],
    );
    assert_fails(
        &report,
        doctor::PRESIGNED_UPLOAD,
        "CreateMultipartUpload",
        "create the bucket",
        &[],
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_bucket_without_cors_or_without_the_page_origin_fails_with_the_cors_json_as_the_fix(
    pool: PgPool,
) {
    let no_cors = Bucket::start(&[]).await;
    let report = doctor_with(&pool, &no_cors, |_| {}).await;
    assert_fails(
        &report,
        doctor::BUCKET_CORS,
        "no CORS configuration",
        "put-bucket-cors --bucket moc-doctor --cors-configuration file://docs/bucket-cors.json",
        &[doctor::BUCKET, doctor::PRESIGNED_UPLOAD],
    );

    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let report = doctor_with(&pool, &bucket, |env| {
        env.set(
            "CORS_ALLOWED_ORIGINS",
            format!("{PAGE_ORIGIN},https://beta.mocs.example.com"),
        );
    })
    .await;
    assert_fails(
        &report,
        doctor::BUCKET_CORS,
        "[\"https://beta.mocs.example.com\"]",
        "AllowedOrigins",
        &[doctor::BUCKET],
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn keys_s3_refuses_fail_the_presigned_upload_with_the_credentials_as_the_fix(pool: PgPool) {
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let report = doctor_with(&pool, &bucket, |env| {
        env.set("S3_SECRET_ACCESS_KEY", "not-the-secret")
    })
    .await;
    assert_fails(
        &report,
        doctor::PRESIGNED_UPLOAD,
        "SignatureDoesNotMatch",
        "the S3 credentials are wrong",
        &[doctor::AWS_ROLE, doctor::AWS_CREDENTIALS],
    );
    assert_fails(
        &report,
        doctor::BUCKET,
        "HeadBucket answered 403",
        "check the S3 credentials",
        &[],
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_role_without_a_token_or_an_sts_fails_with_its_fix(pool: PgPool) {
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let role =
        |env: &mut DoctorEnv| env.set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/moc-uploads");
    let report = doctor_with(&pool, &bucket, role).await;
    assert_fails(
        &report,
        doctor::AWS_ROLE,
        "VERCEL_OIDC_TOKEN is not",
        "vercel env pull",
        &[doctor::AWS_CREDENTIALS, doctor::REDIS],
    );
    assert_fails(
        &report,
        doctor::PRESIGNED_UPLOAD,
        "no S3 credentials",
        "AWS_ROLE_ARN",
        &[],
    );

    let report = doctor_with(&pool, &bucket, |env| {
        role(env);
        env.set("VERCEL_OIDC_TOKEN", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
        env.set("AWS_ENDPOINT_URL_STS", format!("http://{CLOSED}"));
    })
    .await;
    assert_fails(
        &report,
        doctor::AWS_ROLE,
        "STS could not be reached at http://127.0.0.1:1",
        "AWS_ENDPOINT_URL_STS",
        &[doctor::AWS_CREDENTIALS],
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_jwks_that_does_not_parse_or_cannot_be_fetched_fails_with_its_fix(pool: PgPool) {
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let report = doctor_with(&pool, &bucket, |env| {
        env.set("AUTH_JWKS_JSON", r#"{"keys": "#)
    })
    .await;
    assert_fails(
        &report,
        doctor::JWKS,
        "AUTH_JWKS_JSON is not a JWKS",
        "AUTH_JWKS_URL",
        &[doctor::CONFIGURATION],
    );

    let report = doctor_with(&pool, &bucket, |env| {
        env.remove("AUTH_JWKS_JSON");
        env.set(
            "AUTH_JWKS_URL",
            format!("http://{CLOSED}/.well-known/jwks.json"),
        );
    })
    .await;
    assert_fails(
        &report,
        doctor::JWKS,
        "AUTH_JWKS_URL",
        "/.well-known/jwks.json",
        &[],
    );
}

/// `dir` served over HTTP as static files (`moc_dev::statics`, what the dev
/// server serves `public/` with), as an issuer publishes its JWKS; stops
/// when dropped.
struct StaticFiles {
    base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for StaticFiles {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl StaticFiles {
    async fn serve(dir: &Path) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let root = dir.to_owned();
        let server = tokio::spawn(moc_dev::platform::serve(listener, move |request, _| {
            let root = root.clone();
            async move {
                let found = moc_dev::statics::serve(&root, request.method(), request.uri().path());
                match found.await {
                    Some(file) => file.map(http_body_util::Full::new),
                    None => http::Response::builder()
                        .status(404)
                        .body(http_body_util::Full::new(bytes::Bytes::new()))
                        .unwrap(),
                }
            }
        }));
        Self { base, server }
    }
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_jwks_url_that_serves_the_keys_passes_and_one_that_serves_none_fails(pool: PgPool) {
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let issuer = bucket.dir.join("issuer");
    std::fs::create_dir_all(&issuer).unwrap();
    std::fs::write(issuer.join("jwks.json"), JWKS).unwrap();
    let files = StaticFiles::serve(&bucket.dir).await;
    let with_url = |path: &str| {
        let url = format!("{}/issuer/{path}", files.base);
        move |env: &mut DoctorEnv| {
            env.remove("AUTH_JWKS_JSON");
            env.set("AUTH_JWKS_URL", url);
        }
    };
    let report = doctor_with(&pool, &bucket, with_url("jwks.json")).await;
    assert!(report.passed(), "{report}");
    let jwks = report.check(doctor::JWKS).unwrap().result.as_ref().unwrap();
    assert!(
        jwks.ends_with("/issuer/jwks.json: 1 usable key(s)"),
        "{jwks}"
    );

    let report = doctor_with(&pool, &bucket, with_url("no-such-jwks.json")).await;
    assert_fails(
        &report,
        doctor::JWKS,
        "404 Not Found",
        "AUTH_JWKS_URL",
        &[doctor::CONFIGURATION],
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn no_cron_secret_fails_with_a_generated_one_as_the_fix(pool: PgPool) {
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let report = doctor_with(&pool, &bucket, |env| env.remove("CRON_SECRET")).await;
    assert_fails(
        &report,
        doctor::CRON_SECRET,
        "CRON_SECRET is unset",
        "vercel env add CRON_SECRET production",
        &[doctor::PRODUCTION_BYPASS],
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn auth_bypass_in_a_vercel_production_environment_fails_with_its_removal_as_the_fix(
    pool: PgPool,
) {
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    // STAGE=dev, so the functions themselves would accept the bypass.
    let report = doctor_with(&pool, &bucket, |env| {
        env.set("STAGE", "dev");
        env.set("AUTH_BYPASS", "true");
    })
    .await;
    assert_fails(
        &report,
        doctor::PRODUCTION_BYPASS,
        "AUTH_BYPASS on in production",
        "remove AUTH_BYPASS from the Production environment",
        &[doctor::CONFIGURATION],
    );

    let report = doctor_with(&pool, &bucket, |env| env.set("STAGE", "dev")).await;
    assert_fails(
        &report,
        doctor::PRODUCTION_BYPASS,
        "VERCEL_ENV=production with STAGE=dev",
        "STAGE=production",
        &[],
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn signing_with_the_injected_aws_variables_on_vercel_fails_with_s3_keys_or_oidc_as_the_fix(
    pool: PgPool,
) {
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let report = doctor_with(&pool, &bucket, |env| {
        env.remove("S3_ACCESS_KEY_ID");
        env.remove("S3_SECRET_ACCESS_KEY");
    })
    .await;
    assert_fails(
        &report,
        doctor::AWS_CREDENTIALS,
        "AWS_SESSION_TOKEN, which Vercel may inject",
        "S3_ACCESS_KEY_ID",
        &[doctor::AWS_ROLE],
    );
    // Signing with them fails for real, too (the embedded S3 says
    // NotSignedUp of an unknown key, AWS InvalidAccessKeyId).
    assert_fails(
        &report,
        doctor::PRESIGNED_UPLOAD,
        "CreateMultipartUpload failed (NotSignedUp)",
        "the S3 credentials are wrong",
        &[],
    );
}

/// moto's server (STS and S3) on a free local port; stopped on drop.
struct Moto {
    _child: tokio::process::Child,
    endpoint: String,
}

impl Moto {
    async fn start() -> Self {
        let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{program} (moto[server], tools/moto; scripts/moto installs it) does not start: {e}"));
        let endpoint = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self {
                    _child: child,
                    endpoint,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto does not answer on {endpoint}");
    }

    /// A bucket with the README's CORS rule for the page's origin.
    async fn bucket(&self) {
        let config = S3Config {
            bucket: BUCKET.into(),
            region: REGION.into(),
            endpoint: Some(self.endpoint.clone()),
            public_file_base_url: String::new(),
        };
        let keys = StaticCredentials {
            access_key_id: "moto".into(),
            secret_access_key: "moto".into(),
            session_token: None,
        };
        let store = S3Store::new(&config, Some(keys));
        store
            .client()
            .create_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .expect("CreateBucket");
        let rule = CorsRule::builder()
            .allowed_origins(PAGE_ORIGIN)
            .allowed_methods("PUT")
            .allowed_headers("*")
            .expose_headers("ETag")
            .max_age_seconds(3000)
            .build()
            .unwrap();
        let cors = CorsConfiguration::builder()
            .cors_rules(rule)
            .build()
            .unwrap();
        store
            .client()
            .put_bucket_cors()
            .bucket(BUCKET)
            .cors_configuration(cors)
            .send()
            .await
            .expect("PutBucketCors");
    }
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_deployment_on_oidc_assumes_the_role_and_signs_every_s3_check_with_it(pool: PgPool) {
    let moto = Moto::start().await;
    moto.bucket().await;
    let unused = Bucket::start(&[PAGE_ORIGIN]).await;
    let report = doctor_with(&pool, &unused, |env| {
        env.remove("S3_ACCESS_KEY_ID");
        env.remove("S3_SECRET_ACCESS_KEY");
        env.set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/moc-uploads");
        env.set("VERCEL_OIDC_TOKEN", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
        env.set("AWS_ENDPOINT_URL_STS", moto.endpoint.as_str());
        env.set("S3_ENDPOINT", moto.endpoint.as_str());
    })
    .await;
    assert!(report.passed(), "{report}");
    let role = report
        .check(doctor::AWS_ROLE)
        .unwrap()
        .result
        .as_ref()
        .unwrap();
    assert!(
        role.starts_with("assumed arn:aws:iam::123456789012:role/moc-uploads"),
        "{role}"
    );
    assert!(!role.contains("ASIAINJECTEDBYTHEPLATFORM"), "{role}");
    let hazard = report
        .check(doctor::AWS_CREDENTIALS)
        .unwrap()
        .result
        .as_ref()
        .unwrap();
    assert!(hazard.contains("the OIDC role"), "{hazard}");
}

/// `pairs` as `vercel env pull` writes them: a comment, then `KEY="value"`.
fn write_env_file(path: &Path, pairs: &[(String, String)]) {
    let mut text = String::from("# Created by Vercel CLI\n");
    for (key, value) in pairs {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        text.push_str(&format!("{key}=\"{escaped}\"\n"));
    }
    std::fs::write(path, text).unwrap();
}

/// The real binary, with nothing from this process's environment but PATH
/// and what `process_env` adds.
async fn moc_dev_doctor(file: &Path, process_env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_moc-dev"));
    command.arg("doctor").arg(file).env_clear();
    command.env("PATH", std::env::var("PATH").unwrap_or_default());
    command.envs(process_env.iter().copied());
    let output = command.output().await.expect("moc-dev runs");
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn moc_dev_doctor_reads_a_pulled_env_file_over_the_process_environment(pool: PgPool) {
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let file = bucket.dir.join(".env.production.local");
    let mut pairs = good_env(&pool, &bucket);
    pairs.retain(|(key, _)| key != "CRON_SECRET");
    write_env_file(&file, &pairs);
    // The file wins for its keys (REDIS_URL); the others come from the process.
    let process = [
        ("REDIS_URL", "redis://127.0.0.1:1"),
        ("CRON_SECRET", "from-the-process-environment"),
    ];
    let (ok, stdout, stderr) = moc_dev_doctor(&file, &process).await;
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(stdout.lines().count(), 13, "{stdout}");
    assert!(
        stdout.lines().all(|line| line.starts_with("✔ ")),
        "{stdout}"
    );
    assert!(
        stdout.contains("✔ redis: redis://127.0.0.1:6379 answers PING"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✔ CRON_SECRET: set (28 characters)"),
        "{stdout}"
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn moc_dev_doctor_exits_non_zero_and_prints_the_fix_of_each_failure(pool: PgPool) {
    let bucket = Bucket::start(&[PAGE_ORIGIN]).await;
    let file = bucket.dir.join(".env.production.local");
    let mut pairs = good_env(&pool, &bucket);
    pairs.retain(|(key, _)| key != "CRON_SECRET");
    for (key, value) in &mut pairs {
        if key == "REDIS_URL" {
            *value = format!("redis://{CLOSED}");
        }
    }
    write_env_file(&file, &pairs);
    let (ok, stdout, stderr) = moc_dev_doctor(&file, &[]).await;
    assert!(!ok, "{stdout}");
    let failed: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("✘ "))
        .collect();
    assert_eq!(failed.len(), 2, "{stdout}");
    assert!(
        failed[0].starts_with("✘ redis: redis://127.0.0.1:1")
            && failed[0].contains("→ fix: add Upstash Redis"),
        "{stdout}"
    );
    assert!(
        failed[1].starts_with("✘ CRON_SECRET: CRON_SECRET is unset")
            && failed[1].contains("→ fix: `openssl rand -hex 32"),
        "{stdout}"
    );
    assert!(stderr.contains("2 of 13 checks failed"), "{stderr}");

    let (ok, _, stderr) = moc_dev_doctor(&bucket.dir.join("no-such-file"), &[]).await;
    assert!(!ok);
    assert!(stderr.contains("cannot read"), "{stderr}");
}
