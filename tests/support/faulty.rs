//! A service that misbehaves on request, written on raw TCP so it can do
//! what no HTTP library would: answer bytes that are not HTTP, reset the
//! connection halfway through a body, or stall before or inside a
//! response.
//!
//! The last path segment picks the fault (`/api/garbage`, say); any other
//! path gets a small well-formed 200, so one stand-in serves both the
//! faulty request and the normal traffic that must keep flowing beside it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long the slow faults stall: well past the 300 ms upstream timeout
/// the fault tests configure, well under any test deadline.
pub const STALL: Duration = Duration::from_millis(1200);

/// The body the slow-body fault sends, one piece per [`SLOW_BODY_GAP`].
pub const SLOW_BODY: [&str; 4] = ["first-", "second-", "third-", "last"];

/// The pause before each piece of [`SLOW_BODY`]: four of them add up to
/// more than the upstream timeout.
pub const SLOW_BODY_GAP: Duration = Duration::from_millis(300);

/// The length the reset fault announces, and how much of it it sends.
pub const RESET_DECLARED: usize = 1000;
/// See [`RESET_DECLARED`].
pub const RESET_SENT: usize = 100;

/// What [`FaultyUpstream`] answers normal requests with.
pub const NORMAL_BODY: &str = "ok";

/// What the garbage fault writes instead of a response: an SSH banner and
/// binary noise, as a service on the wrong port would.
const GARBAGE: &[u8] = b"SSH-2.0-OpenSSH_9.6\r\n\x00\xff\xfe\x01binary\x80\x81";

/// A running misbehaving service.
pub struct FaultyUpstream {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl FaultyUpstream {
    /// Starts it on 127.0.0.1:0.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind faulty upstream");
        let addr = listener.local_addr().expect("faulty upstream addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    if let Some(path) = read_request_path(&stream).await {
                        counter.fetch_add(1, Ordering::SeqCst);
                        // Write errors are expected: tollgate hangs up on
                        // a stalled answer once its timeout passes.
                        let _ = answer(stream, &path).await;
                    }
                });
            }
        });
        FaultyUpstream { addr, requests }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many request heads it has read.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads a request head (the tests send no bodies) and returns its path.
async fn read_request_path(stream: &TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        stream.readable().await.ok()?;
        match stream.try_read(&mut chunk) {
            Ok(0) => return None,
            Ok(read) => head.extend_from_slice(&chunk[..read]),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return None,
        }
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next()?;
    line.split(' ').nth(1).map(str::to_owned)
}

async fn answer(mut stream: TcpStream, path: &str) -> std::io::Result<()> {
    match path.rsplit('/').next().unwrap_or_default() {
        "garbage" => {
            stream.write_all(GARBAGE).await?;
            // Keep the connection open a while: the garbage alone, not a
            // close, must be what makes tollgate give up.
            tokio::time::sleep(STALL).await;
        }
        "reset-mid-body" => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {RESET_DECLARED}\r\n\r\n");
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&[b'x'; RESET_SENT]).await?;
            // Let tollgate read the head and the first bytes before the
            // reset: a reset that overtakes them would discard them.
            tokio::time::sleep(Duration::from_millis(200)).await;
            reset(stream)?;
        }
        "reset-before-head" => reset(stream)?,
        "status-999" => {
            let head = "HTTP/1.1 999 Weird\r\nContent-Length: 5\r\nConnection: close\r\n\r\nweird";
            stream.write_all(head.as_bytes()).await?;
        }
        "slow-head" => {
            tokio::time::sleep(STALL).await;
            write_normal(&mut stream).await?;
        }
        "slow-body" => {
            let length: usize = SLOW_BODY.iter().map(|piece| piece.len()).sum();
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n");
            stream.write_all(head.as_bytes()).await?;
            for piece in SLOW_BODY {
                tokio::time::sleep(SLOW_BODY_GAP).await;
                stream.write_all(piece.as_bytes()).await?;
            }
        }
        _ => write_normal(&mut stream).await?,
    }
    Ok(())
}

async fn write_normal(stream: &mut TcpStream) -> std::io::Result<()> {
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{NORMAL_BODY}",
        NORMAL_BODY.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Closes with SO_LINGER 0, so the peer gets a TCP RST, not a FIN.
fn reset(stream: TcpStream) -> std::io::Result<()> {
    stream.set_zero_linger()?;
    drop(stream);
    Ok(())
}

/// Reads from `stream` until the peer closes or resets, or `within`
/// passes; returns what arrived and whether the connection ended.
pub async fn read_until_end(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let mut seen = Vec::new();
    let reading = async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => seen.extend_from_slice(&buffer[..read]),
            }
        }
    };
    let ended = tokio::time::timeout(within, reading).await.is_ok();
    (seen, ended)
}

// --- RestartingUpstream ---

/// An echo service (see [`super::upstream::answer`]) that keeps
/// connections alive and can restart: every connection closes and the
/// port is listened on again, as when the service behind a sidecar is
/// redeployed while tollgate holds pooled connections to it.
pub struct RestartingUpstream {
    addr: SocketAddr,
    accept: Option<tokio::task::JoinHandle<()>>,
    requests: Arc<AtomicUsize>,
}

impl RestartingUpstream {
    /// Starts it on 127.0.0.1:0.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind restarting upstream");
        let addr = listener.local_addr().expect("restarting upstream addr");
        let mut upstream = RestartingUpstream {
            addr,
            accept: None,
            requests: Arc::new(AtomicUsize::new(0)),
        };
        upstream.serve(listener);
        upstream
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests it has answered, across restarts.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Closes the listener and every open connection, then listens on the
    /// same port again.
    pub async fn restart(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        socket.bind(self.addr).expect("bind the same port again");
        self.serve(socket.listen(64).expect("listen"));
    }

    fn serve(&mut self, listener: TcpListener) {
        let requests = self.requests.clone();
        self.accept = Some(tokio::spawn(async move {
            // Dropped with this task, which closes every connection.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let requests = requests.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        requests.fetch_add(1, Ordering::SeqCst);
                        super::upstream::answer(request, super::upstream::Behaviour::default())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
    }
}
