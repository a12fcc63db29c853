//! Parts: the proxied part upload (docs/contract.md §4.4), the parts list
//! that resume is built on (§4.5), and the reconciliation with S3 both
//! complete and the list rely on.

mod list;
mod reconcile;
mod upload;

pub use list::{PartList, PartView, list};
pub use reconcile::{record_stored, stored_parts};
pub use upload::{UploadedPart, upload};
