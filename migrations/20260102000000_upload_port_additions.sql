-- What the Rust port adds. Additive only: new columns and indexes, never a
-- rename or a retype, so the old Lambda keeps working against the same tables.

-- §4.1: the files declared at create, so register can hold later
-- registrations to them (STORY-01721 AC-16).
ALTER TABLE upload_sessions ADD COLUMN IF NOT EXISTS metadata jsonb;

-- §4.2: one file per (category, name) in a session, race-safe by construction.
CREATE UNIQUE INDEX IF NOT EXISTS upload_session_files_session_category_name_key
    ON upload_session_files (session_id, category, name);

-- STORY-01722 AC-25: parts are looked up per session and per file on resume.
ALTER TABLE upload_session_parts
    ADD COLUMN IF NOT EXISTS session_id uuid REFERENCES upload_sessions (id) ON DELETE CASCADE;
ALTER TABLE upload_session_parts
    ADD COLUMN IF NOT EXISTS uploaded_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc');
CREATE INDEX IF NOT EXISTS upload_session_parts_session_id_idx ON upload_session_parts (session_id);

-- §6: titles and slugs are unique per user; finalize turns a clash into 409.
CREATE UNIQUE INDEX IF NOT EXISTS moc_instructions_user_id_title_key
    ON moc_instructions (user_id, title);
CREATE UNIQUE INDEX IF NOT EXISTS moc_instructions_user_id_slug_key
    ON moc_instructions (user_id, slug);
CREATE UNIQUE INDEX IF NOT EXISTS moc_files_moc_id_original_filename_key
    ON moc_files (moc_id, original_filename);

-- The cleanup job (STORY-018) scans for expired active sessions.
CREATE INDEX IF NOT EXISTS upload_sessions_status_expires_at_idx
    ON upload_sessions (status, expires_at);
