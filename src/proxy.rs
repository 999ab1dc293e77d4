//! The request path: accept, scrub, route, decide, forward, answer, record.
//!
//! [`Proxy::handle`] reads top to bottom in the order of ARCHITECTURE.md.
//! `auth` decides; this module moves bytes and keeps the books.

mod forward;
pub mod headers;
pub mod rate;
pub mod respond;
pub mod server;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HOST, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use rustls::ClientConfig;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

pub use self::forward::{ClientTls, Forwarder, Session, SessionBody, TargetBody};
use self::headers::ClientIp;
use self::rate::RateLimiter;
use self::respond::{ForwardFailure, Refusal, RequestFault, Target};
use self::server::{ConnectionSlot, Downstream, TransportKind};
use crate::auth::rules::{Rule, Target as RuleTarget};
use crate::auth::{self, CacheOutcome, Identity, Reason};
use crate::config::{EnforceMode, LimitSettings};
use crate::state::{Snapshot, State};
use crate::telemetry::log::access::{self, AccessLine};
use crate::telemetry::metrics::TargetMetrics;
use crate::tls::TlsMaterial;

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
    /// Passed on in report-only mode although the token check would have
    /// refused it.
    Reported,
    /// 413 or 414: a body or request target over its limit.
    TooLarge,
    /// 429: over the account store rate limit.
    RateLimited,
}

impl Outcome {
    /// Labels, in declaration order (the counters are indexed by it).
    pub const LABELS: [&'static str; 10] = [
        "forwarded",
        "bad_request",
        "unauthorized",
        "forbidden",
        "bad_gateway",
        "unavailable",
        "gateway_timeout",
        "reported",
        "too_large",
        "rate_limited",
    ];
}

/// Holds what every request shares: the state, the client and the metric
/// handles for the two targets.
pub struct Proxy {
    state: Arc<State>,
    forwarder: Forwarder,
    upstream_metrics: TargetMetrics,
    account_store_metrics: TargetMetrics,
    closing: watch::Receiver<bool>,
    /// Buckets of the account store routes' per-client-IP rate limit,
    /// shared by every worker's proxy.
    limiter: Arc<RateLimiter>,
}

/// What one request has gathered on its way, for the access log line and
/// the request metrics.
struct Exchange {
    request_id: HeaderValue,
    started: Instant,
    method: Method,
    /// The request's URI as it arrived (a cheap clone: shared bytes).
    uri: http::Uri,
    /// The normalised path when it differs from the raw one; usually it
    /// does not, and then nothing is copied.
    normalized: Option<String>,
    /// The rule's position in the snapshot, once one was picked.
    rule: Option<usize>,
    /// `ok`, the refusal reason, or `-` when no token was needed.
    verdict: &'static str,
    identity: Option<Arc<Identity>>,
    /// Set when a refusal was only reported and the request forwarded.
    reported: bool,
    /// The W3C trace id of the caller's `traceparent`, when it sent a
    /// well-formed one, so that logs join the caller's trace.
    trace_id: Option<HeaderValue>,
}

impl Exchange {
    /// Returns the normalised path once routing succeeded, the raw one
    /// before.
    fn path(&self) -> &str {
        self.normalized.as_deref().unwrap_or(self.uri.path())
    }

    fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or("-")
    }

    /// Returns the verified token's `sub`, once there is one.
    fn user_id(&self) -> Option<&str> {
        self.identity.as_ref()?.subject.as_deref()
    }

    fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_ref()?.to_str().ok()
    }
}

impl Proxy {
    /// Builds the proxy over a state; `closing` turns true when shutdown
    /// starts, which ends upgraded connections after the drain deadline.
    pub fn new(state: Arc<State>, closing: watch::Receiver<bool>) -> Self {
        let upstream_metrics = state.metrics.target("upstream");
        let account_store_metrics = state.metrics.target("account_store");
        let forwarder = Forwarder::new(
            client_tls(&state, |tls| &tls.upstream),
            client_tls(&state, |tls| &tls.account_store),
        );
        Proxy {
            state,
            forwarder,
            upstream_metrics,
            account_store_metrics,
            closing,
            limiter: Arc::new(RateLimiter::default()),
        }
    }

    /// Builds the proxy for one more worker thread: the same state, rate
    /// limits and metrics, and clients of its own, so that no upstream
    /// connection is shared between two workers' runtimes (a connection's
    /// task dies with the runtime that spawned it).
    pub fn for_worker(&self) -> Self {
        let state = &self.state;
        Proxy {
            state: state.clone(),
            forwarder: Forwarder::new(
                client_tls(state, |tls| &tls.upstream),
                client_tls(state, |tls| &tls.account_store),
            ),
            upstream_metrics: self.upstream_metrics.clone(),
            account_store_metrics: self.account_store_metrics.clone(),
            closing: self.closing.clone(),
            limiter: self.limiter.clone(),
        }
    }

    /// Answers one request: forwards it, or refuses it.
    pub async fn handle(&self, request: Request<Incoming>, client: SocketAddr) -> Response<Body> {
        let snapshot = self.state.load();
        let mut exchange = Exchange {
            request_id: headers::request_id(request.headers()),
            started: Instant::now(),
            method: request.method().clone(),
            uri: request.uri().clone(),
            normalized: None,
            rule: None,
            verdict: "-",
            identity: None,
            reported: false,
            trace_id: headers::trace_id(request.headers()),
        };

        let span = request_span(&exchange);
        let response = self
            .pass(request, client, &snapshot, &mut exchange)
            .instrument(span)
            .await;

        self.record(&snapshot, &exchange, &response);
        with_request_id(response, exchange.request_id)
    }

    /// Scrubs, routes, decides and forwards; any refusal on the way is
    /// answered through [`respond::respond`].
    async fn pass(
        &self,
        mut request: Request<Incoming>,
        client: SocketAddr,
        snapshot: &Snapshot,
        exchange: &mut Exchange,
    ) -> Response<Body> {
        // Scrub first, on every route: nothing the client sent may survive
        // as identity, whatever happens next.
        headers::scrub_identity(request.headers_mut(), &snapshot.identity_names);

        if let Some(fault) = request_fault(&request, &snapshot.settings.limits) {
            tracing::debug!(fault = ?fault, "request refused before routing");
            return respond::respond(Refusal::BadRequest(fault), snapshot);
        }

        // Route on the normalised path; the query never takes part.
        match auth::path::normalize(request.uri().path()) {
            Ok(Cow::Borrowed(_)) => {}
            Ok(Cow::Owned(path)) => exchange.normalized = Some(path),
            Err(error) => {
                tracing::debug!(error = %error, "request path refused");
                return respond::respond(Refusal::BadPath(error), snapshot);
            }
        }
        let (at, rule) = snapshot.rules.find_at(request.method(), exchange.path());
        exchange.rule = Some(at);
        if let RuleTarget::AccountStore = rule.target {
            let limits = &snapshot.settings.limits;
            let ip = rate::client_ip(request.headers(), client, limits.trusted_hops);
            if let Err(wait) = self
                .limiter
                .check(ip, limits.account_store_rate, Instant::now())
            {
                tracing::debug!(client.addr = %ip, retry_after = wait, "rate limited");
                return respond::respond(Refusal::RateLimited(wait), snapshot);
            }
        }

        // Decide.
        match self.decide(request.headers(), rule, snapshot).await {
            Ok(identity) => {
                if let Some(subject) = identity.as_ref().and_then(|id| id.subject.as_deref()) {
                    tracing::Span::current().record("user_id", subject);
                }
                exchange.verdict = if identity.is_some() { "ok" } else { "-" };
                exchange.identity = identity;
            }
            Err(reason) if is_reported(rule.mode_or(snapshot.settings.mode), reason) => {
                tracing::debug!(reason = reason.as_str(), "token refusal only reported");
                exchange.verdict = reason.as_str();
                exchange.reported = true;
            }
            Err(reason) => {
                exchange.verdict = reason.as_str();
                return respond::respond(Refusal::Token(reason), snapshot);
            }
        }

        // Forward.
        let target = match rule.target {
            RuleTarget::AccountStore => Target::AccountStore,
            _ => Target::Upstream,
        };
        self.forward(request, client, exchange, target, snapshot)
            .await
    }

    /// Checks the token a protected rule needs; public and account store
    /// routes need none.
    async fn decide(
        &self,
        headers: &HeaderMap,
        rule: &Rule,
        snapshot: &Snapshot,
    ) -> Result<Option<Arc<Identity>>, Reason> {
        let RuleTarget::Protected { .. } = &rule.target else {
            return Ok(None);
        };

        let max = snapshot.settings.limits.max_token_bytes;
        let token = match auth::bearer_token(headers, max) {
            Ok(token) => token,
            Err(reason) => {
                tracing::debug!(reason = reason.as_str(), "token refused");
                snapshot.count_verdict(None, Some(reason));
                return Err(reason);
            }
        };

        let (verdict, cached) = auth::authenticate(
            token,
            &snapshot.providers,
            &self.state.cache,
            snapshot.generation,
            unix_now(),
        );
        match cached {
            CacheOutcome::Hit => self.state.metrics.cache_hits.increment(1),
            CacheOutcome::Miss => self.state.metrics.cache_misses.increment(1),
        }
        let verdict = match verdict {
            Err(refusal) if refusal.reason == Reason::UnknownKid => {
                self.after_refetch(token, refusal, snapshot).await
            }
            verdict => verdict,
        };

        let identity = match verdict {
            Ok(identity) => identity,
            Err(refusal) => {
                tracing::debug!(reason = refusal.reason.as_str(), "token refused");
                snapshot.count_verdict(refusal.provider, Some(refusal.reason));
                return Err(refusal.reason);
            }
        };
        if !rule.has_role(&identity.roles) {
            tracing::debug!(user_id = identity.subject.as_deref(), "role missing");
            snapshot.count_verdict(Some(identity.provider), Some(Reason::InsufficientRole));
            return Err(Reason::InsufficientRole);
        }
        snapshot.count_verdict(Some(identity.provider), None);
        Ok(Some(identity))
    }

    /// Checks a token whose key id was unknown once more, after the
    /// provider's remote key set was fetched again; the source shares that
    /// fetch among concurrent misses, rate-limits it and bounds the wait.
    ///
    /// Only a snapshot published since this request began can hold the new
    /// key, so without one the first refusal stands. The retry reads the
    /// newer snapshot; the request keeps its own for everything else, since
    /// the two differ only in keys unless a reload landed in between.
    async fn after_refetch(
        &self,
        token: &str,
        refusal: auth::Refusal,
        snapshot: &Snapshot,
    ) -> auth::Verdict {
        let Some(provider) = refusal
            .provider
            .and_then(|at| snapshot.providers.list().get(at))
        else {
            return Err(refusal);
        };
        self.state.refetch_keys(&provider.name).await;

        let fresh = self.state.load();
        if fresh.generation == snapshot.generation {
            return Err(refusal);
        }
        tracing::debug!(
            generation = fresh.generation,
            "token checked again with new keys"
        );
        let (verdict, _) = auth::authenticate(
            token,
            &fresh.providers,
            &self.state.cache,
            fresh.generation,
            unix_now(),
        );
        verdict
    }

    /// Rewrites the request for the target and sends it.
    async fn forward(
        &self,
        mut request: Request<Incoming>,
        client: SocketAddr,
        exchange: &Exchange,
        target: Target,
        snapshot: &Snapshot,
    ) -> Response<Body> {
        let (base, timeout, metrics) = self.target(target, snapshot);

        // The original authority, for X-Forwarded-Host and for the Host the
        // service sees: Host for HTTP/1, `:authority` for HTTP/2 (which an
        // intermediary forwarding over HTTP/1.1 must copy into Host, RFC
        // 9113 section 8.3.1; a differing Host was refused already).
        let host = request.headers().get(HOST).cloned().or_else(|| {
            let authority = request.uri().authority()?;
            HeaderValue::from_str(authority.as_str()).ok()
        });
        if let Some(host) = host
            .as_ref()
            .filter(|_| !request.headers().contains_key(HOST))
        {
            request.headers_mut().insert(HOST, host.clone());
        }
        let downstream = request.extensions_mut().remove::<Arc<Downstream>>();
        let transport = downstream
            .as_ref()
            .map_or(TransportKind::Plain, |downstream| downstream.transport);
        let normalized = exchange.normalized.as_deref();
        let Some(uri) = forward::target_uri(base, request.uri(), normalized) else {
            let refusal = Refusal::BadPath(auth::path::PathError::NotAbsolute);
            return respond::respond(refusal, snapshot);
        };

        // Only an HTTP/1.1 request can switch protocols; anything else
        // that names an upgrade has it stripped as hop-by-hop.
        let upgrade = (request.version() == Version::HTTP_11)
            .then(|| headers::websocket_upgrade(request.headers()))
            .flatten();
        let downstream_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
        let slot = request.extensions_mut().remove::<ConnectionSlot>();
        // An upgrade takes its connection over: it goes through the pool,
        // whose connections hyper can hand over to a tunnel.
        let session = downstream
            .as_ref()
            .and_then(|downstream| downstream.session.clone())
            .filter(|_| upgrade.is_none());
        let client_ip = downstream.map_or_else(
            || ClientIp::from(client.ip()),
            |downstream| downstream.client_ip.clone(),
        );
        let headers = request.headers_mut();
        headers::remove_hop_by_hop(headers, upgrade);
        headers::remove_target_overrides(headers);
        headers::set_forwarding(headers, &client_ip, transport.scheme(), host);
        // After the forwarding headers, whose clean-up removes every
        // `X-Forwarded-*`, `X-Remote-User` and the like: a provider may map
        // a claim to one of those (`X-Forwarded-User`, as oauth2-proxy
        // names it), and the copies a client sent are already gone.
        if let Some(identity) = &exchange.identity {
            for (name, value) in &identity.headers {
                headers.insert(name.clone(), value.clone());
            }
        }
        headers.insert(REQUEST_ID, exchange.request_id.clone());
        *request.uri_mut() = uri;
        *request.version_mut() = Version::HTTP_11;

        let max_body = snapshot.settings.limits.max_body_bytes;
        let sent = self
            .forwarder
            .send(target, request, session, timeout, max_body, metrics)
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(failure) => {
                log_failure(target, failure, exchange);
                return respond::respond(Refusal::Forward(target, failure), snapshot);
            }
        };

        let asked_upgrade = downstream_upgrade.is_some();
        match (response.status(), downstream_upgrade) {
            (StatusCode::SWITCHING_PROTOCOLS, Some(downstream)) => {
                let upstream = hyper::upgrade::on(&mut response);
                let timers = forward::TunnelTimers {
                    idle: snapshot.settings.limits.listener.idle_timeout,
                    drain: snapshot.settings.listen.drain_timeout,
                };
                let closing = self.closing.clone();
                forward::spawn_tunnel(downstream, upstream, closing, timers, slot);
            }
            (status, _) if is_invalid_answer(status, asked_upgrade) => {
                tracing::debug!(status = status.as_u16(), "target sent an invalid status");
                metrics.other_errors.increment(1);
                let failure = ForwardFailure::Other;
                log_failure(target, failure, exchange);
                return respond::respond(Refusal::Forward(target, failure), snapshot);
            }
            _ => {
                let status = response.status();
                headers::remove_hop_by_hop(response.headers_mut(), None);
                headers::tidy_content_length(response.headers_mut(), status);
            }
        }
        // RFC 9110 section 6.2: tollgate answers in its own HTTP version.
        // An HTTP/1.0 target's version passed on made hyper close the
        // caller's connection after the answer; hyper itself answers an
        // HTTP/1.0 caller in 1.0.
        *response.version_mut() = Version::HTTP_11;
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

    /// Writes the access log line and the request metrics.
    fn record(&self, snapshot: &Snapshot, exchange: &Exchange, response: &Response<Body>) {
        let elapsed = exchange.started.elapsed();
        self.state
            .metrics
            .request_duration
            .record(elapsed.as_secs_f64());
        snapshot.count_outcome(exchange.rule, outcome_of(exchange, response));

        if !snapshot.settings.log.access {
            return;
        }
        let rule = exchange
            .rule
            .and_then(|at| snapshot.rules.rules().get(at))
            .map_or("none", |rule| &rule.name);
        access::write(&AccessLine {
            request_id: exchange.request_id(),
            user_id: exchange.user_id(),
            method: exchange.method.as_str(),
            path: exchange.path(),
            status: response.status().as_u16(),
            // Microsecond precision: more digits are noise, not data.
            duration_ms: elapsed.as_micros() as f64 / 1000.0,
            rule,
            verdict: exchange.verdict,
            trace_id: exchange.trace_id(),
        });
    }
}

/// Says whether a target's status is one a client must take as the
/// target's failure: past 599 (RFC 9110, section 15: a client treats it as
/// a server error, and tollgate is the target's client), or 101 to a
/// request that asked for no upgrade (section 15.2.2: a server switches
/// only when asked; passed on, it would tell an HTTP/1.1 caller that its
/// connection now speaks another protocol, and is malformed on HTTP/2).
fn is_invalid_answer(status: StatusCode, asked_upgrade: bool) -> bool {
    status.as_u16() > 599 || (status == StatusCode::SWITCHING_PROTOCOLS && !asked_upgrade)
}

/// Gives a target's connections the TLS client settings of the snapshot in
/// force; `pick` chooses the target's.
fn client_tls(state: &Arc<State>, pick: fn(&TlsMaterial) -> &Arc<ClientConfig>) -> ClientTls {
    let state = state.clone();
    Arc::new(move || pick(&state.load().tls).clone())
}

/// Finds what makes a request unroutable whatever its path.
fn request_fault<B>(request: &Request<B>, limits: &LimitSettings) -> Option<RequestFault> {
    if request.method() == Method::CONNECT {
        return Some(RequestFault::Connect);
    }
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target > limits.max_uri_bytes {
        return Some(RequestFault::UriTooLong);
    }
    if headers::content_length(request.headers())
        .is_some_and(|length| length > limits.max_body_bytes)
    {
        return Some(RequestFault::BodyTooLarge);
    }
    let mut hosts = request.headers().get_all(HOST).iter();
    let first = hosts.next();
    if first.is_some() && hosts.next().is_some() {
        return Some(RequestFault::SeveralHosts);
    }
    let authority = request.uri().authority();
    let differs = match (request.version(), first, authority) {
        (Version::HTTP_2, Some(host), Some(authority)) => !host
            .as_bytes()
            .eq_ignore_ascii_case(authority.as_str().as_bytes()),
        _ => false,
    };
    differs.then_some(RequestFault::HostMismatch)
}

/// Reads the outcome back from the response the caller gets; a request
/// forwarded although its refusal was only reported counts as `reported`.
fn outcome_of(exchange: &Exchange, response: &Response<Body>) -> Outcome {
    match response.extensions().get::<Outcome>() {
        Some(outcome) => *outcome,
        None if exchange.reported => Outcome::Reported,
        None => Outcome::Forwarded,
    }
}

/// Says whether a token refusal is forwarded anyway, under `mode`.
///
/// Only the caller's token is judged in report-only mode. `no_keys` stays
/// a 503 because it says nothing about the caller: tollgate cannot judge at
/// all, and the operator must see that (with readiness failing) rather than
/// have it counted as if the callers were at fault. A path refused with 400
/// never gets here: it cannot be matched to a rule safely, so there is no
/// rule whose mode could apply, and forwarding it could reach what no rule
/// meant to expose.
pub(crate) fn is_reported(mode: EnforceMode, reason: Reason) -> bool {
    mode == EnforceMode::ReportOnly && reason != Reason::NoKeys
}

fn with_request_id(mut response: Response<Body>, request_id: HeaderValue) -> Response<Body> {
    response.headers_mut().insert(REQUEST_ID, request_id);
    response
}

/// Opens the span that gives a request's lines its ids, when a line it
/// would name can be written at all.
///
/// Only debug lines need it: the few a request logs above debug name
/// their ids themselves (see `log_failure`), and a span cost every
/// request about 3,000 instructions (callgrind) to open, enter and close.
/// So it opens only while the filter lets some debug line through,
/// anywhere: the one atomic load of the level filter's maximum. Its own
/// level only decides whether the filter lets it open, by its own target
/// (`tollgate::proxy`): at debug it would stay shut under
/// `info,tollgate::proxy::forward=debug`, at info under
/// `warn,tollgate::proxy::forward=debug`, and the lines of that module
/// would lose their request. So it is an error-level span, which says
/// nothing about the request; no line shows a span's level.
fn request_span(exchange: &Exchange) -> tracing::Span {
    if tracing::level_filters::LevelFilter::current() < tracing::Level::DEBUG {
        return tracing::Span::none();
    }
    tracing::error_span!(
        "request",
        request_id = exchange.request_id(),
        user_id = tracing::field::Empty,
        trace_id = exchange.trace_id(),
    )
}

/// Logs why forwarding failed, with the request's ids: the request span
/// opens only when debug lines can be written (see `request_span`), so at
/// info this line must carry them itself.
fn log_failure(target: Target, failure: ForwardFailure, exchange: &Exchange) {
    let target = match target {
        Target::Upstream => "upstream",
        Target::AccountStore => "account_store",
    };
    // A broken or stalled request body is the caller's doing: edge traffic
    // includes junk, and a warn per junk request would bury real faults.
    if let ForwardFailure::ClientBody | ForwardFailure::ClientTimeout = failure {
        tracing::debug!(
            forward.target = target,
            failure = failure.as_str(),
            "request body broke while forwarding"
        );
        return;
    }
    tracing::warn!(
        request_id = exchange.request_id(),
        user_id = exchange.user_id(),
        trace_id = exchange.trace_id(),
        forward.target = target,
        failure = failure.as_str(),
        "forwarding failed"
    );
}

/// The wall clock as Unix seconds, which is what `exp` and `nbf` count.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_past_599_or_an_unasked_101_is_the_targets_failure() {
        let status = |code| StatusCode::from_u16(code).expect("a status hyper parses");
        for asked_upgrade in [false, true] {
            assert!(is_invalid_answer(status(600), asked_upgrade));
            assert!(is_invalid_answer(status(999), asked_upgrade));
            assert!(!is_invalid_answer(status(599), asked_upgrade));
            assert!(!is_invalid_answer(StatusCode::OK, asked_upgrade));
        }
        assert!(is_invalid_answer(StatusCode::SWITCHING_PROTOCOLS, false));
        assert!(!is_invalid_answer(StatusCode::SWITCHING_PROTOCOLS, true));
    }

    #[test]
    fn report_only_forwards_every_token_refusal_but_no_keys() {
        for reason in Reason::ALL {
            assert!(!is_reported(EnforceMode::Enforce, reason), "{reason:?}");
            let reported = is_reported(EnforceMode::ReportOnly, reason);
            assert_eq!(reported, reason != Reason::NoKeys, "{reason:?}");
        }
    }

    fn h2_request(authority: &str, host: Option<&str>) -> Request<()> {
        let mut builder = Request::builder()
            .version(Version::HTTP_2)
            .uri(format!("http://{authority}/x"));
        if let Some(host) = host {
            builder = builder.header(HOST, host);
        }
        builder.body(()).expect("a valid request")
    }

    #[test]
    fn an_http2_host_that_differs_from_the_authority_is_refused() {
        let minimal = "[upstream]\nurl = \"http://127.0.0.1:8000\"\n[[providers]]\n\
            name = \"a\"\nissuer = \"https://a.test\"\naudiences = [\"api\"]\n\
            algorithms = [\"HS256\"]\nsecret_env = \"JWT_SECRET_KEY\"\n";
        let settings = crate::config::from_str(minimal, "test.toml").expect("a valid config");
        let limits = settings.limits;
        let differs = h2_request("game.test", Some("admin.internal"));
        assert!(matches!(
            request_fault(&differs, &limits),
            Some(RequestFault::HostMismatch)
        ));
        for same in [
            h2_request("game.test", Some("GAME.test")),
            h2_request("game.test", None),
        ] {
            assert!(request_fault(&same, &limits).is_none());
        }
    }
}
