-- Issue 25: the caller's sessions, newest first, a page at a time
-- (docs/contract.md §4.15): `WHERE user_id = $1 ORDER BY created_at DESC,
-- id DESC` after a keyset cursor. Without it every listing reads the whole
-- table. Additive only.
CREATE INDEX IF NOT EXISTS upload_sessions_user_id_created_at_idx
    ON upload_sessions (user_id, created_at DESC, id DESC);
