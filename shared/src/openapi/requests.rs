//! The shapes of the JSON request bodies, for the document only. The
//! "contract §N" below are sections of docs/contract.md.
//!
//! The handlers read bodies field by field (`domain::validate::JsonObject`)
//! so that one answer can list every problem by field path (422
//! `details.errors`), which a derived `Deserialize` cannot do. These types
//! state the same rules for readers and generators; they are kept honest by
//! schemathesis's `negative_data_rejection` check (scripts/schemathesis-check),
//! which sends bodies that break each rule here and fails unless the handler
//! refuses them. The text patterns are the C0 control-character rules of
//! `domain::validate::text_problem`.

use utoipa::ToSchema;
use utoipa::openapi::schema::{Array, Object, SchemaType, Type};
use uuid::Uuid;

use crate::domain::FileCategory;

/// No C0 control character (`TextKind::Line`).
const LINE_TEXT: &str = r"^[^\x00-\x1F]*$";

/// What a client declares about one file (contract §4.1).
#[derive(ToSchema)]
#[schema(example = json!({
    "category": "instruction", "name": "castle-instructions.pdf",
    "size": 12582912, "type": "application/pdf", "ext": "pdf"
}))]
pub struct FileMetadataBody {
    pub category: FileCategory,
    /// Characters, not bytes; no control characters.
    #[schema(min_length = 1, max_length = 255, pattern = r"^[^\x00-\x1F]*$")]
    pub name: String,
    /// Bytes. Over the category's limit is 413 SIZE_TOO_LARGE
    /// (`details.reason` FILE_TOO_LARGE).
    #[schema(minimum = 1, maximum = 9223372036854775807_u64, format = Int64)]
    pub size: u64,
    /// MIME type, compared case-insensitively; one the category does not
    /// allow is 415 INVALID_TYPE (`details.reason` UNSUPPORTED_MEDIA_TYPE).
    #[schema(
        rename = "type",
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1F]*$"
    )]
    pub mime_type: String,
    /// Letters and digits, with or without the leading dot.
    #[schema(min_length = 1, max_length = 10, pattern = r"^\.*[A-Za-z0-9]+$")]
    pub ext: String,
}

/// POST /api/mocs/uploads/sessions (contract §4.1).
#[derive(ToSchema)]
pub struct CreateSessionRequest {
    /// At least one `instruction` file; parts lists ≤ 5, images and
    /// thumbnails ≤ 10 (400 VALIDATION_ERROR, `details.reason`
    /// FILE_COUNT_EXCEEDED).
    #[schema(min_items = 1, max_items = 200)]
    pub files: Vec<FileMetadataBody>,
    /// What the upload is, for the session listing (§4.15) to show on
    /// another device; trimmed, not blank. Finalize still takes its own.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F]*\S[^\x00-\x1F]*$",
        example = "Medieval Castle"
    )]
    pub title: Option<String>,
}

/// One file to register (contract §4.2): its metadata, plus `partCount` for
/// presigned part URLs, plus `fileId` to re-register a file whose URLs were
/// lost.
#[derive(ToSchema)]
#[schema(example = json!({
    "category": "instruction", "name": "castle-instructions.pdf",
    "size": 12582912, "type": "application/pdf", "ext": "pdf", "partCount": 3
}))]
pub struct RegisterFileRequest {
    #[serde(flatten)]
    pub metadata: FileMetadataBody,
    /// Must equal ceil(size / partSizeBytes) (422 otherwise).
    #[schema(rename = "partCount", minimum = 1, maximum = 10000)]
    pub part_count: Option<u16>,
    /// An existing, not completed file of this session, with the same
    /// metadata: 200 with fresh URLs instead of a new upload.
    #[schema(rename = "fileId")]
    pub file_id: Option<Uuid>,
    /// The whole file's CRC32C as S3 writes it (base64 of the 4 big-endian
    /// bytes). The upload is then opened with `ChecksumAlgorithm=CRC32C`,
    /// `ChecksumType=FULL_OBJECT`; complete and finalize check it, and the
    /// MOC records the file as verified. Without it the file is unverified.
    /// Sent again with `fileId`, it replaces the declared value of a file
    /// not yet completed (409 for a file registered without one).
    #[schema(
        min_length = 8,
        max_length = 8,
        pattern = r"^[A-Za-z0-9+/]{5}[AQgw]==$",
        example = "yZRlqg=="
    )]
    pub crc32c: Option<String>,
    /// Parts whose presigned URLs are signed for their CRC32C (needs
    /// `partCount` and `crc32c`); each listed part at most once.
    #[schema(rename = "partChecksums")]
    pub part_checksums: Option<Vec<PartChecksum>>,
}

/// A part's CRC32C: its presigned URL then carries `x-amz-checksum-crc32c`
/// (and `x-amz-sdk-checksum-algorithm: CRC32C`) among its signed headers,
/// and S3 answers 400 BadDigest to a body that does not match.
#[derive(ToSchema)]
pub struct PartChecksum {
    #[schema(rename = "partNumber", minimum = 1, maximum = 10000)]
    pub part_number: u16,
    #[schema(
        min_length = 8,
        max_length = 8,
        pattern = r"^[A-Za-z0-9+/]{5}[AQgw]==$",
        example = "yZRlqg=="
    )]
    pub crc32c: String,
}

/// POST …/files/batch (contract §4.3). More than `MAX_BATCH_SIZE` files
/// (default 10) is 400 BAD_REQUEST (`details.reason` BATCH_TOO_LARGE).
#[derive(ToSchema)]
#[schema(example = json!({"files": [{
    "category": "instruction", "name": "castle-instructions.pdf",
    "size": 12582912, "type": "application/pdf", "ext": "pdf", "partCount": 3
}]}))]
pub struct BatchRegisterRequest {
    /// Each item is a `RegisterFileRequest`, checked on its own: an item
    /// that is not one fails alone, as its result's `error` (422
    /// VALIDATION_ERROR), and the others still register. So the request
    /// itself accepts any items.
    #[schema(schema_with = batch_items)]
    pub files: Vec<RegisterFileRequest>,
}

fn batch_items() -> Array {
    let any_item = Object::builder().schema_type(SchemaType::AnyValue);
    Array::builder().items(any_item).min_items(Some(1)).build()
}

/// One part as the client saw it: its number and the ETag S3 answered.
#[derive(ToSchema)]
pub struct ListedPart {
    #[schema(rename = "partNumber", minimum = 1, maximum = 10000)]
    pub part_number: u16,
    #[schema(min_length = 1, max_length = 1024, pattern = r"^[^\x00-\x1F]*$")]
    pub etag: String,
}

/// POST …/complete (contract §4.6). `{}` completes with the parts S3
/// holds: they must be exactly 1..partCount, every one but the last at least
/// 5 MiB (400 PARTS_VALIDATION_ERROR names the missing or small ones).
#[derive(ToSchema)]
#[schema(example = json!({"parts": [{"partNumber": 1, "etag": "\"5d41402abc4b2a76b9719d911017c592\""}]}))]
pub struct CompleteFileRequest {
    /// Each part with the ETag S3 answered for it; held to S3's list.
    #[schema(min_items = 1, max_items = 10000)]
    pub parts: Option<Vec<ListedPart>>,
}

/// POST /api/mocs/uploads/finalize (contract §4.7).
#[derive(ToSchema)]
#[schema(example = json!({
    "uploadSessionId": crate::openapi::examples::FINALIZABLE_SESSION,
    "title": "Medieval Castle", "description": "A 2,000-piece castle.",
    "tags": ["castle", "medieval"], "theme": "Castle"
}))]
pub struct FinalizeRequest {
    #[schema(rename = "uploadSessionId")]
    pub upload_session_id: Uuid,
    /// Not blank once trimmed; unique per user (409 with `suggestedSlug`).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F]*\S[^\x00-\x1F]*$"
    )]
    pub title: String,
    /// Tab and line breaks are allowed here.
    #[schema(max_length = 5000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F]*$")]
    pub description: Option<String>,
    /// Up to 20 tags of 1 to 50 characters.
    #[schema(schema_with = tags)]
    pub tags: Option<Vec<String>>,
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F]*$")]
    pub theme: Option<String>,
}

fn tags() -> Array {
    let tag = Object::builder()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(50))
        .pattern(Some(LINE_TEXT));
    Array::builder()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(tag)
        .max_items(Some(20))
        .build()
}

/// POST …/urls (contract §4.12): the listed parts (by number, by checksum
/// or both), or `{}` for every part S3 does not hold yet.
#[derive(ToSchema)]
#[schema(example = json!({"partNumbers": [2, 3]}))]
pub struct FreshUrlsRequest {
    /// Each at most the file's part count (422 otherwise).
    #[schema(rename = "partNumbers", schema_with = part_numbers)]
    pub part_numbers: Option<Vec<u16>>,
    /// Parts to sign for their CRC32C (a file registered with `crc32c`
    /// only); they get URLs whether or not `partNumbers` lists them.
    #[schema(rename = "partChecksums")]
    pub part_checksums: Option<Vec<PartChecksum>>,
    /// The size of the file about to be sent: another than the registered
    /// file's is 409 FILE_ERROR (`details.reason` FILE_MISMATCH), no URL.
    #[schema(minimum = 1, maximum = 9223372036854775807_u64, format = Int64, example = 12582912)]
    pub size: Option<u64>,
    /// The full-object CRC32C of the file about to be sent (S3's base64):
    /// another than the one the file was registered with is 409 FILE_ERROR
    /// (`details.reason` FILE_MISMATCH), no URL. Not compared for a file
    /// registered without one.
    #[schema(
        min_length = 8,
        max_length = 8,
        pattern = r"^[A-Za-z0-9+/]{5}[AQgw]==$",
        example = "yZRlqg=="
    )]
    pub crc32c: Option<String>,
}

fn part_numbers() -> Array {
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
