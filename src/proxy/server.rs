//! Accepting connections: HTTP/1.1 and HTTP/2 (prior knowledge) on one
//! listener, or HTTPS with HTTP/2 picked by ALPN; one task per connection,
//! and a graceful drain on shutdown.

mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub use self::tls::ServerTls;
use super::Body;

/// How long a client may take to send a request head before the connection
/// is closed; bounds what a slow-headers client can hold.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an HTTP/2 connection is pinged when quiet, and how long the
/// answer may take.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(4);

/// The HTTP/2 connection preface (RFC 9113 section 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits, up to the header timeout, until the client has sent enough to
/// tell HTTP/1 from HTTP/2.
///
/// The protocol detection that precedes hyper's parsers has no timeout of
/// its own: a client that connects and sends nothing, or half the HTTP/2
/// preface, would hold the socket forever. Peeking leaves the bytes for
/// the parser.
async fn request_begins(stream: &TcpStream) -> bool {
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
    tokio::time::timeout(HEADER_READ_TIMEOUT, decided)
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

/// Serves `handler` on `listener` until `shutdown` resolves, then stops
/// accepting, waits up to `drain` for in-flight requests to finish, and
/// closes the connections still open. With `tls`, every connection is
/// HTTPS, with the settings `tls` gives at the moment it is accepted.
///
/// Generic over the handler so that the proxy and the admin listener, and
/// the demo's stand-in services, share one accept loop.
pub async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<ServerTls>,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    // HTTP/2 has no header timeout of its own: pings find peers that went
    // quiet, so a dead or silent connection does not hold a socket forever.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE)
        .keep_alive_timeout(H2_KEEP_ALIVE);
    let graceful = GracefulShutdown::new();
    // Connection tasks live in a set, not detached, so that the ones still
    // busy at the drain deadline can be cut off instead of outliving `serve`.
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        let (stream, remote) = tokio::select! {
            // Reap finished connections, so the set holds only live ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors, mostly: back off instead of
                    // spinning, and let in-flight connections finish.
                    tracing::warn!(error = %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);

        // Taken at accept, so a reload that lands mid-handshake does not
        // mix two certificates in one connection.
        let config = tls.as_ref().map(|current| current());
        let connection = Connection {
            stream,
            remote,
            builder: builder.clone(),
            watcher: graceful.watcher(),
        };
        connections.spawn(connection.serve(config, handler.clone()));
    }

    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::debug!("all connections drained"),
        () = tokio::time::sleep(drain) => {
            tracing::warn!(
                drain_timeout = ?drain,
                "drain deadline passed; closing remaining connections"
            );
        }
    }
    connections.shutdown().await;
}

// --- Connection ---

/// One accepted connection and what serving it takes.
struct Connection {
    stream: TcpStream,
    remote: SocketAddr,
    builder: Builder<TokioExecutor>,
    watcher: Watcher,
}

impl Connection {
    /// Serves requests on the connection until it ends, over TLS with
    /// `tls`; each request carries its [`TransportKind`].
    async fn serve<H, F>(self, tls: Option<Arc<ServerConfig>>, handler: Arc<H>)
    where
        H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
        F: Future<Output = Response<Body>> + Send + 'static,
    {
        let Connection {
            stream,
            remote,
            builder,
            watcher,
        } = self;
        let transport = match tls {
            Some(_) => TransportKind::Tls,
            None => TransportKind::Plain,
        };
        let service = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(transport);
            let response = handler(request, remote);
            async move { Ok::<_, Infallible>(response.await) }
        });

        let ended = match tls {
            None => {
                if !request_begins(&stream).await {
                    tracing::debug!(client.addr = %remote, "no request began in time; closed");
                    return;
                }
                let io = TokioIo::new(stream);
                let connection = builder.serve_connection_with_upgrades(io, service);
                watcher.watch(connection.into_owned()).await
            }
            Some(config) => {
                let accepting = tls::accept(stream, config, HEADER_READ_TIMEOUT, remote);
                let Some(accepted) = accepting.await else {
                    return;
                };
                let io = TokioIo::new(accepted.stream);
                if accepted.is_h2 {
                    // ALPN settled it, and HTTP/2 never upgrades.
                    let h2 = builder.http2_only();
                    let connection = h2.serve_connection(io, service);
                    watcher.watch(connection.into_owned()).await
                } else {
                    // Upgrades (WebSockets) need the auto builder, which
                    // still tells HTTP/1 from HTTP/2 by the first bytes;
                    // the first-byte deadline bounds that wait.
                    let connection = builder.serve_connection_with_upgrades(io, service);
                    watcher.watch(connection.into_owned()).await
                }
            }
        };
        if let Err(error) = ended {
            tracing::debug!(
                client.addr = %remote,
                error = %error,
                "connection ended with an error"
            );
        }
    }
}
