//! Finalize's checks of the stored objects, before anything is written.

use bytes::Bytes;
use uuid::Uuid;

use crate::domain::{
    Crc32c, FileCategory, FileVerificationProblem, SNIFF_LEN, VerificationFailure, content_matches,
};
use crate::error::ApiError;
use crate::s3::{S3Error, StoredObject};
use crate::state::AppState;
use crate::store::FileRow;

/// Checks every file in S3: the object exists, its size is the declared
/// size, its CRC32C (if the store keeps one) is the declared one, its type
/// is allowed for its category, and its first bytes carry the declared
/// format's signature. All problems are reported together. Answers the
/// files whose CRC32C was found equal to the declared one: verified (the
/// store's answer, or our own reading when the store's differs). A file
/// whose store keeps no CRC32C stays unverified: nothing checked it.
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
    let sniff = category == FileCategory::Instruction || category.is_image();
    let (stored, head) = metadata_and_head(state, key, sniff).await;
    let checksum = match check_stored(file, stored?) {
        Ok(checksum) => checksum,
        Err((reason, message)) => return problem(reason, message),
    };
    let verified = match checksum {
        StoredChecksum::Declared => true,
        StoredChecksum::Unknown => false,
        StoredChecksum::Other { declared, found } => {
            match own_check(state, file, key, declared, found).await? {
                Ok(()) => true,
                Err(message) => return problem(VerificationFailure::Checksum, message),
            }
        }
    };
    if let Some(head) = head {
        // Read only now: a missing or mismatched object answered above.
        let head = head?;
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

/// The object's metadata and (when `sniff`) its first bytes, asked at once.
async fn metadata_and_head(
    state: &AppState,
    key: &str,
    sniff: bool,
) -> (
    Result<Option<StoredObject>, S3Error>,
    Option<Result<Bytes, S3Error>>,
) {
    tokio::join!(state.s3().stored_object(key), async {
        match sniff {
            true => Some(state.s3().read_head(key, SNIFF_LEN).await),
            false => None,
        }
    })
}

/// What the store says of the object's CRC32C, against the declared one.
enum StoredChecksum {
    /// The store answers the declared CRC32C: verified.
    Declared,
    /// Nothing to compare: no CRC32C declared, or none kept by the store
    /// (which then never checked one either): unverified, not refused.
    Unknown,
    /// The store answers another CRC32C than the declared one.
    Other { declared: Crc32c, found: Crc32c },
}

/// The stored object against the file: there, and of the declared size;
/// and what its store says of its CRC32C.
fn check_stored(
    file: &FileRow,
    stored: Option<StoredObject>,
) -> Result<StoredChecksum, (VerificationFailure, String)> {
    let Some(stored) = stored else {
        return Err((
            VerificationFailure::Missing,
            "no object was found in storage".into(),
        ));
    };
    if stored.size != crate::domain::ByteSize::from_column(file.size).bytes() {
        return Err((
            VerificationFailure::Size,
            format!(
                "stored size {} differs from the declared {}",
                stored.size, file.size
            ),
        ));
    }
    Ok(match (file.crc32c(), stored.crc32c) {
        (Some(declared), Some(found)) if declared == found => StoredChecksum::Declared,
        (Some(declared), Some(found)) => StoredChecksum::Other { declared, found },
        _ => StoredChecksum::Unknown,
    })
}

/// Our own CRC32C of the object, when its store answered `found` for a
/// file declared `declared`. A store that checks CRC32Cs (AWS S3, Garage,
/// the embedded S3) refused any other at completion, so `found` means the
/// object changed since, or that the store's value is not the object's
/// CRC32C (moto without its `crc32c` extra writes a CRC32 under that name,
/// and checks nothing). Only our own reading of the bytes tells them apart:
/// the declared CRC32C is then verified by it, or the file is refused.
/// Only this rare case reads a whole object.
async fn own_check(
    state: &AppState,
    file: &FileRow,
    key: &str,
    declared: Crc32c,
    found: Crc32c,
) -> Result<Result<(), String>, ApiError> {
    let own = state.s3().object_crc32c(key).await?;
    if own == declared {
        tracing::warn!(file_id = %file.id, %declared, store = %found, "the store's CRC32C is not the object's; our own matches the declared one");
        return Ok(Ok(()));
    }
    tracing::warn!(file_id = %file.id, %declared, %own, store = %found, "stored CRC32C differs from the declared one");
    Ok(Err(format!(
        "stored CRC32C {own} differs from the declared {declared}"
    )))
}
