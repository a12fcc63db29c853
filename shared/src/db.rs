//! Postgres access: one small pool per function instance, and the only way
//! the services reach it.
//!
//! Production connects through a transaction-mode pooler (Vercel Postgres /
//! Neon, Supabase's pooler, PgBouncer), which hands a server connection to a
//! client only until the transaction ends. So (see
//! `docs/adr/0002-transaction-pooler.md`):
//!
//! - every statement runs **unnamed** (`persistent = false`): a named
//!   prepared statement would stay on a server connection that the next
//!   client then shares (`prepared statement "sqlx_s_1" already exists`).
//!   sqlx's `statement_cache_capacity(0)` alone does not do this: it still
//!   names each statement and never closes it;
//! - every statement runs **inside an explicit transaction**: sqlx parses an
//!   unnamed statement and syncs before it binds and executes, and outside a
//!   transaction a pooler may hand the second half to another server
//!   connection;
//! - no session state: no advisory locks, no `SET` outside a transaction.
//!
//! [`Db`] and [`Tx`] enforce the first two for every query, `query!` macros
//! included: they are the [`Executor`]s the services get, and they mark each
//! statement unnamed before handing it to the connection. A statement run on
//! `&Db` is its own transaction; [`Db::begin`] groups several.

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgQueryResult, PgRow};
use sqlx::{Describe, Either, Execute, Executor, PgConnection, Postgres};

use crate::config::Config;
use crate::tls::TrustRoots;

mod pool;

/// The schema migrations, embedded so every binary and test applies the same set.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connections per function instance. Serverless instances multiply and
/// Postgres connections do not; no request needs more than one at a time.
pub const MAX_CONNECTIONS: u32 = 5;
/// How long a request waits for a connection before answering 503
/// SERVICE_UNAVAILABLE (reason DATABASE_UNAVAILABLE): well inside the shortest `maxDuration` (10 s).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// The database of the functions, over `DATABASE_URL` (usually the pooled
/// URL). It connects lazily: building it costs nothing at cold start, and
/// the first query opens the first connection.
pub fn pool(config: &Config) -> Result<Db, sqlx::Error> {
    let options: PgConnectOptions = config.database_url.parse()?;
    Ok(Db::lazy(trusting(
        options,
        &config.database_url,
        &config.trust,
    )))
}

/// `options` verifying the server (under `sslmode=verify-ca`/`verify-full`)
/// against the compiled-in roots plus `SSL_CERT_FILE`'s (`crate::tls`):
/// sqlx adds a given root certificate to its compiled-in ones. A root
/// certificate the URL (`sslrootcert=`) or `PGSSLROOTCERT` names wins.
pub fn trusting(options: PgConnectOptions, url: &str, trust: &TrustRoots) -> PgConnectOptions {
    let named = url.contains("sslrootcert=") || std::env::var_os("PGSSLROOTCERT").is_some();
    match trust.extra_pem() {
        Some(pem) if !named => options.ssl_root_cert_from_pem(pem.to_vec()),
        _ => options,
    }
}

/// What every connection of the functions is opened with.
///
/// - No statement cache: nothing is prepared under a name anyway ([`Tx`]).
/// - No `extra_float_digits` startup parameter: PgBouncer refuses unknown
///   startup parameters unless told to ignore them, and no column here is a
///   float.
pub fn connection_options(options: PgConnectOptions) -> PgConnectOptions {
    options.statement_cache_capacity(0).extra_float_digits(None)
}

/// The instance's database. An [`Executor`]: each statement run on it is a
/// transaction of its own (BEGIN, the unnamed statement, COMMIT).
///
/// Its connections are this module's own pool (`db/pool.rs` says why not
/// sqlx's): no ping when a connection comes back, and a connection is idle
/// again as soon as its transaction ends, so a request's transactions run
/// one after another on one connection.
#[derive(Clone)]
pub struct Db {
    pool: std::sync::Arc<pool::Pool>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("leased", &self.pool.leased())
            .field("idle", &self.pool.idle())
            .finish()
    }
}

impl Db {
    /// The production settings over any connect options (tests point them
    /// at a pooler): [`MAX_CONNECTIONS`], none opened yet.
    pub fn lazy(options: PgConnectOptions) -> Self {
        Self::with_max_connections(options, MAX_CONNECTIONS)
    }

    pub fn with_max_connections(options: PgConnectOptions, max_connections: u32) -> Self {
        let pool = pool::Pool::new(connection_options(options), max_connections);
        Self {
            pool: std::sync::Arc::new(pool),
        }
    }

    /// Connections in a transaction right now, and idle ones kept open.
    pub fn connections(&self) -> (usize, usize) {
        (self.pool.leased(), self.pool.idle())
    }

    /// Begins a transaction; statements run on `&mut Tx` share it.
    ///
    /// A request holds at most one `Tx` and acquires nothing else while it
    /// does: with every connection held by a transaction that waits for
    /// another, the instance would stall until the acquire timeout.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        self.begin_with("BEGIN").await
    }

    /// [`Db::begin`] with its own BEGIN statement, e.g. to set the isolation
    /// level without another round trip.
    ///
    /// Waiting for a connection, opening it and its BEGIN share
    /// [`ACQUIRE_TIMEOUT`]: a transaction-mode pooler accepts the connection
    /// at once and queues the BEGIN until one of its server connections is
    /// free, so a full pooler shows up here, as a wait, and must become a
    /// 503 rather than a hang past the function's `maxDuration`. Every
    /// statement starts with a BEGIN (see the module docs), so this is the
    /// one place a pooler's queue is met.
    pub async fn begin_with(&self, statement: &'static str) -> Result<Tx, sqlx::Error> {
        match tokio::time::timeout(ACQUIRE_TIMEOUT, self.pool.begin(statement)).await {
            Ok(lease) => Ok(Tx { lease: lease? }),
            Err(_) => Err(sqlx::Error::PoolTimedOut),
        }
    }
}

/// A transaction whose statements are all unnamed. Dropped without
/// [`Tx::commit`], it rolls back.
pub struct Tx {
    lease: pool::Lease,
}

impl fmt::Debug for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tx")
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.lease.end("COMMIT").await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.lease.end("ROLLBACK").await
    }
}

/// A query with the persistence switched off: sqlx then parses it as the
/// unnamed statement, which the next Parse (or the transaction's end)
/// replaces, so nothing outlives the transaction. Works the same for
/// `sqlx::query(..)` and the `query!` macros.
struct Unnamed<E>(E);

impl<'q, E: Execute<'q, Postgres>> Execute<'q, Postgres> for Unnamed<E> {
    fn sql(&self) -> &'q str {
        self.0.sql()
    }

    fn statement(&self) -> Option<&<Postgres as sqlx::Database>::Statement<'q>> {
        self.0.statement()
    }

    fn take_arguments(&mut self) -> Result<Option<PgArguments>, BoxDynError> {
        self.0.take_arguments()
    }

    fn persistent(&self) -> bool {
        false
    }
}

/// An [`Executor`] that runs every statement unnamed: `$fetch_many` and
/// `$fetch_optional` are its two ways to run one (with `$this` the executor
/// and `$query` the statement); preparing or describing a statement, which
/// would name it, is refused.
macro_rules! unnamed_executor {
    (
        $executor:ty, |$this:ident, $query:ident|
        fetch_many: $fetch_many:block
        fetch_optional: $fetch_optional:block
    ) => {
        impl<'c> Executor<'c> for $executor {
            type Database = Postgres;

            fn fetch_many<'e, 'q: 'e, E>(
                $this,
                $query: E,
            ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
            where
                'c: 'e,
                E: 'q + Execute<'q, Postgres>,
            $fetch_many

            fn fetch_optional<'e, 'q: 'e, E>(
                $this,
                $query: E,
            ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
            where
                'c: 'e,
                E: 'q + Execute<'q, Postgres>,
            $fetch_optional

            fn prepare_with<'e, 'q: 'e>(
                self,
                _sql: &'q str,
                _parameters: &'e [sqlx::postgres::PgTypeInfo],
            ) -> BoxFuture<'e, Result<sqlx::postgres::PgStatement<'q>, sqlx::Error>>
            where
                'c: 'e,
            {
                named_statements_refused()
            }

            fn describe<'e, 'q: 'e>(
                self,
                _sql: &'q str,
            ) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
            where
                'c: 'e,
            {
                named_statements_refused()
            }
        }
    };
}

fn named_statements_refused<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T, sqlx::Error>> {
    Box::pin(async {
        Err(sqlx::Error::Configuration(
            "named prepared statements are not used: they would outlive the transaction behind a transaction-mode pooler".into(),
        ))
    })
}

unnamed_executor! {
    &'c mut Tx, |self, query|
    fetch_many: {
        let connection: &'c mut PgConnection = self.lease.connection();
        connection.fetch_many(Unnamed(query))
    }
    fetch_optional: {
        let connection: &'c mut PgConnection = self.lease.connection();
        connection.fetch_optional(Unnamed(query))
    }
}

// One statement in a transaction of its own. Its results are collected
// before COMMIT (they are small here), so the connection is back in the pool
// before the caller looks at them.
unnamed_executor! {
    &'c Db, |self, query|
    fetch_many: {
        futures::stream::once(async move {
            let mut tx = self.begin().await?;
            let results: Vec<_> = (&mut tx).fetch_many(query).try_collect().await?;
            tx.commit().await?;
            let rows = results.into_iter().map(Ok::<_, sqlx::Error>);
            Ok::<_, sqlx::Error>(futures::stream::iter(rows))
        })
        .try_flatten()
        .boxed()
    }
    fetch_optional: {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let row = (&mut tx).fetch_optional(query).await?;
            tx.commit().await?;
            Ok(row)
        })
    }
}

/// Postgres SQLSTATE of a database error, if any.
pub fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
}

/// The constraint a database error names, if any.
pub fn constraint(error: &sqlx::Error) -> Option<&str> {
    error.as_database_error().and_then(|e| e.constraint())
}

/// Whether an error means the database (or the pooler in front of it) could
/// not serve the request right now, rather than a bug: the client should
/// retry. Besides the pool's own timeouts and I/O errors, these are the
/// SQLSTATEs of a server or pooler that refuses or drops connections
/// (class 08, 53 "insufficient resources", 57P01-57P03 shutdown and
/// "cannot connect now"); PgBouncer answers a full pool or an unreachable
/// server with 08P01 and a message saying so.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(e) => e.code().is_some_and(|code| {
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

pub const UNIQUE_VIOLATION: &str = "23505";
pub const SERIALIZATION_FAILURE: &str = "40001";
pub const DEADLOCK_DETECTED: &str = "40P01";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_carry_no_startup_parameter_a_pooler_refuses() {
        let options = connection_options("postgres://u@h/db".parse().unwrap());
        let debug = format!("{options:?}");
        assert!(debug.contains("extra_float_digits: None"), "{debug}");
        assert!(debug.contains("statement_cache_capacity: 0"), "{debug}");
    }

    #[test]
    fn refused_and_dropped_connections_are_unavailable_not_bugs() {
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        ))));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    }
}
