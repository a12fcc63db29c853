//! `POST /api/mocs/uploads/sessions/{sessionId}/extend` — push an active session's expiry out, capped at its maximum lifetime (200).
//!
//! Contract: docs/contract.md §4.11; request and response shapes: docs/openapi.json.
//!
//! Auth: cookie or bearer JWT (or AUTH_BYPASS in development). All logic lives in
//! `moc_shared`; this binary only runs the route as a Vercel function.

fn main() -> Result<(), moc_shared::runtime::Error> {
    moc_shared::runtime::main(&moc_shared::routes::EXTEND_SESSION)
}
