//! Finalize's checks of the stored objects, before anything is written.

use crate::domain::{
    FileCategory, FileVerificationProblem, SNIFF_LEN, VerificationFailure, content_matches,
};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::FileRow;

/// Checks every file in S3: the object exists, its size is the declared
/// size, its type is allowed for its category, and its first bytes carry the
/// declared format's signature. All problems are reported together.
pub(super) async fn verify_files(state: &AppState, files: &[FileRow]) -> Result<(), ApiError> {
    let checks = files.iter().map(|file| verify_file(state, file));
    let results = futures::future::join_all(checks).await;
    let mut problems = Vec::new();
    for result in results {
        if let Some(problem) = result? {
            problems.push(problem);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::FileValidationFailed { files: problems })
    }
}

async fn verify_file(
    state: &AppState,
    file: &FileRow,
) -> Result<Option<FileVerificationProblem>, ApiError> {
    let problem = |reason, message: String| {
        Ok(Some(FileVerificationProblem {
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
    match state.s3().object_size(key).await? {
        None => {
            return problem(
                VerificationFailure::Missing,
                "no object was found in storage".into(),
            );
        }
        Some(size) if size != file.size as u64 => {
            return problem(
                VerificationFailure::Size,
                format!("stored size {size} differs from the declared {}", file.size),
            );
        }
        Some(_) => {}
    }
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
    Ok(None)
}
