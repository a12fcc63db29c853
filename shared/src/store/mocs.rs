//! `moc_instructions` and `moc_files`: the MOC a finalized session becomes.

use chrono::NaiveDateTime;
use serde_json::Value;
use uuid::Uuid;

use super::Executor;
use crate::db::Tx;

/// The unique indexes a MOC insert can hit: a title, or a slug, the user
/// already has.
pub const UNIQUE_TITLE_CONSTRAINT: &str = "moc_instructions_user_id_title_key";
pub const UNIQUE_SLUG_CONSTRAINT: &str = "moc_instructions_user_id_slug_key";

/// The user's slugs that start with `prefix`.
pub async fn slugs_like(
    db: impl Executor,
    user_id: &str,
    prefix: &str,
) -> crate::db::Result<Vec<Option<String>>> {
    query_scalar!(
        "SELECT slug FROM moc_instructions WHERE user_id = $1 AND slug LIKE $2 || '%'",
        user_id,
        prefix,
    )
    .fetch_all(db)
    .await
}

/// A MOC being finalized: private, added and last updated by its owner.
pub struct NewMoc<'a> {
    pub id: Uuid,
    pub user_id: &'a str,
    pub title: &'a str,
    pub description: Option<&'a str>,
    pub slug: &'a str,
    pub theme: Option<&'a str>,
    pub tags: &'a [String],
    pub created_at: NaiveDateTime,
}

pub async fn insert(tx: &Tx, moc: &NewMoc<'_>) -> crate::db::Result<()> {
    query!(
        "INSERT INTO moc_instructions
            (id, user_id, title, description, type, slug, theme, tags, status, visibility,
             created_at, updated_at, finalized_at, added_by_user_id, last_updated_by_user_id)
         VALUES ($1, $2, $3, $4, 'moc', $5, $6, $7, 'private', 'private', $8, $8, $8, $2, $2)",
        moc.id,
        moc.user_id,
        moc.title,
        moc.description,
        moc.slug,
        moc.theme,
        Value::from(moc.tags.to_vec()),
        moc.created_at,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// One file of a MOC.
pub struct NewMocFile<'a> {
    pub moc_id: Uuid,
    pub file_type: &'a str,
    pub file_url: Option<&'a str>,
    pub original_filename: &'a str,
    pub mime_type: &'a str,
    pub created_at: NaiveDateTime,
    /// The declared full-object CRC32C, and whether finalize found it stored.
    pub crc32c: Option<&'a str>,
    pub checksum_verified: bool,
}

pub async fn insert_file(tx: &Tx, file: &NewMocFile<'_>) -> crate::db::Result<()> {
    query!(
        "INSERT INTO moc_files (id, moc_id, file_type, file_url, original_filename, mime_type,
                                created_at, updated_at, crc32c, checksum_verified)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)",
        Uuid::new_v4(),
        file.moc_id,
        file.file_type,
        file.file_url,
        file.original_filename,
        file.mime_type,
        file.created_at,
        file.crc32c,
        file.checksum_verified,
    )
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn set_thumbnail(tx: &Tx, moc_id: Uuid, thumbnail_url: &str) -> crate::db::Result<()> {
    query!(
        "UPDATE moc_instructions SET thumbnail_url = $2 WHERE id = $1",
        moc_id,
        thumbnail_url,
    )
    .execute(tx)
    .await?;
    Ok(())
}

#[derive(Debug)]
pub struct MocRow {
    pub id: Uuid,
    pub title: String,
    pub slug: Option<String>,
    pub description: Option<String>,
    pub status: String,
    pub tags: Option<Value>,
    pub theme: Option<String>,
    pub created_at: NaiveDateTime,
}

crate::from_row!(MocRow {
    id,
    title,
    slug,
    description,
    status,
    tags,
    theme,
    created_at,
});

pub async fn get(tx: &Tx, moc_id: Uuid) -> crate::db::Result<Option<MocRow>> {
    query_as!(
        MocRow,
        r#"SELECT id, title, slug, description, status, tags, theme, created_at
             FROM moc_instructions WHERE id = $1"#,
        moc_id,
    )
    .fetch_optional(tx)
    .await
}

/// The MOC's files that are not deleted, with their integrity record, in
/// stored order.
pub async fn files(tx: &Tx, moc_id: Uuid) -> crate::db::Result<Vec<MocFileRow>> {
    query_as!(
        MocFileRow,
        "SELECT file_type, file_url, original_filename, crc32c, checksum_verified FROM moc_files
          WHERE moc_id = $1 AND deleted_at IS NULL ORDER BY created_at, id",
        moc_id,
    )
    .fetch_all(tx)
    .await
}

/// One live file of a MOC.
pub struct MocFileRow {
    pub file_type: String,
    pub file_url: String,
    /// Nullable in the production schema; finalize always writes it.
    pub original_filename: Option<String>,
    pub crc32c: Option<String>,
    pub checksum_verified: bool,
}

crate::from_row!(MocFileRow {
    file_type,
    file_url,
    original_filename,
    crc32c,
    checksum_verified,
});
