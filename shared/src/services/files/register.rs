//! Registering one file (docs/contract.md §4.2): a new file gets a row and
//! an S3 multipart upload; a file sent again with its `fileId` gets fresh
//! part URLs. The body is [`RegisterFileRequest`], which the handler reads
//! and the OpenAPI document describes (`domain::validate` says why its
//! fields are `Raw`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::presign::{
    PartChecksum, PartChecksums, PresignedPartUrl, parse_part_checksums, presign_parts,
};
use super::{register_new::register_new, reregister::reregister};
use crate::auth::User;
use crate::domain::{
    Crc32c, FieldErrors, FileMetadata, FileMetadataBody, PartNumber, PartPlan, Raw, read_body,
};
use crate::error::ApiError;
use crate::services::lookup;
use crate::services::permits::ensure_registrable;
use crate::state::AppState;
use crate::store::{FileRow, SessionRow};

/// One file to register: its metadata, plus `partCount` to receive presigned
/// part URLs, plus `fileId` to re-register (recover lost URLs).
#[derive(Debug, Clone)]
pub struct RegisterInput {
    pub file: FileMetadata,
    pub part_count: Option<u64>,
    pub file_id: Option<Uuid>,
    /// The whole file's CRC32C; without it the file is never verified.
    pub crc32c: Option<Crc32c>,
    /// Parts whose URLs are signed for their CRC32C.
    pub part_checksums: PartChecksums,
}

/// One file to register (contract §4.2): its metadata, plus `partCount` for
/// presigned part URLs, plus `fileId` to re-register a file whose URLs were
/// lost.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "category": "instruction", "name": "castle-instructions.pdf",
    "size": 12582912, "type": "application/pdf", "ext": "pdf", "partCount": 3
}))]
pub struct RegisterFileRequest {
    #[serde(flatten)]
    pub metadata: FileMetadataBody,
    /// Must equal ceil(size / partSizeBytes) (422 otherwise).
    #[schema(value_type = Option<u16>, minimum = 1, maximum = 10000)]
    pub part_count: Raw,
    /// An existing, not completed file of this session, with the same
    /// metadata: 200 with fresh URLs instead of a new upload.
    #[schema(value_type = Option<Uuid>)]
    pub file_id: Raw,
    /// The whole file's CRC32C as S3 writes it (base64 of the 4 big-endian
    /// bytes). The upload is then opened with `ChecksumAlgorithm=CRC32C`,
    /// `ChecksumType=FULL_OBJECT`; complete and finalize check it, and the
    /// MOC records the file as verified. Without it the file is unverified.
    /// Sent again with `fileId`, it replaces the declared value of a file
    /// not yet completed (409 for a file registered without one).
    #[schema(
        value_type = Option<String>,
        min_length = 8,
        max_length = 8,
        pattern = r"^[A-Za-z0-9+/]{5}[AQgw]==$",
        example = "yZRlqg=="
    )]
    pub crc32c: Raw,
    /// Parts whose presigned URLs are signed for their CRC32C (needs
    /// `partCount` and `crc32c`); each listed part at most once.
    #[schema(value_type = Option<Vec<PartChecksum>>)]
    pub part_checksums: Raw,
}

impl RegisterFileRequest {
    /// The input, if every field holds to its schema; otherwise each
    /// problem is in `errors`.
    fn validate(&self, errors: &mut FieldErrors) -> Option<RegisterInput> {
        let file = self.metadata.validate("", errors);
        let part_count =
            self.part_count
                .optional_integer("partCount", 1..=u64::from(PartNumber::MAX), errors);
        let file_id = self.file_id.optional_uuid("fileId", errors);
        let crc32c = self.crc32c.optional_parsed("crc32c", 64, errors);
        let part_checksums =
            parse_part_checksums(&self.part_checksums, part_count, crc32c.is_some(), errors);
        Some(RegisterInput {
            file: file?,
            part_count,
            file_id,
            crc32c,
            part_checksums,
        })
    }
}

impl RegisterInput {
    /// Reads a [`RegisterFileRequest`]: a body, or an item of a batch.
    pub fn read(value: &Value) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let input = read_body::<RegisterFileRequest>("", value, &mut errors)
            .and_then(|request| request.validate(&mut errors));
        match input {
            Some(input) if errors.is_empty() => Ok(input),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// A registered file: its ID, its S3 multipart upload, and, when `partCount`
/// was sent, one presigned URL per part.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub file_id: Uuid,
    /// Opaque: S3-compatible stores differ in its format.
    pub upload_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presigned_urls: Option<Vec<PresignedPartUrl>>,
    /// The full-object CRC32C the file was registered with (S3's base64),
    /// which complete and finalize check; absent: the file is unverified.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "yZRlqg==")]
    pub crc32c: Option<Crc32c>,
    /// True for a new file (201), false for a re-registration (200).
    #[serde(skip)]
    pub created: bool,
}

/// Registers one file (docs/contract.md §4.2).
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id))]
pub async fn register(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    body: Value,
) -> Result<Registration, ApiError> {
    let input = RegisterInput::read(&body)?;
    match input.file_id {
        Some(file_id) => {
            let session = registrable_session(state, user, session_id).await?;
            register_again(state, &session, file_id, &input).await
        }
        None => {
            if let Err(refusal) = check_limits(state, &input) {
                // Refused whatever the session holds, so nothing opens in
                // S3; the session's own refusals still come first (§4.2).
                registrable_session(state, user, session_id).await?;
                return Err(refusal);
            }
            register_fresh(state, user, session_id, &input).await
        }
    }
}

/// The session, if files may be registered in it: owned (404), active (400)
/// and not expired (410 EXPIRED_SESSION, as on every route).
pub(super) async fn registrable_session(
    state: &AppState,
    user: &User,
    session_id: Uuid,
) -> Result<SessionRow, ApiError> {
    let session = lookup::owned_session(state.db(), session_id, user).await?;
    ensure_registrable(state, state.db(), &session).await?;
    Ok(session)
}

/// Registers one file of a registrable session, new or again.
pub(super) async fn register_one(
    state: &AppState,
    user: &User,
    session: &SessionRow,
    input: RegisterInput,
) -> Result<Registration, ApiError> {
    match input.file_id {
        Some(file_id) => register_again(state, session, file_id, &input).await,
        None => {
            check_limits(state, &input)?;
            register_fresh(state, user, session.id, &input).await
        }
    }
}

/// A new file within the configured limits: checked against its session
/// as it is read under its lock, while its S3 upload opens.
async fn register_fresh(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    input: &RegisterInput,
) -> Result<Registration, ApiError> {
    let check = |session: &SessionRow| check_plan(session, input);
    let (row, plan) =
        register_new(state, user, session_id, check, &input.file, input.crc32c).await?;
    registration(state, &row, plan, input, true).await
}

/// A file sent again with its `fileId`.
async fn register_again(
    state: &AppState,
    session: &SessionRow,
    file_id: Uuid,
    input: &RegisterInput,
) -> Result<Registration, ApiError> {
    check_limits(state, input)?;
    let plan = check_plan(session, input)?;
    let row = reregister(state, session, file_id, &input.file, input.crc32c).await?;
    registration(state, &row, plan, input, false).await
}

/// The answer for a registered file: with its part URLs when `partCount`
/// was sent.
async fn registration(
    state: &AppState,
    row: &FileRow,
    plan: PartPlan,
    input: &RegisterInput,
    created: bool,
) -> Result<Registration, ApiError> {
    let (key, upload_id) = row.upload()?;
    let presigned_urls = match input.part_count {
        Some(_) => Some(
            presign_parts(
                state,
                key,
                upload_id,
                plan,
                plan.parts(),
                &input.part_checksums,
            )
            .await?,
        ),
        None => None,
    };
    Ok(Registration {
        file_id: row.id,
        upload_id: upload_id.to_owned(),
        presigned_urls,
        crc32c: row.crc32c(),
        created,
    })
}

/// The file within the configured limits (413/415 and kin).
fn check_limits(state: &AppState, input: &RegisterInput) -> Result<(), ApiError> {
    let file = &input.file;
    file.check_limits(&state.config().limits)
        .map_err(|r| ApiError::file_rejected(&file.name, file.category, &file.mime_type, r))
}

/// The file's part plan at the session's part size: within S3's part count
/// and the client's `partCount`.
fn check_plan(session: &SessionRow, input: &RegisterInput) -> Result<PartPlan, ApiError> {
    let plan = PartPlan::new(input.file.size, session.part_size());
    if !plan.fits_s3() {
        return Err(ApiError::invalid_field(
            "size",
            "needs more than 10000 parts at this session's part size",
        ));
    }
    if let Some(received) = input.part_count
        && received != plan.part_count()
    {
        return Err(ApiError::PartCountMismatch {
            expected: plan.part_count(),
            received,
        });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors_of(body: Value) -> Vec<(String, Vec<String>)> {
        match RegisterInput::read(&body) {
            Err(ApiError::Validation(errors)) => errors.0.into_iter().collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn every_problem_of_the_flattened_body_is_listed_at_once() {
        let errors = errors_of(json!({
            "category": "video", "name": null, "size": 1.5, "type": "x", "ext": "pdf",
            "partCount": 0, "fileId": "nope", "crc32c": 3,
            "partChecksums": [{"partNumber": 1, "crc32c": "yZRlqg=="}],
        }));
        let expected = [
            (
                "category",
                "must be one of instruction, parts-list, image, thumbnail",
            ),
            ("crc32c", "must be a string"),
            ("fileId", "must be a UUID"),
            ("name", "is required"),
            ("partChecksums", "needs partCount"),
            ("partCount", "must be between 1 and 10000"),
            (
                "size",
                "must be an integer between 1 and 9223372036854775807",
            ),
        ]
        .map(|(path, message)| (path.to_owned(), vec![message.to_owned()]));
        assert_eq!(errors, expected);
        assert_eq!(
            errors_of(json!([{"category": "instruction"}])),
            [("body".to_owned(), vec!["must be an object".to_owned()])]
        );
    }

    #[test]
    fn a_valid_body_reads_with_its_part_checksums() {
        let input = RegisterInput::read(&json!({
            "category": "instruction", "name": "a.pdf", "size": 10, "type": "application/pdf",
            "ext": "pdf", "partCount": 1, "fileId": null, "crc32c": "yZRlqg==",
            "partChecksums": [{"partNumber": 1, "crc32c": "yZRlqg=="}], "unknown": 1,
        }))
        .unwrap();
        assert_eq!(input.file.name, "a.pdf");
        assert_eq!((input.part_count, input.file_id), (Some(1), None));
        assert!(input.crc32c.is_some());
        assert_eq!(input.part_checksums.len(), 1);
    }
}
