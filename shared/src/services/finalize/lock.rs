//! The session's finalize lock (`finalizing_at`): one finalize at a time,
//! a stale lock taken over, a fresh one waited out.

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use uuid::Uuid;

use super::FinalizeOutcome;
use super::view::{MocView, read_moc};
use crate::auth::User;
use crate::domain::SessionAction;
use crate::error::ApiError;
use crate::services::{lookup, permits};
use crate::state::AppState;
use crate::store::sessions::LockAttempt;
use crate::store::{self, SessionRow};
use crate::time;

/// How often a finalize waiting for a concurrent one looks again. Each look
/// is two short queries on a pooled connection that goes straight back.
const LOCK_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Whose turn it is to finalize the session.
pub(super) enum Turn {
    /// This request holds the lock, taken at `lock`.
    Locked {
        session: SessionRow,
        lock: NaiveDateTime,
    },
    /// Nothing to do: the session was finalized (replay), or another
    /// finalize still holds the lock after the wait.
    Answered(FinalizeOutcome),
}

/// Step 7: a fresh lock held by another finalize (a double click, a
/// retried request) is waited out by polling, so the caller gets the MOC
/// it can parse rather than the "finalizing" body. No transaction stays
/// open while waiting: every look is two short statements on a pooled
/// connection. If the holder gives up and releases the lock, this request
/// takes it and does the work.
pub(super) async fn take_turn(
    state: &AppState,
    user: &User,
    session_id: Uuid,
) -> Result<Turn, ApiError> {
    let deadline = Instant::now() + state.config().finalize_wait;
    loop {
        let session = lookup::owned_session(state.db(), session_id, user).await?;
        if let Some(view) = replay(state, &session).await? {
            return Ok(Turn::Answered(FinalizeOutcome::Replayed(view)));
        }
        permits::permit(state, &session, SessionAction::Finalize).await?;
        if let Some(lock) = acquire(state, &session).await? {
            return Ok(Turn::Locked { session, lock });
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            tracing::info!(session_id = %session.id, "finalize still in progress elsewhere; answering finalizing");
            return Ok(Turn::Answered(FinalizeOutcome::InProgress));
        }
        tokio::time::sleep(remaining.min(LOCK_POLL_INTERVAL)).await;
    }
}

/// The stored MOC of an already finalized session, with `idempotent: true`.
/// Answered even after expiry: the work is done.
async fn replay(state: &AppState, session: &SessionRow) -> Result<Option<MocView>, ApiError> {
    match (session.finalized_at, session.moc_instruction_id) {
        (Some(_), Some(moc_id)) => {
            let mut view = read_moc(state, moc_id).await?;
            view.idempotent = true;
            Ok(Some(view))
        }
        _ => Ok(None),
    }
}

/// Takes the lock when it is free or stale. Returns the lock timestamp, or
/// `None` when another finalize holds a fresh lock.
async fn acquire(
    state: &AppState,
    session: &SessionRow,
) -> Result<Option<NaiveDateTime>, ApiError> {
    let now = time::now();
    let stale_before = permits::lock_stale_before(state, now);
    let taken =
        store::sessions::take_finalize_lock(state.db(), session.id, now, stale_before).await?;
    match taken {
        LockAttempt::Busy => Ok(None),
        LockAttempt::TookOverStale { since } => {
            tracing::warn!(
                session_id = %session.id,
                lock_age_ms = (now - since).num_milliseconds(),
                "stale finalize lock taken over"
            );
            Ok(Some(now))
        }
        LockAttempt::Took => Ok(Some(now)),
    }
}

/// Gives the lock back after a failed finalize, so a retry need not wait
/// for it to go stale.
pub(super) async fn release(state: &AppState, session_id: Uuid, lock: NaiveDateTime) {
    if let Err(error) = store::sessions::release_finalize_lock(state.db(), session_id, lock).await {
        tracing::error!(%error, %session_id, "could not release the finalize lock; it goes stale after FINALIZE_LOCK_TTL_MINUTES");
    }
}
