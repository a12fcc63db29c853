//! Creating upload sessions (docs/contract.md §4.1).

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::User;
use crate::config::Config;
use crate::domain::{DeclaredFiles, FieldErrors, FileCategory, FileMetadata, JsonObject};
use crate::error::ApiError;
use crate::rate_limit;
use crate::state::AppState;
use crate::store::{self, sessions::NewSession};
use crate::time;

/// The most files one create may declare: every category at its maximum.
const MAX_DECLARED_FILES: usize = 200;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedSession {
    pub session_id: Uuid,
    /// Every part but the last has this size (≥ 5 MiB, S3's minimum).
    #[schema(example = 5242880)]
    pub part_size_bytes: u64,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// Validates the declared files, counts the daily quota and stores the
/// session, in the order of docs/contract.md §4.1: an invalid request never uses up
/// quota, and a quota denial writes nothing.
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn create(
    state: &AppState,
    user: &User,
    body: Value,
) -> Result<CreatedSession, ApiError> {
    let config = state.config();
    let files = parse_declared_files(&body)?;
    let declared = check_declared_files(config, &files)?;

    let session_id = Uuid::new_v4();
    let now = time::now();
    let expires_at = time::add(now, config.session_ttl);
    let metadata = session_metadata(&declared, &files);

    let mut tx = state.db().begin().await?;
    rate_limit::count_session_create(&mut tx, config, user).await?;
    let session = NewSession {
        id: session_id,
        user_id: &user.id,
        part_size_bytes: config.part_size_bytes() as i32,
        expires_at,
        created_at: now,
        metadata: &metadata,
    };
    store::sessions::insert(&mut tx, &session).await?;
    tx.commit().await?;

    tracing::info!(%session_id, files = files.len(), "upload session created");
    Ok(CreatedSession {
        session_id,
        part_size_bytes: config.part_size_bytes(),
        expires_at: time::rfc3339(expires_at),
    })
}

fn parse_declared_files(body: &Value) -> Result<Vec<FileMetadata>, ApiError> {
    let mut errors = FieldErrors::default();
    let files = JsonObject::new("", body, &mut errors).array(
        "files",
        1..=MAX_DECLARED_FILES,
        &mut errors,
        |path, value, errors| FileMetadata::from_json(&path, value, errors),
    );
    match files {
        Some(files) if errors.is_empty() => Ok(files),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// At least one instruction file, the image and parts-list counts within
/// their maxima, every file within its limits.
fn check_declared_files(
    config: &Config,
    files: &[FileMetadata],
) -> Result<DeclaredFiles, ApiError> {
    let declared = DeclaredFiles::count(files);
    if declared.of(FileCategory::Instruction) == 0 {
        return Err(ApiError::bad_request(
            "At least one instruction file (PDF) is required",
        ));
    }
    let images = declared.of(FileCategory::Image) + declared.of(FileCategory::Thumbnail);
    let counts = [
        (FileCategory::Image, images, config.limits.image_max_count),
        (
            FileCategory::PartsList,
            declared.of(FileCategory::PartsList),
            config.limits.parts_list_max_count,
        ),
    ];
    for (category, registered, max_files) in counts {
        if registered > max_files {
            return Err(ApiError::FileCountExceeded {
                category,
                max_files,
                registered,
            });
        }
    }
    for file in files {
        file.check_limits(&config.limits).map_err(|rejection| {
            ApiError::file_rejected(&file.name, file.category, &file.mime_type, rejection)
        })?;
    }
    Ok(declared)
}

/// What the session keeps of its create request: the counts registration
/// is held to, and the files as declared (the status route shows them).
fn session_metadata(declared: &DeclaredFiles, files: &[FileMetadata]) -> Value {
    json!({
        "declaredFiles": declared,
        "files": files.iter().map(|f| json!({
            "category": f.category,
            "name": f.name,
            "size": f.size,
            "type": f.mime_type,
            "ext": f.ext.as_str(),
        })).collect::<Vec<_>>(),
    })
}
