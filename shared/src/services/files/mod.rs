//! A session's files: registering them (docs/contract.md §4.2, §4.3),
//! presigned part URLs, and completing them (§4.6). One use case a module.

mod complete;
mod fresh_urls;
mod presign;
mod register;
mod register_batch;
mod register_new;
mod reregister;

pub use complete::{CompleteFileRequest, CompletedFile, ListedPart, complete, parse_listed_parts};
pub use fresh_urls::{FreshUrls, FreshUrlsRequest, fresh_urls};
pub use presign::{
    PartChecksum, PartChecksums, PresignedPartUrl, parse_part_checksums, presign_parts,
};
pub use register::{RegisterFileRequest, RegisterInput, Registration, register};
pub use register_batch::{
    BatchItem, BatchOutcome, BatchRegisterRequest, BatchResults, register_batch,
};
