//! Presigned part URLs: where a client PUTs a part straight to S3.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use std::collections::BTreeMap;

use crate::domain::{Crc32c, FieldErrors, PartNumber, PartPlan, Raw, field_path, read_body};
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
    /// `Content-Length`, which the signature covers, and for a part whose
    /// CRC32C was declared `x-amz-checksum-crc32c` and
    /// `x-amz-sdk-checksum-algorithm` (S3 answers 400 BadDigest to bytes
    /// that do not match). Header name → value,
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
    checksums: &PartChecksums,
) -> Result<Vec<PresignedPartUrl>, ApiError> {
    let signer = state
        .s3()
        .part_presigner(state.config().presigned_url_ttl)
        .await?;
    let expires_at = time::rfc3339(time::add(time::now(), signer.ttl()));
    let mut urls = Vec::new();
    for part in parts {
        let size = plan.part_size_of(part);
        let presigned = signer.presign(key, upload_id, part, size, checksums.get(&part).copied());
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

/// The CRC32Cs a client declared for some parts of a file.
pub type PartChecksums = BTreeMap<PartNumber, Crc32c>;

/// A part's CRC32C: its presigned URL then carries `x-amz-checksum-crc32c`
/// (and `x-amz-sdk-checksum-algorithm: CRC32C`) among its signed headers,
/// and S3 answers 400 BadDigest to a body that does not match.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartChecksum {
    #[schema(value_type = u16, minimum = 1, maximum = 10000)]
    pub part_number: Raw,
    #[schema(
        value_type = String,
        min_length = 8,
        max_length = 8,
        pattern = r"^[A-Za-z0-9+/]{5}[AQgw]==$",
        example = "yZRlqg=="
    )]
    pub crc32c: Raw,
}

impl PartChecksum {
    /// The part (at most `part_count`) and its CRC32C, the item at `path`.
    fn validate(
        &self,
        path: &str,
        part_count: u64,
        errors: &mut FieldErrors,
    ) -> Option<(PartNumber, Crc32c)> {
        let number_path = field_path(path, "partNumber");
        let number = self
            .part_number
            .integer(&number_path, 1..=part_count, errors);
        let crc32c_path = field_path(path, "crc32c");
        let crc32c = self
            .crc32c
            .string(&crc32c_path, 1..=64, errors)
            .and_then(|raw| {
                raw.parse::<Crc32c>()
                    .map_err(|e| errors.add(crc32c_path, e.to_string()))
                    .ok()
            });
        let number = number
            .and_then(|n| u16::try_from(n).ok())
            .and_then(PartNumber::new)?;
        Some((number, crc32c?))
    }
}

/// `partChecksums: [{"partNumber": n, "crc32c": "…"}]` (optional): each
/// named part's URL is signed for its CRC32C. Parts past `part_count`, a
/// part named twice, or any part of a file declared without a full-object
/// `crc32c` (its S3 upload takes no checksums) are field errors.
pub fn parse_part_checksums(
    field: &Raw,
    part_count: Option<u64>,
    file_has_crc32c: bool,
    errors: &mut FieldErrors,
) -> PartChecksums {
    const KEY: &str = "partChecksums";
    let mut checksums = PartChecksums::new();
    if field.is_absent() {
        return checksums;
    }
    let Some(part_count) = part_count else {
        errors.add(KEY, "needs partCount");
        return checksums;
    };
    if !file_has_crc32c {
        errors.add(KEY, "needs the file's crc32c");
        return checksums;
    }
    let items = field.array(
        KEY,
        1..=usize::from(PartNumber::MAX),
        errors,
        |path, value, errors| {
            let item: PartChecksum = read_body(&path, value, errors)?;
            let (number, crc32c) = item.validate(&path, part_count, errors)?;
            Some((path, number, crc32c))
        },
    );
    for (path, number, crc32c) in items.into_iter().flatten() {
        if checksums.insert(number, crc32c).is_some() {
            errors.add(format!("{path}.partNumber"), "names a part already listed");
        }
    }
    checksums
}
