//! A real hyper server standing in for the protected service.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the stand-in answers.
#[derive(Clone, Default)]
pub struct Behaviour {
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// Answer with this status instead of 200.
    pub status: Option<StatusCode>,
}

/// A running stand-in service that echoes what it received as JSON:
/// `{"method", "path", "query", "headers": {name: [values]}, "body_len",
/// "trailers": {name: [values]} or null}`.
pub struct Upstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    /// Requests being answered now, and the most there ever were at once.
    busy: Arc<Busy>,
}

/// Counts requests being answered at once.
#[derive(Default)]
struct Busy {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Busy {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Upstream {
    /// Starts an echo upstream.
    pub async fn start() -> Self {
        Self::with(Behaviour::default()).await
    }

    /// Starts an upstream with a behaviour.
    pub async fn with(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let busy = Arc::new(Busy::default());
        let counted = busy.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let behaviour = behaviour.clone();
                let counter = counter.clone();
                let busy = counted.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        busy.enter();
                        let answering = answer(request, behaviour.clone());
                        let busy = busy.clone();
                        async move {
                            let answered = answering.await;
                            busy.leave();
                            answered
                        }
                    });
                    let _ = Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream { addr, hits, busy }
    }

    /// Starts an upstream that accepts WebSocket handshakes: it answers
    /// `101`, sends [`WEBSOCKET_GREETING`], then echoes every byte back.
    /// Requests that are not handshakes get the usual JSON echo.
    pub async fn websocket() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        switch_or_answer(request)
                    });
                    let _ = Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            hits,
            busy: Arc::default(),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests reached it.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The most requests it was answering at one time (counted from the
    /// head's arrival until the answer's head is ready; the WebSocket
    /// upstream counts none).
    pub fn peak(&self) -> usize {
        self.busy.peak.load(Ordering::SeqCst)
    }
}

/// What the WebSocket upstream sends first after switching protocols, so a
/// test sees bytes flow upstream to downstream before it sends any.
pub const WEBSOCKET_GREETING: &[u8] = b"hello from upstream\n";

async fn switch_or_answer(
    mut request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let is_handshake = request
        .headers()
        .get(http::header::UPGRADE)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !is_handshake {
        return answer(request, Behaviour::default()).await;
    }

    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let mut io = TokioIo::new(upgraded);
        if io.write_all(WEBSOCKET_GREETING).await.is_err() {
            return;
        }
        let mut buffer = [0u8; 4096];
        // Ends when the peer closes or the connection fails.
        while let Ok(read) = io.read(&mut buffer).await {
            if read == 0 || io.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    });

    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(
        http::header::UPGRADE,
        http::HeaderValue::from_static("websocket"),
    );
    headers.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("upgrade"),
    );
    Ok(response)
}

/// Answers like the echo upstream: the request as JSON (see [`Upstream`]).
pub async fn answer(
    request: Request<Incoming>,
    behaviour: Behaviour,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(delay) = behaviour.delay {
        tokio::time::sleep(delay).await;
    }
    let headers = header_json(request.headers());
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let version = format!("{:?}", request.version());
    let (body, trailers) = match request.into_body().collect().await {
        Ok(collected) => {
            let trailers = collected.trailers().map(header_json);
            (collected.to_bytes(), trailers)
        }
        Err(_) => (Bytes::new(), None),
    };
    let echo = json!({
        "method": method,
        "path": path,
        "query": query,
        "version": version,
        "headers": headers,
        "body_len": body.len(),
        "trailers": trailers,
    });
    let mut response = Response::new(Full::new(Bytes::from(echo.to_string())));
    *response.status_mut() = behaviour.status.unwrap_or(StatusCode::OK);
    response.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Renders headers as `{name: [values]}`.
fn header_json(headers: &http::HeaderMap) -> Value {
    let mut map = Map::new();
    for name in headers.keys() {
        let values = headers
            .get_all(name)
            .iter()
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        map.insert(name.as_str().to_owned(), Value::Array(values));
    }
    Value::Object(map)
}
