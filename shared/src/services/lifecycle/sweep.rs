//! The expiry sweeper (docs/contract.md §4.13), run by Vercel Cron.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use futures::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::cleanup::release_session;
use super::lease_expired_before;
use crate::domain::SessionStatus;
use crate::error::ApiError;
use crate::s3::OpenUpload;
use crate::services::permits::lock_stale_before;
use crate::state::AppState;
use crate::store::{self, sessions::SweepCutoffs};
use crate::time;

/// The sweeper stops starting new work after this much of its 60 s budget.
const SWEEP_BUDGET: Duration = Duration::from_secs(40);
/// Sessions cleaned in parallel by one sweeper run. Each holds a database
/// connection only for single statements, never across S3 calls, so this
/// stays within the pool of 5.
const SWEEP_CONCURRENCY: usize = 4;
/// Most open uploads one run reads from ListMultipartUploads.
const ORPHAN_SCAN_LIMIT: usize = 10_000;

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub sessions_expired: u64,
    pub uploads_aborted: u64,
    pub objects_deleted: u64,
    pub orphan_uploads_aborted: u64,
    /// Sessions whose cleanup failed this run; retried once their claim
    /// goes stale.
    pub sessions_failed: u64,
    /// More sessions wait for a later run.
    pub remaining: bool,
    pub duration_ms: u64,
}

/// One run of the expiry sweeper (§4.13).
///
/// - Claims at most `SWEEP_BATCH_SIZE` sessions, oldest expiry first, with
///   `FOR UPDATE SKIP LOCKED`: overlapping runs claim disjoint sessions, and
///   the claim commits before any S3 call for those sessions, so none is
///   processed twice.
/// - Cleans them as cancel does, then aborts orphan uploads: open multipart
///   uploads under this stage's prefix, older than the grace period, that no
///   file row refers to.
/// - Never touches a finalized session: its objects belong to a MOC.
#[tracing::instrument(skip_all)]
pub async fn sweep(state: &AppState) -> Result<SweepReport, ApiError> {
    let started = Instant::now();
    let config = state.config();
    let grace = chrono::Duration::from_std(config.expired_session_grace).unwrap_or_default();
    let now = time::now();
    let mut report = SweepReport::default();

    // The orphan pass's listing needs nothing from the session pass, so the
    // two run side by side: a cold instance opens its S3 and Postgres
    // connections at once rather than one after the other. Which uploads are
    // still referenced is read after the session pass, so an upload it
    // released was listed but has no row left; aborting it again answers
    // NoSuchUpload, which counts nothing.
    let prefix = format!("{}/moc-instructions/", config.stage.as_str());
    let (sessions_pass, listed) = tokio::join!(
        expire_sessions(state, now, grace, &mut report),
        state.s3().list_open_uploads(&prefix, ORPHAN_SCAN_LIMIT),
    );
    sessions_pass?;

    if started.elapsed() < SWEEP_BUDGET {
        let orphans = match listed {
            Ok(listed) => abort_orphans(state, listed, now - grace, started).await,
            Err(error) => Err(error.into()),
        };
        match orphans {
            Ok(aborted) => report.orphan_uploads_aborted = aborted,
            Err(error) => {
                tracing::error!(%error, "sweeper could not finish the orphan upload pass");
            }
        }
    }

    let cutoffs_now = cutoffs(state, time::now(), grace);
    report.remaining = store::sessions::any_sweepable(state.db(), cutoffs_now).await?;
    report.duration_ms = time::millis(started.elapsed());
    tracing::info!(
        sessionsExpired = report.sessions_expired,
        uploadsAborted = report.uploads_aborted,
        objectsDeleted = report.objects_deleted,
        orphanUploadsAborted = report.orphan_uploads_aborted,
        sessionsFailed = report.sessions_failed,
        remaining = report.remaining,
        durationMs = report.duration_ms,
        "expiry sweep finished"
    );
    Ok(report)
}

/// Claims at most `SWEEP_BATCH_SIZE` sweepable sessions and releases them.
async fn expire_sessions(
    state: &AppState,
    now: NaiveDateTime,
    grace: chrono::Duration,
    report: &mut SweepReport,
) -> Result<(), ApiError> {
    let limit = i64::from(state.config().sweep_batch_size);
    let claimed =
        store::sessions::claim_for_sweep(state.db(), cutoffs(state, now, grace), limit, now)
            .await?;
    let expired = claimed
        .iter()
        .filter(|s| s.previous_status == SessionStatus::Active)
        .count();
    report.sessions_expired = u64::try_from(expired).unwrap_or(u64::MAX);
    clean_claimed(state, claimed.iter().map(|s| s.id).collect(), report).await;
    Ok(())
}

/// Which sessions are sweepable at `now` (`store::sessions::SweepCutoffs`).
fn cutoffs(state: &AppState, now: NaiveDateTime, grace: chrono::Duration) -> SweepCutoffs {
    SweepCutoffs {
        expired_before: now - grace,
        lock_stale_before: lock_stale_before(state, now),
        lease_expired_before: lease_expired_before(now),
    }
}

/// Releases the claimed sessions, [`SWEEP_CONCURRENCY`] at a time. A
/// session that fails is counted and left to a later run.
async fn clean_claimed(state: &AppState, ids: Vec<Uuid>, report: &mut SweepReport) {
    // Owned state per task: the stream's futures must not borrow the list.
    let mut cleanups = futures::stream::iter(ids)
        .map(|id| {
            let state = state.clone();
            async move { (id, release_session(&state, id).await) }
        })
        .buffer_unordered(SWEEP_CONCURRENCY);
    while let Some((session_id, outcome)) = cleanups.next().await {
        match outcome {
            Ok(released) => {
                report.uploads_aborted += released.uploads_aborted;
                report.objects_deleted += released.objects_deleted;
            }
            Err(error) => {
                report.sessions_failed += 1;
                tracing::error!(%session_id, %error, "sweeper could not clean a session; retried after the claim goes stale");
            }
        }
    }
}

/// Aborts the listed open uploads (this stage's prefix) started before
/// `older_than` and that no file row refers to. The age matters: a
/// registration opens its S3 upload while it checks its row, and the row
/// names it when it commits (or, S3 being slow, just after), so a young
/// unreferenced upload may be one being registered right now.
async fn abort_orphans(
    state: &AppState,
    listed: Vec<OpenUpload>,
    older_than: NaiveDateTime,
    started: Instant,
) -> Result<u64, ApiError> {
    let old: Vec<_> = listed
        .into_iter()
        .filter(|u| u.initiated.is_some_and(|at| at.naive_utc() <= older_than))
        .collect();
    if old.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = old.iter().map(|u| u.upload_id.as_str()).collect();
    let referenced: HashSet<String> = store::files::referenced_upload_ids(state.db(), &ids)
        .await?
        .into_iter()
        .collect();
    let mut aborted = 0;
    for upload in old.iter().filter(|u| !referenced.contains(&u.upload_id)) {
        if started.elapsed() >= SWEEP_BUDGET {
            break;
        }
        if state
            .s3()
            .abort_upload_if_open(&upload.key, &upload.upload_id)
            .await?
        {
            tracing::info!(key = %upload.key, upload_id = %upload.upload_id, "orphan multipart upload aborted");
            aborted += 1;
        }
    }
    Ok(aborted)
}

/// The cron call's credential (§4.13): exactly `Authorization: Bearer
/// $CRON_SECRET`. Unset secret, missing or wrong header: 403.
pub fn authorize_cron(state: &AppState, authorization: Option<&str>) -> Result<(), ApiError> {
    let forbidden = ApiError::Forbidden("This route is for the scheduled job only");
    let (Some(secret), Some(header)) = (state.config().cron_secret.as_deref(), authorization)
    else {
        return Err(forbidden);
    };
    let presented = header.strip_prefix("Bearer ").unwrap_or("");
    if constant_time_eq(presented.as_bytes(), secret.as_bytes()) {
        Ok(())
    } else {
        Err(forbidden)
    }
}

/// Compares without an early exit, so the time taken does not tell how much
/// of a guessed secret was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"secret"));
    }
}
