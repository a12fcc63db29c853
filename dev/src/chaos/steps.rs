//! The steps of a session's client: part uploads (presigned, or proxied
//! through the API), completes and finalizes, each of the last two sent 5-10
//! times at once.

use rand::Rng;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Answer, Payload};
use super::flows::{CompletedFile, Flow, PROXY_MAX, SESSIONS, SourceFile, expect};

impl Flow<'_> {
    /// Uploads the file's first `count` parts (all when `None`); a part that
    /// fits the platform limit goes through the API half the time.
    pub(super) async fn upload(
        &mut self,
        session: &str,
        file_id: &str,
        file: &SourceFile,
        count: Option<usize>,
    ) -> Result<(), String> {
        let parts = file.parts();
        let count = count.unwrap_or(parts.len());
        for (index, bytes) in parts.into_iter().enumerate().take(count) {
            let number = index + 1;
            let answer = if bytes.len() <= PROXY_MAX && self.rng.gen_bool(0.5) {
                let crc = moc_shared::domain::Crc32c::of(&bytes).to_string();
                let path = format!("{SESSIONS}/{session}/files/{file_id}/parts/{number}");
                self.api(
                    "proxied part",
                    Method::PUT,
                    &path,
                    Payload::Part(bytes, crc),
                )
                .await?
            } else {
                let (url, headers) = self
                    .urls
                    .get(index)
                    .cloned()
                    .ok_or_else(|| format!("no presigned URL for part {number}"))?;
                let mut rng = self.child_rng();
                self.client
                    .presigned_put(&mut rng, &url, &headers, bytes)
                    .await?
            };
            expect(&answer, 200, &format!("part {number} upload"))?;
        }
        Ok(())
    }

    /// The parts as S3 holds them (the resume view), for the complete body.
    async fn listed_parts(&mut self, session: &str, file_id: &str) -> Result<Value, String> {
        let path = format!("{SESSIONS}/{session}/files/{file_id}/parts");
        let answer = self
            .api("list parts", Method::GET, &path, Payload::None)
            .await?;
        expect(&answer, 200, "list parts")?;
        let parts: Vec<Value> = answer.body["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| json!({"partNumber": p["partNumber"], "etag": p["etag"]}))
            .collect();
        Ok(json!({ "parts": parts }))
    }

    /// Completes the file with 5-10 concurrent identical requests; every
    /// one must answer 200 with the same `fileUrl`.
    pub(super) async fn complete(
        &mut self,
        session: &str,
        file_id: &str,
        file: &SourceFile,
    ) -> Result<(), String> {
        let body = self.listed_parts(session, file_id).await?;
        let path = format!("{SESSIONS}/{session}/files/{file_id}/complete");
        let answers = self.duplicates("complete file", &path, &body).await;
        let mut urls: Vec<String> = Vec::new();
        let mut problems = Vec::new();
        for answer in answers {
            match answer.and_then(|a| expect(&a, 200, "complete").map(|()| a)) {
                Ok(a) => urls.push(a.body["fileUrl"].as_str().unwrap_or_default().to_owned()),
                Err(problem) => problems.push(problem),
            }
        }
        urls.sort();
        urls.dedup();
        if urls.len() > 1 {
            let disagreement = format!("file {file_id}: duplicate completes answered {urls:?}");
            self.record.disagreements.push(disagreement);
        }
        let Some(file_url) = urls.first() else {
            return Err(problems.join("; "));
        };
        self.record.completed.push(CompletedFile {
            file_id: file_id.to_owned(),
            name: file.name.clone(),
            size: file.bytes.len(),
            sha256: file.sha256,
            file_url: file_url.clone(),
        });
        if let Some(problem) = problems.first() {
            return Err(format!("a duplicate complete failed: {problem}"));
        }
        Ok(())
    }

    /// Finalizes with 5-10 concurrent requests, on the route and its
    /// per-session alias; collects every MOC ID answered.
    pub(super) async fn finalize(&mut self, session: &str) -> Result<String, String> {
        let body = json!({
            "uploadSessionId": session,
            "title": self.record.title,
            "description": "chaos run",
            "tags": ["chaos"],
        });
        let path = if self.rng.gen_bool(0.5) {
            "/api/mocs/uploads/finalize".to_owned()
        } else {
            format!("{SESSIONS}/{session}/finalize")
        };
        let answers = self.duplicates("finalize", &path, &body).await;
        let mut problems = Vec::new();
        for answer in answers {
            match answer {
                Ok(a) if matches!(a.status, 200 | 201) && a.body["id"].is_string() => {
                    self.record
                        .moc_ids
                        .push(a.body["id"].as_str().unwrap_or_default().to_owned());
                }
                Ok(a) => problems.push(expect(&a, 201, "finalize").err().unwrap_or_default()),
                Err(problem) => problems.push(problem),
            }
        }
        match (self.record.moc_ids.is_empty(), problems.first()) {
            (true, _) => Err(problems.join("; ")),
            (false, Some(problem)) => Err(format!("finalized, but a duplicate failed: {problem}")),
            (false, None) => Ok("finalized".into()),
        }
    }

    /// 5-10 identical POSTs at once, each retried on its own.
    async fn duplicates(
        &mut self,
        label: &'static str,
        path: &str,
        body: &Value,
    ) -> Vec<Result<Answer, String>> {
        let count = self.rng.gen_range(5..=10);
        let client = self.client;
        let calls = (0..count).map(|_| {
            let mut rng = self.child_rng();
            let payload = Payload::Json(body.clone());
            async move {
                client
                    .api(&mut rng, label, Method::POST, path, &payload)
                    .await
            }
        });
        futures::future::join_all(calls.collect::<Vec<_>>()).await
    }
}
