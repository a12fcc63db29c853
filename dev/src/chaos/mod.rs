//! `moc-dev chaos`: the chaos driver of `scripts/chaos` (dev only).
//!
//! It drives `--sessions` upload sessions through the gateway, `--concurrency`
//! at a time, each a seeded mix of a client's moves (`flows`): normal
//! uploads, cancels mid-upload, files aborted and registered again, sessions
//! left to expire, with 5-10 concurrent duplicates of every complete and
//! finalize, and a client that retries on 5xx, timeouts and dropped
//! connections. Some requests (`--kill-per-mille`) ask the gateway to
//! SIGKILL their function mid-request. The fault proxies in front of
//! PgBouncer and S3 reset, stall and slow connections on their own seeded
//! schedule. Every choice comes from one RNG seeded with `--seed`.
//!
//! Then it calms the proxies (`--calm-file`), forces expiry in the database,
//! runs the sweeper once, and checks the invariants (`checks`), printing the
//! faults injected, the outcomes and each invariant with ✔ or ✘. It fails on
//! any ✘, and when a fault kind never fired mid-request.

mod checks;
mod client;
mod flows;
mod steps;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use futures::StreamExt;
use moc_shared::box_error::BoxError;
use rand::SeedableRng;
use rand::rngs::StdRng;
use reqwest::Method;

use crate::fault_proxy::Flags;
use checks::{FAULT_KINDS, FaultCounts, Invariant, World};
use client::{Client, Payload};
use flows::{Flow, Scenario, SessionRecord};

/// What one run does; see the module documentation.
pub struct ChaosSettings {
    pub api: String,
    pub database_url: String,
    pub s3_endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    pub cron_secret: String,
    pub seed: u64,
    pub sessions: usize,
    pub concurrency: usize,
    pub time_limit: Duration,
    pub kill_per_mille: u32,
    pub fault_logs: Vec<PathBuf>,
    pub calm_file: Option<PathBuf>,
    /// How long a stall the proxies started may still last once calmed.
    pub drain: Duration,
    pub run_id: String,
    pub s3_data_dir: PathBuf,
}

impl ChaosSettings {
    pub fn from_args(args: &[String]) -> Result<Self, BoxError> {
        let flags = Flags::parse(args)?;
        let need = |name: &str| flags.text(name).ok_or(format!("--{name} is required"));
        Ok(Self {
            api: need("api")?,
            database_url: need("database-url")?,
            s3_endpoint: need("s3-endpoint")?,
            bucket: need("bucket")?,
            region: flags.text("region").unwrap_or_else(|| "us-east-1".into()),
            access_key: need("access-key")?,
            secret_key: need("secret-key")?,
            cron_secret: need("cron-secret")?,
            seed: flags.number("seed", 1)?,
            sessions: usize::try_from(flags.number("sessions", 60)?)?,
            concurrency: usize::try_from(flags.number("concurrency", 6)?)?.max(1),
            time_limit: Duration::from_secs(flags.number("time-limit-secs", 150)?),
            kill_per_mille: u32::try_from(flags.number("kill-per-mille", 30)?)?,
            fault_logs: flags
                .text("fault-logs")
                .map(|l| l.split(',').map(PathBuf::from).collect())
                .unwrap_or_default(),
            calm_file: flags.text("calm-file").map(PathBuf::from),
            drain: Duration::from_millis(flags.number("drain-ms", 5_000)?),
            run_id: flags.text("run-id").unwrap_or_else(|| "chaos".into()),
            s3_data_dir: need("s3-data-dir")?.into(),
        })
    }
}

/// The whole run; an error when an invariant does not hold.
pub async fn run(settings: ChaosSettings) -> Result<(), BoxError> {
    let started = Instant::now();
    println!(
        "chaos: seed {}, {} sessions, {} at a time, time limit {} s, kill {}‰ of API requests",
        settings.seed,
        settings.sessions,
        settings.concurrency,
        settings.time_limit.as_secs(),
        settings.kill_per_mille
    );
    let client = Client::new(&settings.api, settings.kill_per_mille);
    let records = drive(&settings, &client).await;
    let driven = started.elapsed();
    if let Some(calm) = &settings.calm_file {
        std::fs::write(calm, b"calm\n")?;
    }
    tokio::time::sleep(settings.drain).await;
    let db = sqlx::PgPool::connect(&settings.database_url).await?;
    force_expiry(&db).await?;
    let sweep = sweep(&settings).await;
    let s3 = s3_client(&settings);
    let world = World {
        db: &db,
        s3: &s3,
        bucket: &settings.bucket,
        data_dir: &settings.s3_data_dir,
    };
    let faults = FaultCounts::read(&settings.fault_logs);
    print_faults(&faults);
    print_outcomes(&records, &client, driven);
    let invariants = check(&world, &records, &client, &faults, sweep).await?;
    let failed = print_invariants(&invariants);
    println!(
        "chaos: seed {} done in {} s",
        settings.seed,
        started.elapsed().as_secs()
    );
    match failed {
        0 => Ok(()),
        n => Err(format!("{n} invariants do not hold (seed {})", settings.seed).into()),
    }
}

/// Runs every session, `concurrency` at a time; sessions not started by
/// the time limit are recorded as such.
async fn drive(settings: &ChaosSettings, client: &Client) -> Vec<SessionRecord> {
    let deadline = Instant::now() + settings.time_limit;
    let flows = (0..settings.sessions).map(|index| {
        let mut rng = StdRng::seed_from_u64(
            settings.seed
                ^ (u64::try_from(index).unwrap_or(0) + 1).wrapping_mul(0x2545_F491_4F6C_DD1D),
        );
        let scenario = Scenario::pick(&mut rng);
        let title = format!("Chaos {} #{index}", settings.run_id);
        async move {
            let record = SessionRecord {
                index,
                title,
                ..SessionRecord::default()
            };
            if Instant::now() > deadline {
                return SessionRecord {
                    scenario: Some(scenario),
                    outcome: "not started: time limit".into(),
                    ..record
                };
            }
            let flow = Flow {
                client,
                rng,
                record,
                urls: Vec::new(),
            };
            flow.run(scenario).await
        }
    });
    let mut records: Vec<SessionRecord> = futures::stream::iter(flows)
        .buffer_unordered(settings.concurrency)
        .collect()
        .await;
    records.sort_by_key(|r| r.index);
    records
}

/// Time passes: every session not finalized is past its expiry and any
/// finalize lock or cleanup claim it holds is stale, so the sweeper takes it.
async fn force_expiry(db: &sqlx::PgPool) -> Result<(), BoxError> {
    sqlx::query(
        "UPDATE upload_sessions SET expires_at = (now() AT TIME ZONE 'utc') - interval '2 days', \
         finalizing_at = CASE WHEN finalizing_at IS NULL THEN NULL ELSE (now() AT TIME ZONE 'utc') - interval '2 days' END, \
         cleanup_claimed_at = CASE WHEN cleanup_claimed_at IS NULL THEN NULL ELSE (now() AT TIME ZONE 'utc') - interval '2 days' END \
         WHERE finalized_at IS NULL",
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The sweeper, called as the cron calls it, until nothing remains.
async fn sweep(settings: &ChaosSettings) -> Result<serde_json::Value, String> {
    let client = Client::new(&settings.api, 0);
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let secret = format!("Bearer {}", settings.cron_secret);
    let mut last = serde_json::Value::Null;
    for _ in 0..5 {
        let answer = client
            .api_with(
                &mut rng,
                "sweeper",
                Method::GET,
                "/api/cron/expire-upload-sessions",
                &Payload::None,
                &[("authorization".into(), secret.clone())],
            )
            .await?;
        flows::expect(&answer, 200, "the sweeper")?;
        last = answer.body;
        if last["remaining"] != true && last["sessionsFailed"] == 0 {
            return Ok(last);
        }
    }
    Err(format!("the sweeper still had work after 5 runs: {last}"))
}

fn s3_client(settings: &ChaosSettings) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(moc_shared::s3::https_client())
        .region(Region::new(settings.region.clone()))
        .endpoint_url(&settings.s3_endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            &settings.access_key,
            &settings.secret_key,
            None,
            None,
            "chaos",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn check(
    world: &World<'_>,
    records: &[SessionRecord],
    client: &Client,
    faults: &FaultCounts,
    sweep: Result<serde_json::Value, String>,
) -> Result<Vec<Invariant>, BoxError> {
    let (bad_5xx, answers) = {
        let tally = client.tally.lock().expect("tally lock");
        (tally.bad_5xx.clone(), tally.answers.values().sum::<u64>())
    };
    let disagreements: Vec<String> = records
        .iter()
        .flat_map(|r| r.disagreements.clone())
        .collect();
    let missing: Vec<String> = FAULT_KINDS
        .iter()
        .filter(|k| faults.mid_request.get(**k).copied().unwrap_or(0) == 0)
        .map(|k| format!("{k} never fired mid-request"))
        .collect();
    Ok(vec![
        Invariant::new(
            "the sweeper ran once the faults stopped (200, nothing remaining)",
            format!("{sweep:?}").chars().take(200).collect(),
            sweep.err().into_iter().collect(),
        ),
        world.one_moc_per_session(records).await?,
        Invariant::new(
            "every duplicate complete of a file answered the same fileUrl",
            "every complete".into(),
            disagreements,
        ),
        world.completed_rows_have_objects().await?,
        world.no_open_uploads().await?,
        world.no_unowned_objects().await?,
        Invariant::new(
            "no answer was a 5xx other than 503 with retryable and Retry-After, or the platform's 504 for a killed function",
            format!("{answers} answers"),
            bad_5xx,
        ),
        world.nothing_lost(records).await?,
        Invariant::new(
            "every fault kind fired mid-request",
            FAULT_KINDS.join(", "),
            missing,
        ),
    ])
}

fn print_faults(faults: &FaultCounts) {
    println!("\n== faults injected (fired / mid-request)");
    for (kind, fired) in &faults.fired {
        let mid = faults.mid_request.get(kind).copied().unwrap_or(0);
        println!("  {kind:<24} {fired:>6} / {mid}");
    }
}

fn print_outcomes(records: &[SessionRecord], client: &Client, driven: Duration) {
    let mut outcomes: BTreeMap<(String, String), u64> = BTreeMap::new();
    for record in records {
        let scenario = record.scenario.map_or("?", Scenario::name).to_owned();
        let outcome: String = record.outcome.chars().take(160).collect();
        *outcomes.entry((scenario, outcome)).or_default() += 1;
    }
    println!(
        "\n== outcomes ({} sessions driven in {} s)",
        records.len(),
        driven.as_secs()
    );
    for ((scenario, outcome), n) in &outcomes {
        println!("  {n:>4}  {scenario:<34} {outcome}");
    }
    let tally = client.tally.lock().expect("tally lock");
    println!("\n== answers (every attempt)");
    for (what, n) in &tally.answers {
        println!("  {n:>6}  {what}");
    }
    println!(
        "  client: {} kills asked, {} timeouts, {} dropped connections, {} retryable 503, {} killed-function 504, {} calls given up",
        tally.kills_asked,
        tally.timeouts,
        tally.connection_errors,
        tally.retryable_503,
        tally.killed_504,
        tally.gave_up.len()
    );
}

/// Prints each invariant with ✔ or ✘; returns how many do not hold.
fn print_invariants(invariants: &[Invariant]) -> usize {
    println!("\n== invariants");
    let mut failed = 0;
    for invariant in invariants {
        let mark = if invariant.holds() { '✔' } else { '✘' };
        println!("  {mark} {} ({})", invariant.sentence, invariant.covered);
        for failure in invariant.failures.iter().take(10) {
            println!("      {failure}");
        }
        if invariant.failures.len() > 10 {
            println!("      … and {} more", invariant.failures.len() - 10);
        }
        failed += usize::from(!invariant.holds());
    }
    failed
}
