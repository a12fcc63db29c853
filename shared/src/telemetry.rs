//! Structured logs. Each request runs inside a span that carries its request
//! ID, and the JSON formatter copies span fields onto every line, so every log
//! line of a request can be found by that ID.

use std::sync::Once;

use tracing_subscriber::EnvFilter;

static INIT: Once = Once::new();

/// JSON lines on stdout, filtered by `RUST_LOG` (default `info`). Safe to
/// call more than once.
pub fn init() {
    INIT.call_once(|| {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .with_span_list(true)
            .flatten_event(true)
            .with_target(false)
            .try_init();
    });
}
