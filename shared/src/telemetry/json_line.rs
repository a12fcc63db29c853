//! The JSON line of one event: tracing-subscriber's JSON format, written
//! straight from the event's fields and each span's stored fields.
//!
//! tracing-subscriber's own `Json` format parses every enclosing span's
//! stored JSON back into a map on every line, and collects the event's
//! fields into a map of `serde_json::Value`s before writing them: on a
//! request that logs twice inside two spans, that is four parses and two
//! maps for two lines. Here each span's fields are spliced in as they were
//! stored ([`JsonFields`] wrote them, once, when the span was created), and
//! each event field is written as it is visited. The lines are the same
//! JSON: `timestamp`, `level`, the event's fields (`message` among them),
//! and `spans`, outermost first, each span's fields plus its `name`.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format of [`super::json_lines`]. Its spans' fields must be
/// stored by [`JsonFields`], which the type parameter of the
/// [`FormatEvent`] impl enforces: their JSON is copied, not checked.
pub(crate) struct JsonLine;

impl<S> FormatEvent<S, JsonFields> for JsonLine
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        write!(
            writer,
            r#"{{"timestamp":"{timestamp}","level":"{}""#,
            event.metadata().level()
        )?;
        let mut fields = EventFields {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        if let Some(scope) = ctx.event_scope() {
            writer.write_str(r#","spans":["#)?;
            for (index, span) in scope.from_root().enumerate() {
                if index > 0 {
                    writer.write_char(',')?;
                }
                let extensions = span.extensions();
                let stored = extensions
                    .get::<FormattedFields<JsonFields>>()
                    .map_or("", |fields| fields.fields.as_str());
                writer.write_char('{')?;
                let inner = object_members(stored);
                if !inner.is_empty() {
                    writer.write_str(inner)?;
                    writer.write_char(',')?;
                }
                writer.write_str(r#""name":"#)?;
                quoted(&mut writer, span.name())?;
                writer.write_char('}')?;
            }
            writer.write_char(']')?;
        }
        writer.write_str("}\n")
    }
}

/// The members of a JSON object as [`JsonFields`] stores it (`{"a":1}`,
/// or `{}`, or nothing for a span it never wrote): `"a":1`.
fn object_members(object: &str) -> &str {
    object
        .trim()
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .map_or("", str::trim)
}

/// Writes each field of an event as `,"name":value`, as it is visited.
struct EventFields<'w, 'a> {
    writer: &'w mut Writer<'a>,
    result: fmt::Result,
}

impl EventFields<'_, '_> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        // `r#type = …` names the field `type`, as tracing-subscriber writes it.
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = (|| {
            self.writer.write_char(',')?;
            quoted(self.writer, name)?;
            self.writer.write_char(':')?;
            value(self.writer)
        })();
    }
}

impl Visit for EventFields<'_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes them as null.
        self.entry(field, |w| match value.is_finite() {
            true => write!(w, "{value}"),
            false => w.write_str("null"),
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |w| quoted(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |w| {
            w.write_char('"')?;
            write!(Escaped(&mut *w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// `text` as a JSON string, quotes included.
fn quoted(writer: &mut impl fmt::Write, text: &str) -> fmt::Result {
    writer.write_char('"')?;
    Escaped(&mut *writer).write_str(text)?;
    writer.write_char('"')
}

/// Escapes what it is given for the inside of a JSON string (RFC 8259 §7):
/// the quote, the backslash and the control characters; everything else,
/// UTF-8 included, goes through as it is.
struct Escaped<'w, W: fmt::Write + ?Sized>(&'w mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut plain = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&text[plain..at])?;
            match escape {
                "" => write!(self.0, "\\u{byte:04x}")?,
                escape => self.0.write_str(escape)?,
            }
            plain = at + 1;
        }
        self.0.write_str(&text[plain..])
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::super::CapturedLines;
    use super::*;

    #[test]
    fn lines_are_the_json_tracing_subscribers_own_format_writes() {
        let ours = CapturedLines::default();
        let theirs = CapturedLines::default();
        let (ours_writer, theirs_writer) = (ours.clone(), theirs.clone());
        let subscriber = tracing_subscriber::registry()
            .with(super::super::json_lines(move || ours_writer.clone()))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(false)
                    .with_span_list(true)
                    .flatten_event(true)
                    .with_target(false)
                    .with_writer(move || theirs_writer.clone()),
            );
        // A scoped subscriber beside `routes::tests`' global one: neither
        // filters, so no callsite's cached interest can become "never".
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(quote = "a \"b\"\n", "outside any span");
            let request = tracing::info_span!("request", request_id = "r-1", path = "/a\\b");
            let _request = request.enter();
            let quiet = tracing::info_span!("quiet");
            let _quiet = quiet.enter();
            let inner =
                tracing::info_span!("inner", size = 12_u64, user_id = tracing::field::Empty);
            inner.record("user_id", "u-1");
            let _inner = inner.enter();
            tracing::warn!(
                count = -3_i64,
                ratio = 0.5_f64,
                not_a_number = f64::NAN,
                done = true,
                r#type = "pdf",
                error = %std::io::Error::other("disk \u{7} full"),
                "file {} registered",
                "a.pdf"
            );
        });
        let (mut ours, mut theirs) = (ours.lines(), theirs.lines());
        assert_eq!(ours.len(), 2, "{ours:?}");
        for line in ours.iter_mut().chain(theirs.iter_mut()) {
            let timestamp = line.as_object_mut().unwrap().remove("timestamp").unwrap();
            chrono::DateTime::parse_from_rfc3339(timestamp.as_str().unwrap()).unwrap();
        }
        assert_eq!(ours, theirs);
        assert_eq!(ours[1]["spans"][2]["user_id"], "u-1", "{}", ours[1]);
    }

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        quoted(&mut out, text).unwrap();
        out
    }

    #[test]
    fn strings_escape_as_serde_json_escapes_them() {
        for text in [
            "plain",
            "a \"quoted\" back\\slash",
            "line\nfeed\r\ttab",
            "bell \u{7} nul \u{0} unit \u{1f} delete \u{7f}",
            "ünïcödé and 🧱",
            "",
        ] {
            let ours = escaped(text);
            assert_eq!(ours, serde_json::to_string(text).unwrap(), "{text:?}");
            let back: String = serde_json::from_str(&ours).unwrap();
            assert_eq!(back, text);
        }
    }

    #[test]
    fn a_stored_span_object_splices_as_its_members() {
        assert_eq!(object_members(r#"{"a":1,"b":"}"}"#), r#""a":1,"b":"}""#);
        assert_eq!(object_members("{}"), "");
        assert_eq!(object_members(""), "");
    }
}
