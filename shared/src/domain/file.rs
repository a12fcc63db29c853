use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::limits::UploadLimits;
use super::validate::{FieldErrors, Raw, field_path, read_body};

/// A size in bytes. Sizes in the API are integers > 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ByteSize(u64);

impl ByteSize {
    pub const fn new(bytes: u64) -> Self {
        Self(bytes)
    }

    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The size as the `integer` size columns store it. Every size the API
    /// accepts fits ([`MAX_STORED_SIZE`], enforced by the configuration's
    /// limits); a larger one is refused, never wrapped.
    pub fn to_column(self) -> Result<i32, SizeTooLarge> {
        i32::try_from(self.0).map_err(|_| SizeTooLarge(self))
    }

    /// [`Self::to_column`], or the largest size a column holds for a size
    /// past it: for what S3 reports of a part, which no accepted plan makes
    /// that large.
    pub fn to_column_saturating(self) -> i32 {
        self.to_column().unwrap_or(i32::MAX)
    }

    /// A size as a column holds it; a negative one (never written) is 0.
    pub fn from_column(bytes: i32) -> Self {
        Self(u64::try_from(bytes).unwrap_or(0))
    }
}

/// The largest size the `integer` columns of sizes hold (2 GiB - 1 byte):
/// `upload_session_files.size`, `upload_session_parts.size` and
/// `upload_sessions.part_size_bytes` (docs/adr/0012-sizes-fit-their-columns.md).
pub const MAX_STORED_SIZE: ByteSize = ByteSize(2_147_483_647);

/// A size past [`MAX_STORED_SIZE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is more than the {MAX_STORED_SIZE} a size column holds")]
pub struct SizeTooLarge(pub ByteSize);

#[cfg(test)]
mod column_tests {
    use super::*;

    #[test]
    fn a_size_past_what_its_column_holds_is_refused_not_wrapped() {
        assert_eq!(MAX_STORED_SIZE.to_column(), Ok(i32::MAX));
        let three_gib = ByteSize::new(3 << 30);
        assert_eq!(three_gib.to_column(), Err(SizeTooLarge(three_gib)));
        assert_eq!(three_gib.to_column_saturating(), i32::MAX);
        assert_eq!(ByteSize::from_column(-5), ByteSize::new(0));
        assert_eq!(ByteSize::from_column(i32::MAX), MAX_STORED_SIZE);
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum FileCategory {
    Instruction,
    PartsList,
    Image,
    Thumbnail,
}

impl FileCategory {
    pub const ALL: [FileCategory; 4] = [
        FileCategory::Instruction,
        FileCategory::PartsList,
        FileCategory::Image,
        FileCategory::Thumbnail,
    ];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            FileCategory::Instruction => "instruction",
            FileCategory::PartsList => "parts-list",
            FileCategory::Image => "image",
            FileCategory::Thumbnail => "thumbnail",
        }
    }

    /// MIME types accepted for the category (docs/contract.md §4.1). The check is
    /// advisory: S3 stores whatever bytes the client sends, so the real content
    /// check is the magic-byte sniff at finalize.
    pub const fn allowed_types(self) -> &'static [&'static str] {
        match self {
            FileCategory::Instruction => &["application/pdf"],
            FileCategory::PartsList => &[
                "text/csv",
                "application/csv",
                "text/plain",
                "application/json",
                "text/json",
                "application/xml",
                "text/xml",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.ms-excel",
            ],
            FileCategory::Image | FileCategory::Thumbnail => &[
                "image/jpeg",
                "image/png",
                "image/webp",
                "image/heic",
                "image/heif",
            ],
        }
    }

    pub fn max_size(self, limits: &UploadLimits) -> ByteSize {
        match self {
            FileCategory::Instruction => limits.instruction_max,
            FileCategory::PartsList => limits.parts_list_max,
            FileCategory::Image | FileCategory::Thumbnail => limits.image_max,
        }
    }

    /// The `moc_files.file_type` this category becomes at finalize.
    pub const fn moc_file_type(self) -> &'static str {
        match self {
            FileCategory::Instruction => "instruction",
            FileCategory::PartsList => "parts-list",
            FileCategory::Image => "gallery-image",
            FileCategory::Thumbnail => "thumbnail",
        }
    }

    pub const fn is_image(self) -> bool {
        matches!(self, FileCategory::Image | FileCategory::Thumbnail)
    }
}

impl fmt::Display for FileCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file extension, lower-cased, `^[a-z0-9]{1,10}$` (docs/contract.md §3): it goes
/// into the S3 key, so nothing else may pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension(String);

impl Extension {
    pub fn parse(raw: &str) -> Option<Self> {
        let ext = raw.trim_start_matches('.').to_ascii_lowercase();
        let valid = (1..=10).contains(&ext.len())
            && ext
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        valid.then_some(Self(ext))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a client declares about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMetadata {
    pub category: FileCategory,
    pub name: String,
    pub size: ByteSize,
    /// Lower-cased: MIME comparison is case-insensitive.
    pub mime_type: String,
    pub ext: Extension,
}

/// Why a well-formed file is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRejection {
    TooLarge { max: ByteSize },
    UnsupportedType { allowed: &'static [&'static str] },
}

/// What a client declares about one file (contract §4.1).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "category": "instruction", "name": "castle-instructions.pdf",
    "size": 12582912, "type": "application/pdf", "ext": "pdf"
}))]
pub struct FileMetadataBody {
    #[schema(value_type = FileCategory)]
    pub category: Raw,
    /// Characters, not bytes; no control characters.
    #[schema(value_type = String, min_length = 1, max_length = 255, pattern = r"^[^\x00-\x1F]*$")]
    pub name: Raw,
    /// Bytes. Over the category's limit is 413 SIZE_TOO_LARGE
    /// (`details.reason` FILE_TOO_LARGE).
    #[schema(value_type = u64, minimum = 1, maximum = 9223372036854775807_u64, format = Int64)]
    pub size: Raw,
    /// MIME type, compared case-insensitively; one the category does not
    /// allow is 415 INVALID_TYPE (`details.reason` UNSUPPORTED_MEDIA_TYPE).
    #[serde(rename = "type")]
    #[schema(
        value_type = String,
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1F]*$"
    )]
    pub mime_type: Raw,
    /// Letters and digits, with or without the leading dot.
    #[schema(value_type = String, min_length = 1, max_length = 10, pattern = r"^\.*[A-Za-z0-9]+$")]
    pub ext: Raw,
}

impl FileMetadataBody {
    /// The metadata, if every field holds to its schema; otherwise each
    /// problem is in `errors` under `path`.
    pub fn validate(&self, path: &str, errors: &mut FieldErrors) -> Option<FileMetadata> {
        let at = |key: &str| field_path(path, key);
        let category = self
            .category
            .string(&at("category"), 1..=32, errors)
            .and_then(|raw| {
                let parsed = FileCategory::parse(&raw);
                if parsed.is_none() {
                    errors.add(
                        at("category"),
                        "must be one of instruction, parts-list, image, thumbnail",
                    );
                }
                parsed
            });
        let name = self.name.string(&at("name"), 1..=255, errors);
        let size = self
            .size
            .integer(&at("size"), 1..=i64::MAX.unsigned_abs(), errors);
        let mime_type = self.mime_type.string(&at("type"), 1..=255, errors);
        let ext = self.ext.string(&at("ext"), 1..=10, errors).and_then(|raw| {
            let parsed = Extension::parse(&raw);
            if parsed.is_none() {
                errors.add(at("ext"), "must be 1 to 10 letters or digits");
            }
            parsed
        });
        Some(FileMetadata {
            category: category?,
            name: name?,
            size: ByteSize::new(size?),
            mime_type: mime_type?.trim().to_ascii_lowercase(),
            ext: ext?,
        })
    }
}

impl FileMetadata {
    /// Reads one file's metadata object at `path` (a [`FileMetadataBody`]).
    pub fn read(path: &str, value: &Value, errors: &mut FieldErrors) -> Option<Self> {
        read_body::<FileMetadataBody>(path, value, errors)?.validate(path, errors)
    }

    /// Size (413) before MIME (415), as docs/contract.md §4.1 orders them.
    pub fn check_limits(&self, limits: &UploadLimits) -> Result<(), FileRejection> {
        let max = self.category.max_size(limits);
        if self.size > max {
            return Err(FileRejection::TooLarge { max });
        }
        let allowed = self.category.allowed_types();
        if !allowed.contains(&self.mime_type.as_str()) {
            return Err(FileRejection::UnsupportedType { allowed });
        }
        Ok(())
    }
}

/// How many files of each category a session declared at create. Register
/// holds later registrations to these counts (STORY-01721 AC-16).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredFiles(pub BTreeMap<FileCategory, u32>);

impl DeclaredFiles {
    pub fn count(files: &[FileMetadata]) -> Self {
        let mut counts = BTreeMap::new();
        for file in files {
            *counts.entry(file.category).or_insert(0) += 1;
        }
        Self(counts)
    }

    pub fn of(&self, category: FileCategory) -> u32 {
        self.0.get(&category).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> UploadLimits {
        UploadLimits {
            instruction_max: ByteSize::mib(50),
            image_max: ByteSize::mib(10),
            parts_list_max: ByteSize::mib(5),
            image_max_count: 10,
            parts_list_max_count: 5,
        }
    }

    fn parse(value: Value) -> Result<FileMetadata, FieldErrors> {
        let mut errors = FieldErrors::default();
        match FileMetadata::read("", &value, &mut errors) {
            Some(meta) if errors.is_empty() => Ok(meta),
            _ => Err(errors),
        }
    }

    #[test]
    fn a_valid_pdf_parses_with_lowercased_type_and_ext() {
        let meta = parse(json!({"category": "instruction", "name": "a.pdf", "size": 10, "type": "Application/PDF", "ext": "PDF"})).unwrap();
        assert_eq!(meta.mime_type, "application/pdf");
        assert_eq!(meta.ext.as_str(), "pdf");
        assert_eq!(meta.check_limits(&limits()), Ok(()));
    }

    #[test]
    fn schema_problems_are_reported_per_field() {
        let errors =
            parse(json!({"category": "video", "name": "", "size": 0, "type": 3, "ext": "p/d"}))
                .unwrap_err();
        for field in ["category", "name", "size", "type", "ext"] {
            assert!(errors.0.contains_key(field), "{field}: {errors:?}");
        }
    }

    #[test]
    fn size_is_checked_before_type() {
        let meta = parse(json!({"category": "image", "name": "a.gif", "size": 11 * 1024 * 1024, "type": "image/gif", "ext": "gif"})).unwrap();
        assert_eq!(
            meta.check_limits(&limits()),
            Err(FileRejection::TooLarge {
                max: ByteSize::mib(10)
            })
        );
    }

    #[test]
    fn a_pdf_declared_as_an_image_is_refused() {
        let meta = parse(json!({"category": "image", "name": "a.pdf", "size": 10, "type": "application/pdf", "ext": "pdf"})).unwrap();
        assert!(matches!(
            meta.check_limits(&limits()),
            Err(FileRejection::UnsupportedType { .. })
        ));
    }

    #[test]
    fn extension_must_be_key_safe() {
        assert!(Extension::parse("../x").is_none());
        assert!(Extension::parse("abcdefghijk").is_none());
        assert_eq!(Extension::parse(".JPG").unwrap().as_str(), "jpg");
    }
}
