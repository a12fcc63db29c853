//! `POST /api/mocs/uploads/sessions/{sessionId}/files/{fileId}/complete` — complete the file's S3 multipart upload (200). Idempotent: completing again answers the stored fileUrl.
//!
//! Contract: docs/contract.md §4.6; request and response shapes: docs/openapi.json.
//!
//! Auth: bearer JWT (or AUTH_BYPASS in development). All logic lives in
//! `moc_shared`; this binary only runs the route as a Vercel function.

fn main() -> Result<(), moc_shared::runtime::Error> {
    moc_shared::runtime::main(&moc_shared::routes::COMPLETE_FILE)
}
