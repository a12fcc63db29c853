//! `POST /api/mocs/uploads/finalize (also /sessions/finalize and /sessions/{sessionId}/finalize)` — turn a session's completed files into a MOC (201). Idempotent: a finalized session answers its MOC with idempotent: true (200).
//!
//! Contract: docs/contract.md §4.7; request and response shapes: docs/openapi.json.
//!
//! Auth: bearer JWT (or AUTH_BYPASS in development). All logic lives in
//! `moc_shared`; this binary only runs the route as a Vercel function.

fn main() -> Result<(), moc_shared::runtime::Error> {
    moc_shared::runtime::main(&moc_shared::routes::FINALIZE)
}
