//! Finalizing a session into a MOC record (docs/contract.md §4.7). See
//! `docs/adr/0001-finalize-transaction.md` for the transaction boundary.
//!
//! In order: take the session's finalize lock (or replay a finalized
//! session, or wait out another finalize), verify the files in S3, write
//! the MOC in one transaction, answer with it.

mod input;
mod lock;
mod verify;
mod view;
mod write;

use std::time::Instant;

use serde_json::Value;

pub use input::{FinalizeInput, FinalizeRequest};
pub use view::{FinalizeInProgress, MocView};

use crate::auth::User;
use crate::error::ApiError;
use crate::rate_limit;
use crate::state::AppState;

#[derive(Debug)]
pub enum FinalizeOutcome {
    /// 201: the MOC was created now.
    Created(MocView),
    /// 200: the session was finalized before; the stored MOC, `idempotent`.
    Replayed(MocView),
    /// 200: another request holds a fresh lock.
    InProgress,
}

#[tracing::instrument(skip_all, fields(user_id = %user.id, session_id = tracing::field::Empty))]
pub async fn finalize(
    state: &AppState,
    user: &User,
    body: Value,
) -> Result<FinalizeOutcome, ApiError> {
    let started = Instant::now();
    let input = FinalizeInput::read(&body)?;
    tracing::Span::current().record("session_id", tracing::field::display(input.session_id));
    rate_limit::count_finalize(state.redis(), state.config(), user).await?;

    let (session, lock) = match lock::take_turn(state, user, input.session_id).await? {
        lock::Turn::Locked { session, lock } => (session, lock),
        lock::Turn::Answered(outcome) => return Ok(outcome),
    };
    match write::finalize_locked(state, user, &session, &input, lock).await {
        Ok((view, files)) => {
            tracing::info!(
                session_id = %session.id,
                moc_id = %view.id,
                file_count = files.len(),
                total_size_bytes = files.iter().map(|f| crate::domain::ByteSize::from_column(f.size).bytes()).sum::<u64>(),
                duration_ms = crate::time::millis(started.elapsed()),
                "session finalized"
            );
            Ok(FinalizeOutcome::Created(view))
        }
        Err(error) => {
            lock::release(state, session.id, lock).await;
            Err(error)
        }
    }
}
