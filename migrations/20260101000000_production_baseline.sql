-- The tables as the original Lambda service created them (contract §6).
-- IF NOT EXISTS: on the production database they already exist and this
-- migration changes nothing; on an empty database it creates them.
-- Timestamps are `timestamp without time zone` holding UTC, as in production.

CREATE TABLE IF NOT EXISTS moc_instructions (
    id uuid PRIMARY KEY,
    user_id text NOT NULL,
    title text NOT NULL,
    description text,
    type text NOT NULL DEFAULT 'moc',
    slug text,
    theme text,
    tags jsonb,
    thumbnail_url text,
    status text NOT NULL DEFAULT 'private',
    visibility text NOT NULL DEFAULT 'private',
    created_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    finalized_at timestamp,
    finalizing_at timestamp,
    added_by_user_id text,
    last_updated_by_user_id text
);

CREATE TABLE IF NOT EXISTS moc_files (
    id uuid PRIMARY KEY,
    moc_id uuid NOT NULL REFERENCES moc_instructions (id) ON DELETE CASCADE,
    file_type text NOT NULL,
    file_url text NOT NULL,
    original_filename text,
    mime_type text,
    created_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    deleted_at timestamp
);

CREATE TABLE IF NOT EXISTS upload_sessions (
    id uuid PRIMARY KEY,
    user_id text NOT NULL,
    status text NOT NULL DEFAULT 'active',
    part_size_bytes integer NOT NULL,
    expires_at timestamp NOT NULL,
    created_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    finalized_at timestamp,
    finalizing_at timestamp,
    moc_instruction_id uuid REFERENCES moc_instructions (id)
);

CREATE TABLE IF NOT EXISTS upload_session_files (
    id uuid PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES upload_sessions (id) ON DELETE CASCADE,
    category text NOT NULL,
    name text NOT NULL,
    size integer NOT NULL,
    mime_type text NOT NULL,
    extension text NOT NULL,
    s3_key text,
    upload_id text,
    status text NOT NULL DEFAULT 'pending',
    file_url text,
    created_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);

CREATE TABLE IF NOT EXISTS upload_session_parts (
    id uuid PRIMARY KEY,
    file_id uuid NOT NULL REFERENCES upload_session_files (id) ON DELETE CASCADE,
    part_number integer NOT NULL,
    etag text NOT NULL,
    size integer,
    status text NOT NULL DEFAULT 'uploaded',
    created_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    CONSTRAINT upload_session_parts_file_id_part_number_key UNIQUE (file_id, part_number)
);

CREATE TABLE IF NOT EXISTS user_daily_uploads (
    user_id text NOT NULL,
    day date NOT NULL,
    count integer NOT NULL DEFAULT 0,
    updated_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    CONSTRAINT user_daily_uploads_user_id_day_key UNIQUE (user_id, day)
);
