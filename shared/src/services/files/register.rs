//! Registering one file (docs/contract.md §4.2): a new file gets a row and
//! an S3 multipart upload; a file sent again with its `fileId` gets fresh
//! part URLs.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::presign::{PartChecksums, PresignedPartUrl, parse_part_checksums, presign_parts};
use super::{register_new::register_new, reregister::reregister};
use crate::auth::User;
use crate::domain::{Crc32c, FieldErrors, FileMetadata, JsonObject, PartNumber, PartPlan};
use crate::error::ApiError;
use crate::services::lookup;
use crate::services::permits::ensure_registrable;
use crate::state::AppState;
use crate::store::SessionRow;

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

impl RegisterInput {
    pub fn from_json(path: &str, value: &Value) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let file = FileMetadata::from_json(path, value, &mut errors);
        let obj = JsonObject::new(path, value, &mut FieldErrors::default());
        let part_count =
            obj.optional_integer("partCount", 1..=u64::from(PartNumber::MAX), &mut errors);
        let file_id = obj.optional_uuid("fileId", &mut errors);
        let crc32c = obj.optional_parsed("crc32c", 64, &mut errors);
        let part_checksums = parse_part_checksums(value, part_count, crc32c.is_some(), &mut errors);
        match file {
            Some(file) if errors.is_empty() => Ok(Self {
                file,
                part_count,
                file_id,
                crc32c,
                part_checksums,
            }),
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
    let input = RegisterInput::from_json("", &body)?;
    let session = registrable_session(state, user, session_id).await?;
    register_one(state, user, &session, input).await
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
    let plan = check_file(state, session, &input)?;
    let file = &input.file;
    let (row, created) = match input.file_id {
        Some(file_id) => {
            let row = reregister(state, session, file_id, file, input.crc32c).await?;
            (row, false)
        }
        None => (
            register_new(state, user, session, file, input.crc32c).await?,
            true,
        ),
    };
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

/// The file within its limits, S3's part count and the client's
/// `partCount`; its part plan.
fn check_file(
    state: &AppState,
    session: &SessionRow,
    input: &RegisterInput,
) -> Result<PartPlan, ApiError> {
    let file = &input.file;
    file.check_limits(&state.config().limits)
        .map_err(|r| ApiError::file_rejected(&file.name, file.category, &file.mime_type, r))?;
    let plan = PartPlan::new(file.size, session.part_size());
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
