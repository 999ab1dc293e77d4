//! JSON-lines logging.
//!
//! Every line is one JSON object with `timestamp` (UTC, RFC 3339), `level`,
//! `service`, `user_id`, `request_id` and `message` first, then the event's
//! other fields and those of the spans it happened in. `user_id` and
//! `request_id` are always present (null when unknown) so that log queries
//! need no existence checks.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::{Event, Id, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// Says why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The level directive does not parse.
    #[error("invalid log level {directive:?}: {source}")]
    Filter {
        /// The directive.
        directive: String,
        /// Why.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
}

/// Swaps the level filter of the subscriber [`init`] installed.
struct LevelHandle {
    filter: reload::Handle<EnvFilter, Registry>,
    /// Set when `RUST_LOG` chose the filter, which the config must not undo.
    pinned: bool,
}

/// The handle of the process's subscriber, set by the first [`init`].
static LEVEL: OnceLock<LevelHandle> = OnceLock::new();

/// Says what became of a new `log.level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LevelChange {
    /// The new level is in force.
    Applied,
    /// `RUST_LOG` is set and wins; the level is unchanged.
    Pinned,
    /// No subscriber of ours is installed (tests, the library alone).
    NotInstalled,
}

/// Installs the JSON-lines subscriber for the process.
///
/// `RUST_LOG`, when set, wins over `level`, so an operator can turn on debug
/// logs without editing the config. A second call (as in tests that start
/// several tollgates) keeps the first subscriber.
pub fn init<W>(service: &str, level: &str, writer: W) -> Result<(), LogError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let from_env = std::env::var("RUST_LOG").ok();
    let pinned = from_env.is_some();
    let directive = from_env.unwrap_or_else(|| level.to_owned());
    let filter = EnvFilter::builder()
        .parse(&directive)
        .map_err(|source| LogError::Filter { directive, source })?;

    // Behind a reload layer so that a config reload can change the level
    // without a restart.
    let (filter, handle) = reload::Layer::new(filter);
    let format = tracing_subscriber::fmt::layer()
        .event_format(JsonLines {
            service: Arc::from(service),
        })
        .with_writer(writer);
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(SpanFields)
        .with(format)
        .try_init()
        .is_ok();
    if installed {
        let _ = LEVEL.set(LevelHandle {
            filter: handle,
            pinned,
        });
    }
    Ok(())
}

/// Puts a new level filter in force, unless `RUST_LOG` chose the filter.
pub fn set_level(level: &str) -> Result<LevelChange, LogError> {
    let Some(handle) = LEVEL.get() else {
        return Ok(LevelChange::NotInstalled);
    };
    if handle.pinned {
        return Ok(LevelChange::Pinned);
    }
    let filter = EnvFilter::builder()
        .parse(level)
        .map_err(|source| LogError::Filter {
            directive: level.to_owned(),
            source,
        })?;
    match handle.filter.reload(filter) {
        Ok(()) => Ok(LevelChange::Applied),
        // The subscriber is gone, which only happens as the process ends.
        Err(_) => Ok(LevelChange::NotInstalled),
    }
}

// --- Span fields ---

/// Keeps each span's fields as JSON, so events inside the span can repeat
/// them (the request span's `request_id` above all).
struct SpanFields;

/// The JSON fields of one span, stored in its extensions.
struct StoredFields(Map<String, Value>);

impl<S> Layer<S> for SpanFields
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = JsonVisitor::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(StoredFields(fields.0));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(StoredFields(fields)) = extensions.get_mut::<StoredFields>() {
            let mut visitor = JsonVisitor(std::mem::take(fields));
            values.record(&mut visitor);
            *fields = visitor.0;
        }
    }
}

// --- Event format ---

/// Formats each event as one JSON line.
struct JsonLines {
    service: Arc<str>,
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = JsonVisitor::default();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(StoredFields(stored)) = span.extensions().get::<StoredFields>() {
                    fields
                        .0
                        .extend(stored.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        event.record(&mut fields);
        let mut fields = fields.0;

        let now = humantime::format_rfc3339_micros(SystemTime::now());
        let mut head = vec![
            ("timestamp", Value::String(now.to_string())),
            ("level", Value::String(event.metadata().level().to_string())),
            ("service", Value::String(self.service.to_string())),
        ];
        // A field may not overwrite what every line promises.
        for (key, _) in &head {
            fields.remove(*key);
        }
        for key in ["user_id", "request_id", "message"] {
            head.push((key, fields.remove(key).unwrap_or(Value::Null)));
        }
        fields.insert(
            "target".into(),
            Value::String(event.metadata().target().into()),
        );

        let text = to_line(&head, &fields).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Writes `head` then `rest` as one JSON object, keeping that order.
///
/// By hand because serde_json's `Map` sorts its keys, which would put
/// `timestamp` mid-line behind fields like `admin.addr`.
fn to_line(head: &[(&str, Value)], rest: &Map<String, Value>) -> serde_json::Result<String> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    let mut map = serializer.serialize_map(Some(head.len() + rest.len()))?;
    for (key, value) in head {
        map.serialize_entry(key, value)?;
    }
    for (key, value) in rest {
        map.serialize_entry(key, value)?;
    }
    map.end()?;
    // serde_json writes only valid UTF-8.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Collects fields into a JSON object.
#[derive(Default)]
struct JsonVisitor(Map<String, Value>);

impl Visit for JsonVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().into(), Value::from(error_chain(value)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::from(format!("{value:?}")));
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
