//! The Vercel entry point of every function binary.

use crate::routes::{Route, dispatch};
use crate::state::AppState;

pub use vercel_runtime::Error;

/// The `main` of every function binary: [`serve`] on a current-thread Tokio
/// runtime.
///
/// Why one thread: an instance's requests wait on Postgres and S3, not on its
/// CPU, and a Vercel function has one or two vCPUs. A multi-thread runtime
/// hands each woken task between its workers and the IPC loop (futex wakes,
/// cross-CPU interrupts, `sched_yield`): about 0.1 ms of CPU per small-file
/// flow in `scripts/bench-load`, and a worker thread per CPU to start in
/// every cold start (docs/PERFORMANCE.md, issue 28). Blocking work still
/// goes to `spawn_blocking`'s pool; nothing here may `block_in_place`.
pub fn main(route: &'static Route) -> Result<(), Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(route))
}

/// Runs `route` as a Vercel function. The configuration is read, and its
/// warnings logged, before the first request; connections open on first use.
pub async fn serve(route: &'static Route) -> Result<(), Error> {
    crate::telemetry::init();
    let _ = AppState::global();
    vercel_runtime::run(vercel_runtime::service_fn(
        move |request: vercel_runtime::Request| async move {
            Ok::<_, Error>(dispatch(route, AppState::global(), request).await)
        },
    ))
    .await
}
