//! `GET /api/cron/expire-upload-sessions` — the expiry sweeper, run by Vercel Cron (200 with its counts).
//!
//! Contract: docs/contract.md §4.13; request and response shapes: docs/openapi.json.
//!
//! Auth: `Authorization: Bearer $CRON_SECRET` only; anything else is 403. All logic lives in
//! `moc_shared`; this binary only runs the route as a Vercel function.

fn main() -> Result<(), moc_shared::runtime::Error> {
    moc_shared::runtime::main(&moc_shared::routes::EXPIRE_SESSIONS)
}
