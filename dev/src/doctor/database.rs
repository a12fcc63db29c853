//! Postgres: the pooled URL the functions use, the direct one migrations
//! use, and whether the migrations this checkout embeds are all applied.

use std::collections::HashMap;

use moc_shared::config::Config;
use moc_shared::db::MIGRATOR;
use sqlx::{Connection, PgConnection};

use super::{Check, Failure, MIGRATIONS, POSTGRES_POOLED, POSTGRES_UNPOOLED, chain, timed};
use crate::redact_url;

const POOLED_FIX: &str = "set DATABASE_URL (or POSTGRES_URL) to the pooled URL the Neon integration provisions, and check the database is up and reachable from here";
const UNPOOLED_FIX: &str = "set DATABASE_URL_UNPOOLED (or POSTGRES_URL_NON_POOLING) to the direct URL the Neon integration provisions, and check the database is up and reachable from here";
const MIGRATE_FIX: &str =
    "run `scripts/migrate ENV_FILE` (it applies the migrations over the direct URL)";

pub(super) async fn checks(config: &Config) -> Vec<Check> {
    let (pooled, unpooled, migrations) = tokio::join!(
        timed(POSTGRES_POOLED, POOLED_FIX, pooled(config)),
        timed(POSTGRES_UNPOOLED, UNPOOLED_FIX, unpooled(config)),
        timed(MIGRATIONS, MIGRATE_FIX, migrations(config)),
    );
    vec![pooled, unpooled, migrations]
}

/// One statement the way the functions send it (`moc_shared::db`: unnamed,
/// in a transaction), so a transaction-mode pooler is checked as they use it.
async fn pooled(config: &Config) -> Result<String, Failure> {
    let db = moc_shared::db::pool(config).map_err(|e| {
        Failure::new(
            format!("DATABASE_URL is not a Postgres URL: {e}"),
            POOLED_FIX,
        )
    })?;
    let version: String =
        moc_shared::db::Statement::new("SELECT current_setting('server_version')")
            .scalar()
            .fetch_one(&db)
            .await
            .map_err(|e| Failure::new(chain(&e), POOLED_FIX))?;
    Ok(format!(
        "{} answers (PostgreSQL {version})",
        redact_url(&config.database_url)
    ))
}

async fn direct(config: &Config, fix: &str) -> Result<PgConnection, Failure> {
    PgConnection::connect(&config.migration_database_url)
        .await
        .map_err(|e| Failure::new(chain(&e), fix))
}

async fn unpooled(config: &Config) -> Result<String, Failure> {
    let mut connection = direct(config, UNPOOLED_FIX).await?;
    connection
        .ping()
        .await
        .map_err(|e| Failure::new(chain(&e), UNPOOLED_FIX))?;
    let url = redact_url(&config.migration_database_url);
    Ok(if config.migration_database_url == config.database_url {
        format!(
            "{url} answers (the same URL as DATABASE_URL: fine for a direct connection; behind a pooler, migrations need the direct URL in DATABASE_URL_UNPOOLED)"
        )
    } else {
        format!("{url} answers")
    })
}

/// The applied `_sqlx_migrations` rows against the migrations embedded in
/// this checkout (`moc_shared::db::MIGRATOR`, what `scripts/migrate` runs).
async fn migrations(config: &Config) -> Result<String, Failure> {
    let mut connection = direct(config, UNPOOLED_FIX).await?;
    let applied: Vec<(i64, bool, Vec<u8>)> =
        sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations")
            .fetch_all(&mut connection)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => {
                    Failure::new("no migration was ever applied", MIGRATE_FIX)
                }
                _ => Failure::new(chain(&e), UNPOOLED_FIX),
            })?;
    compare(&applied)
}

fn compare(applied: &[(i64, bool, Vec<u8>)]) -> Result<String, Failure> {
    let applied: HashMap<i64, (bool, &[u8])> = applied
        .iter()
        .map(|(version, success, checksum)| (*version, (*success, checksum.as_slice())))
        .collect();
    let embedded: Vec<_> = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .collect();
    let mut pending = Vec::new();
    let mut changed = Vec::new();
    for migration in &embedded {
        match applied.get(&migration.version) {
            Some((true, checksum)) if *checksum == &*migration.checksum => {}
            Some((true, _)) => changed.push(migration.version),
            Some((false, _)) | None => pending.push(migration.version),
        }
    }
    if !changed.is_empty() {
        return Err(Failure::new(
            format!("applied migrations differ from this checkout's: {changed:?}"),
            "deploy from the commit that applied them; an applied migration is never edited, a change is a new migration",
        ));
    }
    if !pending.is_empty() {
        return Err(Failure::new(
            format!(
                "{} of {} migrations not applied: {pending:?}",
                pending.len(),
                embedded.len()
            ),
            MIGRATE_FIX,
        ));
    }
    let newer = applied
        .keys()
        .filter(|v| !embedded.iter().any(|m| m.version == **v))
        .count();
    Ok(match newer {
        0 => format!("all {} applied", embedded.len()),
        n => format!(
            "all {} applied, plus {n} this checkout does not know (a newer release migrated)",
            embedded.len()
        ),
    })
}
