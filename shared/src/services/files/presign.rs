//! Presigned part URLs: where a client PUTs a part straight to S3.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::{PartNumber, PartPlan};
use crate::error::ApiError;
use crate::state::AppState;
use crate::time;

/// Where to PUT one part straight to S3, and the headers to send with it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresignedPartUrl {
    #[schema(minimum = 1, maximum = 10000, example = 1)]
    pub part_number: u16,
    /// A presigned S3 `PUT` URL, valid until `expiresAt`.
    pub url: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(example = 5242880)]
    pub size_bytes: u64,
    /// `Content-Length`, which the signature covers. Header name → value,
    /// always strings (a client types and sends them as such).
    #[schema(value_type = std::collections::BTreeMap<String, String>, example = json!({"Content-Length": "5242880"}))]
    pub headers: serde_json::Map<String, Value>,
}

/// Presigned URLs for `parts` of the file, valid for `PRESIGNED_URL_TTL_MINUTES`,
/// or less when the credentials that sign them expire sooner (OIDC).
///
/// Response size: about 1 KB per part (the SigV4 query string is most of it),
/// so the default 50 MiB PDF at 5 MiB parts is ~10 KB, and the worst case the
/// limits allow stays well under the 1 MiB a client should accept. Signing is
/// local HMAC work, no network round trip, so N URLs cost microseconds each.
pub async fn presign_parts(
    state: &AppState,
    key: &str,
    upload_id: &str,
    plan: PartPlan,
    parts: impl IntoIterator<Item = PartNumber>,
) -> Result<Vec<PresignedPartUrl>, ApiError> {
    let ttl = state
        .s3()
        .presign_ttl(state.config().presigned_url_ttl)
        .await?;
    let expires_at = time::rfc3339(time::add(time::now(), ttl));
    let mut urls = Vec::new();
    for part in parts {
        let size = plan.part_size_of(part);
        let presigned = state
            .s3()
            .presign_upload_part(key, upload_id, part, size, ttl)
            .await?;
        urls.push(PresignedPartUrl {
            part_number: part.get(),
            url: presigned.url,
            expires_at: expires_at.clone(),
            size_bytes: size,
            headers: presigned
                .headers
                .into_iter()
                .map(|(name, value)| (name, Value::String(value)))
                .collect(),
        });
    }
    Ok(urls)
}
