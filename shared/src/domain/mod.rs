//! Upload domain types and the rules that need neither a database nor S3:
//! which state change the lifecycle allows, whether a part list completes
//! an upload, how ETags compare, how slugs and file names are made unique.
//! Each type parses its raw input once, so code that holds a value of the
//! type never re-checks it. Unit tests sit beside each rule.

mod checksum;
mod etag;
mod file;
mod keys;
mod lifecycle;
pub mod limits;
mod listed_parts;
mod magic;
mod moc;
mod part;
mod session_metadata;
mod slug;
mod status;
mod validate;
mod verify;

pub use checksum::{Crc32c, Crc32cSyntax};
pub use etag::{etag_eq, looks_like_part_etag};
pub use file::{
    ByteSize, DeclaredFiles, Extension, FileCategory, FileMetadata, FileMetadataBody,
    FileRejection, MAX_STORED_SIZE, SizeTooLarge,
};
pub use keys::{ObjectKey, key_safe_user_id};
pub use lifecycle::{FileAction, FileRefusal, Permit, Refusal, SessionAction, SessionState};
pub use listed_parts::{ListedPartsProblem, check_listed_parts, check_stored_parts};
pub use magic::{SNIFF_LEN, content_matches};
pub use moc::{MocFileUrls, unique_name};
pub use part::{PartNumber, PartPlan, S3_MIN_PART_SIZE, StoredPart};
pub use session_metadata::SessionMetadata;
pub use slug::{SLUG_MAX_LEN, slug_candidate, slugify};
pub use status::{FileStatus, SessionStatus};
pub use validate::{FieldErrors, Raw, TextKind, field_path, read_body, text_problem};
pub use verify::{FileVerificationProblem, VerificationFailure};
