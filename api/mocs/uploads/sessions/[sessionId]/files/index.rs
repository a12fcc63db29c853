//! `POST /api/mocs/uploads/sessions/{sessionId}/files` — register a file and start its S3 multipart upload (201), or re-register with fileId for fresh presigned URLs (200). A duplicate (category, name) is 409.
//!
//! Contract: docs/contract.md §4.2; request and response shapes: docs/openapi.json.
//!
//! Auth: bearer JWT (or AUTH_BYPASS in development). All logic lives in
//! `moc_shared`; this binary only runs the route as a Vercel function.

fn main() -> Result<(), moc_shared::runtime::Error> {
    moc_shared::runtime::main(&moc_shared::routes::REGISTER_FILE)
}
