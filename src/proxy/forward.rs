//! Sending a request on to the upstream or the account store.
//!
//! Each target has one pooled keep-alive client. The timeout covers the
//! wait for the response head only: bodies stream through as they come, so
//! a long download or an event stream is not cut short.
//!
//! An HTTP/1 request to the upstream goes on its downstream connection's
//! own upstream connection (see [`session`]); the rest use the pool.
//!
//! A target whose URL is `https` is reached over TLS. Each new connection
//! takes the target's TLS client settings from the snapshot in force, so a
//! reload with a renewed client certificate or CA file applies from the
//! next connection on; pooled connections keep the settings they were made
//! with until they close.

use std::error::Error;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{PathAndQuery, Uri};
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tower_service::Service;

mod session;

use self::session::SessionError;
pub use self::session::{Session, SessionBody};
use super::respond::{ForwardFailure, Target};
use super::server::ConnectionSlot;
use crate::telemetry::metrics::TargetMetrics;

/// How long an unused pooled connection to a target is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a connection attempt may take; loopback answers at once.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Gives each new connection to a target the TLS client settings in force.
pub type ClientTls = Arc<dyn Fn() -> Arc<ClientConfig> + Send + Sync>;

type TargetClient = Client<TargetConnector, WatchedBody>;

/// Holds the pooled clients shared by every request, one per target.
#[derive(Clone)]
pub struct Forwarder {
    upstream: TargetClient,
    account_store: TargetClient,
    /// Opens the upstream connections of sessions.
    upstream_connector: TargetConnector,
}

impl Forwarder {
    /// Builds the pooled clients; each `https` connection a target's client
    /// makes uses the settings its `ClientTls` gives at that moment.
    pub fn new(upstream_tls: ClientTls, account_store_tls: ClientTls) -> Self {
        let upstream_connector = TargetConnector::new(upstream_tls);
        Forwarder {
            upstream: pooled_client(upstream_connector.clone()),
            account_store: pooled_client(TargetConnector::new(account_store_tls)),
            upstream_connector,
        }
    }

    /// Sends `request` to `target` and waits up to `timeout` for the
    /// response head; a body longer than `max_body` is cut off there. With
    /// a `session`, the request goes on the downstream connection's own
    /// upstream connection instead of the pool's.
    pub async fn send(
        &self,
        target: Target,
        request: Request<Incoming>,
        session: Option<Arc<Session>>,
        timeout: Duration,
        max_body: u64,
        metrics: &TargetMetrics,
    ) -> Result<Response<TargetBody>, ForwardFailure> {
        let broken = Arc::new(AtomicU8::new(BODY_WHOLE));
        let request = request.map(|body| WatchedBody {
            inner: body,
            remaining: max_body,
            broken: broken.clone(),
        });
        let exchange = async {
            match (target, session) {
                (Target::Upstream, Some(session)) => {
                    let sent = session.send(&self.upstream_connector, request).await;
                    Ok(sent?.map(TargetBody::Session))
                }
                (Target::Upstream, None) => pooled(&self.upstream, request).await,
                (Target::AccountStore, _) => pooled(&self.account_store, request).await,
            }
        };

        let started = Instant::now();
        let result = tokio::time::timeout(timeout, exchange).await;
        metrics.duration.record(started.elapsed().as_secs_f64());

        match result {
            Ok(Ok(response)) => Ok(response),
            // Checked first: when the caller's own body breaks, the client
            // reports it as a failed send, but the target did nothing wrong.
            Ok(Err(_)) if broken.load(Ordering::Relaxed) == BODY_TOO_LARGE => {
                Err(ForwardFailure::BodyTooLarge)
            }
            Ok(Err(_)) if broken.load(Ordering::Relaxed) == BODY_BROKEN => {
                Err(ForwardFailure::ClientBody)
            }
            // A TLS handshake that fails (an untrusted certificate, say)
            // counts here too: the connector reports it.
            Ok(Err(error)) if error.is_connect() => {
                tracing::debug!(error = &*error.0, "target refused connection");
                metrics.connect_errors.increment(1);
                Err(ForwardFailure::Connect)
            }
            Ok(Err(error)) => {
                tracing::debug!(error = &*error.0, "target failed");
                metrics.other_errors.increment(1);
                Err(ForwardFailure::Other)
            }
            // The target cannot answer a request it has not had whole: the
            // wait was on the caller, who stopped sending its body.
            Err(_elapsed) if broken.load(Ordering::Relaxed) == BODY_AWAITED => {
                Err(ForwardFailure::ClientTimeout)
            }
            Err(_elapsed) => {
                metrics.timeouts.increment(1);
                Err(ForwardFailure::Timeout)
            }
        }
    }
}

/// Sends `request` through a pooled client.
async fn pooled(
    client: &TargetClient,
    request: Request<WatchedBody>,
) -> Result<Response<TargetBody>, SendError> {
    let response = client.request(request).await.map_err(SendError::pooled)?;
    Ok(response.map(TargetBody::Pooled))
}

/// A failed send through either path, and whether it failed to connect.
struct SendError(Box<dyn Error + Send + Sync>, bool);

impl SendError {
    fn pooled(error: hyper_util::client::legacy::Error) -> Self {
        let connect = error.is_connect();
        SendError(Box::new(error), connect)
    }

    fn is_connect(&self) -> bool {
        self.1
    }
}

impl From<SessionError> for SendError {
    fn from(error: SessionError) -> Self {
        let connect = matches!(error, SessionError::Connect(_));
        SendError(Box::new(error), connect)
    }
}

/// A response body from either path.
pub enum TargetBody {
    /// From a pooled connection, driven by its own task.
    Pooled(Incoming),
    /// From a session's connection, driven as it is read.
    Session(SessionBody),
}

impl Body for TargetBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = match self.get_mut() {
            TargetBody::Pooled(body) => Pin::new(body).poll_frame(context),
            TargetBody::Session(body) => Pin::new(body).poll_frame(context),
        };
        // Only HTTP/2 callers get trailers (hyper drops them on HTTP/1.1,
        // since the `Trailer` header is hop-by-hop); few answers have any.
        polled.map_ok(|mut frame| {
            if let Some(trailers) = frame.trailers_mut() {
                super::headers::tidy_trailers(trailers);
            }
            frame
        })
    }

    fn is_end_stream(&self) -> bool {
        match self {
            TargetBody::Pooled(body) => body.is_end_stream(),
            TargetBody::Session(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            TargetBody::Pooled(body) => body.size_hint(),
            TargetBody::Session(body) => body.size_hint(),
        }
    }
}

// XXX: hyper-util's pool takes a Mutex and SipHashes its key three times per
// request (~3,900 instructions); sessions avoid it for HTTP/1 requests to
// the upstream, the other requests still pay it.
fn pooled_client(connector: TargetConnector) -> TargetClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

// --- TargetConnector ---

/// Connects to a target: plain TCP for `http`, TLS for `https` with the
/// client settings in force when the connection is made.
///
/// hyper-rustls's connector holds one fixed `ClientConfig`; building one
/// per connection around the current settings is two `Arc` clones, and
/// keeps the pooled client (and its connections) across reloads.
#[derive(Clone)]
struct TargetConnector {
    http: HttpConnector,
    tls: ClientTls,
}

impl TargetConnector {
    fn new(tls: ClientTls) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        // Let `https` URLs through to the TLS layer above.
        http.enforce_http(false);
        TargetConnector { http, tls }
    }
}

type Connecting = <HttpsConnector<HttpConnector> as Service<Uri>>::Future;

impl Service<Uri> for TargetConnector {
    type Response = MaybeHttpsStream<TokioIo<TcpStream>>;
    type Error = Box<dyn Error + Send + Sync>;
    type Future = Connecting;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(context).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Connecting {
        let mut connector = HttpsConnector::from((self.http.clone(), (self.tls)()));
        connector.call(uri)
    }
}

/// The states of a [`WatchedBody`], shared with the request that sent it.
const BODY_WHOLE: u8 = 0;
const BODY_BROKEN: u8 = 1;
const BODY_TOO_LARGE: u8 = 2;
/// The target's side asked for more of the body and the caller has not
/// sent it yet; cleared by the next frame or the end of the body.
const BODY_AWAITED: u8 = 3;

/// The error that ends a request body at `limits.max_body_bytes`.
#[derive(Debug, thiserror::Error)]
#[error("the request body is over limits.max_body_bytes")]
struct BodyTooLarge;

/// Wraps the downstream request body to remember whether reading it
/// failed, so that a malformed body is blamed on the caller (400) and not
/// counted as a target failure (502), and to cut it off at the body limit.
/// It also remembers whether the caller is being waited for, so that a
/// body the caller stops sending is its timeout (408), not the target's.
///
/// The limit is counted here, on the bytes as they pass, because a
/// chunked or HTTP/2 body announces no length: the bytes before the cut
/// have reached the target, but never a complete body, since the error
/// aborts the request to the target.
struct WatchedBody {
    inner: Incoming,
    remaining: u64,
    broken: Arc<AtomicU8>,
}

impl Body for WatchedBody {
    type Data = Bytes;
    type Error = Box<dyn Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(context);
        let frame = match polled {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(error))) => {
                self.broken.store(BODY_BROKEN, Ordering::Relaxed);
                return Poll::Ready(Some(Err(error.into())));
            }
            Poll::Ready(None) => {
                self.broken.store(BODY_WHOLE, Ordering::Relaxed);
                return Poll::Ready(None);
            }
            Poll::Pending => {
                self.broken.store(BODY_AWAITED, Ordering::Relaxed);
                return Poll::Pending;
            }
        };
        self.broken.store(BODY_WHOLE, Ordering::Relaxed);
        let length = frame.data_ref().map_or(0, |data| data.len() as u64);
        match self.remaining.checked_sub(length) {
            Some(remaining) => {
                self.remaining = remaining;
                Poll::Ready(Some(Ok(frame)))
            }
            None => {
                self.broken.store(BODY_TOO_LARGE, Ordering::Relaxed);
                Poll::Ready(Some(Err(Box::new(BodyTooLarge))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Builds the target URI: the target's scheme and authority, the matched
/// path (`normalized` when normalising changed it), and the original query.
pub(super) fn target_uri(base: &Uri, original: &Uri, normalized: Option<&str>) -> Option<Uri> {
    let path_and_query = match (normalized, original.path_and_query()) {
        // The usual case: the path is already canonical, and the original
        // bytes are shared rather than formatted again.
        (None, Some(original)) => original.clone(),
        (normalized, _) => {
            let path = normalized.unwrap_or(original.path());
            match original.query() {
                Some(query) => PathAndQuery::try_from(format!("{path}?{query}")).ok()?,
                None => PathAndQuery::try_from(path).ok()?,
            }
        }
    };
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(path_and_query);
    Uri::from_parts(parts).ok()
}

/// Joins a downstream connection to an upstream one after both sides
/// switched protocols (a WebSocket handshake answered 101).
///
/// The tunnel ends when either side closes, when no byte has crossed it
/// either way for `idle` (a quiet tunnel would otherwise hold its
/// connection slot forever, and a few of them every slot), or `drain` after
/// shutdown starts: a WebSocket may live for hours, and must not hold the
/// process past its drain deadline. It holds the downstream connection's
/// `slot` under `limits.max_connections` until it ends.
pub(super) fn spawn_tunnel(
    downstream: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    mut closing: watch::Receiver<bool>,
    timers: TunnelTimers,
    slot: Option<ConnectionSlot>,
) {
    tokio::spawn(async move {
        let _slot = slot;
        let (down, up) = match tokio::try_join!(downstream, upstream) {
            Ok(pair) => pair,
            Err(error) => {
                tracing::debug!(error = &error as &dyn std::error::Error, "upgrade failed");
                return;
            }
        };
        let traffic = Arc::new(TunnelTraffic::new());
        let mut down = Active::new(TokioIo::new(down), traffic.clone());
        let mut up = Active::new(TokioIo::new(up), traffic.clone());
        let drain = timers.drain;
        let deadline = async {
            if closing.wait_for(|closing| *closing).await.is_err() {
                // Nobody is left to start a shutdown: no deadline.
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(drain).await;
        };
        tokio::select! {
            copied = tokio::io::copy_bidirectional(&mut down, &mut up) => {
                if let Err(error) = copied {
                    tracing::debug!(error = %error, "upgraded connection ended with an error");
                }
            }
            () = deadline => tracing::debug!("upgraded connection closed at the drain deadline"),
            () = traffic.quiet_for(timers.idle) => {
                tracing::debug!(idle_timeout = ?timers.idle, "upgraded connection closed idle");
            }
        }
    });
}

/// The two time limits of a tunnel.
#[derive(Clone, Copy, Debug)]
pub(super) struct TunnelTimers {
    /// `limits.idle_timeout`: the longest quiet stretch.
    pub(super) idle: Duration,
    /// `listen.drain_timeout`: how long it may outlive the start of shutdown.
    pub(super) drain: Duration,
}

/// When a byte last crossed a tunnel, as milliseconds since it opened.
/// (A connection's idleness, in `server::idle`, counts requests in flight
/// instead: a tunnel has no requests, only bytes.)
struct TunnelTraffic {
    opened: Instant,
    last_ms: AtomicU64,
}

impl TunnelTraffic {
    fn new() -> Self {
        TunnelTraffic {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `limit`.
    async fn quiet_for(&self, limit: Duration) {
        loop {
            let last = self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            if last + limit <= Instant::now() {
                return;
            }
            tokio::time::sleep_until(last + limit).await;
        }
    }
}

/// One side of a tunnel, noting every read or write that moved bytes.
struct Active<T> {
    io: T,
    traffic: Arc<TunnelTraffic>,
}

impl<T> Active<T> {
    fn new(io: T, traffic: Arc<TunnelTraffic>) -> Self {
        Active { io, traffic }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Active<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.traffic.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Active<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.traffic.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
