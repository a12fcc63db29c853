//! The production database path (issue 9): statements that do not outlive
//! their transaction, a pool that never starves itself, and clear 503s when
//! the database or the pooler in front of it is gone, with recovery on the
//! same warm instance.
//!
//! Run by `scripts/test` over direct connections and by
//! `scripts/pgbouncer-check` through PgBouncer in transaction mode
//! (`MOC_TEST_POOLER_PORT`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use moc_shared::db;
use moc_shared::db::{Db, Statement, Statements};
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::helpers::*;

const SESSIONS: &str = "/api/mocs/uploads/sessions";

/// Every route that reaches the database, once: create, register (also
/// batch and re-registration), a proxied part, the parts list, complete,
/// finalize and its replay.
async fn every_database_route(app: &TestApp) {
    let pdf = pdf_bytes(64 * 1024);
    let png = png_bytes(2048);
    let session = app
        .create_session(json!([
            pdf_meta("a.pdf", pdf.len()),
            png_meta("b.png", png.len())
        ]))
        .await;
    let (pdf_id, etag) = app
        .upload_single_part(&session, pdf_meta("a.pdf", pdf.len()), pdf)
        .await;
    let mut again = pdf_meta("a.pdf", 64 * 1024);
    again["fileId"] = json!(pdf_id);
    again["partCount"] = json!(1);
    app.register(&session, again).await.assert_status(200);
    app.get(&format!("{SESSIONS}/{session}/files/{pdf_id}/parts"))
        .await
        .assert_status(200);
    app.complete(&session, &pdf_id, json!([{"partNumber": 1, "etag": etag}]))
        .await
        .assert_status(200);
    let batch = app
        .post(
            &format!("{SESSIONS}/{session}/files/batch"),
            json!({"files": [png_meta("b.png", png.len())]}),
        )
        .await;
    batch.assert_status(201);
    let png_id = batch.body["results"][0]["fileId"].as_str().unwrap();
    let part = app.put_part(&session, png_id, "1", png).await;
    part.assert_status(200);
    app.complete(
        &session,
        png_id,
        json!([{"partNumber": 1, "etag": part.body["etag"]}]),
    )
    .await
    .assert_status(200);
    let finalize = json!({"uploadSessionId": session, "title": format!("Castle {session}")});
    app.post("/api/mocs/uploads/finalize", finalize.clone())
        .await
        .assert_status(201);
    app.post("/api/mocs/uploads/finalize", finalize)
        .await
        .assert_status(200);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn no_prepared_statement_outlives_a_request(pool: PgPool) {
    // One server session serves every request, as one server connection of
    // a transaction-mode pooler serves many clients: whatever a request
    // leaves prepared on it, the next one would meet.
    let options = (*pool.connect_options()).clone();
    let single = Db::with_max_connections(target_of(options.clone()), 1);
    let app = TestApp::with_db(single.clone(), &[]).await;

    every_database_route(&app).await;

    // Asked through the app's database, so on its one connection, and as an
    // unnamed statement, so the question prepares nothing itself.
    let prepared = "SELECT string_agg(name || ': ' || statement, '; ') FROM pg_prepared_statements";
    let left: Option<String> = db::Statement::new(prepared)
        .scalar()
        .fetch_one(&single)
        .await
        .unwrap();
    assert_eq!(
        left, None,
        "statements left prepared on the server connection"
    );
    assert_eq!(single.connections(), (0, 1), "one connection served it all");
    // The check itself can fail: sqlx's default names and keeps a statement.
    let mut plain = PgConnection::connect_with(&options).await.unwrap();
    sqlx::query("SELECT 1").fetch_one(&mut plain).await.unwrap();
    let named: Option<String> = sqlx::query_scalar(prepared)
        .fetch_one(&mut plain)
        .await
        .unwrap();
    assert!(named.is_some(), "a named statement is seen");
}

/// A TCP forwarder standing in for a pooler in front of Postgres: it can be
/// stopped (connections dropped and refused), frozen (connections accepted,
/// nothing answered, like a full pooler queueing clients) and started again
/// on the same port.
struct Forwarder {
    port: u16,
    upstream: String,
    /// Round trips: data from the client after an answer from the server
    /// (a pipeline written in several reads is still one).
    round_trips: Arc<AtomicUsize>,
    /// Connections accepted from the client side.
    connections: Arc<AtomicUsize>,
    frozen: watch::Sender<bool>,
    /// Once set, the next client write that contains these bytes reaches
    /// the server, and the connection is dropped before its answer: the
    /// server ran it, the client never hears.
    lose_answer_to: Arc<std::sync::Mutex<Option<Vec<u8>>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Forwarder {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (frozen, _) = watch::channel(false);
        let mut forwarder = Self {
            port,
            upstream,
            round_trips: Arc::default(),
            connections: Arc::default(),
            frozen,
            lose_answer_to: Arc::default(),
            task: None,
        };
        forwarder.serve(listener);
        forwarder
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        let frozen = self.frozen.subscribe();
        let round_trips = self.round_trips.clone();
        let accepted = self.connections.clone();
        let lose_answer_to = self.lose_answer_to.clone();
        self.task = Some(tokio::spawn(async move {
            // Dropped with the task: stopping closes every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::Relaxed);
                let upstream = upstream.clone();
                let frozen = frozen.clone();
                let round_trips = round_trips.clone();
                let lose_answer_to = lose_answer_to.clone();
                connections.spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    // The client's first bytes start a round trip.
                    let answered = Arc::new(AtomicBool::new(true));
                    let cut = Arc::new(AtomicBool::new(false));
                    let asks = Turn::Asks {
                        round_trips,
                        answered: answered.clone(),
                        lose_answer_to,
                        cut: cut.clone(),
                    };
                    let answers = Turn::Answers { answered, cut };
                    // Either side ending ends the connection.
                    tokio::select!(
                        () = pipe(client_read, server_write, frozen.clone(), asks) => {},
                        () = pipe(server_read, client_write, frozen, answers) => {},
                    );
                });
            }
        }));
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    async fn restart(&mut self) {
        self.stop();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.frozen.send_replace(false);
        self.serve(listener);
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }

    fn lose_answer_to(&self, sql: &str) {
        *self.lose_answer_to.lock().unwrap() = Some(sql.as_bytes().to_vec());
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Which way a pipe carries: the client's asking (counting a round trip
/// when it follows an answer) or the server's answering.
enum Turn {
    Asks {
        round_trips: Arc<AtomicUsize>,
        answered: Arc<AtomicBool>,
        lose_answer_to: Arc<std::sync::Mutex<Option<Vec<u8>>>>,
        /// Set once a write whose answer is to be lost went through.
        cut: Arc<AtomicBool>,
    },
    Answers {
        answered: Arc<AtomicBool>,
        cut: Arc<AtomicBool>,
    },
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
    turn: Turn,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        match &turn {
            Turn::Asks {
                round_trips,
                answered,
                lose_answer_to,
                cut,
            } => {
                if answered.swap(false, Ordering::Relaxed) {
                    round_trips.fetch_add(1, Ordering::Relaxed);
                }
                let mut armed = lose_answer_to.lock().unwrap();
                if armed
                    .as_deref()
                    .is_some_and(|sql| buffer[..n].windows(sql.len()).any(|w| w == sql))
                {
                    *armed = None;
                    cut.store(true, Ordering::Relaxed);
                }
            }
            Turn::Answers { answered, cut } => {
                if cut.load(Ordering::Relaxed) {
                    // Unheard: the server answers statement by statement, so
                    // give it time to run the rest of the write (its COMMIT).
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    return;
                }
                answered.store(true, Ordering::Relaxed);
            }
        }
        if frozen.wait_for(|frozen| !frozen).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

fn upstream_of(pool: &PgPool) -> (String, PgConnectOptions) {
    let options = (*pool.connect_options()).clone();
    let port = pooler_port().unwrap_or(options.get_port());
    (format!("{}:{port}", options.get_host()), options)
}

#[track_caller]
fn assert_database_unavailable(response: &TestResponse, elapsed: Duration) {
    response.assert_error(503, "DATABASE_UNAVAILABLE");
    assert_eq!(response.details()["retryable"], true, "{}", response.body);
    assert!(
        response.headers.contains_key("retry-after"),
        "a 503 says when to retry"
    );
    assert!(
        elapsed < db::ACQUIRE_TIMEOUT + Duration::from_secs(2),
        "answered after {elapsed:?}, not within the acquire timeout"
    );
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_stopped_database_answers_503_quickly_and_the_same_instance_recovers(pool: PgPool) {
    let (upstream, options) = upstream_of(&pool);
    let mut forwarder = Forwarder::start(upstream).await;
    let app = TestApp::with_db(Db::lazy(target_of(options.port(forwarder.port))), &[]).await;
    let files = json!({"files": [pdf_meta("a.pdf", 10)]});
    let session = app.create_session(files["files"].clone()).await;

    // Stopped: the open connections drop and new ones are refused.
    forwarder.stop();
    for path in [SESSIONS.to_owned(), format!("{SESSIONS}/{session}/files")] {
        let started = Instant::now();
        let response = if path == SESSIONS {
            app.post(&path, files.clone()).await
        } else {
            app.register(&session, pdf_meta("b.pdf", 10)).await
        };
        assert_database_unavailable(&response, started.elapsed());
    }

    // Back: the next request succeeds on the same instance (same state, same pool).
    forwarder.restart().await;
    app.register(&session, pdf_meta("a.pdf", 10))
        .await
        .assert_status(201);

    // Frozen: connections are accepted and never answered, as a pooler
    // whose server connections are all busy queues its clients.
    forwarder.freeze(true);
    let started = Instant::now();
    let response = app.post(SESSIONS, files.clone()).await;
    assert_database_unavailable(&response, started.elapsed());
    forwarder.freeze(false);
    forwarder.restart().await;
    app.post(SESSIONS, files).await.assert_status(201);
}

/// Latency summary of one kind of request.
fn percentiles(name: &str, mut latencies: Vec<Duration>) -> (Duration, Duration) {
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[((latencies.len() * 99).div_ceil(100)).saturating_sub(1)];
    eprintln!(
        "{name}: n={} p50={p50:?} p99={p99:?} max={:?}",
        latencies.len(),
        latencies.last().unwrap()
    );
    (p50, p99)
}

async fn timed<F: std::future::Future<Output = TestResponse>>(f: F) -> (TestResponse, Duration) {
    let started = Instant::now();
    let response = f.await;
    (response, started.elapsed())
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn three_times_the_pool_in_completes_registrations_and_finalizes_never_starve_it(
    pool: PgPool,
) {
    // The production pool (5 connections), through the pooler when one is set.
    let options = (*pool.connect_options()).clone();
    let options = match pooler_port() {
        Some(port) => options.port(port),
        None => options,
    };
    let app = Arc::new(
        TestApp::with_db(
            Db::lazy(target_of(options)),
            &[("FINALIZE_RATE_LIMIT_PER_MINUTE", "10000")],
        )
        .await,
    );
    let n = 3 * db::MAX_CONNECTIONS as usize;
    let pdf = pdf_bytes(4096);

    // Ready to complete: n sessions with an uploaded part each.
    let mut to_complete = Vec::new();
    for i in 0..n {
        let name = format!("c{i}.pdf");
        let session = app
            .create_session(json!([pdf_meta(&name, pdf.len())]))
            .await;
        let (file, etag) = app
            .upload_single_part(&session, pdf_meta(&name, pdf.len()), pdf.clone())
            .await;
        to_complete.push((session, file, etag));
    }
    // Ready to finalize: n sessions with a completed instruction each.
    let mut to_finalize = Vec::new();
    for i in 0..n {
        let name = format!("f{i}.pdf");
        let session = app
            .create_session(json!([pdf_meta(&name, pdf.len())]))
            .await;
        app.completed_file(&session, pdf_meta(&name, pdf.len()), pdf.clone())
            .await;
        to_finalize.push(session);
    }
    // Registrations: n distinct files into one session (they queue on its row lock).
    let declared: Vec<Value> = (0..n).map(|i| pdf_meta(&format!("r{i}.pdf"), 10)).collect();
    let register_session = app.create_session(json!(declared)).await;

    let completes =
        to_complete.iter().map(|(session, file, etag)| {
            let app = app.clone();
            async move {
                timed(app.complete(session, file, json!([{"partNumber": 1, "etag": etag}]))).await
            }
        });
    let registrations = (0..n).map(|i| {
        let app = app.clone();
        let session = register_session.clone();
        async move { timed(app.register(&session, pdf_meta(&format!("r{i}.pdf"), 10))).await }
    });
    let finalizes = to_finalize.iter().map(|session| {
        let app = app.clone();
        async move {
            timed(app.post(
                "/api/mocs/uploads/finalize",
                json!({"uploadSessionId": session, "title": format!("MOC {session}")}),
            ))
            .await
        }
    });
    let (completes, registrations, finalizes) = tokio::join!(
        join_all(completes),
        join_all(registrations),
        join_all(finalizes)
    );

    for (name, results, status) in [
        ("complete", completes, 200),
        ("register", registrations, 201),
        ("finalize", finalizes, 201),
    ] {
        for (response, _) in &results {
            response.assert_status(status);
        }
        let (p50, p99) = percentiles(name, results.iter().map(|(_, d)| *d).collect());
        assert!(
            p99 < p50 * 10,
            "{name}: p99 {p99:?} is not under 10 × p50 {p50:?}"
        );
    }
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn twenty_identical_registrations_and_ten_finalizes_at_once_get_the_contract_outcomes(
    pool: PgPool,
) {
    // Through PgBouncer (scripts/pgbouncer-check) its pool is 3 server
    // connections for these 5 client connections.
    let app = Arc::new(TestApp::spawn(pool).await);
    let pdf = pdf_bytes(4096);

    // docs/contract.md §4.2: N identical registrations: one 201, N-1 409s, one S3 upload.
    let session = app
        .create_session(json!([pdf_meta("same.pdf", pdf.len())]))
        .await;
    let registrations = (0..20).map(|_| {
        let app = app.clone();
        let session = session.clone();
        async move { app.register(&session, pdf_meta("same.pdf", 4096)).await }
    });
    let answers = join_all(registrations).await;
    let created: Vec<&TestResponse> = answers.iter().filter(|r| r.status == 201).collect();
    let conflicts = answers.iter().filter(|r| r.status == 409).count();
    assert!(
        answers.iter().all(|r| !r.is_server_error()),
        "no 5xx: {:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!((created.len(), conflicts), (1, 19));
    let file_id = created[0].body["fileId"].as_str().unwrap().to_owned();
    for conflict in answers.iter().filter(|r| r.status == 409) {
        assert_eq!(conflict.body["error"]["code"], "CONFLICT");
        assert_eq!(conflict.details()["existingFileId"], file_id.as_str());
    }
    let uploads = app.uploads().await;
    assert_eq!(
        uploads
            .iter()
            .filter(|u| u.key().is_some_and(|k| k.contains(&session)))
            .count(),
        1,
        "exactly one S3 multipart upload survives"
    );

    // Upload and complete it, then finalize ten times at once (§4.7): one
    // 201, and 200s that are the same MOC or "in progress", never a 5xx.
    app.upload_and_complete(&session, &file_id, pdf).await;
    let body = json!({"uploadSessionId": session, "title": "Ten At Once"});
    let finalizes = (0..10).map(|_| {
        let app = app.clone();
        let body = body.clone();
        async move { app.post("/api/mocs/uploads/finalize", body).await }
    });
    let answers = join_all(finalizes).await;
    assert!(
        answers.iter().all(|r| !r.is_server_error()),
        "no 5xx: {:?}",
        answers.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    let created: Vec<&TestResponse> = answers.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 1, "exactly one finalize creates the MOC");
    let moc_id = created[0].body["id"].as_str().unwrap();
    for answer in answers.iter().filter(|r| r.status != 201) {
        answer.assert_status(200);
        let same_moc = answer.body["idempotent"] == true && answer.body["id"] == moc_id;
        let in_progress = answer.body["status"] == "finalizing";
        assert!(same_moc || in_progress, "{}", answer.body);
    }
    let mocs: i64 = db::Statement::new("SELECT count(*) FROM moc_instructions WHERE title = $1")
        .bind("Ten At Once")
        .scalar()
        .fetch_one(app.state.db())
        .await
        .unwrap();
    assert_eq!(mocs, 1);
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn each_route_costs_at_most_its_target_of_round_trips(pool: PgPool) {
    let (upstream, options) = upstream_of(&pool);
    let forwarder = Forwarder::start(upstream).await;
    let db = Db::lazy(target_of(options.port(forwarder.port)).with_statements(statements()));
    let app = TestApp::with_db(db.clone(), &[]).await;
    let pdf = pdf_bytes(4096);
    // Warm, as on a warm instance: the connection is open and, with
    // DATABASE_STATEMENTS=named (scripts/pgbouncer-check), every statement
    // is prepared on it. By another user, whose sessions the listing below
    // does not see.
    let other = TestApp::with_db(db, &[("DEV_USER_SUB", "round-trip-warm-up")]).await;
    every_database_route(&other).await;
    let sessions = other.get(&format!("{SESSIONS}?status=all")).await;
    let first = &sessions.body["sessions"][0]["sessionId"];
    other
        .get(&format!("{SESSIONS}/{}", first.as_str().unwrap()))
        .await
        .assert_status(200);
    let warm = app.create_session(json!([pdf_meta("w.pdf", 10)])).await;
    app.get(&format!(
        "{SESSIONS}/{warm}/files/{}/parts",
        uuid::Uuid::nil()
    ))
    .await;

    let writes = || forwarder.round_trips.load(Ordering::Relaxed);
    let mut table = Vec::new();
    let mut measure = |name: &'static str, before: usize| {
        let spent = writes() - before;
        table.push((name, spent));
        spent
    };
    // An abandoned transaction is rolled back in a task that may run after
    // the answer: let it land in its own row.
    let settle = || tokio::time::sleep(Duration::from_millis(100));

    let before = writes();
    let session = app
        .create_session(json!([pdf_meta("a.pdf", pdf.len())]))
        .await;
    settle().await;
    measure("create session", before);
    let before = writes();
    let registered = app.register(&session, pdf_meta("a.pdf", pdf.len())).await;
    registered.assert_status(201);
    let file = registered.body["fileId"].as_str().unwrap().to_owned();
    settle().await;
    measure("register", before);
    let before = writes();
    let part = app.put_part(&session, &file, "1", pdf).await;
    part.assert_status(200);
    settle().await;
    measure("proxied part", before);
    let before = writes();
    app.get(&format!("{SESSIONS}/{session}/files/{file}/parts"))
        .await
        .assert_status(200);
    settle().await;
    measure("list parts", before);
    let before = writes();
    app.get(&format!("{SESSIONS}/{session}"))
        .await
        .assert_status(200);
    settle().await;
    measure("session status", before);
    let before = writes();
    app.complete(
        &session,
        &file,
        json!([{"partNumber": 1, "etag": part.body["etag"]}]),
    )
    .await
    .assert_status(200);
    settle().await;
    measure("complete", before);
    let before = writes();
    app.post(
        "/api/mocs/uploads/finalize",
        json!({"uploadSessionId": session, "title": "Round Trips"}),
    )
    .await
    .assert_status(201);
    settle().await;
    measure("finalize", before);
    // A page of sessions with their files and parts: one transaction of
    // three statements, whatever the page holds.
    let before = writes();
    let listed = app.get(&format!("{SESSIONS}?status=all")).await;
    listed.assert_status(200);
    assert_eq!(listed.body["sessions"].as_array().unwrap().len(), 2);
    settle().await;
    measure("list sessions", before);

    for (name, spent) in &table {
        eprintln!("round trips to the database: {name:<16} {spent}");
    }
    // Issue 28's targets (docs/adr/0011-round-trips.md): a round trip per
    // step that waits for an answer, BEGIN and COMMIT riding along. Then
    // what the routes cost as built, so that no change adds one unnoticed.
    let targets = [
        ("create session", 3, 1),
        ("register", 4, 2),
        ("proxied part", 4, 2),
        ("list parts", 3, 2),
        ("session status", 2, 1),
        ("complete", 4, 2),
        ("finalize", 8, 6),
        ("list sessions", 2, 2),
    ];
    let over: Vec<String> = targets
        .iter()
        .filter_map(|(name, target, built)| {
            let spent = table.iter().find(|(n, _)| n == name)?.1;
            (spent > *built.min(target))
                .then(|| format!("{name}: {spent} > {built} as built (target {target})"))
        })
        .collect();
    assert!(over.is_empty(), "routes over their count: {over:?}");
    // And the count is real: every route reached the database.
    for (name, spent) in &table {
        assert!(*spent >= 1, "{name}: no round trip counted");
    }
}

/// A registration whose recording of its S3 upload ran but whose answer
/// was lost (a reset after the COMMIT) must not abort that upload: the row
/// names it. Found by `scripts/chaos`: the file's parts then answered 500
/// for ever, since S3 no longer knew the upload the row named.
#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_registration_that_lost_the_answer_to_its_commit_leaves_a_file_that_uploads(
    pool: PgPool,
) {
    let (upstream, options) = upstream_of(&pool);
    let forwarder = Forwarder::start(upstream).await;
    let target = plaintext_target_of(options.port(forwarder.port));
    let app = TestApp::with_db(Db::lazy(target), &[]).await;
    let pdf = pdf_bytes(4096);
    let meta = pdf_meta("a.pdf", pdf.len());
    let session = app.create_session(json!([meta.clone()])).await;

    forwarder.lose_answer_to("INSERT INTO upload_session_files");
    let lost = app.register(&session, meta.clone()).await;
    lost.assert_error(503, "DATABASE_UNAVAILABLE");
    let recorded: Option<String> = sqlx::query_scalar(
        "SELECT upload_id FROM upload_session_files WHERE session_id = $1::uuid",
    )
    .bind(&session)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        recorded.is_some(),
        "the server ran the write whose answer was lost"
    );

    // The client retries: the name is taken, so it registers by fileId.
    let taken = app.register(&session, meta.clone()).await;
    taken.assert_status(409);
    let mut again = meta;
    again["fileId"] = taken.details()["existingFileId"].clone();
    let file = again["fileId"].as_str().unwrap().to_owned();
    app.register(&session, again).await.assert_status(200);
    app.upload_and_complete(&session, &file, pdf).await;
}

/// S3 slower to open an upload than a registration waits under its
/// session's lock: the row commits without the upload, freeing the
/// session, and the upload is recorded once S3 answers (a third round
/// trip). The file then uploads and completes as any other.
#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_registration_whose_upload_opens_slowly_frees_its_session_and_records_the_upload_after(
    pool: PgPool,
) {
    let moto = moto().await;
    let bucket = moto_bucket(&moto.url).await;
    let s3_delay = Duration::from_millis(1000);
    let endpoint = moto_s3_via_slow_proxy(&moto.url, s3_delay).await;
    let env = [
        ("S3_ENDPOINT", endpoint.as_str()),
        ("S3_REGION", "us-east-1"),
        ("MOC_BUCKET", bucket.as_str()),
    ];
    let (upstream, options) = upstream_of(&pool);
    let forwarder = Forwarder::start(upstream).await;
    let app = TestApp::with_db(Db::lazy(target_of(options.port(forwarder.port))), &env).await;
    let pdf = pdf_bytes(4096);
    let meta = pdf_meta("a.pdf", pdf.len());
    let session = app.create_session(json!([meta.clone()])).await;

    let writes = || forwarder.round_trips.load(Ordering::Relaxed);
    let extend_path = format!("{SESSIONS}/{session}/extend");
    let extend_session = || app.post(&extend_path, json!({}));
    let before = writes();
    extend_session().await.assert_status(200);
    let extend_costs = writes() - before;

    let before = writes();
    let started = Instant::now();
    let register = app.register(&session, meta);
    let extend = async {
        // Past the wait under the lock, while S3 still holds the create.
        tokio::time::sleep(Duration::from_millis(500)).await;
        (extend_session().await, started.elapsed())
    };
    let (registered, (extended, extended_at)) = tokio::join!(register, extend);
    registered.assert_status(201);
    extended.assert_status(200);
    assert!(
        extended_at < s3_delay,
        "the session was free while S3 opened the upload: extend answered at {extended_at:?}"
    );
    assert!(
        started.elapsed() >= s3_delay,
        "the registration waited for S3"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        writes() - before,
        3 + extend_costs,
        "register's 3 round trips (the upload recorded on its own) and extend's"
    );

    let file = registered.body["fileId"].as_str().unwrap().to_owned();
    let (_, upload_id) = app.file_upload(&file).await;
    assert!(!upload_id.is_empty(), "the row names the upload");
    app.upload_and_complete(&session, &file, pdf).await;
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_whole_upload_runs_on_the_one_connection_its_first_request_opened(pool: PgPool) {
    let (upstream, options) = upstream_of(&pool);
    let forwarder = Forwarder::start(upstream).await;
    let app = TestApp::with_db(Db::lazy(target_of(options.port(forwarder.port))), &[]).await;

    // Every request of the flow, one after another, as one browser sends
    // them to a warm instance: each transaction finds the previous one's
    // connection idle, so nothing opens a second one (on a cold instance,
    // a second TLS handshake).
    every_database_route(&app).await;

    assert_eq!(forwarder.connections.load(Ordering::Relaxed), 1);
    assert_eq!(app.state.db().connections(), (0, 1));
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_abandoned_transaction_rolls_back_at_once_and_frees_its_locks(pool: PgPool) {
    let (_, options) = upstream_of(&pool);
    let db = Db::lazy(target_of(options.clone()));
    let tx = db.begin().await.unwrap();
    db::Statement::new("SELECT pg_advisory_xact_lock(4242)")
        .execute(&tx)
        .await
        .unwrap();
    // As an error path or a cancelled request does: no commit, no rollback.
    drop(tx);

    let mut other = PgConnection::connect_with(&options).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(4242)")
            .persistent(false)
            .fetch_one(&mut other)
            .await
            .unwrap();
        if free {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lock outlived its transaction"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The rolled-back connection is idle again, not lost.
    let deadline = Instant::now() + Duration::from_secs(2);
    while db.connections() != (0, 1) {
        assert!(Instant::now() < deadline, "{:?}", db.connections());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_full_pool_times_out_instead_of_opening_more_connections(pool: PgPool) {
    let (_, options) = upstream_of(&pool);
    let db = Db::with_max_connections(target_of(options), 1);
    let held = db.begin().await.unwrap();

    let started = Instant::now();
    let waited = db.begin().await;
    assert!(matches!(waited, Err(db::Error::PoolTimedOut)), "{waited:?}");
    assert!(started.elapsed() >= db::ACQUIRE_TIMEOUT);
    assert_eq!(db.connections(), (1, 0));

    held.commit().await.unwrap();
    let next = db.begin().await.unwrap();
    next.commit().await.unwrap();
    assert_eq!(db.connections(), (0, 1));
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_rederivable_transaction_skips_the_wait_for_the_disk_and_only_it_does(pool: PgPool) {
    let (_, options) = upstream_of(&pool);
    // One connection: the transaction after it runs where it ran.
    let db = Db::with_max_connections(target_of(options), 1);
    let setting =
        || Statement::new("SELECT current_setting('synchronous_commit')").scalar::<String>();

    let tx = db.begin_rederivable().await.unwrap();
    assert_eq!(setting().fetch_one(&tx).await.unwrap(), "off");
    tx.commit().await.unwrap();

    let tx = db.begin().await.unwrap();
    assert_eq!(setting().fetch_one(&tx).await.unwrap(), "on");
    tx.commit().await.unwrap();
    assert_eq!(db.connections(), (0, 1));
}

/// How many statements with this exact text the connection has prepared
/// under a name (run on the same one-connection `db`).
async fn named_copies_of(db: &Db, sql: &'static str) -> i64 {
    Statement::new("SELECT count(*) FROM pg_prepared_statements WHERE statement = $1")
        .bind(sql)
        .scalar::<i64>()
        .fetch_one(db)
        .await
        .unwrap()
}

const PROBE: &str = "SELECT 41 + 1";

/// Direct connections: a pooler without per-client statements (PgBouncer
/// 1.18 here) would move the names between server connections.
fn one_connection(pool: &PgPool, statements: Statements) -> Db {
    Db::with_max_connections(
        target_of((*pool.connect_options()).clone()).with_statements(statements),
        1,
    )
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn a_named_statement_is_prepared_once_per_connection_and_an_unnamed_one_never(pool: PgPool) {
    for (statements, copies) in [(Statements::Named, 1), (Statements::Unnamed, 0)] {
        let db = one_connection(&pool, statements);
        for _ in 0..3 {
            let answer = Statement::new(PROBE).scalar::<i32>().fetch_one(&db).await;
            assert_eq!(answer.unwrap(), 42);
        }
        assert_eq!(named_copies_of(&db, PROBE).await, copies, "{statements:?}");
    }
}

/// What a pooler that does not keep named statements per client does to
/// one (PgBouncer before 1.21: the next transaction's server connection
/// lacks the name), played on one connection with DEALLOCATE ALL: the
/// request that meets it gets a retryable error, and the instance sends its
/// statements unnamed from then on.
#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn an_instance_whose_named_statements_are_lost_sends_them_unnamed_from_then_on(pool: PgPool) {
    let db = one_connection(&pool, Statements::Named);
    let probe = || Statement::new(PROBE).scalar::<i32>().fetch_one(&db);
    assert_eq!(probe().await.unwrap(), 42);
    Statement::new("DEALLOCATE ALL").execute(&db).await.unwrap();

    let lost = probe().await.unwrap_err();
    assert!(db::named_statement_refused(&lost), "{lost:?}");
    assert!(db::is_unavailable(&lost), "a retry succeeds: {lost:?}");
    for _ in 0..2 {
        assert_eq!(probe().await.unwrap(), 42);
    }
    assert_eq!(named_copies_of(&db, PROBE).await, 0);
}
