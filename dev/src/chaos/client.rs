//! The chaos driver's HTTP client: a client that retries on 5xx, timeouts
//! and dropped connections, asks the gateway to kill some of its requests'
//! functions mid-request, and tallies every answer it got.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use rand::rngs::StdRng;
use reqwest::Method;
use serde_json::Value;

use crate::gateway::CHAOS_KILL_HEADER;

/// Attempts per logical call before the client gives up.
const MAX_ATTEMPTS: u32 = 12;
/// A client-side timeout per attempt: a stalled request is retried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a client keeps asking about a finalize in progress: past the
/// stale-lock age (`FINALIZE_LOCK_TTL_MINUTES=1` in `scripts/chaos`) a
/// finalize killed under its lock is taken over.
const FINALIZE_PATIENCE: Duration = Duration::from_secs(100);
/// The longest `Retry-After` honoured, so a bounded run stays bounded.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(2);

/// What a request carries.
pub enum Payload {
    None,
    Json(Value),
    /// A part's bytes, with its CRC32C in S3's spelling.
    Part(Bytes, String),
}

/// A final answer (after any retries).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// Everything the clients saw.
#[derive(Default)]
pub struct Tally {
    /// "METHOD label status" → count, every attempt.
    pub answers: BTreeMap<String, u64>,
    /// 5xx answers that are neither a retryable 503 nor a killed function's 504.
    pub bad_5xx: Vec<String>,
    pub retryable_503: u64,
    pub killed_504: u64,
    pub timeouts: u64,
    pub connection_errors: u64,
    pub kills_asked: u64,
    pub gave_up: Vec<String>,
}

pub struct Client {
    http: reqwest::Client,
    api: String,
    kill_per_mille: u32,
    pub tally: Mutex<Tally>,
}

/// One attempt's result, before the retry decision.
enum Attempt {
    Answer(Answer, Option<Duration>),
    Failed,
}

impl Client {
    pub fn new(api: &str, kill_per_mille: u32) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(ATTEMPT_TIMEOUT)
                .pool_max_idle_per_host(32)
                .build()
                .expect("a reqwest client builds"),
            api: api.trim_end_matches('/').to_owned(),
            kill_per_mille,
            tally: Mutex::default(),
        }
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().expect("tally lock")
    }

    /// An API call (`path` under the API's origin), retried as a careful
    /// client retries. `label` names the route in the tallies.
    pub async fn api(
        &self,
        rng: &mut StdRng,
        label: &'static str,
        method: Method,
        path: &str,
        payload: &Payload,
    ) -> Result<Answer, String> {
        self.api_with(rng, label, method, path, payload, &[]).await
    }

    /// An API call with extra headers (the sweeper's bearer secret).
    pub async fn api_with(
        &self,
        rng: &mut StdRng,
        label: &'static str,
        method: Method,
        path: &str,
        payload: &Payload,
        headers: &[(String, String)],
    ) -> Result<Answer, String> {
        let url = format!("{}{path}", self.api);
        self.call(rng, label, method, &url, payload, headers, true)
            .await
    }

    /// A presigned PUT straight to S3 (through its fault proxy), with the
    /// headers the URL was signed with.
    pub async fn presigned_put(
        &self,
        rng: &mut StdRng,
        url: &str,
        headers: &[(String, String)],
        bytes: Bytes,
    ) -> Result<Answer, String> {
        let payload = Payload::Part(bytes, String::new());
        self.call(
            rng,
            "s3 presigned part",
            Method::PUT,
            url,
            &payload,
            headers,
            false,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        rng: &mut StdRng,
        label: &'static str,
        method: Method,
        url: &str,
        payload: &Payload,
        headers: &[(String, String)],
        through_gateway: bool,
    ) -> Result<Answer, String> {
        let patience = std::time::Instant::now() + FINALIZE_PATIENCE;
        let mut attempt = 0;
        while attempt < MAX_ATTEMPTS {
            attempt += 1;
            // A call's first attempt may ask for a kill, its retries never:
            // the process serves every concurrent request of its route, so
            // each kill already fails the others in flight with it.
            let kill =
                (through_gateway && attempt == 1 && rng.gen_range(0..1000) < self.kill_per_mille)
                    .then(|| rng.gen_range(0..=40u64));
            let result = self
                .attempt(label, method.clone(), url, payload, headers, kill)
                .await;
            let wait = match result {
                Attempt::Answer(answer, retry_after) => {
                    if !retry_wanted(label, &answer) {
                        return Ok(answer);
                    }
                    // Waiting for a finalize that holds the lock is not a failure.
                    if in_progress(&answer) && std::time::Instant::now() < patience {
                        attempt -= 1;
                    }
                    retry_after.unwrap_or_else(|| backoff(rng, attempt))
                }
                Attempt::Failed => backoff(rng, attempt),
            };
            tokio::time::sleep(wait.min(MAX_RETRY_AFTER)).await;
        }
        let gave_up = format!("{method} {label}: no usable answer in {MAX_ATTEMPTS} attempts");
        self.tally().gave_up.push(gave_up.clone());
        Err(gave_up)
    }

    async fn attempt(
        &self,
        label: &'static str,
        method: Method,
        url: &str,
        payload: &Payload,
        headers: &[(String, String)],
        kill: Option<u64>,
    ) -> Attempt {
        let mut request = self.http.request(method.clone(), url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(ms) = kill {
            self.tally().kills_asked += 1;
            request = request.header(CHAOS_KILL_HEADER, ms.to_string());
        }
        request = match payload {
            Payload::None => request,
            Payload::Json(json) => request.json(json),
            Payload::Part(bytes, crc) if !crc.is_empty() => request
                .header("content-type", "application/octet-stream")
                .header("x-amz-checksum-crc32c", crc)
                .body(bytes.clone()),
            Payload::Part(bytes, _) => request.body(bytes.clone()),
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return self.failed(&error),
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header("retry-after");
        let text = match response.text().await {
            Ok(text) => text,
            Err(error) => return self.failed(&error),
        };
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        self.record(&method, label, status, &body, retry_after.as_deref());
        let retry_after = retry_after
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs);
        Attempt::Answer(Answer { status, body }, retry_after)
    }

    fn failed(&self, error: &reqwest::Error) -> Attempt {
        let mut tally = self.tally();
        if error.is_timeout() {
            tally.timeouts += 1;
        } else {
            tally.connection_errors += 1;
        }
        Attempt::Failed
    }

    fn record(
        &self,
        method: &Method,
        label: &str,
        status: u16,
        body: &Value,
        retry_after: Option<&str>,
    ) {
        let mut tally = self.tally();
        *tally
            .answers
            .entry(format!("{method} {label} {status}"))
            .or_default() += 1;
        if status < 500 {
            return;
        }
        let details = &body["error"]["details"];
        if status == 503 && details["retryable"] == true && retry_after.is_some() {
            tally.retryable_503 += 1;
        } else if status == 504 && details["reason"] == "FUNCTION_INVOCATION_TIMEOUT" {
            tally.killed_504 += 1;
        } else if label.starts_with("s3 ") && status == 503 {
            // S3's own SlowDown/ServiceUnavailable: not the API's answer.
            tally.retryable_503 += 1;
        } else {
            let text = body.to_string();
            let text: String = text.chars().take(300).collect();
            tally
                .bad_5xx
                .push(format!("{method} {label} answered {status}: {text}"));
        }
    }
}

/// Whether a careful client tries again: any 5xx, a 409 that says to retry,
/// a finalize still in progress.
fn retry_wanted(label: &str, answer: &Answer) -> bool {
    let details = &answer.body["error"]["details"];
    answer.status >= 500
        || answer.status == 408
        || (answer.status == 409 && details["retryStrategy"] == "RETRY")
        || (label == "finalize" && in_progress(answer))
}

fn in_progress(answer: &Answer) -> bool {
    answer.status == 200 && answer.body["status"] == "finalizing"
}

fn backoff(rng: &mut StdRng, attempt: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << attempt.min(4));
    Duration::from_millis(base + rng.gen_range(0..=base))
}
