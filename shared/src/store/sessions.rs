//! `upload_sessions`: loading a session, and every guarded change of one.
//!
//! A guard (`status = ANY(..)`, the finalize lock, the cleanup claim)
//! repeats the lifecycle's rule in SQL, so a change decided on a row read a
//! moment ago cannot land on a row that changed since; the allowed source
//! statuses come from `SessionAction::from_statuses`.

use chrono::NaiveDateTime;
use serde_json::Value;
use uuid::Uuid;

use super::Executor;
use crate::db::Tx;
use crate::domain::{ByteSize, SessionAction, SessionMetadata, SessionStatus};

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: String,
    pub status: SessionStatus,
    pub part_size_bytes: i32,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub finalized_at: Option<NaiveDateTime>,
    pub finalizing_at: Option<NaiveDateTime>,
    pub moc_instruction_id: Option<Uuid>,
    pub metadata: Option<Value>,
}

crate::from_row!(SessionRow {
    id,
    user_id,
    status,
    part_size_bytes,
    expires_at,
    created_at,
    finalized_at,
    finalizing_at,
    moc_instruction_id,
    metadata,
});

/// The statuses a lifecycle action starts from, as the `text[]` of a
/// `status = ANY($n)` guard.
pub(super) fn session_statuses(action: SessionAction) -> Vec<String> {
    super::status_names(action.from_statuses(), SessionStatus::as_str)
}

impl SessionRow {
    pub fn part_size(&self) -> ByteSize {
        ByteSize::from_column(self.part_size_bytes.max(1))
    }

    /// What the session keeps of its create request. Sessions created by
    /// the old service have no declared counts; they are held to the
    /// configured maxima.
    pub fn metadata(&self) -> SessionMetadata {
        SessionMetadata::read(self.metadata.as_ref())
    }
}

/// `query_as!(SessionRow, ..)`: one column list for every statement that
/// loads a whole session, between `$select` and the rest of the statement.
macro_rules! session_rows {
    ($select:literal, $rest:literal $(, $arg:expr)* $(,)?) => {
        query_as!(
            SessionRow,
            $select
                + " id, user_id, status AS \"status: SessionStatus\", part_size_bytes, expires_at, \
                   created_at, finalized_at, finalizing_at, moc_instruction_id, \
                   metadata "
                + $rest
            $(, $arg)*
        )
    };
}

/// The session, if it is `user_id`'s.
pub async fn owned(
    db: impl Executor,
    session_id: Uuid,
    user_id: &str,
) -> crate::db::Result<Option<SessionRow>> {
    session_rows!(
        "SELECT",
        "FROM upload_sessions WHERE id = $1 AND user_id = $2",
        session_id,
        user_id,
    )
    .fetch_optional(db)
    .await
}

/// Where a page of a listing starts: after this session, in the listing's
/// order (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageAfter {
    pub created_at: NaiveDateTime,
    pub id: Uuid,
}

/// Up to `limit` of the user's sessions, newest first (`created_at`, then
/// `id`, descending: a keyset, so pages neither skip nor repeat a session
/// when new ones are created meanwhile), after `after`. With `visible`, only
/// sessions showing that status at `now`: the `CASE` is
/// `SessionState::visible_status` in SQL (finalized → completed, an active
/// row past its expiry → expired, an unknown status → active), so the
/// filter runs in the database and a page is always full.
pub async fn page_of_user(
    db: impl Executor,
    user_id: &str,
    visible: Option<SessionStatus>,
    after: Option<PageAfter>,
    limit: i64,
    now: NaiveDateTime,
) -> crate::db::Result<Vec<SessionRow>> {
    session_rows!(
        "SELECT",
        "FROM upload_sessions
          WHERE user_id = $1
            AND ($2::text IS NULL OR $2 = CASE
                  WHEN finalized_at IS NOT NULL OR status = 'completed' THEN 'completed'
                  WHEN status IN ('cancelled', 'expired') THEN status
                  WHEN expires_at <= $3 THEN 'expired'
                  ELSE 'active' END)
            AND ($4::timestamp IS NULL OR (created_at, id) < ($4, $5::uuid))
          ORDER BY created_at DESC, id DESC
          LIMIT $6",
        user_id,
        visible.map(SessionStatus::as_str),
        now,
        after.map(|a| a.created_at),
        after.map(|a| a.id),
        limit,
    )
    .fetch_all(db)
    .await
}

/// The session, if it is `user_id`'s, locked against every other change
/// until `tx` ends (a registration reads it, counts and inserts its file
/// under this lock). Another user's session is neither read nor locked.
pub async fn lock_owned(
    tx: &Tx,
    session_id: Uuid,
    user_id: &str,
) -> crate::db::Result<Option<SessionRow>> {
    session_rows!(
        "SELECT",
        "FROM upload_sessions WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE",
        session_id,
        user_id,
    )
    .fetch_optional(tx)
    .await
}

/// A new session, `active`; `quotas::insert_session_counted` inserts it.
pub struct NewSession<'a> {
    pub id: Uuid,
    pub user_id: &'a str,
    pub part_size_bytes: i32,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub metadata: &'a Value,
}

/// What an attempt at the finalize lock found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockAttempt {
    /// Another finalize holds a fresh lock (or the session may not be
    /// finalized): not taken.
    Busy,
    /// Taken; it was free.
    Took,
    /// Taken over a stale lock taken at `since`.
    TookOverStale { since: NaiveDateTime },
}

/// Takes the `finalizing_at` lock of an unfinalized session when it is free
/// or older than `stale_before`.
pub async fn take_finalize_lock(
    db: impl Executor,
    session_id: Uuid,
    now: NaiveDateTime,
    stale_before: NaiveDateTime,
) -> crate::db::Result<LockAttempt> {
    let statuses = session_statuses(SessionAction::Finalize);
    let taken: Option<Option<NaiveDateTime>> = query_scalar!(
        r#"WITH previous AS (
             SELECT id, finalizing_at FROM upload_sessions WHERE id = $1 FOR UPDATE
         )
         UPDATE upload_sessions s SET finalizing_at = $2, updated_at = $2
           FROM previous
          WHERE s.id = previous.id
            AND s.status = ANY($4)
            AND s.finalized_at IS NULL
            AND (previous.finalizing_at IS NULL OR previous.finalizing_at < $3)
         RETURNING previous.finalizing_at AS "previous_lock?""#,
        session_id,
        now,
        stale_before,
        statuses.as_slice(),
    )
    .fetch_optional(db)
    .await?;
    Ok(match taken {
        None => LockAttempt::Busy,
        Some(None) => LockAttempt::Took,
        Some(Some(since)) => LockAttempt::TookOverStale { since },
    })
}

/// Gives the lock back, unless another finalize has taken it over since.
pub async fn release_finalize_lock(
    db: impl Executor,
    session_id: Uuid,
    lock: NaiveDateTime,
) -> crate::db::Result<()> {
    query!(
        "UPDATE upload_sessions SET finalizing_at = NULL WHERE id = $1 AND finalizing_at = $2",
        session_id,
        lock,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Marks the session finalized into `moc_id` and drops the lock, if the
/// lock is still `lock`. False: another finalize took it over.
pub async fn mark_finalized(
    tx: &Tx,
    session_id: Uuid,
    moc_id: Uuid,
    lock: NaiveDateTime,
    now: NaiveDateTime,
) -> crate::db::Result<bool> {
    let updated = query!(
        "UPDATE upload_sessions
            SET status = 'completed', finalized_at = $2, moc_instruction_id = $3,
                finalizing_at = NULL, updated_at = $2
          WHERE id = $1 AND finalizing_at = $4 AND finalized_at IS NULL",
        session_id,
        now,
        moc_id,
        lock,
    )
    .execute(tx)
    .await?;
    Ok(updated == 1)
}

/// Cancels a session the lifecycle lets be cancelled and claims its cleanup
/// at once. False: the session changed since it was read. A finalize that
/// took its lock after that read keeps its files (and finalize's lock needs
/// `active`, so it cannot take ours).
pub async fn cancel_and_claim(
    db: impl Executor,
    session_id: Uuid,
    now: NaiveDateTime,
    lock_stale_before: NaiveDateTime,
) -> crate::db::Result<bool> {
    let statuses = session_statuses(SessionAction::Cancel);
    let claimed = query!(
        "UPDATE upload_sessions
            SET status = 'cancelled', cleanup_claimed_at = $2, updated_at = $2
          WHERE id = $1 AND status = ANY($3) AND finalized_at IS NULL
            AND (finalizing_at IS NULL OR finalizing_at < $4)",
        session_id,
        now,
        statuses.as_slice(),
        lock_stale_before,
    )
    .execute(db)
    .await?;
    Ok(claimed == 1)
}

/// Claims the leftover cleanup of a cancelled or expired session, unless
/// another run holds a claim newer than `lease_expired_before` or no file
/// is left.
pub async fn claim_leftover(
    db: impl Executor,
    session_id: Uuid,
    now: NaiveDateTime,
    lease_expired_before: NaiveDateTime,
) -> crate::db::Result<bool> {
    let claimed = query!(
        "UPDATE upload_sessions s SET cleanup_claimed_at = $2
          WHERE s.id = $1 AND s.status IN ('cancelled', 'expired') AND s.finalized_at IS NULL
            AND (s.cleanup_claimed_at IS NULL OR s.cleanup_claimed_at < $3)
            AND EXISTS (SELECT 1 FROM upload_session_files f WHERE f.session_id = s.id)",
        session_id,
        now,
        lease_expired_before,
    )
    .execute(db)
    .await?;
    Ok(claimed == 1)
}

pub async fn clear_cleanup_claim(db: impl Executor, session_id: Uuid) -> crate::db::Result<()> {
    query!(
        "UPDATE upload_sessions SET cleanup_claimed_at = NULL WHERE id = $1",
        session_id,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Moves `expires_at` to `wanted` (never earlier) on a live session the
/// lifecycle lets be extended. `None`: the session changed since it was
/// read.
pub async fn extend(
    db: impl Executor,
    session_id: Uuid,
    wanted: NaiveDateTime,
    now: NaiveDateTime,
    lock_stale_before: NaiveDateTime,
) -> crate::db::Result<Option<NaiveDateTime>> {
    let statuses = session_statuses(SessionAction::Extend);
    query_scalar!(
        "UPDATE upload_sessions SET expires_at = GREATEST(expires_at, $2), updated_at = $3
          WHERE id = $1 AND status = ANY($4) AND finalized_at IS NULL AND expires_at > $3
            AND (finalizing_at IS NULL OR finalizing_at < $5)
         RETURNING expires_at",
        session_id,
        wanted,
        now,
        statuses.as_slice(),
        lock_stale_before,
    )
    .fetch_optional(db)
    .await
}

/// The instants that decide which sessions a sweep may claim.
#[derive(Debug, Clone, Copy)]
pub struct SweepCutoffs {
    /// Active sessions that expired before this (expiry plus grace).
    pub expired_before: NaiveDateTime,
    /// Finalize locks older than this are stale.
    pub lock_stale_before: NaiveDateTime,
    /// Cleanup claims older than this belong to a dead run.
    pub lease_expired_before: NaiveDateTime,
}

/// `$macro!` (`crate::store`'s) with the condition of a sweepable session pasted between
/// two SQL pieces, so both sweep statements share one copy of it. `$1`–`$4`
/// are `SweepCutoffs` (see [`claim_for_sweep`]).
///
/// The sessions a sweep may claim: active ones long expired (past expiry
/// plus the grace period), not finalized, without a fresh finalize lock;
/// and cancelled or expired ones whose cleanup a dead run left behind.
macro_rules! with_sweepable {
    ($macro:ident $([$record:path])?, $before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        $macro!(
            $($record,)?
            $before
                + " finalized_at IS NULL AND (
                       (status = ANY($1) AND expires_at < $2
                        AND (finalizing_at IS NULL OR finalizing_at < $3))
                    OR (status IN ('cancelled', 'expired')
                        AND (cleanup_claimed_at IS NULL OR cleanup_claimed_at < $4)
                        AND EXISTS (SELECT 1 FROM upload_session_files f
                                     WHERE f.session_id = upload_sessions.id))) "
                + $after
            $(, $arg)*
        )
    };
}

/// A session a sweep claimed, with the status it had before.
#[derive(Debug)]
pub struct SweptSession {
    pub id: Uuid,
    pub previous_status: SessionStatus,
}

crate::from_row!(SweptSession {
    id,
    previous_status
});

/// Claims up to `limit` sweepable sessions, oldest expiry first, with `FOR
/// UPDATE SKIP LOCKED` (overlapping runs claim disjoint sessions): active
/// ones become `expired`; each gets a cleanup claim of `now`.
pub async fn claim_for_sweep(
    db: impl Executor,
    cutoffs: SweepCutoffs,
    limit: i64,
    now: NaiveDateTime,
) -> crate::db::Result<Vec<SweptSession>> {
    let statuses = session_statuses(SessionAction::Sweep);
    with_sweepable!(
        query_as[SweptSession],
        "WITH picked AS (
             SELECT id, status FROM upload_sessions WHERE",
        r#"ORDER BY expires_at, id
              LIMIT $5
              FOR UPDATE SKIP LOCKED
         )
         UPDATE upload_sessions s
            SET status = CASE WHEN s.status = 'active' THEN 'expired' ELSE s.status END,
                cleanup_claimed_at = $6, updated_at = $6
           FROM picked
          WHERE s.id = picked.id
         RETURNING s.id AS "id!", picked.status AS "previous_status!: SessionStatus""#,
        statuses.as_slice(),
        cutoffs.expired_before,
        cutoffs.lock_stale_before,
        cutoffs.lease_expired_before,
        limit,
        now,
    )
    .fetch_all(db)
    .await
}

/// Whether any session is still sweepable (more work for a later run).
pub async fn any_sweepable(db: impl Executor, cutoffs: SweepCutoffs) -> crate::db::Result<bool> {
    let statuses = session_statuses(SessionAction::Sweep);
    with_sweepable!(
        query_scalar,
        "SELECT EXISTS (SELECT 1 FROM upload_sessions WHERE",
        r#") AS "any!""#,
        statuses.as_slice(),
        cutoffs.expired_before,
        cutoffs.lock_stale_before,
        cutoffs.lease_expired_before,
    )
    .fetch_one(db)
    .await
}
