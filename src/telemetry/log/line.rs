//! The layer that writes each event as one JSON line.
//!
//! Every proxied request writes an access line and opens a span, so this is
//! on the hot path. It renders values straight into a reused per-thread
//! buffer: no JSON map, no per-field `String` key, no second copy of the
//! line. Values go through serde_json one at a time, so escaping and number
//! formatting are exactly serde_json's.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::{self, Write as _};
use std::ops::Range;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::{Event, Id, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Keys every line starts with, in this order, before the sorted rest.
const FIXED: [&str; 3] = ["timestamp", "level", "service"];
/// Keys every line carries after [`FIXED`], `null` when no field gave them.
const PROMISED: [&str; 3] = ["user_id", "request_id", "message"];

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
        let service = serde_json::to_string(service).unwrap_or_else(|_| "null".into());
        JsonLines {
            service: service.into(),
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

    /// Renders `value` under `name`, replacing a field of that name.
    fn put(&mut self, name: &'static str, value: &(impl serde::Serialize + ?Sized)) {
        let start = self.text.len();
        if serde_json::to_writer(&mut self.text, value).is_err() {
            self.text.truncate(start);
            self.text.extend_from_slice(b"null");
        }
        self.place(name, start..self.text.len());
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

    fn remove(&mut self, name: &str) {
        self.at.retain(|(known, _)| *known != name);
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field.name(), &value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field.name(), &value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field.name(), &value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field.name(), &value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field.name(), value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field.name(), &error_chain(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let _ = write!(scratch, "{value:?}");
        self.put(field.name(), scratch.as_str());
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

thread_local! {
    /// The fields and the line of the event being written, reused so that
    /// a line costs no allocation once the buffers have grown.
    static LINE: RefCell<(Fields, Vec<u8>)> = RefCell::default();
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
        let mut fields = Fields::default();
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
            Ok(mut line) => {
                let (fields, text) = &mut *line;
                self.write_line(event, &ctx, fields, text)
            }
            Err(_) => self.write_line(event, &ctx, &mut Fields::default(), &mut Vec::new()),
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
        fields: &mut Fields,
        line: &mut Vec<u8>,
    ) -> io::Result<()>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
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
        fields.put("target", event.metadata().target());

        line.clear();
        self.render(event, fields, line)?;
        let mut writer = self.writer.make_writer_for(event.metadata());
        writer.write_all(line)
    }

    /// Writes the fixed keys, the promised ones, then the rest sorted by
    /// name (the order a JSON map would give them), and a newline.
    fn render(&self, event: &Event<'_>, fields: &mut Fields, line: &mut Vec<u8>) -> io::Result<()> {
        let now = humantime::format_rfc3339_micros(SystemTime::now());
        let level = event.metadata().level().as_str();
        write!(
            line,
            r#"{{"timestamp":"{now}","level":"{level}","service":{}"#,
            self.service
        )?;
        // A field may not overwrite what every line promises.
        for key in FIXED {
            fields.remove(key);
        }
        for key in PROMISED {
            write!(line, r#","{key}":"#)?;
            line.extend_from_slice(fields.value(key).unwrap_or(b"null"));
        }
        fields.at.retain(|(name, _)| !PROMISED.contains(name));
        fields.at.sort_unstable_by_key(|(name, _)| *name);
        for (name, range) in &fields.at {
            line.push(b',');
            serde_json::to_writer(&mut *line, name)?;
            line.push(b':');
            line.extend_from_slice(&fields.text[range.clone()]);
        }
        line.extend_from_slice(b"}\n");
        Ok(())
    }
}
