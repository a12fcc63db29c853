//! The instance's connections: at most [`MAX_CONNECTIONS`], opened on
//! demand, each leased to one transaction at a time and idle again the
//! moment that transaction's COMMIT or ROLLBACK is answered.
//!
//! Why not sqlx's `PgPool`: sqlx 0.8 pings every connection it gets back
//! (`PoolConnection::return_to_pool`), in a task spawned after the
//! transaction ends. That costs a round trip per transaction, and behind a
//! transaction-mode pooler the ping borrows a server connection of its own.
//! Worse, until the ping is answered the connection is not idle, so a
//! request's second transaction finds none and opens another connection: on
//! a cold instance, a second TLS handshake before the first answer. A
//! connection here is checked by the next BEGIN instead, which is retried
//! once on a fresh connection when it fails on I/O ([`Pool::begin`]).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
    options: PgConnectOptions,
    /// Most recently used last: [`Pool::begin`] takes the warmest.
    idle: Mutex<Vec<Idle>>,
    /// One permit per connection that may exist; a lease holds one.
    permits: Arc<Semaphore>,
    max_connections: u32,
}

struct Idle {
    connection: PgConnection,
    opened: Instant,
    since: Instant,
}

impl Pool {
    pub(super) fn new(options: PgConnectOptions, max_connections: u32) -> Self {
        Self {
            shared: Arc::new(Shared {
                options,
                idle: Mutex::default(),
                permits: Arc::new(Semaphore::new(max_connections as usize)),
                max_connections,
            }),
        }
    }

    /// Leases a connection and runs `begin` (a BEGIN statement) on it. Waits
    /// for a free connection without bound: the caller sets the deadline.
    pub(super) async fn begin(&self, begin: &'static str) -> Result<Lease, sqlx::Error> {
        let permit = Arc::clone(&self.shared.permits)
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        if let Some(mut idle) = self.shared.take_idle() {
            match idle.connection.execute(begin).await {
                Ok(_) => return Ok(self.lease(idle.connection, idle.opened, permit)),
                // Closed while idle (a restart, an idle timeout): the BEGIN
                // did nothing, so it is safe to begin again on a new one.
                Err(sqlx::Error::Io(error)) => {
                    tracing::info!(%error, "a pooled database connection was closed; reconnecting");
                }
                Err(error) => return Err(error),
            }
        }
        let mut connection = PgConnection::connect_with(&self.shared.options).await?;
        tracing::debug!("opened a database connection");
        connection.execute(begin).await?;
        Ok(self.lease(connection, Instant::now(), permit))
    }

    fn lease(
        &self,
        connection: PgConnection,
        opened: Instant,
        permit: OwnedSemaphorePermit,
    ) -> Lease {
        Lease {
            connection: Some(connection),
            opened,
            shared: Arc::clone(&self.shared),
            permit: Some(permit),
        }
    }

    pub(super) fn idle(&self) -> usize {
        self.shared.idle_list().len()
    }

    pub(super) fn leased(&self) -> usize {
        self.shared.max_connections as usize - self.shared.permits.available_permits()
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
        idle.retain(|c| worth_reusing(c.opened, c.since, now));
        idle.pop()
    }

    fn release(&self, connection: PgConnection, opened: Instant) {
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

/// A connection inside a transaction. [`Lease::end`] runs COMMIT or
/// ROLLBACK and makes it idle; dropped before that (an error path, or a
/// request cancelled mid-statement), it is rolled back in a task of its own
/// right away, so its row locks do not outlive the request.
pub(super) struct Lease {
    connection: Option<PgConnection>,
    opened: Instant,
    shared: Arc<Shared>,
    // Released after the connection is back in the idle list, so the waiter
    // it wakes finds it there.
    permit: Option<OwnedSemaphorePermit>,
}

impl Lease {
    pub(super) fn connection(&mut self) -> &mut PgConnection {
        self.connection
            .as_mut()
            .expect("a lease holds its connection until it ends")
    }

    /// Ends the transaction with `statement` (COMMIT or ROLLBACK). A
    /// connection whose end fails is closed, not reused.
    pub(super) async fn end(mut self, statement: &'static str) -> Result<(), sqlx::Error> {
        let mut connection = self.connection.take().expect("a lease ends once");
        connection.execute(statement).await?;
        self.shared.release(connection, self.opened);
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut connection) = self.connection.take() else {
            return;
        };
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
            match connection.execute("ROLLBACK").await {
                Ok(_) => shared.release(connection, opened),
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
