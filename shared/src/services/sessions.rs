//! Creating upload sessions (docs/contract.md §4.1).

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::User;
use crate::domain::{DeclaredFiles, FieldErrors, FileCategory, FileMetadata, JsonObject};
use crate::error::ApiError;
use crate::rate_limit;
use crate::state::AppState;
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
    let mut errors = FieldErrors::default();
    let files = JsonObject::new("", &body, &mut errors).array(
        "files",
        1..=MAX_DECLARED_FILES,
        &mut errors,
        |path, value, errors| FileMetadata::from_json(&path, value, errors),
    );
    let files = match files {
        Some(files) if errors.is_empty() => files,
        _ => return Err(ApiError::Validation(errors)),
    };

    let declared = DeclaredFiles::count(&files);
    if declared.of(FileCategory::Instruction) == 0 {
        return Err(ApiError::bad_request(
            "At least one instruction file (PDF) is required",
        ));
    }
    let images = declared.of(FileCategory::Image) + declared.of(FileCategory::Thumbnail);
    if images > config.limits.image_max_count {
        return Err(ApiError::FileCountExceeded {
            category: FileCategory::Image,
            max_files: config.limits.image_max_count,
            registered: images,
        });
    }
    let parts_lists = declared.of(FileCategory::PartsList);
    if parts_lists > config.limits.parts_list_max_count {
        return Err(ApiError::FileCountExceeded {
            category: FileCategory::PartsList,
            max_files: config.limits.parts_list_max_count,
            registered: parts_lists,
        });
    }
    for file in &files {
        file.check_limits(&config.limits).map_err(|rejection| {
            ApiError::file_rejected(&file.name, file.category, &file.mime_type, rejection)
        })?;
    }

    let session_id = Uuid::new_v4();
    let now = time::now();
    let expires_at = time::add(now, config.session_ttl);
    let metadata = json!({
        "declaredFiles": declared,
        "files": files.iter().map(|f| json!({
            "category": f.category,
            "name": f.name,
            "size": f.size,
            "type": f.mime_type,
            "ext": f.ext.as_str(),
        })).collect::<Vec<_>>(),
    });

    let mut tx = state.db().begin().await?;
    rate_limit::count_session_create(&mut tx, config, user).await?;
    sqlx::query(
        "INSERT INTO upload_sessions
            (id, user_id, status, part_size_bytes, expires_at, created_at, updated_at, metadata)
         VALUES ($1, $2, 'active', $3, $4, $5, $5, $6)",
    )
    .bind(session_id)
    .bind(&user.id)
    .bind(config.part_size_bytes() as i32)
    .bind(expires_at)
    .bind(now)
    .bind(sqlx::types::Json(&metadata))
    .execute(&mut tx)
    .await?;
    tx.commit().await?;

    tracing::info!(%session_id, files = files.len(), "upload session created");
    Ok(CreatedSession {
        session_id,
        part_size_bytes: config.part_size_bytes(),
        expires_at: time::rfc3339(expires_at),
    })
}
