-- The full small-file flow's transactions; `run` also sends each with one Sync (pgbench's pipeline).
-- New IDs for this file (pgbench variables cannot hold a uuid otherwise).
SELECT gen_random_uuid() AS sid, gen_random_uuid() AS fid, gen_random_uuid() AS uid,
       '{' || gen_random_uuid() || '}' AS pids \gset
BEGIN;
-- POST session: store::quotas::insert_session_counted
WITH counted AS (
   INSERT INTO user_daily_uploads (user_id, day, count, updated_at)
   VALUES (:user, :day, 1, :ts)
   ON CONFLICT (user_id, day) DO UPDATE
      SET count = user_daily_uploads.count + 1, updated_at = :ts
    WHERE user_daily_uploads.count < 1000000000 OR :f
   RETURNING count
), created AS (
   INSERT INTO upload_sessions
       (id, user_id, status, part_size_bytes, expires_at, created_at, updated_at, metadata)
   SELECT :sid, :user, 'active', 5242880, :ts, :ts, :ts, :meta FROM counted
)
SELECT count FROM counted;
COMMIT;
BEGIN;
-- POST register: store::sessions::lock_owned
SELECT id, user_id, status, part_size_bytes, expires_at, created_at, finalized_at,
       finalizing_at, moc_instruction_id, metadata
  FROM upload_sessions WHERE id = :sid AND user_id = :user FOR NO KEY UPDATE;
-- POST register: store::files::check_category
SELECT (SELECT id FROM upload_session_files
         WHERE session_id = :sid AND category = 'instruction' AND name = 'manual.pdf') AS existing,
       (SELECT count(*) FROM upload_session_files
         WHERE session_id = :sid AND category = 'instruction') AS registered;
-- POST register: store::files::insert_pending
INSERT INTO upload_session_files
    (id, session_id, category, name, size, mime_type, extension, s3_key, upload_id,
     crc32c, status, created_at, updated_at)
VALUES (:fid, :sid, 'instruction', 'manual.pdf', 1024, 'application/pdf', 'pdf', :key, :uid,
        NULL, 'pending', :ts, :ts)
RETURNING id, session_id, category, name, size, mime_type, extension, s3_key, upload_id,
          status, file_url, crc32c, checksum_verified;
COMMIT;
BEGIN;
-- POST complete: store::files::owned_session_and_locked_file
SELECT s.id, s.user_id, s.status, s.part_size_bytes, s.expires_at, s.created_at,
       s.finalized_at, s.finalizing_at, s.moc_instruction_id, s.metadata,
       f.id AS f_id, f.session_id AS f_session_id, f.category AS f_category,
       f.name AS f_name, f.size AS f_size, f.mime_type AS f_mime_type,
       f.extension AS f_extension, f.s3_key AS f_s3_key, f.upload_id AS f_upload_id,
       f.status AS f_status, f.file_url AS f_file_url, f.crc32c AS f_crc32c,
       f.checksum_verified AS f_checksum_verified
  FROM upload_sessions s
  LEFT JOIN LATERAL (
       SELECT * FROM upload_session_files
        WHERE id = :fid AND session_id = s.id FOR NO KEY UPDATE) f ON true
 WHERE s.id = :sid AND s.user_id = :user;
-- POST complete: store::parts::record_listed_and_complete
WITH recorded AS (
   INSERT INTO upload_session_parts
       (id, session_id, file_id, part_number, etag, size, status, uploaded_at, created_at)
   SELECT p.id, :sid, :fid, p.n, p.etag, NULL, 'uploaded', :ts, :ts
     FROM UNNEST(:pids::uuid[], '{1}'::int[],
                 '{"\"91a76c7c832a1bc8f3eabc4a0bdb0ad0\""}'::text[]) AS p(id, n, etag)
   ON CONFLICT (file_id, part_number) DO UPDATE
      SET etag = EXCLUDED.etag, size = NULL, status = 'uploaded',
          uploaded_at = EXCLUDED.uploaded_at, session_id = EXCLUDED.session_id
    WHERE upload_session_parts.etag IS DISTINCT FROM EXCLUDED.etag
       OR upload_session_parts.session_id IS NULL
)
UPDATE upload_session_files SET status = 'completed', file_url = :url, updated_at = :ts
 WHERE id = :fid AND status <> 'completed';
COMMIT;
