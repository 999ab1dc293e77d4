//! Accepting connections: HTTP/1.1 and HTTP/2 (prior knowledge) on one
//! listener, or HTTPS with HTTP/2 picked by ALPN; one task per connection,
//! and a graceful drain on shutdown.

mod idle;
mod tls;

use std::convert::Infallible;
use std::error::Error;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulConnection;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use self::idle::{Activity, InFlightBody};
pub use self::tls::ServerTls;
use super::headers::ClientIp;
use super::{Body, Session};
use crate::config::ListenerLimits;
use crate::telemetry::metrics::ListenerMetrics;

/// How long accept failures are summed up before the next warn line: out
/// of file descriptors, every accept fails, and one line per failure would
/// flood the log just when it matters.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);

/// How often an HTTP/2 connection is pinged when quiet, and how long the
/// answer may take.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(4);

/// hyper's own cap on an HTTP/1 request's header fields (its h1 role's
/// `DEFAULT_MAX_HEADERS`), used when none is set; also tollgate's default.
const HYPER_MAX_HEADERS: usize = 100;

/// The HTTP/2 connection preface (RFC 9113 section 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits, up to the header timeout, until the client has sent enough to
/// tell HTTP/1 from HTTP/2.
///
/// The protocol detection that precedes hyper's parsers has no timeout of
/// its own: a client that connects and sends nothing, or half the HTTP/2
/// preface, would hold the socket forever. Peeking leaves the bytes for
/// the parser.
async fn request_begins(stream: &TcpStream, timeout: Duration) -> bool {
    let decided = async {
        let mut head = [0u8; H2_PREFACE.len()];
        loop {
            let read = match stream.peek(&mut head).await {
                Ok(0) | Err(_) => return false,
                Ok(read) => read,
            };
            if read == head.len() || head[..read] != H2_PREFACE[..read] {
                return true;
            }
            // Part of the preface so far: wait for the rest. Peeking again
            // at once would spin, since the bytes are still unread.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(timeout, decided)
        .await
        .unwrap_or(false)
}

/// Says how a request's connection reached tollgate. The accept loop puts
/// it in every request's extensions, for `X-Forwarded-Proto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// Plain HTTP/1.1 or h2c.
    Plain,
    /// HTTPS: TLS terminated by tollgate.
    Tls,
}

impl TransportKind {
    /// Returns the URL scheme the client used.
    pub fn scheme(self) -> &'static str {
        match self {
            TransportKind::Plain => "http",
            TransportKind::Tls => "https",
        }
    }
}

/// What every request of one downstream connection shares; the accept loop
/// puts it in each request's extensions, as one entry.
pub struct Downstream {
    /// How the connection reached tollgate, for `X-Forwarded-Proto`.
    pub transport: TransportKind,
    /// The client's address, rendered for `X-Forwarded-For`.
    pub client_ip: ClientIp,
    /// The connection's own upstream connection, for HTTP/1 requests, which
    /// come one at a time; HTTP/2 streams are concurrent and have none.
    pub session: Option<Arc<Session>>,
}

impl Downstream {
    /// Builds what a connection's HTTP/1 requests and its HTTP/2 streams
    /// carry.
    fn pair(transport: TransportKind, remote: SocketAddr) -> (Arc<Self>, Arc<Self>) {
        let client_ip = ClientIp::from(remote.ip());
        let with = |session| {
            let client_ip = client_ip.clone();
            Arc::new(Downstream {
                transport,
                client_ip,
                session,
            })
        };
        (with(Some(Arc::new(Session::default()))), with(None))
    }
}

/// How a listener runs, besides what it serves.
pub struct ListenerConfig {
    /// How long in-flight requests may take to finish after shutdown starts.
    pub drain: Duration,
    /// The connection and request limits.
    pub limits: ListenerLimits,
    /// The slots under `limits.max_connections`, shared by every listener
    /// of the port.
    pub slots: Arc<ConnectionSlots>,
    /// The listener's metric handles.
    pub metrics: ListenerMetrics,
}

/// Serves `handler` on `listener` until `shutdown` resolves, then stops
/// accepting, waits up to `config.drain` for in-flight requests to finish, and
/// closes the connections still open. With `tls`, every connection is
/// HTTPS, with the settings `tls` gives at the moment it is accepted.
///
/// At `limits.max_connections` open connections (counted in the slots,
/// which the listeners of one port share) the loop stops calling
/// `accept` until one closes, as HAProxy's `maxconn` does: new clients
/// wait in the kernel's listen backlog instead of being accepted and
/// starved, and the process never runs out of file descriptors on
/// downstream sockets alone.
///
/// Generic over the handler so that the proxy and the admin listener, and
/// the demo's stand-in services, share one accept loop.
pub async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<ServerTls>,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
    config: ListenerConfig,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let ListenerConfig {
        drain,
        limits,
        slots,
        metrics,
    } = config;
    let builder = connection_builder(&limits);
    let (closing_sender, closing) = watch::channel(false);
    // Connection tasks live in a set, not detached, so that the ones still
    // busy at the drain deadline can be cut off instead of outliving `serve`.
    let mut connections = JoinSet::new();
    let mut accept_errors = AcceptErrors::default();
    tokio::pin!(shutdown);

    // Kept across turns of the loop, not made anew in each: a connection
    // it accepted while it waits for a slot must not be dropped when a
    // finished connection ends the `select!` first.
    let mut accepting = Box::pin(accept(&listener, &slots, &metrics));
    loop {
        let accepted = tokio::select! {
            // Shutdown first: another worker's drain closes its idle
            // connections and frees their slots, and a connection this
            // worker holds waiting for one must then be closed unanswered,
            // not served because both branches were ready at once.
            biased;
            () = &mut shutdown => break,
            // Reap finished connections, so the set holds only live ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = &mut accepting => accepted,
        };
        accepting.set(accept(&listener, &slots, &metrics));
        let (stream, remote, slot) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, mostly: back off instead of
                // spinning, and let in-flight connections finish.
                accept_errors.record(&error);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);

        // Taken at accept, so a reload that lands mid-handshake does not
        // mix two certificates in one connection.
        let config = tls.as_ref().map(|current| current());
        let connection = Connection {
            stream,
            remote,
            builder: builder.clone(),
            closing: closing.clone(),
            limits,
            metrics: metrics.clone(),
            slot: Arc::new(Slot::new(slot, &slots, &metrics)),
        };
        connections.spawn(connection.serve(config, handler.clone()));
    }

    drop(accepting);
    drop(listener);
    let _ = closing_sender.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    tokio::select! {
        () = drained => tracing::debug!("all connections drained"),
        () = tokio::time::sleep(drain) => {
            tracing::warn!(
                drain_timeout = ?drain,
                "drain deadline passed; closing remaining connections"
            );
        }
    }
    connections.shutdown().await;
}

/// Builds the connection builder every connection of a listener clones,
/// with the limits hyper only takes here.
fn connection_builder(limits: &ListenerLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    let mut http1 = builder.http1();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes);
    // Left at its own limit, hyper parses into header arrays set up at no
    // cost; given any limit, it fills two arrays element by element for
    // every request (about 1,700 instructions a request by callgrind, a
    // twentieth of a refusal). The same number is the same limit.
    if limits.max_headers != HYPER_MAX_HEADERS {
        http1.max_headers(limits.max_headers);
    }
    // HTTP/2 has no header timeout of its own: pings find peers that went
    // quiet, so a dead or silent connection does not hold a socket forever.
    // The reset limits are h2's guards against rapid-reset floods
    // (CVE-2023-44487); the header list cap also bounds a CONTINUATION
    // stream (CVE-2024-27316 class), which h2 counts against it.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE)
        .keep_alive_timeout(H2_KEEP_ALIVE)
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_header_list_size(limits.h2_max_header_list_bytes)
        .max_pending_accept_reset_streams(limits.h2_max_pending_accept_reset_streams)
        .max_local_error_reset_streams(limits.h2_max_local_error_reset_streams);
    builder
}

/// Waits until a connection slot is free, accepts, and takes the slot,
/// which the connection holds until it closes.
///
/// The slot is not held while waiting in `accept`: each worker accepts
/// from a socket of its own, and a worker holding a slot for a socket no
/// client happens to reach would keep it from the worker whose socket they
/// do reach. Two workers can see the last slot free at once; the one that
/// loses holds its accepted connection, unserved, until another slot
/// frees, so at most one connection per worker waits over the cap.
async fn accept(
    listener: &TcpListener,
    slots: &ConnectionSlots,
    metrics: &ListenerMetrics,
) -> io::Result<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    if slots.permits.available_permits() == 0 {
        slots.reached(metrics);
        // Woken when a slot frees; whoever accepts first takes it below.
        let free = slots.permits.acquire().await;
        drop(free.expect("the slot semaphore is never closed"));
    }
    slots.left();

    let (stream, remote) = listener.accept().await?;
    let slot = match slots.permits.clone().try_acquire_owned() {
        Ok(slot) => slot,
        Err(_) => {
            slots.reached(metrics);
            let slot = slots.permits.clone().acquire_owned().await;
            slot.expect("the slot semaphore is never closed")
        }
    };
    Ok((stream, remote, slot))
}

/// The connection slots under `limits.max_connections` of one port, shared
/// by every worker that accepts on it, with the count of stretches spent at
/// the cap.
pub struct ConnectionSlots {
    permits: Arc<Semaphore>,
    max: usize,
    /// Connections holding a slot. Fewer than `max` while every slot is
    /// taken means a worker waiting in `accept` holds the rest: the cap is
    /// not met.
    open: AtomicUsize,
    /// Set while the cap is met; a stretch is counted once however many
    /// workers wait in it.
    full: AtomicBool,
    warned: Mutex<AtCapacity>,
}

impl ConnectionSlots {
    /// Builds `max` slots.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(ConnectionSlots {
            permits: Arc::new(Semaphore::new(max)),
            max,
            open: AtomicUsize::new(0),
            full: AtomicBool::new(false),
            warned: Mutex::new(AtCapacity::default()),
        })
    }

    /// Notes that no slot was free; counted once per stretch, not per
    /// wait, and only when open connections hold every slot. The worker
    /// that takes the last slot for a connection comes back here, so a
    /// stretch is not missed.
    fn reached(&self, metrics: &ListenerMetrics) {
        if self.open.load(Ordering::Relaxed) < self.max {
            return;
        }
        if self.full.swap(true, Ordering::Relaxed) {
            return;
        }
        metrics.at_capacity.increment(1);
        self.warned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reached();
    }

    /// Notes that a slot is free again.
    fn left(&self) {
        self.full.store(false, Ordering::Relaxed);
    }
}

/// Writes at most one warn line per [`ACCEPT_WARN_EVERY`] about stretches
/// at `max_connections`: a client that closes and reopens connections at
/// the cap starts a stretch each time, and must not be able to flood the
/// log.
#[derive(Default)]
struct AtCapacity {
    last_warned: Option<Instant>,
    stretches: u64,
}

impl AtCapacity {
    fn reached(&mut self) {
        self.stretches += 1;
        let due = self
            .last_warned
            .is_none_or(|at| at.elapsed() >= ACCEPT_WARN_EVERY);
        if due {
            tracing::warn!(
                stretches = self.stretches,
                "max_connections reached; accepting paused"
            );
            self.last_warned = Some(Instant::now());
            self.stretches = 0;
        }
    }
}

/// Sums accept failures up into one warn line per [`ACCEPT_WARN_EVERY`].
#[derive(Default)]
struct AcceptErrors {
    last_warned: Option<Instant>,
    since: u64,
}

impl AcceptErrors {
    /// Counts one failure, and writes the warn line when one is due;
    /// returns whether it did.
    fn record(&mut self, error: &io::Error) -> bool {
        self.since += 1;
        let due = self
            .last_warned
            .is_none_or(|at| at.elapsed() >= ACCEPT_WARN_EVERY);
        if !due {
            return false;
        }
        tracing::warn!(error = %error, failures = self.since, "accept failed");
        self.last_warned = Some(Instant::now());
        self.since = 0;
        true
    }
}

/// One connection's slot under `max_connections`, and its place in the
/// open-connections gauge; both are given back on drop, also when the
/// task is cut off at the drain deadline.
struct Slot {
    _permit: OwnedSemaphorePermit,
    slots: Arc<ConnectionSlots>,
    open: metrics::Gauge,
}

impl Slot {
    fn new(
        permit: OwnedSemaphorePermit,
        slots: &Arc<ConnectionSlots>,
        metrics: &ListenerMetrics,
    ) -> Self {
        metrics.open_connections.increment(1.0);
        slots.open.fetch_add(1, Ordering::Relaxed);
        Slot {
            _permit: permit,
            slots: slots.clone(),
            open: metrics.open_connections.clone(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.decrement(1.0);
        self.slots.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Keeps a connection's slot taken while a tunnel holds its socket.
///
/// A connection upgraded to a WebSocket leaves hyper, and its task ends,
/// while the tunnel still holds the socket; without this the slot would be
/// given back and WebSockets would escape `max_connections`. Put in the
/// extensions of requests that ask for an upgrade.
#[derive(Clone)]
pub struct ConnectionSlot(#[allow(dead_code)] Arc<Slot>);

// --- Connection ---

/// One accepted connection and what serving it takes.
struct Connection {
    stream: TcpStream,
    remote: SocketAddr,
    builder: Builder<TokioExecutor>,
    /// Turns true when the listener starts its graceful shutdown.
    closing: watch::Receiver<bool>,
    limits: ListenerLimits,
    metrics: ListenerMetrics,
    slot: Arc<Slot>,
}

/// Says why a connection was asked to close before its client closed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CloseKind {
    /// The listener is shutting down.
    Shutdown,
    /// No request was in flight for the idle timeout.
    Idle,
}

impl Connection {
    /// Serves requests on the connection until it ends, over TLS with
    /// `tls`; each request carries its [`TransportKind`].
    async fn serve<H, F>(self, tls: Option<Arc<ServerConfig>>, handler: Arc<H>)
    where
        H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
        F: Future<Output = Response<Body>> + Send + 'static,
    {
        let transport = match tls {
            Some(_) => TransportKind::Tls,
            None => TransportKind::Plain,
        };
        let remote = self.remote;
        let activity = Activity::new();
        let counted = activity.clone();
        let slot = self.slot.clone();
        let (http1, http2) = Downstream::pair(transport, remote);
        let service = service_fn(move |mut request: Request<Incoming>| {
            let downstream = match request.version() < http::Version::HTTP_2 {
                true => http1.clone(),
                false => http2.clone(),
            };
            request.extensions_mut().insert(downstream);
            if request.headers().contains_key(http::header::UPGRADE) {
                request
                    .extensions_mut()
                    .insert(ConnectionSlot(slot.clone()));
            }
            let in_flight = counted.begin();
            let response = handler(request, remote);
            async move {
                let response = response.await;
                Ok::<_, Infallible>(response.map(|body| InFlightBody::new(body, in_flight)))
            }
        });
        let timeout = self.limits.header_read_timeout;
        let builder = self.builder.clone();

        let driver = Driver {
            closing: self.closing,
            activity: &activity,
            limits: &self.limits,
            metrics: &self.metrics,
        };
        let ended = match tls {
            None => {
                if !request_begins(&self.stream, timeout).await {
                    tracing::debug!(client.addr = %remote, "no request began in time; closed");
                    self.metrics.header_timeout.increment(1);
                    return;
                }
                let io = TokioIo::new(self.stream);
                let connection = builder.serve_connection_with_upgrades(io, service);
                driver.drive(connection).await
            }
            Some(config) => {
                let accepting = tls::accept(self.stream, config, timeout, remote);
                let Some(accepted) = accepting.await else {
                    return;
                };
                let io = TokioIo::new(accepted.stream);
                if accepted.is_h2 {
                    // ALPN settled it, and HTTP/2 never upgrades.
                    let h2 = builder.http2_only();
                    let connection = h2.serve_connection(io, service);
                    driver.drive(connection).await
                } else {
                    // Upgrades (WebSockets) need the auto builder, which
                    // still tells HTTP/1 from HTTP/2 by the first bytes;
                    // the first-byte deadline bounds that wait.
                    let connection = builder.serve_connection_with_upgrades(io, service);
                    driver.drive(connection).await
                }
            }
        };
        if let Err(error) = ended {
            count_ending(&*error, &self.metrics);
            tracing::debug!(
                client.addr = %remote,
                error = %error,
                "connection ended with an error"
            );
        }
    }
}

/// What a connection is run with, whichever protocol serves it.
struct Driver<'a> {
    closing: watch::Receiver<bool>,
    activity: &'a Activity,
    limits: &'a ListenerLimits,
    metrics: &'a ListenerMetrics,
}

impl Driver<'_> {
    /// Runs a connection to its end, asking it to close gracefully when the
    /// listener shuts down or when it has been idle for `limits.idle_timeout`.
    async fn drive<C>(mut self, connection: C) -> Result<(), Box<dyn Error + Send + Sync>>
    where
        C: GracefulConnection,
        C::Error: Into<Box<dyn Error + Send + Sync>>,
    {
        tokio::pin!(connection);
        let closing = &mut self.closing;
        let shutdown = async {
            if closing.wait_for(|closing| *closing).await.is_err() {
                // The listener is gone without a shutdown: nothing to wait for.
                std::future::pending::<()>().await;
            }
            CloseKind::Shutdown
        };
        let idle = async {
            self.activity.idle_for(self.limits.idle_timeout).await;
            CloseKind::Idle
        };
        let why = tokio::select! {
            ended = connection.as_mut() => return ended.map_err(Into::into),
            why = shutdown => why,
            why = idle => why,
        };
        if why == CloseKind::Idle {
            tracing::debug!("connection idle; closing");
            self.metrics.idle_closed.increment(1);
        }
        connection.as_mut().graceful_shutdown();
        connection.await.map_err(Into::into)
    }
}

/// Counts a connection that hyper ended for a limit: a request head too
/// large (hyper answered 431 or 414) or too slow.
fn count_ending(error: &(dyn Error + 'static), metrics: &ListenerMetrics) {
    let Some(error) = error.downcast_ref::<hyper::Error>() else {
        return;
    };
    if error.is_parse_too_large() {
        metrics.header_too_large.increment(1);
    } else if error.is_timeout() {
        metrics.header_timeout.increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn accept_failures_are_summed_into_one_warn_line_per_period() {
        let mut errors = AcceptErrors::default();
        let error = io::Error::from_raw_os_error(24); // EMFILE
        assert!(errors.record(&error), "the first failure is logged");
        let quiet = (0..500).filter(|_| errors.record(&error)).count();
        assert_eq!(quiet, 0);
        assert_eq!(errors.since, 500);

        tokio::time::advance(ACCEPT_WARN_EVERY).await;
        assert!(errors.record(&error));
        assert_eq!(errors.since, 0);
    }
}
