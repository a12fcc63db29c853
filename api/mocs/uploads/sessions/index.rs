//! `POST /api/mocs/uploads/sessions` — create an upload session (201). Not idempotent: each call is a new session and counts against the daily limit.
//!
//! Contract: docs/contract.md §4.1; request and response shapes: docs/openapi.json.
//!
//! Auth: bearer JWT (or AUTH_BYPASS in development). All logic lives in
//! `moc_shared`; this binary only runs the route as a Vercel function.

#[tokio::main]
async fn main() -> Result<(), moc_shared::runtime::Error> {
    moc_shared::runtime::serve(&moc_shared::routes::CREATE_SESSION).await
}
