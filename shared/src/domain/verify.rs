use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Why a stored file failed the finalize checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum VerificationFailure {
    /// No object at the key.
    Missing,
    /// The object's size differs from the declared size.
    Size,
    /// The first bytes do not carry the declared format's signature.
    MagicBytes,
    /// The declared type is not allowed for the category.
    Type,
    /// The stored object's CRC32C is not the one declared at registration.
    Checksum,
}

/// One entry of `details.files[]` in a 400 FILE_ERROR (reason
/// FILE_VALIDATION_FAILED).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileVerificationProblem {
    pub file_id: Uuid,
    pub filename: String,
    pub reason: VerificationFailure,
    pub message: String,
}
