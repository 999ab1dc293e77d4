//! A raw-TCP upstream that records exactly the bytes it receives, for
//! request smuggling tests.
//!
//! A hyper upstream would frame requests the way tollgate's own hyper does,
//! so a disagreement between the two could never show. This one frames them
//! by hand, as a plain HTTP/1.1 server would (`Transfer-Encoding: chunked`
//! first, then `Content-Length`, else no body), records every request it
//! parsed and every byte on each connection, and answers each request with a
//! fixed keep-alive `200 ok`. A request smuggled through tollgate would show
//! up here as an extra recorded request, or as bytes left over.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a recorded connection may sit idle before the recorder drops
/// it, so no test leaves a task behind for long.
const IDLE: Duration = Duration::from_secs(10);

/// The answer to every request.
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// One request as the recorder framed it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The request line and headers, without the final empty line.
    pub head: String,
    /// The body, de-chunked when it was chunked.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The request line, such as `GET /public/x HTTP/1.1`.
    pub fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    /// Every value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }
}

/// What one connection carried.
#[derive(Clone, Debug, Default)]
pub struct Connection {
    /// Every byte received, in order.
    pub raw: Vec<u8>,
    /// The requests framed from them.
    pub requests: Vec<Recorded>,
    /// Bytes received after the last complete request.
    pub leftover: Vec<u8>,
}

type Log = Arc<Mutex<Vec<Arc<Mutex<Connection>>>>>;

/// A running recording upstream.
pub struct Recorder {
    addr: SocketAddr,
    log: Log,
}

impl Recorder {
    /// Starts it on 127.0.0.1:0.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind recorder");
        let addr = listener.local_addr().expect("recorder addr");
        let log: Log = Arc::default();
        let connections = log.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let connection = Arc::new(Mutex::new(Connection::default()));
                connections
                    .lock()
                    .expect("recorder log")
                    .push(connection.clone());
                tokio::spawn(serve(stream, connection));
            }
        });
        Recorder { addr, log }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A snapshot of every connection so far.
    pub fn connections(&self) -> Vec<Connection> {
        self.log
            .lock()
            .expect("recorder log")
            .iter()
            .map(|c| c.lock().expect("connection log").clone())
            .collect()
    }

    /// Every request framed so far, over all connections.
    pub fn requests(&self) -> Vec<Recorded> {
        self.connections()
            .into_iter()
            .flat_map(|c| c.requests)
            .collect()
    }
}

async fn serve(mut stream: TcpStream, log: Arc<Mutex<Connection>>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        while let Some((request, used)) = frame(&pending) {
            pending.drain(..used);
            {
                let mut log = log.lock().expect("connection log");
                log.requests.push(request);
                log.leftover = pending.clone();
            }
            if stream.write_all(ANSWER).await.is_err() {
                return;
            }
        }
        let read = match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
            Ok(Ok(read)) if read > 0 => read,
            _ => return,
        };
        pending.extend_from_slice(&chunk[..read]);
        let mut log = log.lock().expect("connection log");
        log.raw.extend_from_slice(&chunk[..read]);
        log.leftover = pending.clone();
    }
}

/// Frames one request from the front of `bytes`; `None` until complete.
fn frame(bytes: &[u8]) -> Option<(Recorded, usize)> {
    let head_end = find(bytes, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let mut at = head_end + 4;
    let recorded = |body| Recorded {
        head: head.clone(),
        body,
    };
    let probe = recorded(Vec::new());
    let chunked = probe
        .header("transfer-encoding")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        let mut body = Vec::new();
        loop {
            let line_end = at + find(&bytes[at..], b"\r\n")?;
            let line = String::from_utf8_lossy(&bytes[at..line_end]).into_owned();
            let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
            at = line_end + 2;
            if size == 0 {
                // Trailers, then the empty line.
                let end = at + find(&bytes[at..], b"\r\n")?;
                if end == at {
                    return Some((recorded(body), at + 2));
                }
                let trailers_end = at + find(&bytes[at..], b"\r\n\r\n")?;
                return Some((recorded(body), trailers_end + 4));
            }
            let data = bytes.get(at..at + size)?;
            body.extend_from_slice(data);
            at += size;
            bytes.get(at..at + 2)?;
            at += 2;
        }
    }
    let length = probe
        .header("content-length")
        .first()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let body = bytes.get(at..at + length)?.to_vec();
    Some((recorded(body), at + length))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
