//! Fresh presigned part URLs (docs/contract.md §4.12). The body is
//! [`FreshUrlsRequest`], which the handler reads and the OpenAPI document
//! describes (`domain::validate` says why its fields are `Raw`).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa::openapi::schema::{Array, Object, SchemaType, Type};
use uuid::Uuid;

use crate::auth::User;
use crate::domain::{Crc32c, FieldErrors, FileAction, PartNumber, Raw, SessionAction, read_body};
use crate::error::ApiError;
use crate::services::files::{
    PartChecksum, PartChecksums, PresignedPartUrl, parse_part_checksums, presign_parts,
};
use crate::services::permits::{file_permit, permit};
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
    let request = FreshUrlsRequest::read(&body)?;
    let requested = request.part_numbers()?;
    let identity = request.identity()?;
    let session = lookup::owned_session(state.db(), session_id, user).await?;
    permit(state, &session, SessionAction::UploadParts).await?;
    let file = lookup::session_file(state.db(), session_id, file_id).await?;
    file_permit(&file, FileAction::PresignParts)?;
    check_identity(&file, identity)?;
    let (key, upload_id) = file.upload()?;
    let plan = file.plan(&session);
    let checksums = request.part_checksums(plan.part_count(), &file)?;
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
            let stored = parts::stored_parts(state, &file).await?.unwrap_or_default();
            parts::record_stored(state.db(), &session, &file, &stored).await?;
            let stored: HashSet<PartNumber> = stored.iter().map(|p| p.part_number).collect();
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

/// What the client says of the file it is about to send: its size and
/// full-object CRC32C (both optional).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Identity {
    size: Option<u64>,
    crc32c: Option<Crc32c>,
}

/// The wrong file is refused before any byte is sent (§4.12): a declared
/// size or CRC32C other than the registered file's is 409 FILE_MISMATCH,
/// and no URL is given. A file registered without a CRC32C has none to
/// compare, so only its size is held to.
fn check_identity(file: &FileRow, given: Identity) -> Result<(), ApiError> {
    let registered = Identity {
        size: u64::try_from(file.size).ok(),
        crc32c: file.crc32c(),
    };
    let mut mismatches = Vec::new();
    if given.size.is_some_and(|size| Some(size) != registered.size) {
        mismatches.push("size");
    }
    if let (Some(given), Some(registered)) = (given.crc32c, registered.crc32c)
        && given != registered
    {
        mismatches.push("crc32c");
    }
    if mismatches.is_empty() {
        return Ok(());
    }
    tracing::warn!(?mismatches, "fresh URLs refused: not the registered file");
    let verb = if mismatches.len() == 1 {
        "differs"
    } else {
        "differ"
    };
    Err(ApiError::FileMismatch {
        message: format!(
            "This is not the file registered as {}: its {} {verb}; choose that file, or abort it and register this one",
            file.name,
            mismatches.join(" and "),
        ),
        details: json!({
            "fileId": file.id,
            "fileName": file.name,
            "mismatches": mismatches,
            "expected": {"size": registered.size, "crc32c": registered.crc32c},
            "received": {"size": given.size, "crc32c": given.crc32c},
        }),
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

/// POST …/urls (contract §4.12): the listed parts (by number, by checksum
/// or both), or `{}` for every part S3 does not hold yet.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"partNumbers": [2, 3]}))]
pub struct FreshUrlsRequest {
    /// Each at most the file's part count (422 otherwise).
    #[schema(schema_with = part_numbers_schema, required = false)]
    pub part_numbers: Raw,
    /// Parts to sign for their CRC32C (a file registered with `crc32c`
    /// only); they get URLs whether or not `partNumbers` lists them.
    #[schema(value_type = Option<Vec<PartChecksum>>)]
    pub part_checksums: Raw,
    /// The size of the file about to be sent: another than the registered
    /// file's is 409 FILE_ERROR (`details.reason` FILE_MISMATCH), no URL.
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 9223372036854775807_u64, format = Int64, example = 12582912)]
    pub size: Raw,
    /// The full-object CRC32C of the file about to be sent (S3's base64):
    /// another than the one the file was registered with is 409 FILE_ERROR
    /// (`details.reason` FILE_MISMATCH), no URL. Not compared for a file
    /// registered without one.
    #[schema(
        value_type = Option<String>,
        min_length = 8,
        max_length = 8,
        pattern = r"^[A-Za-z0-9+/]{5}[AQgw]==$",
        example = "yZRlqg=="
    )]
    pub crc32c: Raw,
}

fn part_numbers_schema() -> Array {
    let number = Object::builder()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(10000));
    Array::builder()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(number)
        .min_items(Some(1))
        .max_items(Some(10000))
        .build()
}

impl FreshUrlsRequest {
    /// The body, if it is an object. Its fields are checked each when it
    /// is needed: the part numbers and the identity before any lookup, the
    /// checksums once the file is known.
    fn read(body: &Value) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        read_body("", body, &mut errors).ok_or(ApiError::Validation(errors))
    }

    /// `{"partNumbers": [..]}` → those parts (deduplicated, ascending); `{}` →
    /// `None`, meaning every part S3 lacks.
    fn part_numbers(&self) -> Result<Option<Vec<PartNumber>>, ApiError> {
        if self.part_numbers.is_absent() {
            return Ok(None);
        }
        let mut errors = FieldErrors::default();
        let numbers = self.part_numbers.array(
            "partNumbers",
            1..=usize::from(PartNumber::MAX),
            &mut errors,
            |path, value, errors| {
                let n = value
                    .as_u64()
                    .filter(|n| (1..=u64::from(PartNumber::MAX)).contains(n));
                match n
                    .and_then(|n| u16::try_from(n).ok())
                    .and_then(PartNumber::new)
                {
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

    fn identity(&self) -> Result<Identity, ApiError> {
        let mut errors = FieldErrors::default();
        let identity = Identity {
            size: self
                .size
                .optional_integer("size", 1..=i64::MAX.unsigned_abs(), &mut errors),
            crc32c: self.crc32c.optional_parsed("crc32c", 64, &mut errors),
        };
        match errors.is_empty() {
            true => Ok(identity),
            false => Err(ApiError::Validation(errors)),
        }
    }

    /// `partChecksums` (optional): the listed parts get URLs signed for their
    /// CRC32C, whether or not `partNumbers` names them too.
    fn part_checksums(&self, part_count: u64, file: &FileRow) -> Result<PartChecksums, ApiError> {
        let mut errors = FieldErrors::default();
        let checksums = parse_part_checksums(
            &self.part_checksums,
            Some(part_count),
            file.crc32c().is_some(),
            &mut errors,
        );
        match errors.is_empty() {
            true => Ok(checksums),
            false => Err(ApiError::Validation(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_part_numbers(body: &Value) -> Result<Option<Vec<PartNumber>>, ApiError> {
        FreshUrlsRequest::read(body)?.part_numbers()
    }

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
