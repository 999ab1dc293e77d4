//! The layer that writes each event as one JSON line.
//!
//! The access line skips this layer ([`super::access`]) and the request
//! span opens only when debug lines can be written, so at info a request
//! that goes well writes nothing here; at debug every request does. It
//! renders values straight into a reused per-thread buffer: no JSON map,
//! no per-field `String` key, no second copy of the line, and no `fmt`
//! machinery for the parts every line has. Values are written by
//! [`json`], whose output is serde_json's byte for byte, and the timestamp
//! by [`Clock`], whose output is humantime's.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::{self, Write as _};
use std::ops::Range;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::{Event, Id, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::clock::Clock;
use super::json;

/// Keys every line starts with, in this order, before the sorted rest.
const FIXED: [&str; 3] = ["timestamp", "level", "service"];
/// Keys every line carries after [`FIXED`], `null` when no field gave them.
const PROMISED: [&str; 3] = ["user_id", "request_id", "message"];
/// Bytes a span's rendered fields start with room for: a request span's
/// `request_id`, `trace_id` and `user_id` fit, so recording them allocates
/// once rather than at each doubling.
const SPAN_TEXT_BYTES: usize = 128;

/// Writes events as JSON lines to `writer`, with the fields of the spans
/// they happened in.
pub(super) struct JsonLines<W> {
    /// The `service` value, already a JSON string.
    service: Box<str>,
    writer: W,
}

impl<W> JsonLines<W> {
    /// Builds the layer for the service named `service`.
    pub(super) fn new(service: &str, writer: W) -> Self {
        JsonLines {
            service: json::quoted(service),
            writer,
        }
    }
}

// --- Fields ---

/// Field values rendered as JSON text, each under its name.
///
/// Later fields replace earlier ones of the same name, as a map would:
/// an event's field wins over its span's, an inner span's over an outer's.
#[derive(Default)]
struct Fields {
    /// The rendered values, back to back (UTF-8: serde_json writes only
    /// that).
    text: Vec<u8>,
    /// Each field's name and where its value sits in `text`.
    at: Vec<(&'static str, Range<usize>)>,
    /// Scratch for `Debug` values, which are rendered before escaping.
    scratch: String,
}

impl Fields {
    /// Builds empty fields with room for `bytes` of rendered values.
    fn with_capacity(bytes: usize) -> Self {
        Fields {
            text: Vec::with_capacity(bytes),
            ..Fields::default()
        }
    }

    fn clear(&mut self) {
        self.text.clear();
        self.at.clear();
    }

    fn value(&self, name: &str) -> Option<&[u8]> {
        self.at
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, range)| &self.text[range.clone()])
    }

    /// Renders a value with `write` under `name`, replacing a field of
    /// that name.
    fn put(&mut self, name: &'static str, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.text.len();
        write(&mut self.text);
        self.place(name, start..self.text.len());
    }

    /// Renders `value` as a JSON string under `name`.
    fn put_str(&mut self, name: &'static str, value: &str) {
        self.put(name, |text| json::write_str(text, value));
    }

    /// Copies an already rendered value in under `name`.
    fn put_rendered(&mut self, name: &'static str, rendered: &[u8]) {
        let start = self.text.len();
        self.text.extend_from_slice(rendered);
        self.place(name, start..self.text.len());
    }

    fn place(&mut self, name: &'static str, range: Range<usize>) {
        match self.at.iter_mut().find(|(known, _)| *known == name) {
            Some((_, old)) => *old = range,
            None => self.at.push((name, range)),
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field.name(), |text| json::write_f64(text, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field.name(), |text| json::write_i64(text, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field.name(), |text| json::write_u64(text, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let value: &[u8] = if value { b"true" } else { b"false" };
        self.put(field.name(), |text| text.extend_from_slice(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put_str(field.name(), value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put_str(field.name(), &error_chain(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let _ = write!(scratch, "{value:?}");
        self.put_str(field.name(), &scratch);
        self.scratch = scratch;
    }
}

/// Joins an error with its sources, so the root cause is not lost.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The rendered fields of one span, kept in its extensions so that events
/// inside the span repeat them (the request span's `request_id` above all).
struct SpanFields(Fields);

// --- Layer ---

/// What writing one line needs, reused so that a line costs no allocation
/// once the buffers have grown.
#[derive(Default)]
struct LineBuffers {
    fields: Fields,
    text: Vec<u8>,
    clock: Clock,
}

thread_local! {
    /// The buffers of the event being written on this thread.
    static LINE: RefCell<LineBuffers> = RefCell::default();
}

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = Fields::with_capacity(SPAN_TEXT_BYTES);
        attrs.record(&mut fields);
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        if let Some(SpanFields(fields)) = span.extensions_mut().get_mut::<SpanFields>() {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // A nested event (one logged while writing a line) gets a buffer of
        // its own rather than a panic on the busy one.
        let written = LINE.try_with(|line| match line.try_borrow_mut() {
            Ok(mut line) => self.write_line(event, &ctx, &mut line),
            Err(_) => self.write_line(event, &ctx, &mut LineBuffers::default()),
        });
        // Logging has nowhere to report its own failure.
        let _ = written;
    }
}

impl<W> JsonLines<W>
where
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn write_line<S>(
        &self,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
        buffers: &mut LineBuffers,
    ) -> io::Result<()>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let LineBuffers {
            fields,
            text: line,
            clock,
        } = buffers;
        fields.clear();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(stored)) = span.extensions().get::<SpanFields>() {
                    for (name, range) in &stored.at {
                        fields.put_rendered(name, &stored.text[range.clone()]);
                    }
                }
            }
        }
        event.record(fields);
        fields.put_str("target", event.metadata().target());

        line.clear();
        self.render(event, fields, clock, line)?;
        let mut writer = self.writer.make_writer_for(event.metadata());
        writer.write_all(line)
    }

    /// Writes the fixed keys, the promised ones, then the rest sorted by
    /// name (the order a JSON map would give them), and a newline.
    fn render(
        &self,
        event: &Event<'_>,
        fields: &mut Fields,
        clock: &mut Clock,
        line: &mut Vec<u8>,
    ) -> io::Result<()> {
        let level = *event.metadata().level();
        write_head(line, clock, SystemTime::now(), level, &self.service)?;
        for key in PROMISED {
            write_key(line, key);
            line.extend_from_slice(fields.value(key).unwrap_or(b"null"));
        }
        // Written already; and a field may not overwrite what every line
        // promises.
        fields
            .at
            .retain(|(name, _)| !PROMISED.contains(name) && !FIXED.contains(name));
        fields.at.sort_unstable_by_key(|(name, _)| *name);
        for (name, range) in &fields.at {
            line.push(b',');
            json::write_str(line, name);
            line.push(b':');
            line.extend_from_slice(&fields.text[range.clone()]);
        }
        line.extend_from_slice(b"}\n");
        Ok(())
    }
}

/// Writes what every line starts with: the [`FIXED`] keys and their values,
/// `service` being JSON text already.
pub(super) fn write_head(
    line: &mut Vec<u8>,
    clock: &mut Clock,
    now: SystemTime,
    level: Level,
    service: &str,
) -> io::Result<()> {
    line.extend_from_slice(br#"{"timestamp":""#);
    clock.write(line, now)?;
    line.extend_from_slice(br#"","level":""#);
    line.extend_from_slice(level.as_str().as_bytes());
    line.extend_from_slice(br#"","service":"#);
    line.extend_from_slice(service.as_bytes());
    Ok(())
}

/// Writes `,"key":`, for a key that is a plain identifier (nothing in it
/// to escape).
pub(super) fn write_key(line: &mut Vec<u8>, key: &str) {
    line.extend_from_slice(b",\"");
    line.extend_from_slice(key.as_bytes());
    line.extend_from_slice(b"\":");
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Keeps what the layer writes, for the test to read back.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        /// Returns what was written so far.
        pub(crate) fn text(&self) -> String {
            let bytes = self.0.lock().expect("not poisoned").clone();
            String::from_utf8(bytes).expect("lines are UTF-8")
        }
    }

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let mut held = self.0.lock().map_err(|_| io::Error::other("poisoned"))?;
            held.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Runs `emit` under a subscriber with only the JSON layer, and returns
    /// the text written.
    fn written(emit: impl FnOnce()) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let layer = JsonLines::new("svc \"edge\"", move || writer.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, emit);
        captured.text()
    }

    fn parsed(text: &str) -> Vec<Value> {
        text.lines()
            .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
            .collect()
    }

    #[test]
    fn field_values_read_back_as_they_were_logged() {
        let tricky = "quote \" backslash \\ tab \t nul \u{0} del \u{7f} caf\u{e9} \u{1F600}";
        let text = written(|| {
            tracing::warn!(
                text = tricky,
                shown = %tricky,
                ratio = 0.1_f64,
                count = u64::MAX,
                negative = i64::MIN,
                flag = true,
                "a \"message\"\n"
            );
        });
        let lines = parsed(&text);
        let [line] = lines.as_slice() else {
            panic!("one line expected: {text}");
        };
        assert_eq!(line["text"], tricky);
        assert_eq!(line["shown"], tricky);
        assert_eq!(line["ratio"].as_f64(), Some(0.1));
        assert_eq!(line["count"].as_u64(), Some(u64::MAX));
        assert_eq!(line["negative"].as_i64(), Some(i64::MIN));
        assert_eq!(line["flag"], true);
        assert_eq!(line["message"], "a \"message\"\n");
        assert_eq!(line["service"], "svc \"edge\"");
        assert_eq!(line["level"], "WARN");
    }

    #[test]
    fn a_line_has_the_fixed_keys_then_the_promised_then_the_rest_sorted() {
        // Fields named like the fixed keys are dropped, not repeated.
        let text = written(|| {
            tracing::info!(
                zeta = "z",
                service = "spoofed",
                timestamp = 0_u64,
                http.status = 200_u64,
                "done"
            );
        });
        let (timestamp, rest) = text
            .strip_prefix(r#"{"timestamp":""#)
            .and_then(|text| text.split_once('"'))
            .expect("the line starts with its timestamp");
        assert!(humantime::parse_rfc3339(timestamp).is_ok(), "{timestamp}");
        assert_eq!(timestamp.len(), "2026-12-04T22:05:26.123456Z".len());
        let expected = concat!(
            r#","level":"INFO","service":"svc \"edge\"","user_id":null,"#,
            r#""request_id":null,"message":"done","http.status":200,"#,
            r#""target":"tollgate::telemetry::log::line::tests","zeta":"z"}"#,
            "\n"
        );
        assert_eq!(rest, expected);
    }

    #[test]
    fn an_event_in_a_span_carries_the_span_fields_recorded_before_it() {
        let text = written(|| {
            let span = tracing::info_span!(
                "request",
                request_id = "r-1",
                user_id = tracing::field::Empty
            );
            let _entered = span.enter();
            span.record("user_id", "alice");
            tracing::warn!(failure = "timeout", "forwarding failed");
        });
        let lines = parsed(&text);
        let [line] = lines.as_slice() else {
            panic!("one line expected: {text}");
        };
        assert_eq!(line["request_id"], "r-1");
        assert_eq!(line["user_id"], "alice");
        assert_eq!(line["failure"], "timeout");
    }
}
