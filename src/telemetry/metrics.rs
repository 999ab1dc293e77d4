//! Every metric tollgate exports, named in one place.
//!
//! Each [`Metrics`] owns its own Prometheus recorder rather than installing a
//! process-global one: two tollgates in one process (the demo, the tests)
//! then keep separate books. Handles are registered once, when a snapshot
//! is built; the request path only increments them.

use std::sync::Arc;

use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

const REQUESTS: &str = "tollgate_requests_total";
const REQUEST_DURATION: &str = "tollgate_request_duration_seconds";
const UPSTREAM_DURATION: &str = "tollgate_upstream_duration_seconds";
const VERDICTS: &str = "tollgate_token_verdicts_total";
const CACHE_HITS: &str = "tollgate_cache_hits_total";
const CACHE_MISSES: &str = "tollgate_cache_misses_total";
const CACHE_ENTRIES: &str = "tollgate_cache_entries";
const KEYSET_GENERATION: &str = "tollgate_keyset_generation";
const PROVIDER_KEYS: &str = "tollgate_provider_keys";
const UPSTREAM_ERRORS: &str = "tollgate_upstream_errors_total";
const CONFIG_RELOADS: &str = "tollgate_config_reloads_total";
const JWKS_FETCHES: &str = "tollgate_jwks_fetches_total";
const JWKS_KEY_AGE: &str = "tollgate_jwks_key_age_seconds";
const OPEN_CONNECTIONS: &str = "tollgate_open_connections";
const CONNECTION_LIMITS: &str = "tollgate_connection_limits_total";

/// Latency buckets, in seconds: fine below a millisecond, where a sidecar
/// should live, and coarse up to the default upstream timeout.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// Owns the recorder and the handles that do not depend on config.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Time from request head to response head, for every request.
    pub request_duration: Histogram,
    /// Token cache hits.
    pub cache_hits: Counter,
    /// Token cache misses.
    pub cache_misses: Counter,
    /// Tokens held in the cache.
    pub cache_entries: Gauge,
    /// The generation of the snapshot in force.
    pub keyset_generation: Gauge,
    /// Config reloads that published a new snapshot.
    pub config_reloads_ok: Counter,
    /// Config reloads refused, the snapshot in force kept.
    pub config_reloads_error: Counter,
}

/// Handles for one forwarding target: the upstream or the account store.
#[derive(Clone)]
pub struct TargetMetrics {
    /// Time spent waiting for the target's response head.
    pub duration: Histogram,
    /// Connection refused or failed.
    pub connect_errors: Counter,
    /// No response head within the timeout.
    pub timeouts: Counter,
    /// Any other failure (reset, protocol error).
    pub other_errors: Counter,
}

/// Handles for one listener's connections.
#[derive(Clone)]
pub struct ListenerMetrics {
    /// Connections open now.
    pub open_connections: Gauge,
    /// Times the listener reached `max_connections` and stopped accepting.
    pub at_capacity: Counter,
    /// Request heads over the size or field-count cap (answered 431).
    pub header_too_large: Counter,
    /// Request heads not complete within the header read timeout.
    pub header_timeout: Counter,
    /// Connections closed after the idle timeout.
    pub idle_closed: Counter,
}

impl ListenerMetrics {
    /// Builds handles that record nothing, for listeners nobody scrapes
    /// (the demo's stand-in services).
    pub fn noop() -> Self {
        ListenerMetrics {
            open_connections: Gauge::noop(),
            at_capacity: Counter::noop(),
            header_too_large: Counter::noop(),
            header_timeout: Counter::noop(),
            idle_closed: Counter::noop(),
        }
    }
}

/// Handles for one provider's remote JWKS (`jwks_uri`).
#[derive(Clone)]
pub struct JwksMetrics {
    /// Fetches answered with a usable key set.
    pub fetched: Counter,
    /// Fetches answered 304: the key set held is still current.
    pub not_modified: Counter,
    /// Fetches that failed: no answer, a bad status or no usable key.
    pub failed: Counter,
    /// Seconds since the last successful fetch.
    pub key_age: Gauge,
}

impl Metrics {
    /// Builds a recorder and describes every metric.
    pub fn new() -> Arc<Self> {
        let recorder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .expect("the bucket list is a non-empty constant")
            .build_recorder();
        let handle = recorder.handle();
        describe(&recorder);

        let metrics = Metrics {
            request_duration: recorder
                .register_histogram(&Key::from_name(REQUEST_DURATION), &METADATA),
            cache_hits: recorder.register_counter(&Key::from_name(CACHE_HITS), &METADATA),
            cache_misses: recorder.register_counter(&Key::from_name(CACHE_MISSES), &METADATA),
            cache_entries: recorder.register_gauge(&Key::from_name(CACHE_ENTRIES), &METADATA),
            keyset_generation: recorder
                .register_gauge(&Key::from_name(KEYSET_GENERATION), &METADATA),
            config_reloads_ok: reload_counter(&recorder, "ok"),
            config_reloads_error: reload_counter(&recorder, "error"),
            recorder,
            handle,
        };
        Arc::new(metrics)
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Compacts histogram storage; call every few seconds.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Registers the per-outcome request counters of one rule.
    pub fn rule_outcomes(&self, rule: &str, outcomes: &[&'static str]) -> Vec<Counter> {
        outcomes
            .iter()
            .map(|outcome| {
                self.counter(
                    REQUESTS,
                    &[
                        ("rule", rule.to_owned()),
                        ("outcome", (*outcome).to_owned()),
                    ],
                )
            })
            .collect()
    }

    /// Registers the per-reason verdict counters of one provider.
    pub fn provider_verdicts(&self, provider: &str, reasons: &[&'static str]) -> Vec<Counter> {
        reasons
            .iter()
            .map(|reason| {
                self.counter(
                    VERDICTS,
                    &[
                        ("provider", provider.to_owned()),
                        ("reason", (*reason).to_owned()),
                    ],
                )
            })
            .collect()
    }

    /// Registers the gauge of how many keys a provider holds.
    pub fn provider_keys(&self, provider: &str) -> Gauge {
        let key = Key::from_parts(
            PROVIDER_KEYS,
            vec![Label::new("provider", provider.to_owned())],
        );
        self.recorder.register_gauge(&key, &METADATA)
    }

    /// Registers the handles of a forwarding target.
    pub fn target(&self, target: &'static str) -> TargetMetrics {
        let labels =
            |kind: &'static str| [("target", target.to_owned()), ("kind", kind.to_owned())];
        let key = Key::from_parts(UPSTREAM_DURATION, vec![Label::new("target", target)]);
        TargetMetrics {
            duration: self.recorder.register_histogram(&key, &METADATA),
            connect_errors: self.counter(UPSTREAM_ERRORS, &labels("connect")),
            timeouts: self.counter(UPSTREAM_ERRORS, &labels("timeout")),
            other_errors: self.counter(UPSTREAM_ERRORS, &labels("other")),
        }
    }

    /// Registers the handles of one listener (`proxy` or `admin`).
    pub fn listener(&self, listener: &'static str) -> ListenerMetrics {
        let limit = |limit: &'static str| {
            self.counter(
                CONNECTION_LIMITS,
                &[
                    ("listener", listener.to_owned()),
                    ("limit", limit.to_owned()),
                ],
            )
        };
        let open = Key::from_parts(OPEN_CONNECTIONS, vec![Label::new("listener", listener)]);
        ListenerMetrics {
            open_connections: self.recorder.register_gauge(&open, &METADATA),
            at_capacity: limit("max_connections"),
            header_too_large: limit("header_too_large"),
            header_timeout: limit("header_read_timeout"),
            idle_closed: limit("idle_timeout"),
        }
    }

    /// Registers the handles of one provider's remote JWKS.
    pub fn jwks(&self, provider: &str) -> JwksMetrics {
        let fetches = |result: &'static str| {
            self.counter(
                JWKS_FETCHES,
                &[
                    ("provider", provider.to_owned()),
                    ("result", result.to_owned()),
                ],
            )
        };
        let age = Key::from_parts(
            JWKS_KEY_AGE,
            vec![Label::new("provider", provider.to_owned())],
        );
        JwksMetrics {
            fetched: fetches("ok"),
            not_modified: fetches("not_modified"),
            failed: fetches("error"),
            key_age: self.recorder.register_gauge(&age, &METADATA),
        }
    }

    fn counter(&self, name: &'static str, labels: &[(&'static str, String)]) -> Counter {
        let labels = labels
            .iter()
            .map(|(key, value)| Label::new(*key, value.clone()))
            .collect::<Vec<_>>();
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
    }
}

/// Registers the reload counter for one `result`.
fn reload_counter(recorder: &PrometheusRecorder, result: &'static str) -> Counter {
    let key = Key::from_parts(CONFIG_RELOADS, vec![Label::new("result", result)]);
    recorder.register_counter(&key, &METADATA)
}

fn describe(recorder: &PrometheusRecorder) {
    let counters = [
        (REQUESTS, "Requests answered, by rule and outcome."),
        (
            VERDICTS,
            "Token verdicts, by provider and reason (ok or why refused).",
        ),
        (CACHE_HITS, "Token cache lookups that found a fresh entry."),
        (
            CACHE_MISSES,
            "Token cache lookups that had to verify the token.",
        ),
        (
            UPSTREAM_ERRORS,
            "Failures reaching a forwarding target, by target and kind.",
        ),
        (
            CONFIG_RELOADS,
            "Config reloads, by result: ok (published) or error (old config kept).",
        ),
        (
            JWKS_FETCHES,
            "Fetches of a provider's jwks_uri, by result (ok, not_modified, error).",
        ),
        (
            CONNECTION_LIMITS,
            "Connection-level limits applied, by listener and limit.",
        ),
    ];
    for (name, help) in counters {
        recorder.describe_counter(
            KeyName::from_const_str(name),
            None,
            SharedString::const_str(help),
        );
    }

    let gauges = [
        (CACHE_ENTRIES, "Tokens held in the cache."),
        (
            KEYSET_GENERATION,
            "Generation of the config and key snapshot in force.",
        ),
        (
            PROVIDER_KEYS,
            "Keys (secrets and public keys) a provider holds.",
        ),
        (
            JWKS_KEY_AGE,
            "Seconds since a provider's jwks_uri was last fetched successfully.",
        ),
        (
            OPEN_CONNECTIONS,
            "Downstream connections open, by listener.",
        ),
    ];
    for (name, help) in gauges {
        recorder.describe_gauge(
            KeyName::from_const_str(name),
            None,
            SharedString::const_str(help),
        );
    }

    let histograms = [
        (REQUEST_DURATION, "Time from request head to response head."),
        (
            UPSTREAM_DURATION,
            "Time waiting for a forwarding target's response head.",
        ),
    ];
    for (name, help) in histograms {
        recorder.describe_histogram(
            KeyName::from_const_str(name),
            Some(Unit::Seconds),
            SharedString::const_str(help),
        );
    }
}
