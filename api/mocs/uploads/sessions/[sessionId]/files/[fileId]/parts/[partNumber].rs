//! `PUT /api/mocs/uploads/sessions/{sessionId}/files/{fileId}/parts/{partNumber}` — proxy one part (at most 4.5 MB) to S3 (200). Idempotent: the last write of a part wins. OPTIONS answers CORS preflights when browser uploads are enabled.
//!
//! Contract: docs/contract.md §4.4; request and response shapes: docs/openapi.json.
//!
//! Auth: bearer JWT (or AUTH_BYPASS in development). All logic lives in
//! `moc_shared`; this binary only runs the route as a Vercel function.

fn main() -> Result<(), moc_shared::runtime::Error> {
    moc_shared::runtime::main(&moc_shared::routes::UPLOAD_PART)
}
