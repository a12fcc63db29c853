//! The Vercel entry point of every function binary.

use crate::routes::{Route, dispatch};
use crate::state::AppState;

pub use vercel_runtime::Error;

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
