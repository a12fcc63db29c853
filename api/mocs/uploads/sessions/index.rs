//! `POST /api/mocs/uploads/sessions` — create an upload session (201). Not idempotent: each call is a new session and counts against the daily limit.
//! `GET /api/mocs/uploads/sessions` — the caller's sessions, a page at a time (200); `?status=active` by default.
//!
//! Contract: docs/contract.md §4.1, §4.15; request and response shapes: docs/openapi.json.
//!
//! Auth: bearer JWT (or AUTH_BYPASS in development). All logic lives in
//! `moc_shared`; this binary only runs the route as a Vercel function.

fn main() -> Result<(), moc_shared::runtime::Error> {
    moc_shared::runtime::main(&moc_shared::routes::SESSIONS)
}
