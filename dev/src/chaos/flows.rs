//! The upload sessions the chaos driver runs: each one a seeded mix of a
//! client's normal and abnormal moves, with 5-10 concurrent duplicates of
//! every complete and finalize.

use bytes::Bytes;
use moc_shared::domain::Crc32c;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::client::{Answer, Client, Payload};

pub const SESSIONS: &str = "/api/mocs/uploads/sessions";
const MIB: usize = 1024 * 1024;
/// The session's part size (the default `MULTIPART_PART_SIZE_MB`).
const PART_SIZE: usize = 5 * MIB;
/// The largest body the proxied part route takes under the platform limit.
pub const PROXY_MAX: usize = 4_500_000;

/// What a session's client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// Upload every file, complete, finalize.
    Normal,
    /// Cancel the session mid-upload.
    Cancel,
    /// Abort a file mid-upload, register it again, then as Normal.
    AbortAndRegisterAgain,
    /// Upload some of it, then walk away: the session expires.
    Expire,
}

impl Scenario {
    pub fn pick(rng: &mut StdRng) -> Self {
        match rng.gen_range(0..100) {
            0..45 => Scenario::Normal,
            45..60 => Scenario::Cancel,
            60..80 => Scenario::AbortAndRegisterAgain,
            _ => Scenario::Expire,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Normal => "normal upload",
            Scenario::Cancel => "cancelled mid-upload",
            Scenario::AbortAndRegisterAgain => "file aborted and registered again",
            Scenario::Expire => "left to expire",
        }
    }
}

/// A file the client uploads: its metadata and its bytes.
pub struct SourceFile {
    pub meta: Value,
    pub name: String,
    pub bytes: Bytes,
    pub crc32c: Crc32c,
    pub sha256: [u8; 32],
}

impl SourceFile {
    fn new(category: &str, name: &str, mime: &str, ext: &str, bytes: Vec<u8>) -> Self {
        let size = bytes.len();
        Self {
            meta: json!({"category": category, "name": name, "size": size, "type": mime, "ext": ext}),
            name: name.to_owned(),
            crc32c: Crc32c::of(&bytes),
            sha256: Sha256::digest(&bytes).into(),
            bytes: Bytes::from(bytes),
        }
    }

    pub fn parts(&self) -> Vec<Bytes> {
        (0..self.bytes.len())
            .step_by(PART_SIZE)
            .map(|start| {
                self.bytes
                    .slice(start..(start + PART_SIZE).min(self.bytes.len()))
            })
            .collect()
    }
}

/// The files of one session: a PDF (sometimes over one part), often an
/// image, sometimes a parts list.
fn source_files(rng: &mut StdRng) -> Vec<SourceFile> {
    let mut random = |prefix: &[u8], size: usize| {
        let mut bytes = prefix.to_vec();
        bytes.resize(size, 0);
        rng.fill(&mut bytes[prefix.len()..]);
        bytes
    };
    let pdf_size = random(&[], 1)[0];
    let pdf_size = if pdf_size < 90 {
        PART_SIZE + 1024 * usize::from(pdf_size % 64 + 1)
    } else {
        20 * 1024 + 4096 * usize::from(pdf_size)
    };
    let mut files = vec![SourceFile::new(
        "instruction",
        "castle.pdf",
        "application/pdf",
        "pdf",
        random(b"%PDF-1.7\n", pdf_size),
    )];
    let extra = random(&[], 1)[0];
    if extra < 150 {
        let png = random(b"\x89PNG\r\n\x1a\n", 8 * 1024 + 512 * usize::from(extra));
        files.push(SourceFile::new(
            "image",
            "cover.png",
            "image/png",
            "png",
            png,
        ));
    }
    if extra % 3 == 0 {
        let csv: String = (0..usize::from(extra) + 10)
            .map(|i| format!("3001,red,{i}\n"))
            .collect();
        let csv = format!("part,color,quantity\n{csv}").into_bytes();
        files.push(SourceFile::new(
            "parts-list",
            "parts.csv",
            "text/csv",
            "csv",
            csv,
        ));
    }
    files
}

/// A file the client saw completed: what the invariants check against S3.
#[derive(Debug, Clone)]
pub struct CompletedFile {
    pub file_id: String,
    pub name: String,
    pub size: usize,
    pub sha256: [u8; 32],
    pub file_url: String,
}

/// What happened to one session, as its client saw it.
#[derive(Debug, Default)]
pub struct SessionRecord {
    pub index: usize,
    pub scenario: Option<Scenario>,
    pub session_id: Option<String>,
    pub title: String,
    pub outcome: String,
    /// The MOC ID of every finalize answer that carried one.
    pub moc_ids: Vec<String>,
    pub completed: Vec<CompletedFile>,
    /// Duplicate completes of one file that answered different URLs.
    pub disagreements: Vec<String>,
}

/// One session's client.
pub struct Flow<'a> {
    pub client: &'a Client,
    pub rng: StdRng,
    pub record: SessionRecord,
    /// The presigned URLs of the file registered last, with their headers.
    pub urls: Vec<(String, Vec<(String, String)>)>,
}

impl Flow<'_> {
    pub(super) fn child_rng(&mut self) -> StdRng {
        StdRng::seed_from_u64(self.rng.r#gen())
    }

    pub(super) async fn api(
        &mut self,
        label: &'static str,
        method: Method,
        path: &str,
        payload: Payload,
    ) -> Result<Answer, String> {
        let mut rng = self.child_rng();
        self.client
            .api(&mut rng, label, method, path, &payload)
            .await
    }

    /// Runs the session's scenario; the outcome is in the record.
    pub async fn run(mut self, scenario: Scenario) -> SessionRecord {
        self.record.scenario = Some(scenario);
        self.record.outcome = match self.scenario(scenario).await {
            Ok(outcome) => outcome,
            Err(problem) => format!("client gave up: {problem}"),
        };
        self.record
    }

    async fn scenario(&mut self, scenario: Scenario) -> Result<String, String> {
        let files = source_files(&mut self.rng);
        let declared: Vec<Value> = files.iter().map(|f| f.meta.clone()).collect();
        let created = self
            .api(
                "create session",
                Method::POST,
                SESSIONS,
                Payload::Json(json!({"files": declared})),
            )
            .await?;
        expect(&created, 201, "create session")?;
        let session = created.body["sessionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.record.session_id = Some(session.clone());
        match scenario {
            Scenario::Normal => self.upload_all(&session, &files).await,
            Scenario::Cancel => self.cancel(&session, &files).await,
            Scenario::AbortAndRegisterAgain => self.abort_and_again(&session, &files).await,
            Scenario::Expire => self.walk_away(&session, &files).await,
        }
    }

    async fn upload_all(&mut self, session: &str, files: &[SourceFile]) -> Result<String, String> {
        for file in files {
            let file_id = self.register(session, file).await?;
            self.upload(session, &file_id, file, None).await?;
            self.complete(session, &file_id, file).await?;
        }
        self.finalize(session).await
    }

    async fn cancel(&mut self, session: &str, files: &[SourceFile]) -> Result<String, String> {
        let file_id = self.register(session, &files[0]).await?;
        let some = self.rng.gen_range(1..=files[0].parts().len());
        self.upload(session, &file_id, &files[0], Some(some))
            .await?;
        if self.rng.gen_bool(0.5) {
            // One file completed first, so cancel has an object to delete.
            let last = files.last().expect("one file at least");
            if files.len() > 1 {
                let id = self.register(session, last).await?;
                self.upload(session, &id, last, None).await?;
                self.complete(session, &id, last).await?;
            }
        }
        let path = format!("{SESSIONS}/{session}");
        let answer = self
            .api("cancel session", Method::DELETE, &path, Payload::None)
            .await?;
        expect(&answer, 204, "cancel session")?;
        Ok("cancelled".into())
    }

    async fn abort_and_again(
        &mut self,
        session: &str,
        files: &[SourceFile],
    ) -> Result<String, String> {
        let first = self.register(session, &files[0]).await?;
        let some = self.rng.gen_range(1..=files[0].parts().len());
        self.upload(session, &first, &files[0], Some(some)).await?;
        let path = format!("{SESSIONS}/{session}/files/{first}");
        let answer = self
            .api("abort file", Method::DELETE, &path, Payload::None)
            .await?;
        // A retry after the abort went through finds no file: 404.
        if answer.status != 404 {
            expect(&answer, 204, "abort file")?;
        }
        self.upload_all(session, files).await
    }

    async fn walk_away(&mut self, session: &str, files: &[SourceFile]) -> Result<String, String> {
        for file in files {
            let file_id = self.register(session, file).await?;
            let all = file.parts().len();
            let some = self.rng.gen_range(1..=all);
            self.upload(session, &file_id, file, Some(some)).await?;
            if some == all && self.rng.gen_bool(0.5) {
                self.complete(session, &file_id, file).await?;
            }
        }
        Ok("left to expire".into())
    }

    /// Registers a file with its CRC32C and its parts'; a retry after a
    /// registration that went through finds the name taken and registers
    /// again by `fileId`. Returns the file's ID.
    async fn register(&mut self, session: &str, file: &SourceFile) -> Result<String, String> {
        let parts = file.parts();
        let checksums: Vec<Value> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| json!({"partNumber": i + 1, "crc32c": Crc32c::of(p).to_string()}))
            .collect();
        let mut body = file.meta.clone();
        body["partCount"] = json!(parts.len());
        body["crc32c"] = json!(file.crc32c.to_string());
        body["partChecksums"] = json!(checksums);
        let path = format!("{SESSIONS}/{session}/files");
        let answer = self
            .api(
                "register file",
                Method::POST,
                &path,
                Payload::Json(body.clone()),
            )
            .await?;
        let answer = match answer.status {
            409 if answer.body["error"]["details"]["existingFileId"].is_string() => {
                body["fileId"] = answer.body["error"]["details"]["existingFileId"].clone();
                self.api("register file", Method::POST, &path, Payload::Json(body))
                    .await?
            }
            _ => answer,
        };
        if answer.status != 200 {
            expect(&answer, 201, "register file")?;
        }
        self.urls.clear();
        for url in answer.body["presignedUrls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let headers = url["headers"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            self.urls
                .push((url["url"].as_str().unwrap_or_default().to_owned(), headers));
        }
        Ok(answer.body["fileId"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }
}

/// Fails unless the answer has the status wanted.
pub fn expect(answer: &Answer, status: u16, what: &str) -> Result<(), String> {
    if answer.status == status {
        return Ok(());
    }
    let body: String = answer.body.to_string().chars().take(400).collect();
    Err(format!(
        "{what} answered {}, not {status}: {body}",
        answer.status
    ))
}
