//! The instance's connections: at most [`MAX_CONNECTIONS`], opened on
//! demand, each leased to one transaction at a time and idle again the
//! moment that transaction's COMMIT or ROLLBACK is answered.
//!
//! A pool that pings a connection it gets back costs a round trip per
//! transaction (sqlx's did), and until the ping is answered the connection
//! is not idle, so a request's second transaction opens another one: on a
//! cold instance, a second TLS handshake. A connection here is idle again as
//! soon as its last answer arrived, and a dead one is noticed by the client
//! (`is_closed`) or by the request's first statement.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Row};

use super::target::Connection;
use super::{DbTarget, Result, Statement};

/// A connection idle this long may have been closed by the server or the
/// pooler in front of it (PgBouncer's `server_idle_timeout` is 600 s,
/// Neon's and Supabase's poolers close idle clients too); it is closed
/// rather than tried.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A connection is replaced after this long, so that one opened before a
/// failover or a pooler's restart does not live on.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

pub(super) struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    target: DbTarget,
    /// Most recently used last: [`Pool::begin`] takes the warmest.
    idle: Mutex<Vec<Idle>>,
    /// One permit per connection that may exist; a lease holds one.
    permits: Arc<Semaphore>,
    max_connections: u32,
    /// A named statement was lost or clashed with another client's: the
    /// database's pooler does not keep them, and this instance sends its
    /// statements unnamed from now on ([`super::named_statement_refused`]).
    named_refused: AtomicBool,
}

struct Idle {
    connection: Connection,
    opened: Instant,
    since: Instant,
}

impl Pool {
    pub(super) fn new(target: DbTarget, max_connections: u32) -> Self {
        Self {
            shared: Arc::new(Shared {
                target,
                idle: Mutex::default(),
                permits: Arc::new(Semaphore::new(
                    usize::try_from(max_connections).unwrap_or(1),
                )),
                max_connections,
                named_refused: AtomicBool::new(false),
            }),
        }
    }

    /// Leases a connection: the warmest idle one, or a new one. Waits for
    /// a free slot without bound: the caller sets the deadline.
    pub(super) async fn lease(&self) -> Result<Lease, tokio_postgres::Error> {
        let permit = Arc::clone(&self.shared.permits)
            .acquire_owned()
            .await
            .expect("the pool's semaphore is never closed");
        if let Some(idle) = self.shared.take_idle() {
            return Ok(self.new_lease(idle.connection, idle.opened, permit));
        }
        let connection = self.shared.target.connect().await?;
        tracing::debug!("opened a database connection");
        Ok(self.new_lease(connection, Instant::now(), permit))
    }

    fn new_lease(
        &self,
        connection: Connection,
        opened: Instant,
        permit: OwnedSemaphorePermit,
    ) -> Lease {
        Lease {
            connection: Some(connection),
            opened,
            shared: Arc::clone(&self.shared),
            permit: Some(permit),
            in_transaction: false,
            poisoned: false,
        }
    }

    pub(super) fn idle(&self) -> usize {
        self.shared.idle_list().len()
    }

    pub(super) fn leased(&self) -> usize {
        usize::try_from(self.shared.max_connections)
            .unwrap_or(usize::MAX)
            .saturating_sub(self.shared.permits.available_permits())
    }
}

impl Shared {
    fn idle_list(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        // The list is only pushed to and popped: a panic cannot leave it torn.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The warmest idle connection still worth trying; the stale ones are
    /// dropped, which closes their sockets.
    fn take_idle(&self) -> Option<Idle> {
        let mut idle = self.idle_list();
        let now = Instant::now();
        idle.retain(|c| !c.connection.client.is_closed() && worth_reusing(c.opened, c.since, now));
        idle.pop()
    }

    fn release(&self, connection: Connection, opened: Instant) {
        if connection.client.is_closed() {
            return;
        }
        self.idle_list().push(Idle {
            connection,
            opened,
            since: Instant::now(),
        });
    }
}

fn worth_reusing(opened: Instant, idle_since: Instant, now: Instant) -> bool {
    now.duration_since(idle_since) < IDLE_TIMEOUT && now.duration_since(opened) < MAX_LIFETIME
}

/// A connection leased to one request's statements. [`Lease::release`]
/// makes it idle again; dropped instead while a transaction is open (an
/// error path, or a request cancelled mid-statement), it is rolled back in
/// a task of its own right away, so its row locks do not outlive the
/// request.
pub(super) struct Lease {
    connection: Option<Connection>,
    opened: Instant,
    shared: Arc<Shared>,
    // Released after the connection is back in the idle list, so the waiter
    // it wakes finds it there.
    permit: Option<OwnedSemaphorePermit>,
    /// A transaction is open on the connection.
    pub(super) in_transaction: bool,
    /// The connection has requests outstanding that are given up: it is
    /// closed, not reused or rolled back on.
    pub(super) poisoned: bool,
}

impl Lease {
    fn connection(&self) -> &Connection {
        self.connection
            .as_ref()
            .expect("a lease holds its connection until it ends")
    }

    pub(super) fn client(&self) -> &Client {
        &self.connection().client
    }

    /// Runs `statement` on the leased connection: unnamed, or under the name
    /// it was prepared with on this connection, preparing it on first use
    /// ([`super::Statements`]).
    pub(super) async fn run(&self, statement: Statement<'_>) -> Result<(Vec<Row>, u64)> {
        let connection = self.connection();
        let client = &connection.client;
        let prepared = match &connection.prepared {
            Some(prepared) if !self.shared.named_refused.load(Ordering::Relaxed) => prepared,
            _ => return statement.run_unnamed(client).await,
        };
        let cached = lock(prepared)
            .get(statement.sql())
            .filter(|cached| cached.params().iter().eq(statement.types()))
            .cloned();
        let answer = async {
            let named = match cached {
                Some(named) => named,
                None => {
                    let types: Vec<_> = statement.types().cloned().collect();
                    let named = client.prepare_typed(statement.sql(), &types).await?;
                    lock(prepared).insert(statement.sql(), named.clone());
                    named
                }
            };
            statement.run_prepared(client, &named).await
        }
        .await;
        if let Err(error) = &answer
            && super::named_statement_refused(error)
            && !self.shared.named_refused.swap(true, Ordering::Relaxed)
        {
            tracing::error!(
                %error,
                "DATABASE_STATEMENTS=named, but the database lost or mixed up a named statement: its pooler does not keep them (PgBouncer before 1.21, or without max_prepared_statements). This instance sends unnamed statements from now on; set DATABASE_STATEMENTS=unnamed"
            );
        }
        answer
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A map of prepared statements is only read and inserted into: a panic
    // cannot leave it torn.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        if self.poisoned {
            drop(connection);
            return;
        }
        if !self.in_transaction {
            self.shared.release(connection, self.opened);
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to roll back on: closing the socket makes the
            // server roll back.
            return;
        };
        let shared = Arc::clone(&self.shared);
        let opened = self.opened;
        // The permit goes with the connection: it counts until rolled back.
        let permit = self.permit.take();
        runtime.spawn(async move {
            match connection.client.batch_execute("ROLLBACK").await {
                Ok(()) => shared.release(connection, opened),
                Err(error) => {
                    tracing::warn!(%error, "rolling back an abandoned transaction failed; closing its connection");
                }
            }
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_connections_are_reused_until_idle_too_long_or_too_old() {
        let opened = Instant::now();
        let at = |elapsed: Duration| opened + elapsed;
        assert!(worth_reusing(opened, opened, at(Duration::from_secs(59))));
        assert!(!worth_reusing(opened, opened, at(IDLE_TIMEOUT)));
        let used_recently = at(MAX_LIFETIME - Duration::from_secs(1));
        assert!(worth_reusing(opened, used_recently, used_recently));
        assert!(!worth_reusing(opened, used_recently, at(MAX_LIFETIME)));
    }
}
