//! Finalize's checks of the stored objects, before anything is written.

use uuid::Uuid;

use crate::domain::{
    FileCategory, FileVerificationProblem, SNIFF_LEN, VerificationFailure, content_matches,
};
use crate::error::ApiError;
use crate::s3::StoredObject;
use crate::state::AppState;
use crate::store::FileRow;

/// Checks every file in S3: the object exists, its size is the declared
/// size, its stored CRC32C (if the store keeps one) is the declared one, its
/// type is allowed for its category, and its first bytes carry the declared
/// format's signature. All problems are reported together. Answers the
/// files whose stored CRC32C was found equal to the declared one: verified.
pub(super) async fn verify_files(
    state: &AppState,
    files: &[FileRow],
) -> Result<Vec<Uuid>, ApiError> {
    let checks = files.iter().map(|file| verify_file(state, file));
    let results = futures::future::join_all(checks).await;
    let mut problems = Vec::new();
    let mut verified = Vec::new();
    for (file, result) in files.iter().zip(results) {
        match result? {
            Err(problem) => problems.push(problem),
            Ok(true) => verified.push(file.id),
            Ok(false) => {}
        }
    }
    if problems.is_empty() {
        Ok(verified)
    } else {
        Err(ApiError::FileValidationFailed { files: problems })
    }
}

type Verdict = Result<bool, FileVerificationProblem>;

/// `Ok(verified)`: the file passed, its CRC32C verified or not.
async fn verify_file(state: &AppState, file: &FileRow) -> Result<Verdict, ApiError> {
    let problem = |reason, message: String| {
        Ok(Err(FileVerificationProblem {
            file_id: file.id,
            filename: file.name.clone(),
            reason,
            message,
        }))
    };
    let Some(category) = file.category() else {
        return problem(
            VerificationFailure::Type,
            format!("unknown category {}", file.category),
        );
    };
    if !category.allowed_types().contains(&file.mime_type.as_str()) {
        return problem(
            VerificationFailure::Type,
            format!("{} is not allowed for {category} files", file.mime_type),
        );
    }
    let Some(key) = file.s3_key.as_deref() else {
        return problem(
            VerificationFailure::Missing,
            "the file has no stored object".into(),
        );
    };
    let verified = match check_stored(file, state.s3().stored_object(key).await?) {
        Ok(verified) => verified,
        Err((reason, message)) => return problem(reason, message),
    };
    if category == FileCategory::Instruction || category.is_image() {
        let head = state.s3().read_head(key, SNIFF_LEN).await?;
        if !content_matches(&file.mime_type, &head) {
            // The declared type was only advisory until now (docs/contract.md §4.1).
            tracing::warn!(file_id = %file.id, declared = %file.mime_type, "stored content does not match the declared type");
            return problem(
                VerificationFailure::MagicBytes,
                format!("the content is not {}", file.mime_type),
            );
        }
    }
    Ok(Ok(verified))
}

/// The stored object against the file: there, of the declared size, and
/// with the declared CRC32C when the store keeps one (a store that ignores
/// checksums leaves the file unverified, never refused). `Ok(verified)`.
fn check_stored(
    file: &FileRow,
    stored: Option<StoredObject>,
) -> Result<bool, (VerificationFailure, String)> {
    let Some(stored) = stored else {
        return Err((
            VerificationFailure::Missing,
            "no object was found in storage".into(),
        ));
    };
    if stored.size != file.size.max(0) as u64 {
        return Err((
            VerificationFailure::Size,
            format!(
                "stored size {} differs from the declared {}",
                stored.size, file.size
            ),
        ));
    }
    match (file.crc32c(), stored.crc32c) {
        (Some(declared), Some(found)) if declared != found => {
            tracing::warn!(file_id = %file.id, %declared, %found, "stored CRC32C differs from the declared one");
            Err((
                VerificationFailure::Checksum,
                format!("stored CRC32C {found} differs from the declared {declared}"),
            ))
        }
        (Some(_), Some(_)) => Ok(true),
        _ => Ok(false),
    }
}
