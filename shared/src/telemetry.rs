//! Structured logs. Each request runs inside a span that carries its request
//! ID, and the JSON formatter copies span fields onto every line, so every log
//! line of a request can be found by that ID.

mod json_line;

use std::sync::Once;

use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

static INIT: Once = Once::new();

/// JSON lines on stdout, filtered by `RUST_LOG` (default `info`). Safe to
/// call more than once.
pub fn init() {
    INIT.call_once(|| {
        let _ = tracing_subscriber::registry()
            .with(json_lines(std::io::stdout))
            .with(filter(std::env::var("RUST_LOG").ok().as_deref()))
            .try_init();
    });
}

/// One JSON object per line, to `writer`, with the fields of the current
/// span and of every enclosing one (`spans`, outermost first: the request's
/// span with its request ID, then the service's) on each line. The current
/// span is not written again on its own (`span`): it is the list's last.
///
/// The line is written by [`json_line::JsonLine`], not tracing-subscriber's
/// JSON format, which parses each span's fields back on every line: writing
/// the lines was a fifth of the API's CPU per file in `scripts/bench-load`
/// (docs/PERFORMANCE.md, "Issue 28, continued: fewer statements").
pub(crate) fn json_lines<S, W>(writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(json_line::JsonLine)
        .with_writer(writer)
}

/// `RUST_LOG` as a list of `level` and `target=level` directives, e.g.
/// `info,moc_shared=debug`; unset, empty or invalid means `info`.
///
/// A `Targets` filter, not tracing-subscriber's `EnvFilter`: that one also
/// matches span fields with regular expressions, which links a regex engine
/// (`regex-automata` and its Unicode tables) into every function binary for
/// a syntax nobody here uses (docs/PERFORMANCE.md, "Binary size").
fn filter(rust_log: Option<&str>) -> Targets {
    let default = || Targets::new().with_default(LevelFilter::INFO);
    match rust_log.map(str::trim) {
        None | Some("") => default(),
        Some(directives) => directives.parse().unwrap_or_else(|_| default()),
    }
}

/// What [`json_lines`] wrote to it, for tests that read their log lines.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct CapturedLines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl std::io::Write for CapturedLines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
impl CapturedLines {
    /// Every line so far, each parsed as JSON.
    pub(crate) fn lines(&self) -> Vec<serde_json::Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON log line"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::filter;
    use tracing::Level;

    #[test]
    fn rust_log_sets_levels_per_target_with_info_as_the_default() {
        let unset = filter(None);
        assert!(unset.would_enable("moc_shared::db", &Level::INFO));
        assert!(!unset.would_enable("moc_shared::db", &Level::DEBUG));

        let invalid = filter(Some("moc_shared=[{"));
        assert!(invalid.would_enable("sqlx", &Level::INFO));
        assert!(!invalid.would_enable("sqlx", &Level::DEBUG));

        let custom = filter(Some("warn,moc_shared=debug"));
        assert!(custom.would_enable("moc_shared::s3", &Level::DEBUG));
        assert!(!custom.would_enable("sqlx::query", &Level::INFO));
        assert!(custom.would_enable("sqlx::query", &Level::WARN));
    }
}
