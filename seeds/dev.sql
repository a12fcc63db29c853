-- Development and .http seed data (docs/contract.md §8). Deterministic IDs, and
-- idempotent: running it again puts every seeded row back in its seeded
-- state (times are relative to now). Rows that refer to S3 state (upload IDs,
-- uploaded parts, completed objects) are finished by the dev server's seeder
-- (dev/src/seeds.rs), which creates that state in the dev S3 and fills in
-- `upload_id` / `file_url` / parts below.

BEGIN;

-- The seeded sessions start over: their files, parts and any MOC a previous
-- run finalized from them go (ON DELETE CASCADE takes files and parts).
DELETE FROM moc_instructions
 WHERE id IN (SELECT moc_instruction_id FROM upload_sessions
               WHERE id IN ('44444444-4444-4444-4444-444444444444', '33333333-3333-3333-3333-333333333333',
                            'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '22222222-2222-2222-2222-222222222222'))
   AND id <> '55555555-5555-5555-5555-555555555555';
DELETE FROM upload_sessions
 WHERE id IN ('eeeeeeee-eeee-eeee-eeee-eeeeeeeeeeee', 'dddddddd-dddd-dddd-dddd-dddddddddddd',
              'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa',
              '22222222-2222-2222-2222-222222222222', '33333333-3333-3333-3333-333333333333',
              '44444444-4444-4444-4444-444444444444');
-- A fresh daily quota for the dev user.
DELETE FROM user_daily_uploads WHERE user_id = 'dev-user-00000000-0000-0000-0000-000000000001';

INSERT INTO upload_sessions (id, user_id, status, part_size_bytes, expires_at, created_at, updated_at, finalizing_at, metadata)
VALUES
  -- RF-STATE-004: active but expired an hour ago.
  ('eeeeeeee-eeee-eeee-eeee-eeeeeeeeeeee', 'dev-user-00000000-0000-0000-0000-000000000001', 'active', 5242880,
   (now() AT TIME ZONE 'utc') - interval '1 hour', (now() AT TIME ZONE 'utc') - interval '2 hours',
   (now() AT TIME ZONE 'utc') - interval '2 hours', NULL, '{"declaredFiles": {"instruction": 1}}'),
  -- RF-AUTH-002: another user's live session.
  ('dddddddd-dddd-dddd-dddd-dddddddddddd', 'other-user-99999999-9999-9999-9999-999999999999', 'active', 5242880,
   (now() AT TIME ZONE 'utc') + interval '15 minutes', now() AT TIME ZONE 'utc', now() AT TIME ZONE 'utc', NULL,
   '{"declaredFiles": {"instruction": 1}}'),
  -- EE-ERR-001: expired five minutes ago.
  ('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', 'dev-user-00000000-0000-0000-0000-000000000001', 'active', 5242880,
   (now() AT TIME ZONE 'utc') - interval '5 minutes', (now() AT TIME ZONE 'utc') - interval '35 minutes',
   now() AT TIME ZONE 'utc', NULL, '{"declaredFiles": {"instruction": 1}}'),
  -- ID-HP-001: holds the completed file cccc…
  ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', 'dev-user-00000000-0000-0000-0000-000000000001', 'active', 5242880,
   (now() AT TIME ZONE 'utc') + interval '1 day', now() AT TIME ZONE 'utc', now() AT TIME ZONE 'utc', NULL,
   '{"declaredFiles": {"instruction": 1}}'),
  -- FC-ERR-001: declared two files.
  ('22222222-2222-2222-2222-222222222222', 'dev-user-00000000-0000-0000-0000-000000000001', 'active', 5242880,
   (now() AT TIME ZONE 'utc') + interval '1 day', now() AT TIME ZONE 'utc', now() AT TIME ZONE 'utc', NULL,
   '{"declaredFiles": {"instruction": 2}}'),
  -- UR-HP-001: declared five files; resume-test.pdf has part 1 uploaded.
  ('33333333-3333-3333-3333-333333333333', 'dev-user-00000000-0000-0000-0000-000000000001', 'active', 5242880,
   (now() AT TIME ZONE 'utc') + interval '1 day', now() AT TIME ZONE 'utc', now() AT TIME ZONE 'utc', NULL,
   '{"declaredFiles": {"instruction": 5}}'),
  -- LR-HP-001: a finalize lock taken 10 minutes ago and never released.
  ('44444444-4444-4444-4444-444444444444', 'dev-user-00000000-0000-0000-0000-000000000001', 'active', 5242880,
   (now() AT TIME ZONE 'utc') + interval '1 day', (now() AT TIME ZONE 'utc') - interval '40 minutes',
   now() AT TIME ZONE 'utc', (now() AT TIME ZONE 'utc') - interval '10 minutes',
   '{"declaredFiles": {"instruction": 1}}');

-- Files; the seeder sets their S3 upload IDs, objects and URLs.
INSERT INTO upload_session_files (id, session_id, category, name, size, mime_type, extension, s3_key, status)
VALUES
  ('cccccccc-cccc-cccc-cccc-cccccccccccc', 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', 'instruction', 'completed-test.pdf',
   0, 'application/pdf', 'pdf',
   'dev/moc-instructions/dev-user-00000000-0000-0000-0000-000000000001/aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa/instruction/cccccccc-cccc-cccc-cccc-cccccccccccc.pdf',
   'completed'),
  ('ffffffff-ffff-ffff-ffff-ffffffffffff', '33333333-3333-3333-3333-333333333333', 'instruction', 'resume-test.pdf',
   10485760, 'application/pdf', 'pdf',
   'dev/moc-instructions/dev-user-00000000-0000-0000-0000-000000000001/33333333-3333-3333-3333-333333333333/instruction/ffffffff-ffff-ffff-ffff-ffffffffffff.pdf',
   'uploading'),
  ('44444444-4444-4444-4444-000000000001', '44444444-4444-4444-4444-444444444444', 'instruction', 'stale-lock.pdf',
   0, 'application/pdf', 'pdf',
   'dev/moc-instructions/dev-user-00000000-0000-0000-0000-000000000001/44444444-4444-4444-4444-444444444444/instruction/44444444-4444-4444-4444-000000000001.pdf',
   'completed');

-- SC-HP-001: the title a new MOC collides with.
INSERT INTO moc_instructions (id, user_id, title, description, type, slug, tags, status, visibility,
                              created_at, updated_at, finalized_at, added_by_user_id, last_updated_by_user_id)
VALUES ('55555555-5555-5555-5555-555555555555', 'dev-user-00000000-0000-0000-0000-000000000001',
        'Existing MOC Title', 'Seeded for SC-HP-001', 'moc', 'existing-moc-title', '[]', 'private', 'private',
        now() AT TIME ZONE 'utc', now() AT TIME ZONE 'utc', now() AT TIME ZONE 'utc',
        'dev-user-00000000-0000-0000-0000-000000000001', 'dev-user-00000000-0000-0000-0000-000000000001')
ON CONFLICT (id) DO UPDATE
   SET user_id = EXCLUDED.user_id, title = EXCLUDED.title, slug = EXCLUDED.slug, status = EXCLUDED.status;

COMMIT;
