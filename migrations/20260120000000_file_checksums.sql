-- Issue 24: the full-object CRC32C a client declared for a file (S3's base64
-- of the 4 big-endian bytes), and whether the stored object was found to
-- carry it. A file registered without one (the old frontend) keeps NULL and
-- is never verified. Additive only.
ALTER TABLE upload_session_files ADD COLUMN IF NOT EXISTS crc32c text;
ALTER TABLE upload_session_files
    ADD COLUMN IF NOT EXISTS checksum_verified boolean NOT NULL DEFAULT false;

-- The MOC's file entries carry the same two facts, copied at finalize.
ALTER TABLE moc_files ADD COLUMN IF NOT EXISTS crc32c text;
ALTER TABLE moc_files
    ADD COLUMN IF NOT EXISTS checksum_verified boolean NOT NULL DEFAULT false;
