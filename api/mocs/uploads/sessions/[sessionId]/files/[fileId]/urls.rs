//! `POST /api/mocs/uploads/sessions/{sessionId}/files/{fileId}/urls` — fresh presigned part URLs, for the listed parts or every part S3 lacks (200).
//!
//! Contract: docs/contract.md §4.12; request and response shapes: docs/openapi.json.
//!
//! Auth: cookie or bearer JWT (or AUTH_BYPASS in development). All logic lives in
//! `moc_shared`; this binary only runs the route as a Vercel function.

fn main() -> Result<(), moc_shared::runtime::Error> {
    moc_shared::runtime::main(&moc_shared::routes::FRESH_URLS)
}
