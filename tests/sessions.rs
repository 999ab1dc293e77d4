//! A downstream HTTP/1 connection's own upstream connection: kept between
//! its requests, replaced when the upstream closes it or a reload moves the
//! upstream, and never handed a response that is not its own.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::wire::request_head;
use support::{Harness, RawConnection};

/// A raw HTTP/1.1 upstream that counts its connections and requests and
/// answers each request (heads only, no bodies expected) with its own name
/// as the body; HEAD gets the head alone, as RFC 9110 section 9.3.2 says.
struct CountingUpstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl CountingUpstream {
    /// Starts it; with `close_after_answer`, it closes each connection
    /// right after its first answer without saying so in the answer, as a
    /// server whose keep-alive timeout ran out would.
    async fn start(name: &'static str, close_after_answer: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (accepted, answered) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let answered = answered.clone();
                tokio::spawn(serve(stream, name, close_after_answer, answered));
            }
        });
        CountingUpstream {
            addr,
            connections,
            requests,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: TcpStream, name: &str, close: bool, answered: Arc<AtomicUsize>) {
    let mut pending = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = pending.drain(..end + 4).collect();
            answered.fetch_add(1, Ordering::SeqCst);
            let mut answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", name.len());
            if !head.starts_with(b"HEAD ") {
                answer.push_str(name);
            }
            if stream.write_all(answer.as_bytes()).await.is_err() || close {
                return;
            }
        }
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await;
        match read {
            Ok(Ok(read)) if read > 0 => pending.extend_from_slice(&chunk[..read]),
            _ => return,
        }
    }
}

fn get(path: &str) -> Vec<u8> {
    request_head("GET", path, &[])
}

#[tokio::test]
async fn requests_on_one_downstream_connection_share_one_upstream_connection() {
    let upstream = CountingUpstream::start("first", false).await;
    let tollgate = Harness::new(upstream.addr).start().await;

    let mut downstream = RawConnection::connect(tollgate.addr()).await;
    for _ in 0..3 {
        let answer = downstream.send(&get("/public/x")).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.text(), "first");
    }
    assert_eq!(upstream.connections(), 1);

    let mut other = RawConnection::connect(tollgate.addr()).await;
    assert_eq!(other.send(&get("/public/y")).await.text(), "first");
    assert_eq!(
        upstream.connections(),
        2,
        "a second downstream, a second upstream"
    );
    assert_eq!(upstream.requests(), 4);
}

#[tokio::test]
async fn a_kept_connection_the_upstream_closed_is_replaced() {
    let upstream = CountingUpstream::start("fresh", true).await;
    let tollgate = Harness::new(upstream.addr).start().await;

    let mut downstream = RawConnection::connect(tollgate.addr()).await;
    for _ in 0..3 {
        let answer = downstream.send(&get("/public/x")).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.text(), "fresh");
        // Long enough for the upstream's close to reach tollgate.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(upstream.connections(), 3);
    assert_eq!(upstream.requests(), 3);
}

#[tokio::test]
async fn a_head_answer_leaves_the_kept_connection_usable() {
    let upstream = CountingUpstream::start("after-head", false).await;
    let tollgate = Harness::new(upstream.addr).start().await;

    let mut downstream = TcpStream::connect(tollgate.addr()).await.expect("connect");
    downstream
        .write_all(&request_head("HEAD", "/public/x", &[]))
        .await
        .expect("write");
    let head = read_head(&mut downstream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 10"),
        "{head}"
    );

    let mut downstream = RawConnection::from_stream(downstream);
    let answer = downstream.send(&get("/public/x")).await;
    assert_eq!(answer.text(), "after-head");
    assert_eq!(upstream.connections(), 1, "the HEAD's connection was kept");
}

#[tokio::test]
async fn after_a_reload_that_moves_the_upstream_a_kept_connection_is_not_used() {
    let before = CountingUpstream::start("before", false).await;
    let after = CountingUpstream::start("after", false).await;
    let tollgate = Harness::new(before.addr).start().await;

    let mut downstream = RawConnection::connect(tollgate.addr()).await;
    assert_eq!(downstream.send(&get("/public/x")).await.text(), "before");
    tollgate.reload(Harness::new(after.addr));
    assert_eq!(downstream.send(&get("/public/x")).await.text(), "after");

    assert_eq!((before.requests(), after.requests()), (1, 1));
}

/// Reads a response head (up to the empty line) and nothing more.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("a head within 5 s")
            .expect("read");
        assert_eq!(read, 1, "closed before the end of the head");
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("an ASCII head")
}
