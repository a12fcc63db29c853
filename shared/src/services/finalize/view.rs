//! The MOC a finalize answers with (docs/contract.md §4.7), and the answer
//! while another finalize of the session is still running.

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::MocFileUrls;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store;
use crate::time;

/// The MOC a session became (contract §4.7).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MocView {
    pub id: Uuid,
    pub title: String,
    pub slug: Option<String>,
    pub description: Option<String>,
    /// `private` for a MOC finalized here.
    #[schema(example = "private")]
    pub status: String,
    /// The `fileUrl` of the first instruction file.
    pub pdf_key: Option<String>,
    /// The `fileUrl`s of the images and thumbnails.
    pub image_keys: Vec<String>,
    /// The `fileUrl`s of the parts lists.
    pub parts_keys: Vec<String>,
    /// Every file of the MOC, in stored order, with its integrity record.
    pub files: Vec<MocFileView>,
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Value,
    pub theme: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Present (true) when the session was finalized before this request.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(required = false)]
    pub idempotent: bool,
}

/// One file of the MOC.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MocFileView {
    /// `instruction`, `gallery-image`, `thumbnail` or `parts-list`, as stored.
    #[schema(example = "instruction")]
    pub file_type: String,
    pub file_url: String,
    /// The name it is stored under (unique within the MOC).
    pub name: Option<String>,
    /// The full-object CRC32C declared at registration (S3's base64);
    /// absent for a file registered without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "yZRlqg==")]
    pub crc32c: Option<String>,
    /// True when finalize found the stored object carrying `crc32c`.
    pub checksum_verified: bool,
}

/// The 200 answer while another request finalizes the same session and the
/// wait for it ran out; sent with `Retry-After: 2`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FinalizeInProgress {
    #[schema(value_type = String, example = "finalizing")]
    pub status: &'static str,
    #[schema(value_type = bool, example = true)]
    pub idempotent: bool,
    #[schema(value_type = String, example = "Finalization in progress")]
    pub message: &'static str,
}

impl Default for FinalizeInProgress {
    fn default() -> Self {
        Self {
            status: "finalizing",
            idempotent: true,
            message: "Finalization in progress",
        }
    }
}

/// The MOC and its files, read in one transaction and one round trip.
pub(super) async fn read_moc(state: &AppState, moc_id: Uuid) -> Result<MocView, ApiError> {
    let tx = state.db().begin().await?;
    let (moc, rows, ()) = futures::try_join!(
        store::mocs::get(&tx, moc_id),
        store::mocs::files(&tx, moc_id),
        tx.committing(),
    )?;
    drop(tx);
    let moc = moc.ok_or(ApiError::NotFound("MOC"))?;
    let urls = MocFileUrls::group(
        &rows
            .iter()
            .map(|r| (r.file_type.clone(), r.file_url.clone()))
            .collect::<Vec<_>>(),
    );
    let files = rows
        .into_iter()
        .map(|r| MocFileView {
            file_type: r.file_type,
            file_url: r.file_url,
            name: r.original_filename,
            crc32c: r.crc32c,
            checksum_verified: r.checksum_verified,
        })
        .collect();
    Ok(MocView {
        id: moc.id,
        title: moc.title,
        slug: moc.slug,
        description: moc.description,
        status: moc.status,
        pdf_key: urls.pdf,
        image_keys: urls.images,
        parts_keys: urls.parts_lists,
        files,
        tags: moc.tags.unwrap_or_else(|| json!([])),
        theme: moc.theme,
        created_at: time::rfc3339(moc.created_at),
        idempotent: false,
    })
}
