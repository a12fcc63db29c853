//! The upload lifecycle: the one place that decides which state change a
//! session or a file may make (diagram: `docs/lifecycle.md`; the § numbers
//! below are those of docs/contract.md).
//!
//! Every route asks [`SessionState::permits`] and [`FileStatus::permits`]
//! before it acts, and every guarded `UPDATE … WHERE status = …` takes its
//! allowed source statuses from [`SessionAction::from_statuses`], so the
//! decision and the race-safe SQL guard cannot drift apart.
//!
//! A session row's `status` is one of `active`, `completed` (finalized into
//! a MOC), `expired` (swept by the cron job) or `cancelled` (by its owner).
//! Two conditions refine `active`: past `expires_at` it behaves as expired
//! (the sweeper makes that permanent after the grace period), and with a
//! fresh `finalizing_at` lock it is being finalized and must not change.

use chrono::NaiveDateTime;

use super::status::{FileStatus, SessionStatus};

/// What a request wants to do with a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAction {
    /// §4.8: always allowed to the owner.
    Read,
    /// §4.2/§4.3.
    RegisterFile,
    /// §4.4 and the presigned part URLs of §4.12.
    UploadParts,
    /// §4.6.
    CompleteFile,
    /// §4.7 (a finalized session replays before this is asked).
    Finalize,
    /// §4.9: active → cancelled.
    Cancel,
    /// §4.10.
    AbortFile,
    /// §4.11.
    Extend,
    /// §4.13: active and long expired → expired.
    Sweep,
}

impl SessionAction {
    /// The row statuses the action's guarded `UPDATE` may start from.
    pub const fn from_statuses(self) -> &'static [SessionStatus] {
        use SessionStatus::*;
        match self {
            SessionAction::Read => &[Active, Completed, Expired, Cancelled],
            _ => &[Active],
        }
    }
}

/// Why an action is refused. Each route turns it into its contract's answer
/// (`services::permits::refusal_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Finalized into a MOC: 409 (its objects belong to the MOC).
    Finalized,
    /// A fresh finalize lock is held: 409.
    Finalizing,
    /// Past `expires_at`, or swept: 410.
    Expired,
    /// Cancelled by its owner: 409.
    Cancelled,
    /// Only the sweeper asks this: the session has not expired yet.
    Live,
}

/// What the permission says about a cancel that has nothing left to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Go ahead with the transition.
    Proceed,
    /// Already in the state the action leads to (a repeated cancel): answer
    /// success, but only finish any storage cleanup left behind.
    AlreadyDone,
}

/// A session as the lifecycle sees it at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionState {
    pub status: SessionStatus,
    /// `expires_at <= now`.
    pub past_expiry: bool,
    /// `finalized_at` is set (the row may say `completed` or, for rows of the
    /// old service, still `active`).
    pub finalized: bool,
    /// `finalizing_at` is set and younger than `FINALIZE_LOCK_TTL_MINUTES`.
    pub finalizing: bool,
}

impl SessionState {
    pub fn new(
        status: SessionStatus,
        expires_at: NaiveDateTime,
        finalized_at: Option<NaiveDateTime>,
        finalizing_at: Option<NaiveDateTime>,
        now: NaiveDateTime,
        lock_ttl: std::time::Duration,
    ) -> Self {
        let lock_ttl = chrono::Duration::from_std(lock_ttl).unwrap_or(chrono::Duration::MAX);
        Self {
            status,
            past_expiry: expires_at <= now,
            finalized: finalized_at.is_some(),
            finalizing: finalizing_at.is_some_and(|at| now - at < lock_ttl),
        }
    }

    /// The status a client is shown (§4.8): an active session past its
    /// expiry reads as `expired` before the sweeper has made it so.
    pub fn visible_status(&self) -> SessionStatus {
        match self.status {
            _ if self.finalized => SessionStatus::Completed,
            SessionStatus::Active if self.past_expiry => SessionStatus::Expired,
            status => status,
        }
    }

    /// Whether `action` may happen now, and why not.
    pub fn permits(&self, action: SessionAction) -> Result<Permit, Refusal> {
        use SessionAction::*;
        if action == Read {
            return Ok(Permit::Proceed);
        }
        let terminal = if self.finalized {
            Some(Refusal::Finalized)
        } else {
            match self.status {
                SessionStatus::Active => None,
                SessionStatus::Completed => Some(Refusal::Finalized),
                SessionStatus::Expired => Some(Refusal::Expired),
                SessionStatus::Cancelled => Some(Refusal::Cancelled),
            }
        };
        match (action, terminal) {
            // Repeating a cancel succeeds; so does cancelling a session the
            // sweeper already expired: either way nothing of it is left.
            (Cancel, Some(Refusal::Cancelled | Refusal::Expired)) => Ok(Permit::AlreadyDone),
            (_, Some(refusal)) => Err(refusal),
            // A finalize in flight reads the files and verifies the objects:
            // nothing may be removed or moved under it. (A second finalize
            // is let through: the lock itself decides, and it waits.)
            (Cancel | AbortFile | Extend, None) if self.finalizing => Err(Refusal::Finalizing),
            // An owner may cancel an expired session to release it at once;
            // the sweeper would otherwise do it after the grace period.
            (Cancel, None) => Ok(Permit::Proceed),
            (Sweep, None) if !self.past_expiry => Err(Refusal::Live),
            (Sweep, None) if self.finalizing => Err(Refusal::Finalizing),
            (Sweep, None) => Ok(Permit::Proceed),
            (_, None) if self.past_expiry => Err(Refusal::Expired),
            (_, None) => Ok(Permit::Proceed),
        }
    }
}

impl FileStatus {
    /// Whether the file still has an open S3 multipart upload (a completed
    /// one was consumed by CompleteMultipartUpload).
    pub fn has_open_upload(self) -> bool {
        self != FileStatus::Completed
    }

    pub fn permits(self, action: FileAction) -> Result<Permit, FileRefusal> {
        match (action, self) {
            (FileAction::Abort, _) => Ok(Permit::Proceed),
            (FileAction::Complete, FileStatus::Completed) => Ok(Permit::AlreadyDone),
            (
                FileAction::UploadPart | FileAction::PresignParts | FileAction::Reregister,
                FileStatus::Completed,
            ) => Err(FileRefusal::Completed),
            (_, FileStatus::Pending | FileStatus::Uploading) => Ok(Permit::Proceed),
        }
    }

    /// The status after a part was recorded: pending → uploading.
    pub fn after_part(self) -> Self {
        match self {
            FileStatus::Pending => FileStatus::Uploading,
            other => other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAction {
    /// §4.4: pending/uploading → uploading.
    UploadPart,
    /// §4.12 and re-registration's fresh URLs.
    PresignParts,
    /// §4.2 re-registration.
    Reregister,
    /// §4.6: pending/uploading → completed; completed answers idempotently.
    Complete,
    /// §4.10: any → (row deleted).
    Abort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRefusal {
    /// A completed file takes no more parts: 409.
    Completed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(minutes: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + minutes * 60, 0)
            .unwrap()
            .naive_utc()
    }

    const TTL: Duration = Duration::from_secs(300);

    fn state(status: &str, expires_in: i64, finalizing_ago: Option<i64>) -> SessionState {
        SessionState::new(
            SessionStatus::parse(status),
            at(expires_in),
            None,
            finalizing_ago.map(|ago| at(-ago)),
            at(0),
            TTL,
        )
    }

    const MUTATIONS: [SessionAction; 7] = [
        SessionAction::RegisterFile,
        SessionAction::UploadParts,
        SessionAction::CompleteFile,
        SessionAction::Finalize,
        SessionAction::AbortFile,
        SessionAction::Extend,
        SessionAction::Cancel,
    ];

    #[test]
    fn an_active_live_session_allows_every_user_action_but_not_the_sweep() {
        let live = state("active", 10, None);
        for action in MUTATIONS {
            assert_eq!(live.permits(action), Ok(Permit::Proceed), "{action:?}");
        }
        assert_eq!(live.permits(SessionAction::Sweep), Err(Refusal::Live));
        assert_eq!(live.visible_status(), SessionStatus::Active);
    }

    #[test]
    fn past_expiry_everything_is_gone_except_read_cancel_and_sweep() {
        let expired = state("active", -1, None);
        assert_eq!(expired.visible_status(), SessionStatus::Expired);
        for action in MUTATIONS
            .into_iter()
            .filter(|a| *a != SessionAction::Cancel)
        {
            assert_eq!(expired.permits(action), Err(Refusal::Expired), "{action:?}");
        }
        assert_eq!(expired.permits(SessionAction::Cancel), Ok(Permit::Proceed));
        assert_eq!(expired.permits(SessionAction::Sweep), Ok(Permit::Proceed));
        assert_eq!(expired.permits(SessionAction::Read), Ok(Permit::Proceed));
    }

    #[test]
    fn a_fresh_finalize_lock_freezes_the_session_and_a_stale_one_does_not() {
        let finalizing = state("active", 10, Some(1));
        for action in [
            SessionAction::Cancel,
            SessionAction::AbortFile,
            SessionAction::Extend,
        ] {
            assert_eq!(
                finalizing.permits(action),
                Err(Refusal::Finalizing),
                "{action:?}"
            );
        }
        // The finalize lock arbitrates between finalizes itself.
        assert_eq!(
            finalizing.permits(SessionAction::Finalize),
            Ok(Permit::Proceed)
        );
        let expired_finalizing = state("active", -90, Some(1));
        assert_eq!(
            expired_finalizing.permits(SessionAction::Sweep),
            Err(Refusal::Finalizing)
        );
        let stale = state("active", 10, Some(6));
        assert_eq!(stale.permits(SessionAction::Cancel), Ok(Permit::Proceed));
    }

    #[test]
    fn finalized_sessions_are_never_changed() {
        let by_status = state("completed", 10, None);
        let legacy = SessionState::new(
            SessionStatus::Active,
            at(-100),
            Some(at(-200)),
            None,
            at(0),
            TTL,
        );
        for session in [by_status, legacy] {
            assert_eq!(session.visible_status(), SessionStatus::Completed);
            for action in MUTATIONS.into_iter().chain([SessionAction::Sweep]) {
                assert_eq!(
                    session.permits(action),
                    Err(Refusal::Finalized),
                    "{action:?}"
                );
            }
        }
    }

    #[test]
    fn cancel_is_idempotent_and_cancelled_or_swept_sessions_refuse_the_rest() {
        for (status, refusal) in [
            ("cancelled", Refusal::Cancelled),
            ("expired", Refusal::Expired),
        ] {
            let session = state(status, 10, None);
            assert_eq!(session.visible_status(), SessionStatus::parse(status));
            assert_eq!(
                session.permits(SessionAction::Cancel),
                Ok(Permit::AlreadyDone)
            );
            for action in [
                SessionAction::RegisterFile,
                SessionAction::UploadParts,
                SessionAction::Extend,
                SessionAction::AbortFile,
                SessionAction::Sweep,
            ] {
                assert_eq!(session.permits(action), Err(refusal), "{status} {action:?}");
            }
        }
    }

    #[test]
    fn guarded_updates_start_from_active_only() {
        for action in MUTATIONS.into_iter().chain([SessionAction::Sweep]) {
            assert_eq!(
                action.from_statuses(),
                [SessionStatus::Active],
                "{action:?}"
            );
        }
    }

    #[test]
    fn file_transitions() {
        use FileAction::*;
        for status in [FileStatus::Pending, FileStatus::Uploading] {
            for action in [UploadPart, PresignParts, Reregister, Complete, Abort] {
                assert_eq!(status.permits(action), Ok(Permit::Proceed));
            }
            assert!(status.has_open_upload());
        }
        let done = FileStatus::Completed;
        assert_eq!(done.permits(Complete), Ok(Permit::AlreadyDone));
        assert_eq!(done.permits(Abort), Ok(Permit::Proceed));
        for action in [UploadPart, PresignParts, Reregister] {
            assert_eq!(done.permits(action), Err(FileRefusal::Completed));
        }
        assert!(!done.has_open_upload());
        assert_eq!(FileStatus::Pending.after_part(), FileStatus::Uploading);
        assert_eq!(FileStatus::parse("failed"), FileStatus::Uploading);
    }
}
