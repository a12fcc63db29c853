//! Postgres access: one small pool per function instance, and the only way
//! the services reach it.
//!
//! Production connects through a transaction-mode pooler (Vercel Postgres /
//! Neon, Supabase's pooler, PgBouncer), which hands a server connection to a
//! client only until the transaction ends, and every round trip to it
//! crosses availability zones. So (see `docs/adr/0002-transaction-pooler.md`
//! and `docs/adr/0011-round-trips.md`):
//!
//! - every statement is sent **whole and unnamed**: Parse (with its
//!   parameter types), Bind, Describe, Execute and Sync leave in one write
//!   and come back in one answer (tokio-postgres' `query_typed`). Nothing is
//!   prepared under a name, nothing outlives the statement's Sync, and no
//!   Describe round trip precedes it. Unless `DATABASE_STATEMENTS=named`
//!   says the pooler keeps named statements ([`Statements::Named`],
//!   `docs/adr/0013-named-statements.md`): then each is prepared once per
//!   connection and from then on sent as Bind, Execute and Sync;
//! - a transaction's **BEGIN travels with its first statement**, and
//!   statements that do not wait for each other's answers (`try_join!` on
//!   one [`Tx`]), its COMMIT included ([`Tx::committing`]), share one write:
//!   a request costs a round trip per step that needs an answer before the
//!   next, not per statement;
//! - a statement run on [`Db`] alone is its own transaction, BEGIN and
//!   COMMIT included: one round trip;
//! - BEGIN's answer arrives before its statement runs, so a pooler that
//!   queues the transaction shows up as a late BEGIN, bounded by
//!   [`ACQUIRE_TIMEOUT`] like the wait for a connection (then 503);
//! - no session state: no advisory locks, no `SET` outside a transaction.
//!
//! The statements themselves live in `crate::store`, written with
//! `store`'s `query!` macros: sqlx checks each one at compile time against
//! the schema (the `.sqlx/` offline data), and this module runs it.

mod pool;
mod statement;
mod target;

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_postgres::Row;

use crate::config::Config;

pub use statement::{FromRow, Param, Statement, column, column_prefixed};
pub use target::{DbTarget, Statements};

/// The schema migrations, embedded so every binary and test applies the same set.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connections per function instance. Serverless instances multiply and
/// Postgres connections do not; no request needs more than one at a time.
pub const MAX_CONNECTIONS: u32 = 5;
/// How long a request waits for a connection before answering 503
/// SERVICE_UNAVAILABLE (reason DATABASE_UNAVAILABLE): well inside the shortest `maxDuration` (10 s).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// What a statement can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server, the pooler or the connection to them.
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection within [`ACQUIRE_TIMEOUT`] (a full pool or pooler, or
    /// a server that does not answer).
    #[error("no database connection within {ACQUIRE_TIMEOUT:?}")]
    PoolTimedOut,
    /// `fetch_one` found no row.
    #[error("the statement returned no row")]
    RowNotFound,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The database of the functions, over `DATABASE_URL` (usually the pooled
/// URL). It connects lazily: building it costs nothing at cold start, and
/// the first query opens the first connection.
pub fn pool(config: &Config) -> Result<Db, String> {
    Ok(Db::lazy(
        DbTarget::parse(&config.database_url, &config.trust)?
            .with_statements(config.database_statements),
    ))
}

/// The instance's database. An [`Executor`]: each statement run on it is a
/// transaction of its own (BEGIN, the statement, COMMIT), in one round trip.
///
/// Its connections are this module's own pool (`db/pool.rs` says why): a
/// connection is idle again as soon as its last answer arrived, so a
/// request's transactions run one after another on one connection.
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
    /// The production settings over any target (tests point it at a
    /// pooler): [`MAX_CONNECTIONS`], none opened yet.
    pub fn lazy(target: DbTarget) -> Self {
        Self::with_max_connections(target, MAX_CONNECTIONS)
    }

    pub fn with_max_connections(target: DbTarget, max_connections: u32) -> Self {
        Self {
            pool: std::sync::Arc::new(pool::Pool::new(target, max_connections)),
        }
    }

    /// Connections leased right now, and idle ones kept open.
    pub fn connections(&self) -> (usize, usize) {
        (self.pool.leased(), self.pool.idle())
    }

    /// A connection, within [`ACQUIRE_TIMEOUT`]: waiting for a free one
    /// and opening it share the deadline, so a full pool or an unreachable
    /// server becomes a 503 rather than a hang past `maxDuration`.
    async fn lease(&self) -> Result<pool::Lease> {
        match tokio::time::timeout(ACQUIRE_TIMEOUT, self.pool.lease()).await {
            Ok(lease) => Ok(lease?),
            Err(_) => Err(Error::PoolTimedOut),
        }
    }

    /// Begins a transaction; statements run on `&Tx` share it. Nothing is
    /// sent yet: BEGIN leaves with the first statement.
    ///
    /// A request holds at most one `Tx` and leases nothing else while it
    /// does: with every connection held by a transaction that waits for
    /// another, the instance would stall until the acquire timeout.
    pub async fn begin(&self) -> Result<Tx> {
        self.begin_with("BEGIN").await
    }

    /// [`Db::begin`] for a transaction that writes only what S3 still
    /// holds (the parts of an open upload, recorded by list parts): its
    /// COMMIT does not wait for the WAL to reach disk (`synchronous_commit`
    /// off, for this transaction alone, set in BEGIN's own message). A
    /// Postgres crash right after it can lose the write, never a part: S3
    /// is the truth, and the next listing records it again.
    pub async fn begin_rederivable(&self) -> Result<Tx> {
        self.begin_with("BEGIN; SET LOCAL synchronous_commit = off")
            .await
    }

    /// [`Db::begin`] with its own BEGIN statement, e.g. to set the isolation
    /// level.
    ///
    /// A transaction-mode pooler queues a transaction until one of its
    /// server connections is free: a full pooler shows up as a late answer
    /// to BEGIN, which [`ACQUIRE_TIMEOUT`] bounds.
    pub async fn begin_with(&self, begin: &'static str) -> Result<Tx> {
        Ok(Tx {
            lease: self.lease().await?,
            begin,
            state: AtomicU8::new(NOT_BEGUN),
        })
    }
}

const NOT_BEGUN: u8 = 0;
const OPEN: u8 = 1;
const ENDED: u8 = 2;
/// BEGIN went unanswered: what was sent behind it is given up with the
/// connection.
const ABANDONED: u8 = 3;

/// A transaction. Its BEGIN goes out with its first statement; statements
/// started together (`try_join!`) share a round trip. Dropped without
/// [`Tx::commit`] (or [`Tx::committing`]), it rolls back.
pub struct Tx {
    lease: pool::Lease,
    begin: &'static str,
    state: AtomicU8,
}

impl fmt::Debug for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tx")
    }
}

impl Tx {
    /// Commits, and makes the connection idle for the request's next step.
    pub async fn commit(self) -> Result<()> {
        self.committing().await
    }

    /// COMMIT, sent in the same write as the statements started before it
    /// (`try_join!(store::a(&tx), store::b(&tx), tx.committing())`): a
    /// statement that fails aborts the transaction, and the COMMIT then
    /// rolls it back. Drop the `Tx` right after, which makes its connection
    /// idle.
    pub async fn committing(&self) -> Result<()> {
        self.end("COMMIT").await
    }

    pub async fn rollback(self) -> Result<()> {
        self.end("ROLLBACK").await
    }

    async fn end(&self, statement: &'static str) -> Result<()> {
        let ended = self
            .state
            .compare_exchange(OPEN, ENDED, Ordering::AcqRel, Ordering::Acquire);
        if ended.is_err() {
            // Nothing was sent: there is nothing to end.
            return Ok(());
        }
        self.lease.client().batch_execute(statement).await?;
        Ok(())
    }

    /// Runs `statement` in the transaction, with BEGIN ahead of it in the
    /// same write when it is the first.
    async fn run(&self, statement: Statement<'_>) -> Result<(Vec<Row>, u64)> {
        let client = self.lease.client();
        let first = self
            .state
            .compare_exchange(NOT_BEGUN, OPEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if !first {
            return self.lease.run(statement).await;
        }
        // Both are written on their first poll, in this order. BEGIN's
        // answer comes before the statement runs (before any lock wait of
        // it), so its wait is the pooler's queue: bounded like the lease.
        let begun = async {
            match tokio::time::timeout(ACQUIRE_TIMEOUT, client.batch_execute(self.begin)).await {
                Ok(begun) => Ok(begun?),
                // Neither reused nor rolled back on: the connection is
                // closed (`Drop`), so a pooler still queueing the statement
                // drops it and a server that began it rolls it back
                // (docs/adr/0011-round-trips.md).
                Err(_) => {
                    self.state.store(ABANDONED, Ordering::Release);
                    Err(Error::PoolTimedOut)
                }
            }
        };
        let ((), answer) = futures::try_join!(begun, self.lease.run(statement))?;
        Ok(answer)
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        // Begun and not ended (an error path, a cancelled request): the
        // lease rolls it back. Abandoned: the lease closes the connection.
        let state = *self.state.get_mut();
        self.lease.in_transaction = state == OPEN;
        self.lease.poisoned = state == ABANDONED;
    }
}

/// What a store function runs its statement on: `&Db` (a transaction of
/// its own) or `&Tx` (the caller's).
pub trait Executor: Send + Sync + sealed::Sealed {
    #[doc(hidden)]
    fn run<'s>(self, statement: Statement<'s>) -> BoxFuture<'s, Result<(Vec<Row>, u64)>>
    where
        Self: 's;
}

impl Executor for &Db {
    fn run<'s>(self, statement: Statement<'s>) -> BoxFuture<'s, Result<(Vec<Row>, u64)>>
    where
        Self: 's,
    {
        // BEGIN, the statement and COMMIT in one write: one round trip, and
        // BEGIN's answer bounds the pooler's queue as for any transaction.
        Box::pin(async move {
            let tx = self.begin().await?;
            let (answer, ()) = futures::try_join!(tx.run(statement), tx.committing())?;
            Ok(answer)
        })
    }
}

impl Executor for &Tx {
    fn run<'s>(self, statement: Statement<'s>) -> BoxFuture<'s, Result<(Vec<Row>, u64)>>
    where
        Self: 's,
    {
        Box::pin(Tx::run(self, statement))
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for &super::Db {}
    impl Sealed for &super::Tx {}
}

/// Postgres SQLSTATE of a database error, if any.
pub fn sqlstate(error: &Error) -> Option<&str> {
    database_error(error).map(|e| e.code().code())
}

/// The constraint a database error names, if any.
pub fn constraint(error: &Error) -> Option<&str> {
    database_error(error).and_then(|e| e.constraint())
}

fn database_error(error: &Error) -> Option<&tokio_postgres::error::DbError> {
    match error {
        Error::Postgres(e) => e.as_db_error(),
        Error::PoolTimedOut | Error::RowNotFound => None,
    }
}

/// Whether an error means the database (or the pooler in front of it) could
/// not serve the request right now, rather than a bug: the client should
/// retry. Besides the pool's own timeout, a closed connection and I/O or
/// TLS errors, these are the SQLSTATEs of a server or pooler that refuses or
/// drops connections (class 08, 53 "insufficient resources", 57P01-57P03
/// shutdown and "cannot connect now"); PgBouncer answers a full pool or an
/// unreachable server with 08P01 and a message saying so.
pub fn is_unavailable(error: &Error) -> bool {
    match error {
        Error::PoolTimedOut => true,
        Error::RowNotFound => false,
        Error::Postgres(e) => match e.as_db_error() {
            Some(db) => {
                let code = db.code().code();
                code.starts_with("08")
                    || code.starts_with("53")
                    || matches!(code, "57P01" | "57P02" | "57P03")
                    || named_statement_refused(error)
            }
            // Not the server's answer: the connection failed, closed, timed
            // out or could not be opened. A statement the server refused is
            // always a `DbError`; decoding errors cannot happen to columns
            // the compile-time check matched (`crate::store`).
            None => true,
        },
    }
}

/// Whether a failed write may still have been applied: the server did not
/// answer it, so its COMMIT may have run with only the answer lost (a
/// connection reset, or a BEGIN, statement and COMMIT sent in one write and
/// given up when BEGIN's answer was late). Only an answer from the server
/// (an error it sent, or no row) says the write did not happen. A caller
/// that would undo a side effect of the write (abort an S3 upload whose ID
/// it was recording) must not when this holds: the row may name it.
pub fn outcome_unknown(error: &Error) -> bool {
    match error {
        Error::PoolTimedOut => true,
        Error::RowNotFound => false,
        Error::Postgres(e) => e.as_db_error().is_none(),
    }
}

/// Whether an error says a named statement ([`Statements::Named`]) is not
/// what this client prepared: gone from the server connection (26000
/// invalid_sql_statement_name), taken there by another client's of the same
/// name (42P05 duplicate_prepared_statement), or planned for a table whose
/// columns changed since (0A000 "cached plan must not change result type",
/// after a migration). A pooler that does not keep named statements per
/// client causes the first two; the instance then sends them unnamed, and
/// the request is retryable ([`is_unavailable`]).
pub fn named_statement_refused(error: &Error) -> bool {
    database_error(error).is_some_and(|db| match db.code().code() {
        "26000" | "42P05" => true,
        "0A000" => db
            .message()
            .contains("cached plan must not change result type"),
        _ => false,
    })
}

pub const UNIQUE_VIOLATION: &str = "23505";
pub const SERIALIZATION_FAILURE: &str = "40001";
pub const DEADLOCK_DETECTED: &str = "40P01";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_and_dropped_connections_are_unavailable_not_bugs() {
        assert!(is_unavailable(&Error::PoolTimedOut));
        assert!(!is_unavailable(&Error::RowNotFound));
    }

    #[test]
    fn only_an_answer_from_the_server_says_a_write_did_not_happen() {
        assert!(outcome_unknown(&Error::PoolTimedOut));
        assert!(!outcome_unknown(&Error::RowNotFound));
    }
}
