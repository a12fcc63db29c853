//! Upload domain types. Each one parses its raw input once, so code that holds
//! a value of the type never re-checks it.

mod file;
mod keys;
mod lifecycle;
pub mod limits;
mod magic;
mod part;
mod slug;
mod validate;
mod verify;

pub use file::{ByteSize, DeclaredFiles, Extension, FileCategory, FileMetadata, FileRejection};
pub use keys::{ObjectKey, key_safe_user_id};
pub use lifecycle::{
    FileAction, FileRefusal, FileStatus, Permit, Refusal, SessionAction, SessionState,
    SessionStatus,
};
pub use magic::{SNIFF_LEN, content_matches};
pub use part::{PartNumber, PartPlan, S3_MIN_PART_SIZE};
pub use slug::{SLUG_MAX_LEN, slug_candidate, slugify};
pub use validate::{FieldErrors, JsonObject, TextKind, text_problem};
pub use verify::{FileVerificationProblem, VerificationFailure};
