//! `POST /api/mocs/uploads/sessions/{sessionId}/files/batch` — register up to MAX_BATCH_SIZE files, each independently (201, per-item results). Not idempotent per item: a repeated item is a 409 in its result.
//!
//! Contract: docs/contract.md §4.3; request and response shapes: docs/openapi.json.
//!
//! Auth: bearer JWT (or AUTH_BYPASS in development). All logic lives in
//! `moc_shared`; this binary only runs the route as a Vercel function.

fn main() -> Result<(), moc_shared::runtime::Error> {
    moc_shared::runtime::main(&moc_shared::routes::REGISTER_BATCH)
}
