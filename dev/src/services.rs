//! The local services the dev server and the tests need: Postgres and Redis
//! are started when they are down (as DEVELOPERS.md describes), and the
//! development database is created when missing.

use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::net::TcpStream;

use moc_shared::box_error::BoxError;

async fn reachable(addr: &str) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Makes sure a local service answers on `addr`, starting it with `start`
/// (a shell command) when it does not.
pub async fn ensure_running(name: &str, addr: &str, start: &str) -> Result<(), BoxError> {
    if reachable(addr).await {
        return Ok(());
    }
    eprintln!("{name} is not answering on {addr}; starting it: {start}");
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(start)
        .status()
        .await?;
    for _ in 0..40 {
        if reachable(addr).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!(
        "{name} is not reachable on {addr} (start command exited with {status}). Start it yourself with: {start}"
    )
    .into())
}

pub const START_POSTGRES: &str =
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";
pub const START_REDIS: &str =
    "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no";

/// Starts local Postgres and Redis when the URLs point at this machine.
pub async fn ensure_local_services(
    database_url: &str,
    redis_url: Option<&str>,
) -> Result<(), BoxError> {
    let options: PgConnectOptions = database_url.parse()?;
    if is_local(options.get_host()) {
        ensure_running(
            "PostgreSQL",
            &format!("127.0.0.1:{}", options.get_port()),
            START_POSTGRES,
        )
        .await?;
    }
    if let Some(url) = redis_url
        && (url.contains("127.0.0.1") || url.contains("localhost"))
    {
        ensure_running("Redis", "127.0.0.1:6379", START_REDIS).await?;
    }
    Ok(())
}

fn is_local(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "::1") || host.starts_with('/')
}

/// Creates the database named in `database_url` when it does not exist.
pub async fn ensure_database(database_url: &str) -> Result<(), BoxError> {
    let options: PgConnectOptions = database_url.parse()?;
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres")).await?;
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
        name
    )
    .fetch_one(&mut admin)
    .await?;
    if !exists {
        // An identifier cannot be a parameter: DDL with the name quoted.
        let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        sqlx::raw_sql(&create).execute(&mut admin).await?;
        eprintln!("created database {name}");
    }
    Ok(())
}
