-- §4.9 / §4.13: cancel and the expiry sweeper first claim a session (its new
-- status plus this timestamp, committed), then talk to S3 without holding a
-- transaction, then delete the file rows and clear the claim. A claim older
-- than the sweeper's lease belongs to a run that died; the next run takes
-- the leftover over. Additive only.
ALTER TABLE upload_sessions ADD COLUMN IF NOT EXISTS cleanup_claimed_at timestamp;

-- The orphan pass asks "does any row refer to this upload ID?".
CREATE INDEX IF NOT EXISTS upload_session_files_upload_id_idx
    ON upload_session_files (upload_id);
