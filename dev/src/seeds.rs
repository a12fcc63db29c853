//! Applies `seeds/dev.sql`, then creates the S3 state its rows refer to in
//! the configured (normally the embedded) S3, so that every seeded ID serves
//! its check: completed files have real objects, and the resume file has a
//! real multipart upload with part 1 in it.

use bytes::Bytes;
use moc_shared::AppState;
use moc_shared::auth::User;
use moc_shared::box_error::BoxError;
use moc_shared::domain::PartNumber;
use sqlx::PgPool;
use uuid::Uuid;

const SEED_SQL: &str = include_str!("../../seeds/dev.sql");
const DEV_USER: &str = "dev-user-00000000-0000-0000-0000-000000000001";
const COMPLETED_FILE: Uuid = Uuid::from_u128(0xcccccccc_cccc_cccc_cccc_cccccccccccc);
const STALE_LOCK_FILE: Uuid = Uuid::from_u128(0x44444444_4444_4444_4444_000000000001);
const RESUME_SESSION: Uuid = Uuid::from_u128(0x33333333_3333_3333_3333_333333333333);
const RESUME_FILE: Uuid = Uuid::from_u128(0xffffffff_ffff_ffff_ffff_ffffffffffff);
const MIB: usize = 1024 * 1024;

/// A small file that passes the PDF signature check.
pub fn seed_pdf(len: usize) -> Bytes {
    let mut bytes = b"%PDF-1.4\n% moc-uploads seed\n".to_vec();
    bytes.resize(len.max(bytes.len()), b'.');
    Bytes::from(bytes)
}

/// `direct` is a direct (unpooled) connection: the seed script is a
/// multi-statement transaction of its own.
pub async fn seed(state: &AppState, direct: &PgPool) -> Result<(), BoxError> {
    sqlx::raw_sql(SEED_SQL).execute(direct).await?;
    for file_id in [COMPLETED_FILE, STALE_LOCK_FILE] {
        store_completed(state, direct, file_id, seed_pdf(4096)).await?;
    }
    start_resume_upload(state, direct).await?;
    Ok(())
}

async fn key_of(direct: &PgPool, file_id: Uuid) -> Result<(String, String), BoxError> {
    let row = sqlx::query!(
        r#"SELECT s3_key AS "s3_key!", mime_type FROM upload_session_files WHERE id = $1"#,
        file_id
    )
    .fetch_one(direct)
    .await?;
    Ok((row.s3_key, row.mime_type))
}

/// A one-part multipart upload, completed: what a finished upload leaves.
async fn store_completed(
    state: &AppState,
    direct: &PgPool,
    file_id: Uuid,
    body: Bytes,
) -> Result<(), BoxError> {
    let (key, mime_type) = key_of(direct, file_id).await?;
    let s3 = state.s3();
    let upload_id = s3.create_multipart_upload(&key, &mime_type, false).await?;
    let part = PartNumber::new(1).expect("1 is a part number");
    let len = body.len();
    let etag = s3.upload_part(&key, &upload_id, part, body, None).await?;
    s3.complete_multipart_upload(&key, &upload_id, &[(part, etag)], None)
        .await?;
    let file_url = format!("{}/{key}", state.config().s3.public_file_base_url);
    sqlx::query!(
        "UPDATE upload_session_files SET size = $2, upload_id = $3, file_url = $4 WHERE id = $1",
        file_id,
        i32::try_from(len)?,
        upload_id,
        file_url
    )
    .execute(direct)
    .await?;
    Ok(())
}

/// The 10 MiB resume file: an open multipart upload holding part 1 (5 MiB).
async fn start_resume_upload(state: &AppState, direct: &PgPool) -> Result<(), BoxError> {
    let (key, mime_type) = key_of(direct, RESUME_FILE).await?;
    let s3 = state.s3();
    let upload_id = s3.create_multipart_upload(&key, &mime_type, false).await?;
    let part = PartNumber::new(1).expect("1 is a part number");
    s3.upload_part(&key, &upload_id, part, seed_pdf(5 * MIB), None)
        .await?;
    sqlx::query!(
        "UPDATE upload_session_files SET upload_id = $2 WHERE id = $1",
        RESUME_FILE,
        upload_id
    )
    .execute(direct)
    .await?;
    // Listing the parts reconciles them into upload_session_parts, exactly as
    // a resuming client's first call would.
    let dev_user = User {
        id: DEV_USER.to_owned(),
        is_admin: false,
    };
    moc_shared::services::parts::list(state, &dev_user, RESUME_SESSION, RESUME_FILE).await?;
    Ok(())
}
