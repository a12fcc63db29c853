//! The invariants of a chaos run, checked at the end from Postgres (direct,
//! not through the faults) and by listing the bucket.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_s3::Client as S3;
use moc_shared::box_error::BoxError;
use moc_shared::domain::Crc32c;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::flows::SessionRecord;

/// One invariant: its sentence, whether it holds, what it covered, and the
/// first few counterexamples.
pub struct Invariant {
    pub sentence: &'static str,
    pub covered: String,
    pub failures: Vec<String>,
}

impl Invariant {
    pub fn new(sentence: &'static str, covered: String, failures: Vec<String>) -> Self {
        Self {
            sentence,
            covered,
            failures,
        }
    }

    pub fn holds(&self) -> bool {
        self.failures.is_empty()
    }
}

/// What the checks read from S3 and the database.
pub struct World<'a> {
    pub db: &'a PgPool,
    pub s3: &'a S3,
    pub bucket: &'a str,
    /// The embedded S3's data directory (`DEV_DATA_DIR`).
    pub data_dir: &'a std::path::Path,
}

impl World<'_> {
    async fn object(&self, key: &str) -> Result<Vec<u8>, String> {
        let object = self
            .s3
            .get_object()
            .bucket(self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| format!("GET {key}: {}", s3_error(&e)))?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| format!("GET {key}: {e}"))?;
        Ok(bytes.into_bytes().to_vec())
    }

    /// The key of a `fileUrl` (`{base}/{bucket}/{key}` or `{base}/{key}`).
    fn key_of(&self, url: &str) -> String {
        let marker = format!("/{}/", self.bucket);
        url.find(&marker)
            .map_or_else(|| url.to_owned(), |at| url[at + marker.len()..].to_owned())
    }

    /// Every session a client saw finalized has exactly one MOC, the one
    /// every finalize answer named.
    pub async fn one_moc_per_session(
        &self,
        records: &[SessionRecord],
    ) -> Result<Invariant, BoxError> {
        let mut failures = Vec::new();
        let mut answers = 0;
        let finalized: Vec<&SessionRecord> =
            records.iter().filter(|r| !r.moc_ids.is_empty()).collect();
        for record in &finalized {
            answers += record.moc_ids.len();
            let ids: HashSet<&String> = record.moc_ids.iter().collect();
            let mocs: Vec<(String,)> =
                sqlx::query_as("SELECT id::text FROM moc_instructions WHERE title = $1")
                    .bind(&record.title)
                    .fetch_all(self.db)
                    .await?;
            let linked: Option<(Option<String>,)> = sqlx::query_as(
                "SELECT moc_instruction_id::text FROM upload_sessions WHERE id = $1::uuid",
            )
            .bind(record.session_id.as_deref().unwrap_or_default())
            .fetch_optional(self.db)
            .await?;
            let linked = linked.and_then(|(id,)| id);
            let ok = ids.len() == 1
                && mocs.len() == 1
                && ids.contains(&mocs[0].0)
                && linked.as_ref() == Some(&mocs[0].0);
            if !ok {
                failures.push(format!(
                    "session {:?} ({}): answers named {ids:?}; MOCs with its title {mocs:?}; the session links {linked:?}",
                    record.session_id, record.title
                ));
            }
        }
        let dup: Vec<(String, i64)> = sqlx::query_as(
            "SELECT title, count(*) FROM moc_instructions GROUP BY title HAVING count(*) > 1",
        )
        .fetch_all(self.db)
        .await?;
        failures.extend(
            dup.into_iter()
                .map(|(t, n)| format!("{n} MOCs titled {t:?}")),
        );
        Ok(Invariant::new(
            "every session a client saw finalized has exactly one MOC, and every duplicate finalize returned its id",
            format!(
                "{} sessions, {answers} finalize answers with a MOC",
                finalized.len()
            ),
            failures,
        ))
    }

    /// No file row is `completed` without its object in S3, of its declared
    /// size and CRC32C.
    pub async fn completed_rows_have_objects(&self) -> Result<Invariant, BoxError> {
        let rows: Vec<(String, Option<String>, i32, Option<String>)> = sqlx::query_as(
            "SELECT id::text, s3_key, size, crc32c FROM upload_session_files WHERE status = 'completed'",
        )
        .fetch_all(self.db)
        .await?;
        let mut failures = Vec::new();
        for (id, key, size, crc) in &rows {
            let Some(key) = key else {
                failures.push(format!("file {id}: completed without an S3 key"));
                continue;
            };
            match self.object(key).await {
                Err(problem) => failures.push(format!("file {id}: {problem}")),
                Ok(bytes) => {
                    let found = Crc32c::of(&bytes).to_string();
                    if i64::try_from(bytes.len()).ok() != Some(i64::from(*size)) {
                        failures.push(format!(
                            "file {id}: {} bytes in S3, {size} declared",
                            bytes.len()
                        ));
                    } else if crc.as_ref().is_some_and(|c| *c != found) {
                        failures.push(format!("file {id}: CRC32C {found} in S3, {crc:?} declared"));
                    }
                }
            }
        }
        Ok(Invariant::new(
            "no file row is completed without an object in S3 of its declared size and CRC32C",
            format!("{} completed file rows", rows.len()),
            failures,
        ))
    }

    /// ListMultipartUploads of the whole bucket is empty.
    pub async fn no_open_uploads(&self) -> Result<Invariant, BoxError> {
        let listed = self
            .s3
            .list_multipart_uploads()
            .bucket(self.bucket)
            .max_uploads(1000)
            .send()
            .await
            .map_err(|e| s3_error(&e))?;
        let failures: Vec<String> = listed
            .uploads()
            .iter()
            .map(|u| format!("open upload {:?} of {:?}", u.upload_id(), u.key()))
            .collect();
        Ok(Invariant::new(
            "zero open multipart uploads (ListMultipartUploads empty)",
            "the whole bucket".into(),
            failures,
        ))
    }

    /// Every object in the bucket has a file row or belongs to a MOC.
    pub async fn no_unowned_objects(&self) -> Result<Invariant, BoxError> {
        let files = self.stored_files()?;
        let rows: Vec<(Option<String>,)> =
            sqlx::query_as("SELECT s3_key FROM upload_session_files")
                .fetch_all(self.db)
                .await?;
        let mocs: Vec<(String,)> = sqlx::query_as("SELECT file_url FROM moc_files")
            .fetch_all(self.db)
            .await?;
        let mut owned: HashSet<String> = rows.into_iter().filter_map(|(k,)| k).collect();
        owned.extend(mocs.into_iter().map(|(url,)| self.key_of(&url)));
        let owned: HashSet<String> = owned
            .iter()
            .map(|k| hex::encode(Sha256::digest(k)))
            .collect();
        let failures: Vec<String> = files
            .iter()
            .filter(|f| !owned.contains(*f))
            .map(|f| format!("object file {f} (SHA-256 of its key) has no file row and no MOC"))
            .collect();
        Ok(Invariant::new(
            "zero objects without a row, apart from what a finalized MOC references",
            format!("{} objects in the bucket", files.len()),
            failures,
        ))
    }

    /// The object files in the embedded S3's bucket directory: its
    /// listing is not implemented, and it names each object's file by the
    /// hex SHA-256 of the key (`dev/src/s3.rs`, `storage_key`).
    fn stored_files(&self) -> Result<Vec<String>, BoxError> {
        let dir = self.data_dir.join(self.bucket);
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Every file a client saw completed in a session it saw finalized is
    /// in the MOC, readable, and byte for byte what was uploaded.
    pub async fn nothing_lost(&self, records: &[SessionRecord]) -> Result<Invariant, BoxError> {
        let mut failures = Vec::new();
        let mut files = 0;
        for record in records.iter().filter(|r| !r.moc_ids.is_empty()) {
            let urls: Vec<(String,)> = sqlx::query_as(
                "SELECT f.file_url FROM moc_files f JOIN upload_sessions s ON s.moc_instruction_id = f.moc_id WHERE s.id = $1::uuid",
            )
            .bind(record.session_id.as_deref().unwrap_or_default())
            .fetch_all(self.db)
            .await?;
            let in_moc: HashSet<String> = urls.into_iter().map(|(u,)| u).collect();
            for file in &record.completed {
                files += 1;
                if !in_moc.contains(&file.file_url) {
                    failures.push(format!("{}: {} is not in its MOC", file.file_id, file.name));
                    continue;
                }
                match self.object(&self.key_of(&file.file_url)).await {
                    Ok(bytes) if <[u8; 32]>::from(Sha256::digest(&bytes)) == file.sha256 => {}
                    Ok(bytes) => failures.push(format!(
                        "{} ({}): S3 holds {} bytes that differ from the {} uploaded",
                        file.file_id,
                        file.name,
                        bytes.len(),
                        file.size
                    )),
                    Err(problem) => failures.push(problem),
                }
            }
        }
        Ok(Invariant::new(
            "nothing was lost: every completed file of a finalized session is readable and matches its source bytes",
            format!("{files} files"),
            failures,
        ))
    }
}

fn s3_error(error: &dyn std::error::Error) -> String {
    aws_sdk_s3::error::DisplayErrorContext(error).to_string()
}

/// The faults the logs show, by source and kind, and which of them fired
/// while a request was in flight.
#[derive(Default)]
pub struct FaultCounts {
    pub fired: BTreeMap<String, u64>,
    pub mid_request: BTreeMap<String, u64>,
}

/// Every fault kind the issue names; each must have fired mid-request.
pub const FAULT_KINDS: [&str; 7] = [
    "function kill",
    "db reset",
    "db stall",
    "db slow",
    "s3 reset",
    "s3 stall",
    "s3 slow",
];

impl FaultCounts {
    pub fn read(logs: &[std::path::PathBuf]) -> Self {
        let mut counts = Self::default();
        for log in logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            for line in text.lines() {
                let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                let fault = event["fault"].as_str().unwrap_or("?");
                let name = match event["proxy"].as_str() {
                    Some(proxy) => format!("{proxy} {fault}"),
                    None => format!("function {fault}"),
                };
                // A slow connection is slow for every request it carries.
                let mid = event["inFlight"] == true
                    || matches!(
                        event["inFlight"].as_str(),
                        Some("to-upstream" | "to-client")
                    )
                    || fault == "slow";
                *counts.fired.entry(name.clone()).or_default() += 1;
                if mid {
                    *counts.mid_request.entry(name).or_default() += 1;
                }
            }
        }
        counts
    }
}
