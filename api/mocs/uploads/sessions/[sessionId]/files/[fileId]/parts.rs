//! `GET /api/mocs/uploads/sessions/{sessionId}/files/{fileId}/parts` — the parts S3 holds for the file, for resume (200). Safe and idempotent.
//!
//! Contract: docs/contract.md §4.5; request and response shapes: docs/openapi.json.
//!
//! Auth: bearer JWT (or AUTH_BYPASS in development). All logic lives in
//! `moc_shared`; this binary only runs the route as a Vercel function.

fn main() -> Result<(), moc_shared::runtime::Error> {
    moc_shared::runtime::main(&moc_shared::routes::LIST_PARTS)
}
