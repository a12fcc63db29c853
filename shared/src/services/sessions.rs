//! Creating upload sessions (docs/contract.md §4.1). The body is
//! [`CreateSessionRequest`]: the one type that both the handler reads and the
//! OpenAPI document describes (`domain::validate` says why its fields are
//! `Raw`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::User;
use crate::config::Config;
use crate::domain::{
    DeclaredFiles, FieldErrors, FileCategory, FileMetadata, FileMetadataBody, Raw, SessionMetadata,
    read_body,
};
use crate::error::ApiError;
use crate::rate_limit;
use crate::state::AppState;
use crate::store::sessions::NewSession;
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
    let (files, title) = parse_create(&body)?;
    let declared = check_declared_files(config, &files)?;

    let session_id = Uuid::new_v4();
    let now = time::now();
    let expires_at = time::add(now, config.session_ttl);
    let metadata = SessionMetadata::of_create(declared, &files, title.as_deref()).to_json();

    let session = NewSession {
        id: session_id,
        user_id: &user.id,
        part_size_bytes: config.part_size.to_column()?,
        expires_at,
        created_at: now,
        metadata: &metadata,
    };
    // One statement counts and inserts, and leaves with its BEGIN and
    // COMMIT in one write (docs/adr/0011): a denied create counts nothing
    // and inserts nothing, so the COMMIT has nothing to keep.
    let tx = state.db().begin().await?;
    let (counted, ()) = futures::try_join!(
        rate_limit::create_session_counted(&tx, config, user, &session),
        async { Ok::<_, ApiError>(tx.committing().await?) },
    )?;
    let daily_count = counted?;

    tracing::info!(
        %session_id,
        files = files.len(),
        daily_count,
        daily_limit = config.create_session_per_day,
        "upload session created"
    );
    Ok(CreatedSession {
        session_id,
        part_size_bytes: config.part_size_bytes(),
        expires_at: time::rfc3339(expires_at),
    })
}

/// POST /api/mocs/uploads/sessions (contract §4.1).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CreateSessionRequest {
    /// At least one `instruction` file; parts lists ≤ 5, images and
    /// thumbnails ≤ 10 (400 VALIDATION_ERROR, `details.reason`
    /// FILE_COUNT_EXCEEDED).
    #[schema(value_type = Vec<FileMetadataBody>, min_items = 1, max_items = 200)]
    pub files: Raw,
    /// What the upload is, for the session listing (§4.15) to show on
    /// another device; trimmed, not blank. Finalize still takes its own.
    #[schema(
        value_type = Option<String>,
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F]*\S[^\x00-\x1F]*$",
        example = "Medieval Castle"
    )]
    pub title: Raw,
}

impl CreateSessionRequest {
    /// The declared files and the optional title (trimmed, not blank).
    fn validate(&self, errors: &mut FieldErrors) -> Option<(Vec<FileMetadata>, Option<String>)> {
        let files = self.files.array(
            "files",
            1..=MAX_DECLARED_FILES,
            errors,
            |path, value, errors| FileMetadata::read(&path, value, errors),
        );
        let title = self
            .title
            .optional_string("title", 1..=200, errors)
            .map(|title| title.trim().to_owned());
        if title.as_deref() == Some("") {
            errors.add("title", "must not be blank");
        }
        Some((files?, title))
    }
}

/// The declared files and the optional title of a create body.
fn parse_create(body: &Value) -> Result<(Vec<FileMetadata>, Option<String>), ApiError> {
    let mut errors = FieldErrors::default();
    let parsed = read_body::<CreateSessionRequest>("", body, &mut errors)
        .and_then(|request| request.validate(&mut errors));
    match parsed {
        Some(parsed) if errors.is_empty() => Ok(parsed),
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
