//! Completing a file (docs/contract.md §4.6): its listed parts held to what
//! S3 holds, then one CompleteMultipartUpload. The body is
//! [`CompleteFileRequest`], which the handler reads and the OpenAPI document
//! describes (`domain::validate` says why its fields are `Raw`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::User;
use crate::db::Tx;
use crate::domain::{
    Crc32c, FieldErrors, FileAction, ListedPartsProblem, PartNumber, PartPlan, Permit, Raw,
    Refusal, S3_MIN_PART_SIZE, SessionAction, check_listed_parts, check_stored_parts, field_path,
    read_body,
};
use crate::error::ApiError;
use crate::s3::StoredPart;
use crate::services::{lookup, parts, permits};
use crate::state::AppState;
use crate::store::{self, FileRow, SessionRow};
use crate::time;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompletedFile {
    pub file_id: Uuid,
    pub file_url: String,
}

/// One part as the client saw it: its number and the ETag S3 answered.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListedPart {
    #[schema(value_type = u16, minimum = 1, maximum = 10000)]
    pub part_number: Raw,
    #[schema(value_type = String, min_length = 1, max_length = 1024, pattern = r"^[^\x00-\x1F]*$")]
    pub etag: Raw,
}

impl ListedPart {
    fn validate(&self, path: &str, errors: &mut FieldErrors) -> Option<(PartNumber, String)> {
        let number = self.part_number.integer(
            &field_path(path, "partNumber"),
            1..=u64::from(PartNumber::MAX),
            errors,
        );
        let etag = self
            .etag
            .string(&field_path(path, "etag"), 1..=1024, errors);
        let number = u16::try_from(number?).ok().and_then(PartNumber::new)?;
        Some((number, etag?))
    }
}

/// POST …/complete (contract §4.6). `{}` completes with the parts S3
/// holds: they must be exactly 1..partCount, every one but the last at least
/// 5 MiB (400 PARTS_VALIDATION_ERROR names the missing or small ones).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"parts": [{"partNumber": 1, "etag": "\"5d41402abc4b2a76b9719d911017c592\""}]}))]
pub struct CompleteFileRequest {
    /// Each part with the ETag S3 answered for it; held to S3's list.
    #[schema(value_type = Option<Vec<ListedPart>>, min_items = 1, max_items = 10000)]
    pub parts: Raw,
}

/// The parts a client lists in a complete request; `None` for `{}` (or
/// `parts: null`): complete with what S3 holds (§4.6).
pub fn parse_listed_parts(body: &Value) -> Result<Option<Vec<(PartNumber, String)>>, ApiError> {
    let mut errors = FieldErrors::default();
    let Some(request) = read_body::<CompleteFileRequest>("", body, &mut errors) else {
        return Err(ApiError::Validation(errors));
    };
    if request.parts.is_absent() {
        return Ok(None);
    }
    let parts = request.parts.array(
        "parts",
        1..=usize::from(PartNumber::MAX),
        &mut errors,
        |path, value, errors| {
            read_body::<ListedPart>(&path, value, errors)?.validate(&path, errors)
        },
    );
    match parts {
        Some(parts) if errors.is_empty() => Ok(Some(parts)),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// Completes a file (docs/contract.md §4.6). Idempotent and race-safe: the file row
/// stays locked from the status check to the status update, so of two
/// concurrent completes one calls S3 and the other waits, then answers 200
/// with the same `fileUrl`.
///
/// The row lock spans the S3 calls (ListParts, CompleteMultipartUpload) on
/// purpose: it is what makes exactly one S3 completion happen and lets the
/// loser answer with the winner's URL once the lock is released. A guarded
/// `completing` status would free the connection during S3, but then the
/// loser has to poll for the outcome and a crashed winner needs a staleness
/// rule. The request holds this one connection and acquires no other (the
/// reconciliation runs in the same transaction), so concurrent completes
/// queue for the pool instead of starving it.
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id, %file_id))]
pub async fn complete(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    file_id: Uuid,
    body: Value,
) -> Result<CompletedFile, ApiError> {
    let listed = parse_listed_parts(&body)?;
    let tx = state.db().begin().await?;
    // The session and the locked file in one statement. The file's lock is
    // taken even when the lifecycle then refuses: the refusal rolls back.
    let read =
        store::files::owned_session_and_locked_file(&tx, session_id, file_id, &user.id).await?;
    let (session, file) = lookup::session_then_file(read)?;
    let now = time::now();
    // A finalized session still answers a repeated complete of a completed
    // file (below); it completes nothing new.
    let replay_only =
        match permits::lifecycle_of(state, &session, now).permits(SessionAction::CompleteFile) {
            Ok(_) => None,
            Err(Refusal::Finalized) => Some(Refusal::Finalized),
            Err(refusal) => return Err(permits::refusal_error(&tx, &session, refusal, now).await),
        };
    let file = file?;

    if let (Ok(Permit::AlreadyDone), Some(file_url)) = (
        permits::file_permit(&file, FileAction::Complete),
        &file.file_url,
    ) {
        tracing::warn!(
            "file already completed: answering idempotently (the client may be retrying)"
        );
        return Ok(CompletedFile {
            file_id,
            file_url: file_url.clone(),
        });
    }
    if let Some(refusal) = replay_only {
        return Err(permits::refusal_error(&tx, &session, refusal, now).await);
    }
    let (file_url, parts) = complete_upload(state, &tx, &session, &file, listed.as_deref()).await?;
    drop(tx);
    tracing::info!(parts, "file completed");
    Ok(CompletedFile { file_id, file_url })
}

/// Reconciles the parts, completes the S3 upload with the listed ones and
/// marks the file completed, all inside the caller's transaction, which it
/// commits: the recorded parts, the mark and the COMMIT share one round
/// trip. Returns the file's URL and how many parts it has.
async fn complete_upload(
    state: &AppState,
    tx: &Tx,
    session: &SessionRow,
    file: &FileRow,
    listed: Option<&[(PartNumber, String)]>,
) -> Result<(String, usize), ApiError> {
    let (key, upload_id) = file.upload()?;
    let plan = file.plan(session);
    let declared = file.crc32c();
    if let Some(listed) = listed.filter(|listed| names_each_part_once(&plan, listed))
        && let Some(done) = complete_as_listed(state, tx, session, file, listed).await?
    {
        return Ok(done);
    }
    let Some(stored) = parts::stored_parts(state, file).await? else {
        return adopt_completed_object(state, tx, file, key).await;
    };
    let to_complete = match listed {
        Some(listed) => check_listed_parts(&plan, &stored, listed),
        None => check_stored_parts(&plan, &stored),
    }
    .map_err(listed_parts_error)?;
    state
        .s3()
        .complete_multipart_upload(key, upload_id, &to_complete, declared)
        .await
        .map_err(|error| match declared {
            Some(expected) if error.is_checksum_mismatch() => {
                checksum_mismatch(expected, &stored, &to_complete)
            }
            _ if error.is_invalid_part() => invalid_part(&to_complete),
            _ => error.into(),
        })?;
    let file_url = format!("{}/{key}", state.config().s3.public_file_base_url);
    futures::try_join!(
        parts::record_stored(tx, session, file, &stored),
        store::files::mark_completed(tx, file.id, &file_url, time::now()),
        tx.committing(),
    )?;
    Ok((file_url, to_complete.len()))
}

/// A list naming each part of the plan once goes to S3 as it is: S3 checks
/// it while it completes (ETags, sizes, the declared CRC32C), so one S3 call
/// is the whole of it, and one statement recording the parts as listed and
/// marking the file, with the COMMIT, is one round trip. `None` when S3 refuses anything: the caller's
/// checked path then lists what S3 holds and answers as precisely as
/// before.
async fn complete_as_listed(
    state: &AppState,
    tx: &Tx,
    session: &SessionRow,
    file: &FileRow,
    listed: &[(PartNumber, String)],
) -> Result<Option<(String, usize)>, ApiError> {
    let (key, upload_id) = file.upload()?;
    let completed = state
        .s3()
        .complete_multipart_upload(key, upload_id, listed, file.crc32c())
        .await;
    if let Err(error) = completed {
        tracing::info!(%error, "S3 refused the listed parts at once; checking them against ListParts");
        return Ok(None);
    }
    let file_url = format!("{}/{key}", state.config().s3.public_file_base_url);
    let now = time::now();
    futures::try_join!(
        store::parts::record_listed_and_complete(tx, session.id, file.id, listed, &file_url, now),
        tx.committing(),
    )?;
    Ok(Some((file_url, listed.len())))
}

/// Whether `listed` names parts 1..=N of the plan, each once.
fn names_each_part_once(plan: &PartPlan, listed: &[(PartNumber, String)]) -> bool {
    let mut numbers: Vec<u16> = listed.iter().map(|(number, _)| number.get()).collect();
    numbers.sort_unstable();
    numbers.dedup();
    u64::try_from(numbers.len()).is_ok_and(|count| count == plan.part_count())
        && numbers.len() == listed.len()
        && plan.parts().map(PartNumber::get).eq(numbers)
}

/// The file's upload is gone from S3 although its row still has it open:
/// an earlier complete of this file completed it in S3, then died or lost
/// its database connection before its COMMIT (docs/adr/0010-complete-after-a-lost-commit.md).
/// The object that completion made is the file when it has the declared
/// size (and, when the store keeps one, the declared CRC32C): the row is
/// marked completed now, and the client gets its 200 as if the first
/// complete had answered. Otherwise the upload is lost: 400, abort the file
/// and register it again.
async fn adopt_completed_object(
    state: &AppState,
    tx: &Tx,
    file: &FileRow,
    key: &str,
) -> Result<(String, usize), ApiError> {
    let object = state.s3().stored_object(key).await?;
    let declared_size = u64::try_from(file.size).ok();
    let whole = object.as_ref().is_some_and(|o| {
        Some(o.size) == declared_size
            && match (o.crc32c, file.crc32c()) {
                (Some(stored), Some(declared)) => stored == declared,
                _ => true,
            }
    });
    if !whole {
        tracing::error!(
            key,
            ?object,
            "the file's upload is gone from S3 and no whole object took its place"
        );
        return Err(ApiError::upload_gone());
    }
    let file_url = format!("{}/{key}", state.config().s3.public_file_base_url);
    futures::try_join!(
        store::files::mark_completed(tx, file.id, &file_url, time::now()),
        tx.committing(),
    )?;
    tracing::warn!(
        key,
        "complete: S3 had completed the upload before a lost COMMIT; the object is adopted"
    );
    Ok((file_url, 0))
}

/// 422 FILE_ERROR (reason CHECKSUM_MISMATCH): S3 found the parts do not make the declared
/// full-object CRC32C. `found` is what they make, from the part CRC32Cs S3
/// listed (when it listed them all). Nothing changed: the parts can be
/// replaced and complete retried, or the file re-registered with the right
/// `crc32c`.
fn checksum_mismatch(
    expected: Crc32c,
    stored: &[StoredPart],
    completed: &[(PartNumber, String)],
) -> ApiError {
    let found = completed
        .iter()
        .map(|(number, _)| {
            let part = stored.iter().find(|p| p.part_number == *number)?;
            Some((part.crc32c?, part.size))
        })
        .collect::<Option<Vec<_>>>()
        .map(Crc32c::of_parts);
    tracing::warn!(%expected, found = ?found.map(|crc| crc.to_string()), "complete refused: full-object CRC32C mismatch");
    ApiError::FileChecksumMismatch { expected, found }
}

/// 400 PARTS_VALIDATION_ERROR: S3 refused a part it listed (Garage, after a
/// refused attempt at the part; `S3Error::is_invalid_part`). Nothing
/// changed; sending the listed parts again makes complete work.
fn invalid_part(completed: &[(PartNumber, String)]) -> ApiError {
    let parts: Vec<u16> = completed.iter().map(|(number, _)| number.get()).collect();
    tracing::warn!(
        ?parts,
        "complete refused: S3 answered InvalidPart for a listed part"
    );
    ApiError::PartListRejected {
        message: "S3 refused a listed part; upload the parts again, then complete",
        details: json!({"partNumbers": parts, "problem": "invalid-part"}),
    }
}

/// The 400 PARTS_VALIDATION_ERROR a client gets for a part list that cannot
/// complete the upload.
fn listed_parts_error(problem: ListedPartsProblem) -> ApiError {
    use ListedPartsProblem::*;
    let (message, details) = match problem {
        NotUploaded { missing, expected } => (
            "Some parts have not been uploaded; upload them, then complete again",
            json!({"missingPartNumbers": missing, "expected": expected}),
        ),
        CountMismatch { expected, received } => (
            "The number of parts does not match the file's part count",
            json!({"expected": expected, "received": received}),
        ),
        EtagMismatch { part } => (
            "A listed ETag does not match the uploaded part",
            json!({"partNumber": part, "problem": "etag-mismatch"}),
        ),
        NotListed { part, expected } => (
            "A part is missing from the list",
            json!({"missingPartNumbers": [part], "expected": expected}),
        ),
        TooSmall { part, size, small } => (
            "Every part but the last must be at least 5 MiB; upload these parts again",
            json!({"partNumber": part, "sizeBytes": size, "minBytes": S3_MIN_PART_SIZE,
                   "smallPartNumbers": small}),
        ),
    };
    ApiError::PartListRejected { message, details }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_names_its_part_in_the_details() {
        let err = listed_parts_error(ListedPartsProblem::NotUploaded {
            missing: vec![2, 3],
            expected: 3,
        });
        assert_eq!(err.details().unwrap()["missingPartNumbers"], json!([2, 3]));
        let err = listed_parts_error(ListedPartsProblem::TooSmall {
            part: 2,
            size: 1,
            small: vec![2, 3],
        });
        assert_eq!(err.details().unwrap()["minBytes"], S3_MIN_PART_SIZE);
        assert_eq!(err.details().unwrap()["smallPartNumbers"], json!([2, 3]));
        let err = listed_parts_error(ListedPartsProblem::EtagMismatch { part: 2 });
        assert_eq!(err.details().unwrap()["partNumber"], 2);
    }
}
