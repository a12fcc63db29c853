//! `GET /api/mocs/uploads/sessions/{sessionId}` — the session's status and files (200); `DELETE` — cancel it (204).
//!
//! Contract: docs/contract.md §4.8 (GET), §4.9 (DELETE); request and response shapes: docs/openapi.json.
//!
//! Auth: cookie or bearer JWT (or AUTH_BYPASS in development). All logic lives in
//! `moc_shared`; this binary only runs the route as a Vercel function.

fn main() -> Result<(), moc_shared::runtime::Error> {
    moc_shared::runtime::main(&moc_shared::routes::SESSION)
}
