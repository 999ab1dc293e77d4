//! The access log: one JSON line per request, rendered in one pass.
//!
//! Every request writes one, so it is the line tollgate writes most. Sent
//! as a tracing event it cost about 5,400 instructions of the 28,000 a
//! refused request costs (callgrind, docs/performance.md): recording ten
//! fields into the layer's list, escaping their names, sorting them.
//! Its keys never change, so here they are written straight into the line
//! in the order the layer sorts an event's fields into. A line is the
//! same bytes the event would give (a unit test compares the two), and it
//! goes to the same writer, so the access lines and the others still
//! interleave as whole lines on stdout.
//!
//! The level filter still decides: an access line is written when an
//! info event with target `tollgate::access` would be, so `log.level =
//! "warn"` or `RUST_LOG=tollgate::access=off` silence it as before.

use std::cell::RefCell;
use std::io;
use std::sync::OnceLock;
use std::time::SystemTime;

use super::clock::Clock;
use super::json;
use super::line::{write_head, write_key};

/// The target access lines are filtered and labelled by.
pub const TARGET: &str = "tollgate::access";

/// What the access line of one request says.
#[derive(Clone, Copy, Debug)]
pub struct AccessLine<'a> {
    /// The request id, as sent upstream and returned to the caller.
    pub request_id: &'a str,
    /// The token's `sub`, when a token was verified and has one.
    pub user_id: Option<&'a str>,
    /// The request method.
    pub method: &'a str,
    /// The normalised path (the raw one if routing did not get that far).
    pub path: &'a str,
    /// The response status.
    pub status: u16,
    /// Milliseconds from the request's arrival to its response head.
    pub duration_ms: f64,
    /// The name of the rule that matched, or `none`.
    pub rule: &'a str,
    /// `ok`, the refusal reason, or `-` when no token was needed.
    pub verdict: &'a str,
    /// The W3C trace id of the caller's `traceparent`, when it sent one.
    pub trace_id: Option<&'a str>,
}

/// Hands one whole line to the log's writer.
type LineWriter = Box<dyn Fn(&[u8]) -> io::Result<()> + Send + Sync>;

/// Writes access lines for the process's subscriber (see [`install`]).
pub(super) struct AccessLog {
    /// The `service` value, already a JSON string.
    service: Box<str>,
    write: LineWriter,
}

/// The access log of the installed subscriber; unset when none of ours is.
static ACCESS: OnceLock<AccessLog> = OnceLock::new();

thread_local! {
    /// The line being written on this thread, and its clock.
    static LINE: RefCell<(Vec<u8>, Clock)> = RefCell::default();
}

/// Makes [`write`] write to `write`, once per process: the first
/// subscriber installed keeps its writer, as tracing keeps the first
/// global subscriber.
pub(super) fn install(
    service: &str,
    write: impl Fn(&[u8]) -> io::Result<()> + Send + Sync + 'static,
) {
    let _ = ACCESS.set(AccessLog::new(service, Box::new(write)));
}

/// Writes the access line of one request, if the level filter lets an
/// info line of [`TARGET`] through; without a subscriber of ours (the
/// library in tests), nothing is written.
pub fn write(line: &AccessLine<'_>) {
    let Some(log) = ACCESS.get() else {
        return;
    };
    if !is_enabled() {
        return;
    }
    // Logging has nowhere to report its own failure; a nested call (none
    // is expected) gets a buffer of its own rather than a panic.
    let _ = LINE.try_with(|buffers| match buffers.try_borrow_mut() {
        Ok(mut buffers) => {
            let (text, clock) = &mut *buffers;
            log.write(line, text, clock)
        }
        Err(_) => log.write(line, &mut Vec::new(), &mut Clock::default()),
    });
}

/// Says whether the level filter lets an access line through: as it
/// would have let the tracing event through, fields included, since a
/// directive that names fields (`tollgate::access[{verdict}]=off`) applies
/// only to events that have them all.
fn is_enabled() -> bool {
    tracing::event_enabled!(
        target: TARGET,
        tracing::Level::INFO,
        request_id,
        user_id,
        http.method,
        http.path,
        http.status,
        duration_ms,
        rule,
        verdict,
        trace_id,
    )
}

impl AccessLog {
    fn new(service: &str, write: LineWriter) -> Self {
        AccessLog {
            service: json::quoted(service),
            write,
        }
    }

    fn write(
        &self,
        line: &AccessLine<'_>,
        text: &mut Vec<u8>,
        clock: &mut Clock,
    ) -> io::Result<()> {
        text.clear();
        render(line, &self.service, clock, SystemTime::now(), text)?;
        (self.write)(text)
    }
}

/// Renders `line`: the keys every line starts with, then the rest in the
/// order of their names, as the event layer sorts them.
fn render(
    line: &AccessLine<'_>,
    service: &str,
    clock: &mut Clock,
    now: SystemTime,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    write_head(out, clock, now, tracing::Level::INFO, service)?;
    write_key(out, "user_id");
    match line.user_id {
        Some(user_id) => json::write_str(out, user_id),
        None => out.extend_from_slice(b"null"),
    }
    write_key(out, "request_id");
    json::write_str(out, line.request_id);
    write_key(out, "message");
    out.extend_from_slice(br#""request""#);

    write_key(out, "duration_ms");
    json::write_f64(out, line.duration_ms);
    write_key(out, "http.method");
    json::write_str(out, line.method);
    write_key(out, "http.path");
    json::write_str(out, line.path);
    write_key(out, "http.status");
    json::write_u64(out, u64::from(line.status));
    write_key(out, "rule");
    json::write_str(out, line.rule);
    write_key(out, "target");
    json::write_str(out, TARGET);
    if let Some(trace_id) = line.trace_id {
        write_key(out, "trace_id");
        json::write_str(out, trace_id);
    }
    write_key(out, "verdict");
    json::write_str(out, line.verdict);
    out.extend_from_slice(b"}\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::telemetry::log::line::JsonLines;
    use crate::telemetry::log::line::tests::Captured;

    /// Sends the tracing event tollgate used to send for `line`.
    fn send_as_event(line: &AccessLine<'_>) {
        tracing::info!(
            target: "tollgate::access",
            request_id = line.request_id,
            user_id = line.user_id,
            http.method = line.method,
            http.path = line.path,
            http.status = line.status,
            duration_ms = line.duration_ms,
            rule = line.rule,
            verdict = line.verdict,
            trace_id = line.trace_id,
            "request"
        );
    }

    /// The line the tracing event tollgate used to send would have given,
    /// through the event layer.
    fn as_event(line: &AccessLine<'_>, service: &str) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let layer = JsonLines::new(service, move || writer.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || send_as_event(line));
        captured.text()
    }

    fn rendered(line: &AccessLine<'_>, service: &str) -> String {
        let log = AccessLog::new(service, Box::new(|_| Ok(())));
        let mut out = Vec::new();
        render(
            line,
            &log.service,
            &mut Clock::default(),
            SystemTime::now(),
            &mut out,
        )
        .expect("renders");
        String::from_utf8(out).expect("UTF-8")
    }

    /// Drops the timestamp, the one value the two lines cannot share.
    fn without_timestamp(line: &str) -> &str {
        line.split_once(r#""level":"#)
            .map_or(line, |(_, rest)| rest)
    }

    #[test]
    fn an_access_line_is_the_bytes_the_tracing_event_gave() {
        let plain = AccessLine {
            request_id: "0b6c2c1e-5a4c-4a53-9c43-5e0b8f1f2d11",
            user_id: Some("alice"),
            method: "GET",
            path: "/api/games/12345",
            status: 200,
            duration_ms: 0.412,
            rule: "api",
            verdict: "ok",
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        };
        let tricky = AccessLine {
            request_id: "r\"1\\",
            user_id: None,
            method: "PÜT",
            path: "/a\"b\\c\u{1}\u{7f}\u{e9}",
            status: 431,
            duration_ms: 12.0,
            rule: "none",
            verdict: "-",
            trace_id: None,
        };
        for (line, service) in [(plain, "games"), (tricky, "svc \"edge\"")] {
            let ours = rendered(&line, service);
            let event = as_event(&line, service);
            assert_eq!(without_timestamp(&ours), without_timestamp(&event));
            assert!(ours.starts_with(r#"{"timestamp":""#), "{ours}");
        }
    }

    /// Says whether, under `filter`, the old event would have been
    /// written and whether [`is_enabled`] lets the line through.
    fn event_and_line_under(filter: &str) -> (bool, bool) {
        let line = AccessLine {
            request_id: "r-1",
            user_id: None,
            method: "GET",
            path: "/",
            status: 200,
            duration_ms: 0.5,
            rule: "default",
            verdict: "-",
            trace_id: None,
        };
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new(filter))
            .with(JsonLines::new("games", move || writer.clone()));
        let enabled = tracing::subscriber::with_default(subscriber, || {
            send_as_event(&line);
            is_enabled()
        });
        (!captured.text().is_empty(), enabled)
    }

    #[test]
    fn the_filter_decides_as_it_did_for_the_event() {
        let filters = [
            "info",
            "warn",
            "info,tollgate::access=off",
            "warn,tollgate::access=info",
            "info,tollgate=warn",
            // Directives that name fields apply to events that have them.
            "info,tollgate::access[{verdict}]=off",
            "info,tollgate::access[{http.path}]=off",
            "info,tollgate::access[{nosuchfield}]=off",
            "info,[{nosuchfield}]=off",
            "warn,tollgate::access[{verdict}]=info",
            "warn,tollgate::access[{nosuchfield}]=info",
        ];
        for filter in filters {
            let (event, line) = event_and_line_under(filter);
            assert_eq!(line, event, "{filter}");
        }
    }

    #[test]
    fn an_access_line_has_every_field_under_its_name() {
        let line = AccessLine {
            request_id: "r-7",
            user_id: None,
            method: "POST",
            path: "/login",
            status: 401,
            duration_ms: 1.5,
            rule: "login",
            verdict: "expired",
            trace_id: None,
        };
        let text = rendered(&line, "games");
        let value: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
        assert_eq!(value["user_id"], serde_json::Value::Null);
        assert_eq!(value["request_id"], "r-7");
        assert_eq!(value["message"], "request");
        assert_eq!(value["http.method"], "POST");
        assert_eq!(value["http.path"], "/login");
        assert_eq!(value["http.status"], 401);
        assert_eq!(value["duration_ms"], 1.5);
        assert_eq!(value["rule"], "login");
        assert_eq!(value["verdict"], "expired");
        assert_eq!(value["target"], TARGET);
        assert!(value.get("trace_id").is_none(), "{text}");
        assert!(text.ends_with("}\n"));
    }
}
