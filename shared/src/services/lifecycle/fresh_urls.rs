//! Fresh presigned part URLs (docs/contract.md §4.12).

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{file_permit, permit};
use crate::auth::User;
use crate::domain::{FieldErrors, FileAction, JsonObject, PartNumber, SessionAction};
use crate::error::ApiError;
use crate::services::files::{
    PartChecksums, PresignedPartUrl, parse_part_checksums, presign_parts,
};
use crate::services::{lookup, parts};
use crate::state::AppState;
use crate::store::FileRow;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FreshUrls {
    pub file_id: Uuid,
    pub presigned_urls: Vec<PresignedPartUrl>,
}

/// Fresh presigned part URLs (§4.12): for the listed part numbers, or, for
/// `{}`, for every part S3 does not hold yet (reconciled with ListParts).
#[tracing::instrument(skip_all, fields(user_id = %user.id, %session_id, %file_id))]
pub async fn fresh_urls(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    file_id: Uuid,
    body: Value,
) -> Result<FreshUrls, ApiError> {
    let requested = parse_part_numbers(&body)?;
    let session = lookup::owned_session(state.db(), session_id, user).await?;
    permit(state, &session, SessionAction::UploadParts).await?;
    let file = lookup::session_file(state.db(), session_id, file_id).await?;
    file_permit(&file, FileAction::PresignParts)?;
    let (key, upload_id) = file.upload()?;
    let plan = file.plan(&session);
    let checksums = part_checksums(&body, plan.part_count(), &file)?;
    let parts: Vec<PartNumber> = match with_checksummed(requested, &checksums) {
        Some(numbers) => {
            let over: Vec<u16> = numbers
                .iter()
                .map(|n| n.get())
                .filter(|n| u64::from(*n) > plan.part_count())
                .collect();
            if !over.is_empty() {
                let mut errors = FieldErrors::default();
                errors.add(
                    "partNumbers",
                    format!(
                        "the file has {} parts; {over:?} are beyond it",
                        plan.part_count()
                    ),
                );
                return Err(ApiError::Validation(errors));
            }
            numbers
        }
        None => {
            // An upload gone from S3 (None) is finished by complete (ADR 0010).
            let stored: HashSet<PartNumber> = parts::reconcile(state, state.db(), &session, &file)
                .await?
                .into_iter()
                .flatten()
                .map(|p| p.part_number)
                .collect();
            plan.parts().filter(|n| !stored.contains(n)).collect()
        }
    };
    let presigned_urls = presign_parts(state, key, upload_id, plan, parts, &checksums).await?;
    tracing::info!(urls = presigned_urls.len(), "fresh part URLs issued");
    Ok(FreshUrls {
        file_id,
        presigned_urls,
    })
}

/// The parts asked for by number plus those given a checksum; `None` (every
/// part S3 lacks) only when neither names any.
fn with_checksummed(
    requested: Option<Vec<PartNumber>>,
    checksums: &PartChecksums,
) -> Option<Vec<PartNumber>> {
    if requested.is_none() && checksums.is_empty() {
        return None;
    }
    let mut numbers = requested.unwrap_or_default();
    numbers.extend(checksums.keys().copied());
    numbers.sort();
    numbers.dedup();
    Some(numbers)
}

/// `partChecksums` (optional): the listed parts get URLs signed for their
/// CRC32C, whether or not `partNumbers` names them too.
fn part_checksums(
    body: &Value,
    part_count: u64,
    file: &FileRow,
) -> Result<PartChecksums, ApiError> {
    let mut errors = FieldErrors::default();
    let checksums =
        parse_part_checksums(body, Some(part_count), file.crc32c().is_some(), &mut errors);
    match errors.is_empty() {
        true => Ok(checksums),
        false => Err(ApiError::Validation(errors)),
    }
}

/// `{"partNumbers": [..]}` → those parts (deduplicated, ascending); `{}` →
/// `None`, meaning every part S3 lacks.
fn parse_part_numbers(body: &Value) -> Result<Option<Vec<PartNumber>>, ApiError> {
    let mut errors = FieldErrors::default();
    let obj = JsonObject::new("", body, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if body.get("partNumbers").is_none_or(Value::is_null) {
        return Ok(None);
    }
    let numbers = obj.array(
        "partNumbers",
        1..=usize::from(PartNumber::MAX),
        &mut errors,
        |path, value, errors| {
            let n = value
                .as_u64()
                .filter(|n| (1..=u64::from(PartNumber::MAX)).contains(n));
            match n.and_then(|n| PartNumber::new(n as u16)) {
                Some(n) => Some(n),
                None => {
                    errors.add(path, "must be an integer from 1 to 10000");
                    None
                }
            }
        },
    );
    match numbers {
        Some(mut numbers) if errors.is_empty() => {
            numbers.sort();
            numbers.dedup();
            Ok(Some(numbers))
        }
        _ => Err(ApiError::Validation(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn part_numbers_parse_sorted_and_deduplicated_or_mean_all_missing() {
        assert_eq!(parse_part_numbers(&json!({})).unwrap(), None);
        let parsed = parse_part_numbers(&json!({"partNumbers": [3, 1, 3]}))
            .unwrap()
            .unwrap();
        assert_eq!(parsed.iter().map(|n| n.get()).collect::<Vec<_>>(), [1, 3]);
        for bad in [
            json!({"partNumbers": [0]}),
            json!({"partNumbers": [10001]}),
            json!({"partNumbers": ["1"]}),
            json!({"partNumbers": []}),
            json!([1]),
        ] {
            let err = parse_part_numbers(&bad).unwrap_err();
            assert_eq!(err.reason(), "VALIDATION_ERROR", "{bad}");
        }
    }
}
