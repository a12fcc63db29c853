//! `moc-dev`: the whole API on one local port, the way Vercel would route it,
//! over real Postgres and Redis and an embedded S3 (unless an S3 endpoint is
//! configured). Development only.

use std::collections::HashMap;
use std::net::SocketAddr;

use moc_dev::doctor::{self, DoctorEnv};
use moc_dev::gateway::{self, Functions, Gateway};
use moc_dev::s3::{BucketCors, EmbeddedS3, EmbeddedS3Config};
use moc_dev::{chaos, fault_proxy, redact_url, seeds, server, services};
use moc_shared::AppState;
use moc_shared::box_error::BoxError;
use moc_shared::config::Config;
use moc_shared::credentials::AwsCredentials;

const DEV_ACCESS_KEY: &str = "moc-dev-access-key";
const DEV_SECRET_KEY: &str = "moc-dev-secret-key";

fn main() {
    // The server runs its routes on one thread, as each function does
    // (`moc_shared::runtime::main`), so what `scripts/bench-load` measures of
    // it is what a function spends. The tools (the chaos client, the fault
    // proxy with its timed delays) keep a thread per CPU.
    let serving = std::env::args().nth(1).is_none();
    let runtime = match serving {
        true => tokio::runtime::Builder::new_current_thread(),
        false => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build();
    let outcome = match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => Err(error.into()),
    };
    if let Err(error) = outcome {
        eprintln!("moc-dev: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), BoxError> {
    let command = std::env::args().nth(1);
    // The doctor's report is its output; logs would only interleave with it.
    if !matches!(command.as_deref(), Some("doctor" | "chaos" | "fault-proxy")) {
        moc_shared::telemetry::init();
    }
    match command.as_deref() {
        None => serve().await,
        Some("migrate") => migrate().await,
        Some("doctor") => run_doctor(std::env::args().nth(2)).await,
        Some("fault-proxy") => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            fault_proxy::run(fault_proxy::ProxySettings::from_args(&args)?).await
        }
        Some("chaos") => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            chaos::run(chaos::ChaosSettings::from_args(&args)?).await
        }
        Some(other) => Err(format!(
            "unknown command {other:?}; usage: moc-dev (serve the API) | moc-dev migrate | moc-dev doctor [ENV_FILE] | moc-dev fault-proxy --listen A --upstream A ... | moc-dev chaos --seed S ... (scripts/chaos)"
        )
        .into()),
    }
}

/// `moc-dev doctor [ENV_FILE]`: checks every service of a deployment for
/// real (`moc_dev::doctor`), one line per check; fails on any ✘.
async fn run_doctor(env_file: Option<String>) -> Result<(), BoxError> {
    let env = DoctorEnv::load(env_file.as_deref().map(std::path::Path::new))?;
    let report = doctor::run(&env).await;
    print!("{report}");
    match report.failures() {
        0 => Ok(()),
        failed => Err(format!("{failed} of {} checks failed", report.checks.len()).into()),
    }
}

/// A setting of the environment; empty counts as unset.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `moc-dev`: prepares the local services, the database and the S3, then
/// serves the API until stopped.
async fn serve() -> Result<(), BoxError> {
    let port: u16 = env("PORT").map_or(Ok(3000), |p| p.parse())?;
    let s3_port: u16 = env("S3_PORT").map_or(Ok(9000), |p| p.parse())?;
    // Gateway mode: forward to the real function binaries (dev/src/gateway.rs).
    let functions = env("MOC_DEV_FUNCTIONS")
        .map(|setting| Functions::from_setting(&setting))
        .transpose()?;
    let external_s3 = env("AWS_ENDPOINT_URL_S3").or_else(|| env("S3_ENDPOINT"));
    let config = dev_config(external_s3.is_none().then_some(s3_port))?;

    // The dev server's own setup (create the database, migrate, seed) uses
    // the direct URL, so DATABASE_URL may point at a transaction pooler.
    services::ensure_local_services(&config.migration_database_url, config.redis_url.as_deref())
        .await?;
    services::ensure_database(&config.migration_database_url).await?;
    let direct = sqlx::PgPool::connect(&config.migration_database_url).await?;

    // Kept until the server stops: dropping it stops the embedded S3.
    let (embedded, credentials) = match external_s3 {
        Some(_) => (
            None,
            AwsCredentials::from_env(&config.s3.region, &config.trust),
        ),
        None => {
            let embedded = start_embedded_s3(&config, port, s3_port).await?;
            (Some(embedded), embedded_s3_credentials())
        }
    };
    let state = AppState::new(config.clone(), credentials)?;
    state.log_cold_start();
    moc_shared::db::MIGRATOR.run(&direct).await?;
    seeds::seed(&state, &direct).await?;
    direct.close().await;

    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    eprintln!(
        "{}",
        banner(&config, port, embedded.is_some(), functions.as_ref())
    );
    match functions {
        Some(functions) => serve_gateway(listener, Gateway::for_repo(functions)).await?,
        None => server::serve(listener, state).await,
    }
    Ok(())
}

/// Gateway mode: starts the functions it runs over IPC, serves until SIGTERM
/// or Ctrl-C, then logs the IPC accounting and stops those functions.
async fn serve_gateway(
    listener: tokio::net::TcpListener,
    mut gateway: Gateway,
) -> Result<(), BoxError> {
    let env = match env("MOC_DEV_FUNCTION_ENV") {
        Some(path) => gateway::read_env_file(&path)?,
        None => std::env::vars().collect(),
    };
    let sockets = std::env::temp_dir().join(format!("moc-ipc-{}", std::process::id()));
    std::fs::create_dir_all(&sockets)?;
    gateway.start_functions(&env, &sockets).await?;
    // `scripts/chaos`: the driver may ask for functions to be SIGKILLed.
    if let Some(log) = crate::env("MOC_DEV_CHAOS_LOG") {
        gateway.enable_chaos(std::path::Path::new(&log))?;
    }
    let gateway = std::sync::Arc::new(gateway);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        () = gateway::serve(listener, gateway.clone()) => {}
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let accounting = gateway.accounting(std::time::Duration::from_secs(2)).await;
    tracing::info!(totals = %accounting["totals"], ok = %accounting["ok"], "IPC accounting at shutdown");
    gateway.stop_functions().await;
    let _ = std::fs::remove_dir_all(&sockets);
    Ok(())
}

/// The configuration: the environment over development defaults. AUTH_BYPASS
/// is on here and only here. `embedded_s3_port`: where the embedded S3 will
/// listen, unless an S3 endpoint is configured.
fn dev_config(embedded_s3_port: Option<u16>) -> Result<Config, BoxError> {
    let mut defaults: HashMap<&str, String> = HashMap::from([
        (
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/moc_uploads_dev".to_owned(),
        ),
        ("MOC_BUCKET", "moc-dev".to_owned()),
        ("AUTH_BYPASS", "true".to_owned()),
        ("REDIS_URL", "redis://127.0.0.1:6379".to_owned()),
        ("ALLOW_BROWSER_UPLOADS", "true".to_owned()),
        ("ALLOWED_UPLOAD_ORIGINS", "http://localhost:5173".to_owned()),
        // The sweeper's bearer secret, so it can be called locally
        // (`__http__/upload-lifecycle.http`); a deployment sets its own.
        ("CRON_SECRET", "moc-dev-cron-secret".to_owned()),
    ]);
    if let Some(s3_port) = embedded_s3_port {
        defaults.insert("S3_ENDPOINT", format!("http://127.0.0.1:{s3_port}"));
    }
    Ok(Config::from_lookup(|name| {
        env(name).or_else(|| defaults.get(name).cloned())
    })?)
}

/// The embedded S3, its data under `DEV_DATA_DIR` (default `.dev-data/s3`).
async fn start_embedded_s3(
    config: &Config,
    port: u16,
    s3_port: u16,
) -> Result<EmbeddedS3, BoxError> {
    let data_dir = env("DEV_DATA_DIR").unwrap_or_else(|| ".dev-data/s3".to_owned());
    // Browsers PUT parts straight to S3 from the page's origin: the
    // API's allowed origins, or the page this server serves itself.
    let mut allowed_origins = config.cors_allowed_origins.clone();
    allowed_origins.extend([
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ]);
    let settings = EmbeddedS3Config {
        data_dir: data_dir.into(),
        bind: SocketAddr::from(([127, 0, 0, 1], s3_port)),
        access_key: DEV_ACCESS_KEY.to_owned(),
        secret_key: DEV_SECRET_KEY.to_owned(),
        region: config.s3.region.clone(),
        buckets: vec![config.s3.bucket.clone()],
    };
    Ok(EmbeddedS3::start_with_cors(settings, BucketCors { allowed_origins }).await?)
}

fn embedded_s3_credentials() -> AwsCredentials {
    AwsCredentials::fixed(DEV_ACCESS_KEY, DEV_SECRET_KEY, "the embedded S3")
}

/// What runs where, printed once everything is up.
fn banner(config: &Config, port: u16, embedded_s3: bool, functions: Option<&Functions>) -> String {
    let bucket = &config.s3.bucket;
    let s3_where = match &config.s3.endpoint {
        Some(endpoint) if embedded_s3 => {
            format!("embedded S3 (SigV4 checked) at {endpoint}, bucket {bucket}")
        }
        Some(endpoint) => format!("external S3 at {endpoint}, bucket {bucket}"),
        None => format!("AWS S3, bucket {bucket}"),
    };
    let serving = match functions {
        Some(functions) => format!(
            "gateway to the function binaries (MOC_DEV_FUNCTIONS):\n{}",
            functions.describe()
        ),
        None => "every route in-process".to_owned(),
    };
    format!(
        "\n  moc-uploads dev server\n  API        http://127.0.0.1:{port}/api/mocs/uploads/…  (Vercel routing, 4.5 MB body limit)\n  Functions  {serving}\n  Postgres   {}  (migrated and seeded)\n  Redis      {}\n  S3         {s3_where}\n  Auth       AUTH_BYPASS={} as {}\n",
        redact_url(&config.database_url),
        config
            .redis_url
            .as_deref()
            .unwrap_or("(unset: finalize rate limit fails open)"),
        config.auth.bypass,
        config.auth.dev_user_sub,
    )
}

/// `moc-dev migrate`: applies the migrations to the database of
/// `DATABASE_URL_UNPOOLED` (or `POSTGRES_URL_NON_POOLING`, else
/// `DATABASE_URL` / `POSTGRES_URL`), the deploy-time step of the README.
/// It needs nothing else from the environment. A direct connection: the
/// migrator holds a session-level advisory lock, which a transaction-mode
/// pooler would not keep.
async fn migrate() -> Result<(), BoxError> {
    let url = moc_shared::config::migration_url(&|name| std::env::var(name).ok())
        .ok_or("set DATABASE_URL_UNPOOLED (or POSTGRES_URL_NON_POOLING, or DATABASE_URL)")?;
    let started = std::time::Instant::now();
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await?;
    let migrator = &moc_shared::db::MIGRATOR;
    migrator.run_direct(&mut connection).await?;
    let applied =
        sqlx::query!("SELECT version, description FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut connection)
            .await?;
    for migration in &applied {
        eprintln!("  applied {} {}", migration.version, migration.description);
    }
    eprintln!(
        "moc-dev migrate: {} of {} migrations applied to {} in {} ms",
        applied.len(),
        migrator.iter().count(),
        redact_url(&url),
        started.elapsed().as_millis()
    );
    Ok(())
}
