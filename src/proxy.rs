//! The request path: accept, scrub, route, decide, forward, answer, record.
//!
//! [`Proxy::handle`] reads top to bottom in the order of ARCHITECTURE.md.
//! `auth` decides; this module moves bytes and keeps the books.

mod forward;
pub mod headers;
pub mod respond;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HOST, HeaderValue};
use http::{Request, Response, Version};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use tokio::time::Instant;

pub use self::forward::Forwarder;
use self::respond::{ForwardFailure, Refusal, Target};
use crate::auth::rules::{Rule, Target as RuleTarget};
use crate::auth::{self, CacheOutcome, Identity, Reason};
use crate::state::{Snapshot, State};
use crate::telemetry::metrics::TargetMetrics;

/// The body type of every response tollgate sends.
pub type Body = BoxBody<Bytes, hyper::Error>;

const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// Names how a request ended, for the requests metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Passed on to a target, whatever it answered.
    Forwarded,
    /// 400: the path could not be matched safely.
    BadRequest,
    /// 401: no token or a bad one.
    Unauthorized,
    /// 403: a good token without a needed role.
    Forbidden,
    /// 502: a target failed.
    BadGateway,
    /// 503: no keys, or the account store is down.
    Unavailable,
    /// 504: a target was too slow.
    GatewayTimeout,
}

impl Outcome {
    /// Labels, in declaration order (the counters are indexed by it).
    pub const LABELS: [&'static str; 7] = [
        "forwarded",
        "bad_request",
        "unauthorized",
        "forbidden",
        "bad_gateway",
        "unavailable",
        "gateway_timeout",
    ];
}

/// Holds what every request shares: the state, the client and the metric
/// handles for the two targets.
pub struct Proxy {
    state: Arc<State>,
    forwarder: Forwarder,
    upstream_metrics: TargetMetrics,
    account_store_metrics: TargetMetrics,
}

/// What the access log line says about one request.
struct Record<'a> {
    rule: &'a str,
    verdict: &'static str,
    user_id: Option<&'a str>,
}

impl Proxy {
    /// Builds the proxy over a state.
    pub fn new(state: Arc<State>) -> Self {
        let upstream_metrics = state.metrics.target("upstream");
        let account_store_metrics = state.metrics.target("account_store");
        Proxy {
            state,
            forwarder: Forwarder::new(),
            upstream_metrics,
            account_store_metrics,
        }
    }

    /// Answers one request: forwards it, or refuses it.
    pub async fn handle(
        &self,
        mut request: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<Body> {
        let started = Instant::now();
        let snapshot = self.state.load();

        // Scrub first, on every route: nothing the client sent may survive
        // as identity, whatever happens next.
        let request_id = headers::request_id(request.headers());
        headers::scrub_identity(request.headers_mut(), &snapshot.identity_names);

        // Route on the normalised path; the query never takes part.
        let path = match auth::path::normalize(request.uri().path()) {
            Ok(path) => path.into_owned(),
            Err(error) => {
                tracing::debug!(error = %error, "request path refused");
                let response = respond::respond(Refusal::BadPath(error), &snapshot);
                let record = Record {
                    rule: "none",
                    verdict: "-",
                    user_id: None,
                };
                return self.finish(
                    response,
                    &request,
                    &snapshot,
                    None,
                    record,
                    &request_id,
                    started,
                );
            }
        };
        let (rule_at, rule) = snapshot.rules.find_at(request.method(), &path);

        // Decide.
        let identity = match self.decide(&request, rule, &snapshot) {
            Ok(identity) => identity,
            Err(reason) => {
                let response = respond::respond(Refusal::Token(reason), &snapshot);
                let record = Record {
                    rule: &rule.name,
                    verdict: reason.as_str(),
                    user_id: None,
                };
                return self.finish(
                    response,
                    &request,
                    &snapshot,
                    Some(rule_at),
                    record,
                    &request_id,
                    started,
                );
            }
        };

        // Forward.
        let target = match rule.target {
            RuleTarget::AccountStore => Target::AccountStore,
            _ => Target::Upstream,
        };
        let verdict = if identity.is_some() { "ok" } else { "-" };
        let user_id = identity.as_ref().map(|id| id.subject.to_string());
        let method = request.method().clone();
        let response = self
            .forward(
                request,
                client,
                &path,
                identity.as_deref(),
                &request_id,
                target,
                &snapshot,
            )
            .await;
        let record = Record {
            rule: &rule.name,
            verdict,
            user_id: user_id.as_deref(),
        };
        self.record(
            &snapshot,
            Some(rule_at),
            &response,
            &method,
            &path,
            record,
            &request_id,
            started,
        );
        with_request_id(response, request_id)
    }

    /// Checks the token a protected rule needs; public and account store
    /// routes need none.
    fn decide(
        &self,
        request: &Request<Incoming>,
        rule: &Rule,
        snapshot: &Snapshot,
    ) -> Result<Option<Arc<Identity>>, Reason> {
        let RuleTarget::Protected { roles } = &rule.target else {
            return Ok(None);
        };

        let max = snapshot.settings.limits.max_token_bytes;
        let token = match auth::bearer_token(request.headers(), max) {
            Ok(token) => token,
            Err(reason) => {
                snapshot.count_verdict(None, Some(reason));
                return Err(reason);
            }
        };

        let now = unix_now();
        let (verdict, cached) = auth::authenticate(
            token,
            &snapshot.providers,
            &self.state.cache,
            snapshot.generation,
            now,
        );
        match cached {
            CacheOutcome::Hit => self.state.metrics.cache_hits.increment(1),
            CacheOutcome::Miss => self.state.metrics.cache_misses.increment(1),
        }

        let identity = match verdict {
            Ok(identity) => identity,
            Err(refusal) => {
                tracing::debug!(reason = refusal.reason.as_str(), "token refused");
                snapshot.count_verdict(refusal.provider, Some(refusal.reason));
                return Err(refusal.reason);
            }
        };
        if !roles.is_empty() && !identity.has_any_role(roles) {
            snapshot.count_verdict(Some(identity.provider), Some(Reason::InsufficientRole));
            return Err(Reason::InsufficientRole);
        }
        snapshot.count_verdict(Some(identity.provider), None);
        Ok(Some(identity))
    }

    /// Rewrites the request for the target and sends it.
    #[allow(clippy::too_many_arguments)]
    async fn forward(
        &self,
        mut request: Request<Incoming>,
        client: SocketAddr,
        path: &str,
        identity: Option<&Identity>,
        request_id: &HeaderValue,
        target: Target,
        snapshot: &Snapshot,
    ) -> Response<Body> {
        let (base, timeout, metrics) = self.target(target, snapshot);

        // The original authority, for X-Forwarded-Host: Host for HTTP/1,
        // the URI authority for HTTP/2.
        let host = request.headers().get(HOST).cloned().or_else(|| {
            let authority = request.uri().authority()?;
            HeaderValue::from_str(authority.as_str()).ok()
        });
        let Some(uri) = forward::target_uri(base, path, request.uri().query()) else {
            return respond::respond(
                Refusal::BadPath(auth::path::PathError::NotAbsolute),
                snapshot,
            );
        };

        let upgrade = headers::websocket_upgrade(request.headers());
        let downstream_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
        let headers = request.headers_mut();
        headers::remove_hop_by_hop(headers, upgrade);
        if let Some(identity) = identity {
            for (name, value) in &identity.headers {
                headers.insert(name.clone(), value.clone());
            }
        }
        headers::set_forwarding(headers, client.ip(), "http", host);
        headers.insert(REQUEST_ID, request_id.clone());
        *request.uri_mut() = uri;
        *request.version_mut() = Version::HTTP_11;

        let mut response = match self.forwarder.send(request, timeout, metrics).await {
            Ok(response) => response,
            Err(failure) => {
                log_failure(target, failure);
                return respond::respond(Refusal::Forward(target, failure), snapshot);
            }
        };

        if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
            if let Some(downstream) = downstream_upgrade {
                let upstream = hyper::upgrade::on(&mut response);
                forward::spawn_tunnel(downstream, upstream);
            }
        } else {
            headers::remove_hop_by_hop(response.headers_mut(), None);
        }
        response.map(|body| body.boxed())
    }

    fn target<'s>(
        &'s self,
        target: Target,
        snapshot: &'s Snapshot,
    ) -> (&'s http::Uri, Duration, &'s TargetMetrics) {
        match (target, &snapshot.settings.account_store) {
            (Target::AccountStore, Some(store)) => {
                (&store.url, store.timeout, &self.account_store_metrics)
            }
            _ => {
                let upstream = &snapshot.settings.upstream;
                (&upstream.url, upstream.timeout, &self.upstream_metrics)
            }
        }
    }

    /// Records a refusal made before forwarding, and returns it.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        response: Response<Body>,
        request: &Request<Incoming>,
        snapshot: &Snapshot,
        rule_at: Option<usize>,
        record: Record<'_>,
        request_id: &HeaderValue,
        started: Instant,
    ) -> Response<Body> {
        let path = request.uri().path();
        self.record(
            snapshot,
            rule_at,
            &response,
            request.method(),
            path,
            record,
            request_id,
            started,
        );
        with_request_id(response, request_id.clone())
    }

    /// Writes the access log line and the request metrics.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        snapshot: &Snapshot,
        rule_at: Option<usize>,
        response: &Response<Body>,
        method: &http::Method,
        path: &str,
        record: Record<'_>,
        request_id: &HeaderValue,
        started: Instant,
    ) {
        let elapsed = started.elapsed();
        self.state
            .metrics
            .request_duration
            .record(elapsed.as_secs_f64());
        let outcome = outcome_of(response);
        snapshot.count_outcome(rule_at, outcome);

        if snapshot.settings.log.access {
            tracing::info!(
                target: "tollgate::access",
                request_id = request_id.to_str().unwrap_or("-"),
                user_id = record.user_id,
                http.method = %method,
                http.path = path,
                http.status = response.status().as_u16(),
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                rule = record.rule,
                verdict = record.verdict,
                "request"
            );
        }
    }
}

/// Reads the outcome back from the response the caller gets.
fn outcome_of(response: &Response<Body>) -> Outcome {
    match response.extensions().get::<Outcome>() {
        Some(outcome) => *outcome,
        None => Outcome::Forwarded,
    }
}

fn with_request_id(mut response: Response<Body>, request_id: HeaderValue) -> Response<Body> {
    response.headers_mut().insert(REQUEST_ID, request_id);
    response
}

fn log_failure(target: Target, failure: ForwardFailure) {
    let target = match target {
        Target::Upstream => "upstream",
        Target::AccountStore => "account_store",
    };
    tracing::warn!(forward.target = target, failure = ?failure, "forwarding failed");
}

/// The wall clock as Unix seconds, which is what `exp` and `nbf` count.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}
