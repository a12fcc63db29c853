//! `DELETE /api/mocs/uploads/sessions/{sessionId}/files/{fileId}` — abort one file: its upload, object and rows (204).
//!
//! Contract: docs/contract.md §4.10; request and response shapes: docs/openapi.json.
//!
//! Auth: cookie or bearer JWT (or AUTH_BYPASS in development). All logic lives in
//! `moc_shared`; this binary only runs the route as a Vercel function.

fn main() -> Result<(), moc_shared::runtime::Error> {
    moc_shared::runtime::main(&moc_shared::routes::ABORT_FILE)
}
