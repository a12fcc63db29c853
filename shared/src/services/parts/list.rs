//! The parts of a file uploaded so far (docs/contract.md §4.5).

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{record_stored, stored_parts};
use crate::auth::User;
use crate::error::ApiError;
use crate::services::lookup;
use crate::state::AppState;
use crate::store::{self, parts::PartRow};
use crate::time;

/// The parts of a file, ascending by number (contract §4.5).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartList {
    pub parts: Vec<PartView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartView {
    #[schema(minimum = 1, maximum = 10000)]
    pub part_number: i32,
    /// Opaque, as S3 answered it (quotes included).
    pub etag: String,
    pub size_bytes: Option<i32>,
    #[serde(serialize_with = "serialize_time")]
    #[schema(value_type = String, format = DateTime)]
    pub uploaded_at: chrono::NaiveDateTime,
}

impl From<PartRow> for PartView {
    fn from(row: PartRow) -> Self {
        Self {
            part_number: row.part_number,
            etag: row.etag,
            size_bytes: row.size,
            uploaded_at: row.uploaded_at,
        }
    }
}

fn serialize_time<S: serde::Serializer>(
    at: &chrono::NaiveDateTime,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time::rfc3339(*at))
}

/// The parts uploaded so far, ascending (docs/contract.md §4.5). Resume flow: list
/// the parts, upload only the missing ones, then complete.
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id, %file_id))]
pub async fn list(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    file_id: Uuid,
) -> Result<PartList, ApiError> {
    // The look-ups take one round trip, ended before S3 is asked.
    let (session, file) =
        lookup::owned_session_and_file(state.db(), session_id, file_id, user).await?;
    let file = file?;
    // A completed upload no longer exists in S3; its recorded parts are
    // final. So are those of an upload S3 completed under a complete that
    // died before its COMMIT (`stored_parts` answers None): complete
    // finishes it.
    let stored = if file.status.has_open_upload() && file.upload_id.is_some() {
        stored_parts(state, &file).await?.unwrap_or_default()
    } else {
        Vec::new()
    };
    // Recording what S3 holds and reading the rows back: one round trip,
    // whose COMMIT need not wait for the disk, since S3 holds what it records.
    let tx = state.db().begin_rederivable().await?;
    let ((), rows, ()) = futures::try_join!(
        record_stored(&tx, &session, &file, &stored),
        store::parts::of_file(&tx, file_id),
        tx.committing(),
    )?;
    Ok(PartList {
        parts: rows.into_iter().map(PartView::from).collect(),
    })
}
