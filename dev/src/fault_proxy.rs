//! `moc-dev fault-proxy`: a TCP proxy that injects faults on a seeded
//! schedule (dev only; used by `scripts/chaos` in front of PgBouncer and the
//! embedded S3, and by `scripts/bench-load` for latency alone).
//!
//! Every accepted connection gets its own fate from one RNG seeded with
//! `--seed` and the connection's number, so a run with the same seed arms
//! the same faults on the same connection numbers:
//!
//! - **reset**: once `after` bytes have crossed the connection (either way),
//!   the chunk in transit is cut short and both sockets are closed with a
//!   TCP RST (`SO_LINGER` 0), in the middle of a message;
//! - **stall**: at that point the direction in transit stops for `--stall-ms`
//!   (past the functions' 3 s database deadline), then goes on;
//! - **slow**: every chunk of the connection is delayed by an extra
//!   `--slow-ms`.
//!
//! On top of the faults, `--rtt-ms` delays every chunk by half of it in each
//! direction (queued, so throughput is kept): the round trip the load bench
//! adds. A fault fires only while a chunk is in transit, so each one lands
//! mid-request (`inFlight` says which way the chunk was going). While the
//! `--calm-file` exists no fault fires (latency stays): the chaos driver
//! calms the proxies before it checks its invariants. Each fault that fires
//! is one JSON line in `--log`, with its timestamp.

use std::io::Write as _;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use moc_shared::box_error::BoxError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

/// What one proxy does; see the module documentation.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub seed: u64,
    /// Chances per 1,000 connections.
    pub reset_per_mille: u32,
    pub stall_per_mille: u32,
    pub slow_per_mille: u32,
    pub stall: Duration,
    pub slow: Duration,
    pub rtt: Duration,
    /// A fault is armed at a byte offset in 1..=this.
    pub max_fault_bytes: u64,
    pub log: Option<PathBuf>,
    pub calm_file: Option<PathBuf>,
    /// Where the count of round trips is served (`scripts/bench-load`).
    pub stats_listen: Option<String>,
}

impl ProxySettings {
    /// `--name N --listen A --upstream A [--seed S] [--reset N] [--stall N]
    /// [--slow N] [--stall-ms MS] [--slow-ms MS] [--rtt-ms MS]
    /// [--max-fault-bytes B] [--log FILE] [--calm-file FILE]`.
    pub fn from_args(args: &[String]) -> Result<Self, BoxError> {
        let flags = Flags::parse(args)?;
        let ms = |name: &str, default: u64| -> Result<Duration, BoxError> {
            Ok(Duration::from_millis(flags.number(name, default)?))
        };
        Ok(Self {
            name: flags.text("name").unwrap_or_else(|| "proxy".to_owned()),
            listen: flags.text("listen").ok_or("--listen ADDRESS is required")?,
            upstream: flags
                .text("upstream")
                .ok_or("--upstream ADDRESS is required")?,
            seed: flags.number("seed", 1)?,
            reset_per_mille: u32::try_from(flags.number("reset", 0)?)?,
            stall_per_mille: u32::try_from(flags.number("stall", 0)?)?,
            slow_per_mille: u32::try_from(flags.number("slow", 0)?)?,
            stall: ms("stall-ms", 4_000)?,
            slow: ms("slow-ms", 150)?,
            rtt: ms("rtt-ms", 0)?,
            max_fault_bytes: flags.number("max-fault-bytes", 65_536)?.max(1),
            log: flags.text("log").map(PathBuf::from),
            calm_file: flags.text("calm-file").map(PathBuf::from),
            stats_listen: flags.text("stats-listen"),
        })
    }
}

/// `--name value` pairs of a subcommand's arguments.
pub struct Flags(Vec<(String, String)>);

impl Flags {
    pub fn parse(args: &[String]) -> Result<Self, BoxError> {
        let mut pairs = Vec::new();
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            let name = flag
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --FLAG VALUE, got {flag:?}"))?;
            let value = rest
                .next()
                .ok_or_else(|| format!("--{name} needs a value"))?;
            pairs.push((name.to_owned(), value.clone()));
        }
        Ok(Self(pairs))
    }

    pub fn text(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    pub fn number(&self, name: &str, default: u64) -> Result<u64, BoxError> {
        match self.text(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name} {v:?} is not a number").into()),
        }
    }
}

/// The fate of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Reset { after: u64 },
    Stall { after: u64 },
    Slow,
}

impl Fault {
    fn kind(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Reset { .. } => "reset",
            Fault::Stall { .. } => "stall",
            Fault::Slow => "slow",
        }
    }
}

/// The proxy: shared by every connection it serves.
struct Proxy {
    settings: ProxySettings,
    log: Option<std::sync::Mutex<std::fs::File>>,
    /// Requests answered, all connections: a chunk towards the client after
    /// one towards the upstream is one round trip (a Postgres query, an S3
    /// call).
    round_trips: AtomicU64,
}

/// Serves until the process is stopped.
pub async fn run(settings: ProxySettings) -> Result<(), BoxError> {
    let listener = TcpListener::bind(&settings.listen).await?;
    let log = match &settings.log {
        Some(path) => Some(std::sync::Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        )),
        None => None,
    };
    eprintln!(
        "fault-proxy {}: {} -> {} (seed {}, per 1000 connections: reset {}, stall {} of {} ms, slow {} of +{} ms; rtt {} ms)",
        settings.name,
        listener.local_addr()?,
        settings.upstream,
        settings.seed,
        settings.reset_per_mille,
        settings.stall_per_mille,
        settings.stall.as_millis(),
        settings.slow_per_mille,
        settings.slow.as_millis(),
        settings.rtt.as_millis()
    );
    let proxy = Arc::new(Proxy {
        settings,
        log,
        round_trips: AtomicU64::new(0),
    });
    if let Some(address) = proxy.settings.stats_listen.clone() {
        tokio::spawn(serve_stats(
            TcpListener::bind(address).await?,
            proxy.clone(),
        ));
    }
    let mut number: u64 = 0;
    loop {
        let (client, _) = listener.accept().await?;
        number += 1;
        let fault = proxy.fate(number);
        let proxy = proxy.clone();
        tokio::spawn(async move { proxy.serve(number, client, fault).await });
    }
}

/// Where a first connection's fault fires: within any request's first message.
const FIRST_FAULT_BYTES: u64 = 256;

impl Proxy {
    /// Connection `number`'s fault, from the seed alone.
    fn fate(&self, number: u64) -> Fault {
        let s = &self.settings;
        let mut rng = StdRng::seed_from_u64(s.seed ^ number.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // The first connections take each armed kind in turn, early in their
        // first message: a run whose clients keep few connections open (S3's
        // pool) could otherwise draw no stall at all, and the chaos check
        // requires every kind to fire (a CI run of seed 26 drew none).
        let first = [
            (
                s.reset_per_mille,
                Fault::Reset {
                    after: rng.gen_range(1..=FIRST_FAULT_BYTES),
                },
            ),
            (
                s.stall_per_mille,
                Fault::Stall {
                    after: rng.gen_range(1..=FIRST_FAULT_BYTES),
                },
            ),
            (s.slow_per_mille, Fault::Slow),
        ];
        let mut armed = first
            .iter()
            .filter(|(rate, _)| *rate > 0)
            .map(|(_, fault)| *fault);
        if let Some(fault) =
            armed.nth(usize::try_from(number.saturating_sub(1)).unwrap_or(usize::MAX))
        {
            return fault;
        }
        let roll: u32 = rng.gen_range(0..1000);
        let after = rng.gen_range(1..=s.max_fault_bytes);
        if roll < s.reset_per_mille {
            Fault::Reset { after }
        } else if roll < s.reset_per_mille + s.stall_per_mille {
            Fault::Stall { after }
        } else if roll < s.reset_per_mille + s.stall_per_mille + s.slow_per_mille {
            Fault::Slow
        } else {
            Fault::None
        }
    }

    fn calm(&self) -> bool {
        self.settings.calm_file.as_ref().is_some_and(|f| f.exists())
    }

    fn record(&self, number: u64, fault: Fault, at: u64, in_flight: &str) {
        let line = serde_json::json!({
            "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "proxy": self.settings.name,
            "seed": self.settings.seed,
            "conn": number,
            "fault": fault.kind(),
            "atByte": at,
            "inFlight": in_flight,
        });
        if let Some(log) = &self.log
            && let Ok(mut file) = log.lock()
        {
            let _ = writeln!(file, "{line}");
        }
    }

    async fn serve(self: Arc<Self>, number: u64, client: TcpStream, fault: Fault) {
        let Ok(upstream) = TcpStream::connect(&self.settings.upstream).await else {
            return;
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let slow = fault == Fault::Slow && !self.calm();
        if slow {
            self.record(number, fault, 0, "connection");
        }
        let connection = Arc::new(Connection {
            number,
            fds: [client.as_raw_fd(), upstream.as_raw_fd()],
            fault,
            slow,
            fired: AtomicBool::new(false),
            awaiting_answer: AtomicBool::new(false),
            bytes: AtomicU64::new(0),
            reset: Notify::new(),
        });
        let (client_read, client_write) = client.into_split();
        let (upstream_read, upstream_write) = upstream.into_split();
        let up = tokio::spawn(pipe(
            self.clone(),
            connection.clone(),
            client_read,
            upstream_write,
            "to-upstream",
        ));
        let down = tokio::spawn(pipe(
            self.clone(),
            connection.clone(),
            upstream_read,
            client_write,
            "to-client",
        ));
        let (up_abort, down_abort) = (up.abort_handle(), down.abort_handle());
        tokio::select! {
            _ = async { let _ = tokio::join!(up, down); } => {}
            () = connection.reset.notified() => {
                up_abort.abort();
                down_abort.abort();
            }
        }
    }
}

/// One proxied connection's shared state.
struct Connection {
    number: u64,
    /// Both sockets, to reset them together (open until `serve` returns).
    fds: [RawFd; 2],
    fault: Fault,
    slow: bool,
    fired: AtomicBool,
    /// Bytes went upstream since the last went to the client.
    awaiting_answer: AtomicBool,
    /// Bytes forwarded so far, both directions.
    bytes: AtomicU64,
    /// Notified when a reset fired: the whole connection is torn down.
    reset: Notify,
}

/// One direction: a reader queues each chunk with its arrival time, the
/// writer sends it once its delay has passed (so latency does not cost
/// throughput) and fires the connection's fault when its byte comes.
async fn pipe(
    proxy: Arc<Proxy>,
    connection: Arc<Connection>,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    way: &'static str,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Bytes)>();
    let reader = tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buffer).await {
            if n == 0
                || tx
                    .send((Instant::now(), Bytes::copy_from_slice(&buffer[..n])))
                    .is_err()
            {
                break;
            }
        }
    });
    let mut delay = proxy.settings.rtt / 2;
    if connection.slow {
        delay += proxy.settings.slow;
    }
    while let Some((arrived, chunk)) = rx.recv().await {
        // The fault is decided as the chunk leaves the queue, before its
        // latency: a stall or a reset still lands mid-request.
        let len = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
        let before = connection.bytes.fetch_add(len, Ordering::Relaxed);
        let chunk = match fire(&proxy, &connection, before, len, way).await {
            Fired::No => chunk,
            Fired::Reset(keep) => {
                sleep_precisely_until(arrived + delay).await;
                let _ = to.write_all(&chunk[..keep]).await;
                connection.reset.notify_one();
                break;
            }
        };
        to = match deliver(to, chunk, arrived + delay).await {
            Ok(to) => to,
            Err(_) => {
                reader.abort();
                return;
            }
        };
        let upstream = way == "to-upstream";
        if connection.awaiting_answer.swap(upstream, Ordering::Relaxed) && !upstream {
            proxy.round_trips.fetch_add(1, Ordering::Relaxed);
        }
    }
    reader.abort();
    let _ = to.shutdown().await;
}

/// Below this much waiting a blocking thread takes over from tokio's timer,
/// which ticks every millisecond and rounds up.
const COARSE_SLACK: Duration = Duration::from_millis(2);

/// Sleeps until `deadline` to within a few tens of microseconds: the coarse
/// timer covers all but the last [`COARSE_SLACK`], a blocking thread
/// ([`wait_precisely_until`]) the rest.
async fn sleep_precisely_until(deadline: Instant) {
    sleep_coarsely_until(deadline).await;
    if deadline > Instant::now() {
        let deadline = deadline.into_std();
        let _ = tokio::task::spawn_blocking(move || wait_precisely_until(deadline)).await;
    }
}

/// Writes `chunk` at `deadline`. The blocking thread that waits out the last
/// stretch also writes, when the socket takes the chunk at once: handing the
/// wake back to a worker first cost about 0.4 ms per direction on a 2-core
/// VM, so a 1 ms round trip through the proxy measured 1.9 ms (pgbench
/// `SELECT 1`, against 0.13 ms direct).
async fn deliver(
    to: OwnedWriteHalf,
    chunk: Bytes,
    deadline: Instant,
) -> std::io::Result<OwnedWriteHalf> {
    sleep_coarsely_until(deadline).await;
    let (mut to, chunk, sent) = if deadline > Instant::now() {
        let deadline = deadline.into_std();
        tokio::task::spawn_blocking(move || {
            wait_precisely_until(deadline);
            // Readiness only: a socket that is full answers WouldBlock,
            // and the write below sends the rest.
            let sent = to.try_write(&chunk).unwrap_or(0);
            (to, chunk, sent)
        })
        .await
        .map_err(std::io::Error::other)?
    } else {
        (to, chunk, 0)
    };
    to.write_all(&chunk[sent..]).await?;
    Ok(to)
}

async fn sleep_coarsely_until(deadline: Instant) {
    if let Some(coarse) = deadline.checked_sub(COARSE_SLACK)
        && coarse > Instant::now()
    {
        tokio::time::sleep_until(coarse).await;
    }
}

/// Blocks until `deadline`: a thread sleep with the thread's timer slack at
/// its minimum (Linux's default lets a sleep end 50 µs late), then a spin
/// over the last few microseconds a wake-up can overshoot by.
fn wait_precisely_until(deadline: std::time::Instant) {
    const SPIN: Duration = Duration::from_micros(50);
    thread_local! {
        static TIGHT_SLACK: () = {
            // SAFETY: prctl(2) PR_SET_TIMERSLACK takes one integer argument
            // and changes only the calling thread's timer slack.
            #[expect(unsafe_code, reason = "PR_SET_TIMERSLACK has no safe API in std")]
            unsafe {
                libc::prctl(libc::PR_SET_TIMERSLACK, 1_u64, 0_u64, 0_u64, 0_u64);
            }
        };
    }
    TIGHT_SLACK.with(|()| {});
    let now = std::time::Instant::now();
    if let Some(early) = deadline.checked_sub(SPIN)
        && early > now
    {
        std::thread::sleep(early - now);
    }
    while std::time::Instant::now() < deadline {
        std::hint::spin_loop();
    }
}

/// Each connection to `--stats-listen` gets the round trips so far, as one
/// line, and is closed.
async fn serve_stats(listener: TcpListener, proxy: Arc<Proxy>) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let line = format!("{}\n", proxy.round_trips.load(Ordering::Relaxed));
        let _ = stream.write_all(line.as_bytes()).await;
    }
}

enum Fired {
    No,
    /// Reset after this many bytes of the chunk.
    Reset(usize),
}

/// Fires the connection's fault when the chunk covering bytes
/// `before..before + len` reaches its byte offset (once, and not when calm).
async fn fire(proxy: &Proxy, connection: &Connection, before: u64, len: u64, way: &str) -> Fired {
    let after = match connection.fault {
        Fault::Reset { after } | Fault::Stall { after } => after,
        Fault::None | Fault::Slow => return Fired::No,
    };
    if before + len < after || connection.fired.swap(true, Ordering::Relaxed) || proxy.calm() {
        return Fired::No;
    }
    proxy.record(connection.number, connection.fault, after, way);
    match connection.fault {
        Fault::Reset { .. } => {
            linger_zero(connection.fds);
            Fired::Reset(usize::try_from(after.saturating_sub(before + 1)).unwrap_or(0))
        }
        _ => {
            tokio::time::sleep(proxy.settings.stall).await;
            Fired::No
        }
    }
}

/// SO_LINGER 0 on both sockets: closing them sends RST both ways, as a
/// dropped connection does, instead of an orderly FIN.
fn linger_zero(fds: [RawFd; 2]) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let size = libc::socklen_t::try_from(std::mem::size_of::<libc::linger>()).unwrap_or(8);
    for fd in fds {
        // SAFETY: setsockopt(2) on a socket this connection still owns (its
        // halves are dropped only after this returns), with a valid struct.
        #[expect(unsafe_code, reason = "SO_LINGER 0 has no safe API in std or tokio")]
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&raw const linger).cast(),
                size,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(seed: u64) -> ProxySettings {
        ProxySettings::from_args(
            &[
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "127.0.0.1:1",
                "--seed",
                &seed.to_string(),
                "--reset",
                "100",
                "--stall",
                "100",
                "--slow",
                "100",
            ]
            .map(String::from),
        )
        .unwrap()
    }

    #[test]
    fn the_same_seed_arms_the_same_faults_on_the_same_connections() {
        let fates = |seed| {
            let proxy = Proxy {
                settings: settings(seed),
                log: None,
                round_trips: AtomicU64::new(0),
            };
            (1..=200).map(|n| proxy.fate(n)).collect::<Vec<_>>()
        };
        assert_eq!(fates(7), fates(7));
        assert_ne!(fates(7), fates(8));
        let kinds: std::collections::HashSet<_> = fates(7).iter().map(|f| f.kind()).collect();
        assert_eq!(kinds.len(), 4, "{kinds:?}");
    }

    /// What the load bench's `--db-rtt-ms`/`--s3-rtt-ms` mean: a round trip
    /// through the proxy takes the round-trip time it was given, never less,
    /// and not a timer tick or a thread hand-off more.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_round_trip_through_the_proxy_takes_its_rtt_and_little_more() {
        const RTT: Duration = Duration::from_millis(4);
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = echo.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut socket, _) = echo.accept().await.unwrap();
            let mut byte = [0u8; 1];
            while socket.read_exact(&mut byte).await.is_ok()
                && socket.write_all(&byte).await.is_ok()
            {}
        });
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|free| free.local_addr())
            .unwrap()
            .to_string();
        let args = [
            "--listen",
            &listen,
            "--upstream",
            &upstream,
            "--rtt-ms",
            "4",
        ];
        tokio::spawn(run(
            ProxySettings::from_args(&args.map(String::from)).unwrap()
        ));
        let mut client = loop {
            match TcpStream::connect(&listen).await {
                Ok(client) => break client,
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        };
        client.set_nodelay(true).unwrap();
        let mut round_trips = Vec::new();
        let mut byte = [0u8; 1];
        for _ in 0..21 {
            let sent = std::time::Instant::now();
            client.write_all(b"x").await.unwrap();
            client.read_exact(&mut byte).await.unwrap();
            round_trips.push(sent.elapsed());
        }
        round_trips.sort();
        assert!(round_trips[0] >= RTT, "{round_trips:?}");
        assert!(
            round_trips[10] < RTT + Duration::from_micros(800),
            "{round_trips:?}"
        );
    }
}
