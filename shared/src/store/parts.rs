//! `upload_session_parts`: the parts recorded for each file. S3 is the
//! truth; these rows are what resume (§4.5) and the session status (§4.8)
//! show.

use chrono::NaiveDateTime;
use uuid::Uuid;

use super::Executor;
use crate::db::Tx;
use crate::domain::{FileStatus, PartNumber};

/// One part to record, as S3 answered for it.
#[derive(Debug, Clone)]
pub struct NewPart<'a> {
    pub number: PartNumber,
    pub etag: &'a str,
    pub size: i32,
    pub uploaded_at: NaiveDateTime,
}

/// Records parts of a file as S3 listed them, in one statement, inserting
/// each or overwriting it only when S3 holds something else (ETag or size)
/// or the row lacks its session: a reconciliation rewrites nothing that is
/// already true.
pub async fn record(
    db: impl Executor,
    session_id: Uuid,
    file_id: Uuid,
    parts: &[NewPart<'_>],
    now: NaiveDateTime,
) -> crate::db::Result<()> {
    let ids: Vec<Uuid> = parts.iter().map(|_| Uuid::new_v4()).collect();
    let numbers: Vec<i32> = parts.iter().map(|p| p.number.as_i32()).collect();
    let etags: Vec<String> = parts.iter().map(|p| p.etag.to_owned()).collect();
    let sizes: Vec<i32> = parts.iter().map(|p| p.size).collect();
    let uploaded: Vec<NaiveDateTime> = parts.iter().map(|p| p.uploaded_at).collect();
    query!(
        "INSERT INTO upload_session_parts
            (id, session_id, file_id, part_number, etag, size, status, uploaded_at, created_at)
         SELECT p.id, $1, $2, p.n, p.etag, p.size, 'uploaded', p.at, $8
           FROM UNNEST($3::uuid[], $4::int[], $5::text[], $6::int[], $7::timestamp[])
                AS p(id, n, etag, size, at)
         ON CONFLICT (file_id, part_number) DO UPDATE
            SET etag = EXCLUDED.etag, size = EXCLUDED.size, status = 'uploaded',
                uploaded_at = EXCLUDED.uploaded_at, session_id = EXCLUDED.session_id
          WHERE upload_session_parts.etag IS DISTINCT FROM EXCLUDED.etag
             OR upload_session_parts.size IS DISTINCT FROM EXCLUDED.size
             OR upload_session_parts.session_id IS NULL",
        session_id,
        file_id,
        &ids,
        &numbers,
        etags.as_slice(),
        &sizes,
        &uploaded,
        now,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Records a part just uploaded through the API, overwriting the one
/// recorded under its number (last write wins, its `uploaded_at` is new),
/// and moves the file from `pending` to `uploading` with its first part:
/// one statement. The part's `uploaded_at` is the moment of both writes.
pub async fn record_uploaded(
    db: impl Executor,
    session_id: Uuid,
    file_id: Uuid,
    part: &NewPart<'_>,
) -> crate::db::Result<()> {
    query!(
        "WITH marked AS (
            UPDATE upload_session_files SET status = $8, updated_at = $7
             WHERE id = $2 AND status = $9
         )
         INSERT INTO upload_session_parts
            (id, session_id, file_id, part_number, etag, size, status, uploaded_at, created_at)
         VALUES ($3, $1, $2, $4, $5, $6, 'uploaded', $7, $7)
         ON CONFLICT (file_id, part_number) DO UPDATE
            SET etag = EXCLUDED.etag, size = EXCLUDED.size, status = 'uploaded',
                uploaded_at = EXCLUDED.uploaded_at, session_id = EXCLUDED.session_id",
        session_id,
        file_id,
        Uuid::new_v4(),
        part.number.as_i32(),
        part.etag,
        part.size,
        part.uploaded_at,
        FileStatus::Pending.after_part().as_str(),
        FileStatus::Pending.as_str(),
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Marks the file completed and records the parts its client listed for a
/// completion S3 accepted, in one statement: their ETags as listed, their
/// sizes unknown (NULL) unless a row already knows them under the same
/// ETag. The mark is `files::mark_completed`'s.
pub async fn record_listed_and_complete(
    tx: &Tx,
    session_id: Uuid,
    file_id: Uuid,
    listed: &[(PartNumber, String)],
    file_url: &str,
    now: NaiveDateTime,
) -> crate::db::Result<()> {
    let ids: Vec<Uuid> = listed.iter().map(|_| Uuid::new_v4()).collect();
    let numbers: Vec<i32> = listed.iter().map(|(number, _)| number.as_i32()).collect();
    let etags: Vec<String> = listed.iter().map(|(_, etag)| etag.clone()).collect();
    query!(
        "WITH recorded AS (
            INSERT INTO upload_session_parts
                (id, session_id, file_id, part_number, etag, size, status, uploaded_at, created_at)
            SELECT p.id, $1, $2, p.n, p.etag, NULL, 'uploaded', $6, $6
              FROM UNNEST($3::uuid[], $4::int[], $5::text[]) AS p(id, n, etag)
            ON CONFLICT (file_id, part_number) DO UPDATE
               SET etag = EXCLUDED.etag, size = NULL, status = 'uploaded',
                   uploaded_at = EXCLUDED.uploaded_at, session_id = EXCLUDED.session_id
             WHERE upload_session_parts.etag IS DISTINCT FROM EXCLUDED.etag
                OR upload_session_parts.session_id IS NULL
         )
         UPDATE upload_session_files SET status = 'completed', file_url = $7, updated_at = $6
          WHERE id = $2 AND status <> 'completed'",
        session_id,
        file_id,
        &ids,
        &numbers,
        etags.as_slice(),
        now,
        file_url,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// A recorded part.
#[derive(Debug, Clone)]
pub struct PartRow {
    pub part_number: i32,
    pub etag: String,
    pub size: Option<i32>,
    pub uploaded_at: NaiveDateTime,
}

crate::from_row!(PartRow {
    part_number,
    etag,
    size,
    uploaded_at,
});

/// The file's recorded parts, ascending.
pub async fn of_file(db: impl Executor, file_id: Uuid) -> crate::db::Result<Vec<PartRow>> {
    query_as!(
        PartRow,
        "SELECT part_number, etag, size, uploaded_at
           FROM upload_session_parts WHERE file_id = $1 ORDER BY part_number",
        file_id,
    )
    .fetch_all(db)
    .await
}

/// `(file_id, part_number)` of every part recorded in the sessions, by file
/// and number.
pub async fn numbers_in_sessions(
    db: impl Executor,
    session_ids: &[Uuid],
) -> crate::db::Result<Vec<(Uuid, i32)>> {
    let rows = query_as!(
        FilePartNumber,
        "SELECT p.file_id, p.part_number FROM upload_session_parts p
           JOIN upload_session_files f ON f.id = p.file_id
          WHERE f.session_id = ANY($1) ORDER BY p.file_id, p.part_number",
        session_ids,
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.file_id, r.part_number))
        .collect())
}

struct FilePartNumber {
    file_id: Uuid,
    part_number: i32,
}

crate::from_row!(FilePartNumber {
    file_id,
    part_number,
});
