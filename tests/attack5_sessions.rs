//! The fifth attack run, against a downstream HTTP/1 connection's own
//! upstream connection (`src/proxy/forward/session.rs`): upstreams that
//! frame their answers badly or answer early, interim answers, bodiless
//! answers, and identity on a kept connection. Every test here asserts
//! what a correct proxy must do; those that failed when written are
//! marked as findings in their doc comment. Real tollgate, hand-written
//! upstreams on 127.0.0.1:0, real HS256 tokens, loopback only.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::recorder::Recorder;
use support::wire::request_head;
use support::{Harness, RawConnection, Tollgate};

/// How long any one step may take before the test calls it a hang.
const STEP: Duration = Duration::from_secs(5);

/// What a scripted upstream answers: given the request's index on its
/// connection (from 0) and its head, the exact bytes to write back.
type Script = Arc<dyn Fn(usize, &str) -> Vec<u8> + Send + Sync>;

/// A raw HTTP/1.1 upstream that reads request heads and `Content-Length`
/// bodies and writes whatever its script says, byte for byte, so it can
/// frame an answer wrongly on purpose. Records each request's head.
struct Scripted {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
}

impl Scripted {
    async fn start(script: impl Fn(usize, &str) -> Vec<u8> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let script: Script = Arc::new(script);
        let connections = Arc::new(AtomicUsize::new(0));
        let (seen, accepted) = (heads.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve_scripted(stream, script.clone(), seen.clone()));
            }
        });
        Scripted {
            addr,
            heads,
            connections,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("heads").clone()
    }
}

async fn serve_scripted(mut stream: TcpStream, script: Script, heads: Arc<Mutex<Vec<String>>>) {
    let mut pending = Vec::new();
    let mut index = 0;
    loop {
        while let Some(end) = find(&pending, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            let length = content_length(&head);
            if pending.len() < end + 4 + length {
                break;
            }
            pending.drain(..end + 4 + length);
            heads.lock().expect("heads").push(head.clone());
            let answer = script(index, &head);
            index += 1;
            if stream.write_all(&answer).await.is_err() {
                return;
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Ok(Ok(read)) if read > 0 => pending.extend_from_slice(&chunk[..read]),
            _ => return,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

/// A keep-alive `200` whose body is `text`.
fn ok(text: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    )
    .into_bytes()
}

/// The path of a request head's request line.
fn path_of(head: &str) -> String {
    head.split(' ').nth(1).unwrap_or("").to_owned()
}

/// Sends `GET path` on `downstream` and returns the answer's body, failing
/// the test instead of hanging.
async fn get_text(downstream: &mut RawConnection, path: &str) -> (u16, String) {
    let request = request_head("GET", path, &[]);
    let answer = tokio::time::timeout(STEP, downstream.send(&request))
        .await
        .expect("an answer in time");
    (answer.status.as_u16(), answer.text())
}

/// Sends three GETs, one after the other, on one downstream connection,
/// pausing `pause` after each: every one must get 200 with its own path.
async fn each_request_gets_its_own_answer(tollgate: &Tollgate, pause: Duration) {
    let mut downstream = RawConnection::connect(tollgate.addr()).await;
    for round in 0..3 {
        let path = format!("/public/{round}");
        let (status, text) = get_text(&mut downstream, &path).await;
        assert_eq!((status, text.as_str()), (200, path.as_str()));
        tokio::time::sleep(pause).await;
    }
}

/// An upstream that follows its answer with a second, unsolicited one in
/// the same write: the extra answer must never reach the next request.
#[tokio::test]
async fn an_unsolicited_extra_answer_never_reaches_the_next_request() {
    let upstream = Scripted::start(|_, head| {
        let mut answer = ok(&path_of(head));
        answer.extend(ok("INJECTED"));
        answer
    })
    .await;
    let tollgate = Harness::new(upstream.addr).start().await;

    let mut downstream = RawConnection::connect(tollgate.addr()).await;
    for round in 0..4 {
        let path = format!("/public/{round}");
        let (status, text) = get_text(&mut downstream, &path).await;
        assert_ne!(text, "INJECTED", "round {round}");
        assert_eq!((status, text.as_str()), (200, path.as_str()));
    }
}

/// The same extra answer, written a little later, while the kept upstream
/// connection sits idle between two requests.
#[tokio::test]
async fn an_extra_answer_sent_while_idle_never_reaches_the_next_request() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer_then_inject_later(stream));
        }
    });
    let tollgate = Harness::new(addr).start().await;

    // The injection lands while nothing is asked.
    each_request_gets_its_own_answer(&tollgate, Duration::from_millis(150)).await;
}

/// Answers each request with its path, then 50 ms later writes an extra
/// answer nobody asked for.
async fn answer_then_inject_later(mut stream: TcpStream) {
    let mut pending = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = find(&pending, b"\r\n\r\n") {
            let head: Vec<u8> = pending.drain(..end + 4).collect();
            let head = String::from_utf8_lossy(&head).into_owned();
            if stream.write_all(&ok(&path_of(&head))).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            if stream.write_all(&ok("INJECTED")).await.is_err() {
                return;
            }
        }
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Ok(Ok(read)) if read > 0 => pending.extend_from_slice(&chunk[..read]),
            _ => return,
        }
    }
}

/// A body longer than its `Content-Length`: the surplus is not the start
/// of the next answer.
#[tokio::test]
async fn a_body_longer_than_its_content_length_does_not_leak_into_the_next_answer() {
    let upstream = Scripted::start(|_, head| {
        let path = path_of(head);
        let surplus = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nINJECTED";
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{path}{surplus}",
            path.len()
        )
        .into_bytes()
    })
    .await;
    let tollgate = Harness::new(upstream.addr).start().await;

    each_request_gets_its_own_answer(&tollgate, Duration::ZERO).await;
}

/// `100 Continue` and `103 Early Hints` before the final answer, then the
/// next request on the same connections gets its own answer.
#[tokio::test]
async fn interim_answers_leave_the_kept_connection_in_step() {
    let upstream = Scripted::start(|_, head| {
        let mut answer = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
        answer.extend(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n");
        answer.extend(ok(&path_of(head)));
        answer
    })
    .await;
    let tollgate = Harness::new(upstream.addr).start().await;

    each_request_gets_its_own_answer(&tollgate, Duration::ZERO).await;
}

/// A chunked answer with trailers, then a `204` and a `304` that carry a
/// `Content-Length` but no body, as RFC 9110 section 8.6 allows: each
/// following request gets its own answer.
#[tokio::test]
async fn chunked_trailers_204_and_304_keep_the_connection_in_step() {
    let upstream = Scripted::start(|_, head| {
        let path = path_of(head);
        match path.as_str() {
            "/public/n" => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
            "/public/m" => b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n".to_vec(),
            _ => format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n\
                 {:x}\r\n{path}\r\n0\r\nX-Sum: 1\r\n\r\n",
                path.len()
            )
            .into_bytes(),
        }
    })
    .await;
    let tollgate = Harness::new(upstream.addr).start().await;

    let mut downstream = RawConnection::connect(tollgate.addr()).await;
    for round in 0..2 {
        let path = format!("/public/c{round}");
        assert_eq!(get_text(&mut downstream, &path).await, (200, path.clone()));
        assert_eq!(get_text(&mut downstream, "/public/n").await.0, 204);
        assert_eq!(get_text(&mut downstream, "/public/m").await.0, 304);
    }
}

/// Pipelined requests, written in one go before any answer is read, come
/// back in order, each with its own body.
#[tokio::test]
async fn pipelined_requests_get_their_own_answers_in_order() {
    let upstream = Scripted::start(|_, head| ok(&path_of(head))).await;
    let tollgate = Harness::new(upstream.addr).start().await;

    let mut downstream = RawConnection::connect(tollgate.addr()).await;
    let mut burst = Vec::new();
    for round in 0..8 {
        burst.extend(request_head("GET", &format!("/public/p{round}"), &[]));
    }
    downstream.write(&burst).await;
    for round in 0..8 {
        let answer = tokio::time::timeout(STEP, downstream.read_answer())
            .await
            .expect("an answer in time");
        assert_eq!(answer.text(), format!("/public/p{round}"));
    }
    assert_eq!(upstream.heads().len(), 8, "each request forwarded once");
    assert_eq!(upstream.connections(), 1);
}

/// Requests with bodies, whole before their answers, keep their upstream
/// connection: closing a connection whose request is still being written
/// must not close the ones that are done.
#[tokio::test]
async fn requests_with_bodies_keep_their_upstream_connection() {
    let upstream = Scripted::start(|_, head| ok(&path_of(head))).await;
    let tollgate = Harness::new(upstream.addr).start().await;

    let mut downstream = RawConnection::connect(tollgate.addr()).await;
    for round in 0..3 {
        let path = format!("/public/b{round}");
        let mut request = request_head("POST", &path, &["Content-Length: 5"]);
        request.extend(b"hello");
        let answer = tokio::time::timeout(STEP, downstream.send(&request))
            .await
            .expect("an answer in time");
        assert_eq!(answer.text(), path);
        assert_eq!(get_text(&mut downstream, "/public/g").await.1, "/public/g");
    }
    assert_eq!(upstream.connections(), 1);
}

/// A token-less request after an authenticated one on the same
/// connection: the protected one is refused, and the public one reaches
/// the upstream with no identity header of the first caller.
#[tokio::test]
async fn identity_does_not_carry_over_to_the_next_request_on_a_connection() {
    let recorder = Recorder::start().await;
    let tollgate = Harness::new(recorder.addr()).start().await;
    let token = support::keys().mint("HS256", &support::claims("alice"));
    let bearer = format!("Authorization: Bearer {token}");

    let mut downstream = RawConnection::connect(tollgate.addr()).await;
    let first = downstream
        .send(&request_head("GET", "/profile", &[&bearer]))
        .await;
    assert_eq!(first.status, 200);
    let second = downstream.send(&request_head("GET", "/profile", &[])).await;
    assert_eq!(second.status, 401);
    let third = downstream
        .send(&request_head("GET", "/public/x", &[]))
        .await;
    assert_eq!(third.status, 200);

    let requests = recorder.requests();
    assert_eq!(requests.len(), 2, "the 401 never reached the upstream");
    assert_eq!(requests[0].header("x-user-id"), vec!["alice".to_owned()]);
    for name in ["x-user-id", "x-user-email", "x-user-roles"] {
        assert!(requests[1].header(name).is_empty(), "{name} carried over");
    }
    assert_eq!(recorder.connections().len(), 1, "one kept connection");
}

/// A downstream that leaves in the middle of a large body: the next
/// downstream connection gets its own whole answer, never the rest.
#[tokio::test]
async fn a_downstream_that_leaves_mid_body_does_not_hand_the_rest_to_another() {
    let big = "x".repeat(4 * 1024 * 1024);
    let upstream = Scripted::start(move |_, head| {
        let path = path_of(head);
        if path == "/public/big" {
            ok(&big)
        } else {
            ok(&path)
        }
    })
    .await;
    let tollgate = Harness::new(upstream.addr).start().await;

    for round in 0..3 {
        let mut leaving = TcpStream::connect(tollgate.addr()).await.expect("connect");
        leaving
            .write_all(&request_head("GET", "/public/big", &[]))
            .await
            .expect("write");
        let mut some = [0u8; 1024];
        let read = tokio::time::timeout(STEP, leaving.read(&mut some))
            .await
            .expect("bytes in time")
            .expect("read");
        assert!(read > 0);
        drop(leaving);

        let mut next = RawConnection::connect(tollgate.addr()).await;
        let path = format!("/public/after{round}");
        assert_eq!(get_text(&mut next, &path).await, (200, path.clone()));
    }
}

/// Finding: an upstream that answers before it has read the whole request
/// body (an early `413` or `200`, which RFC 9112 section 9.3 lets a server
/// send) left the downstream connection stuck: the rest of the body was
/// never moved, since the upstream connection that would pull it sat in
/// the session undriven, so the next request on that connection was
/// never read (until `idle_timeout`). Through the pool, the connection's
/// own task kept pulling it. Answering the next request and closing the
/// connection after the early answer are both fine; hanging is not.
#[tokio::test]
async fn an_answer_before_the_whole_request_body_does_not_stall_the_connection() {
    const BODY: usize = 256 * 1024;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer_early(stream));
        }
    });
    let tollgate = Harness::new(addr).start().await;

    let mut downstream = TcpStream::connect(tollgate.addr()).await.expect("connect");
    let length = format!("Content-Length: {BODY}");
    let mut start = request_head("POST", "/public/upload", &[&length]);
    start.extend(vec![b'a'; 1024]);
    downstream.write_all(&start).await.expect("write");
    let early = tokio::time::timeout(STEP, read_until(&mut downstream, b"early"))
        .await
        .expect("the early answer in time");
    assert!(early.is_some(), "the early answer arrived");

    // The rest of the body and the next request; a connection closed by
    // now may refuse them.
    let mut rest = vec![b'a'; BODY - 1024];
    rest.extend(request_head("GET", "/public/next", &[]));
    let _ = tokio::time::timeout(STEP, downstream.write_all(&rest)).await;
    let next = tokio::time::timeout(STEP, read_until(&mut downstream, b"/public/next")).await;
    assert!(
        next.is_ok(),
        "the connection neither answered the next request nor closed"
    );
}

/// Reads until the bytes read hold `needle` (`Some`, with them) or the
/// peer closes or resets (`None`).
async fn read_until(stream: &mut TcpStream, needle: &[u8]) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    while find(&seen, needle).is_none() {
        match stream.read(&mut chunk).await {
            Ok(read) if read > 0 => seen.extend_from_slice(&chunk[..read]),
            _ => return None,
        }
    }
    Some(seen)
}

/// Answers the first request as soon as its head is in, then reads its
/// whole body, then answers each later request with its path.
async fn answer_early(mut stream: TcpStream) {
    let mut pending = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut first = true;
    loop {
        while let Some(end) = find(&pending, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            let length = content_length(&head);
            if first {
                first = false;
                if stream.write_all(&ok("early")).await.is_err() {
                    return;
                }
            }
            if pending.len() < end + 4 + length {
                break;
            }
            pending.drain(..end + 4 + length);
            if length == 0 && stream.write_all(&ok(&path_of(&head))).await.is_err() {
                return;
            }
        }
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Ok(Ok(read)) if read > 0 => pending.extend_from_slice(&chunk[..read]),
            _ => return,
        }
    }
}

/// Request smuggling through the kept upstream connection: a request
/// framed by both `Transfer-Encoding: chunked` and a `Content-Length`
/// (RFC 9112 section 6.3: chunked wins), whose body hides a second
/// request, then a plain one on the same downstream connection. The
/// recording upstream must frame the first request alone, with an empty
/// body and nothing left over.
#[tokio::test]
async fn a_cl_te_request_smuggles_nothing_onto_the_kept_connection() {
    let recorder = Recorder::start().await;
    let tollgate = Harness::new(recorder.addr()).start().await;

    let hidden = "GET /admin/x HTTP/1.1\r\nHost: tollgate.test\r\n\r\n";
    let chunk = format!("0\r\n\r\n{hidden}");
    let length = format!("Content-Length: {}", chunk.len());
    let mut first = request_head(
        "POST",
        "/public/a",
        &["Transfer-Encoding: chunked", &length],
    );
    first.extend(chunk.as_bytes());
    // A plain request after it on the same connection.
    first.extend(request_head("GET", "/public/b", &[]));
    let answers = support::raw(tollgate.addr(), &first).await;
    // hyper frames it as chunked (an empty body), answers, and closes the
    // downstream connection, as RFC 9112 section 6.3 asks of a server that
    // sees both: neither the hidden request nor the next one is read.
    assert!(answers.starts_with("HTTP/1.1 200"), "{answers}");
    assert!(answers.contains("connection: close"), "{answers}");

    let requests = recorder.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].request_line(), "POST /public/a HTTP/1.1");
    assert!(requests[0].body.is_empty());
    for connection in recorder.connections() {
        assert!(connection.leftover.is_empty(), "{:?}", connection.leftover);
    }
}

/// A `101` to a request that asked for no upgrade ends that upstream
/// connection; the next downstream connection gets its own answer.
#[tokio::test]
async fn a_101_to_a_plain_request_leaves_other_connections_whole() {
    let upstream = Scripted::start(|_, head| {
        if path_of(head) == "/public/switch" {
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: evil\r\n\r\nEVIL"
                .to_vec()
        } else {
            ok(&path_of(head))
        }
    })
    .await;
    let tollgate = Harness::new(upstream.addr).start().await;

    let mut first = TcpStream::connect(tollgate.addr()).await.expect("connect");
    first
        .write_all(&request_head("GET", "/public/switch", &[]))
        .await
        .expect("write");
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(STEP, first.read_to_end(&mut seen)).await;
    let seen = String::from_utf8_lossy(&seen).into_owned();
    assert!(!seen.contains("EVIL"), "upstream bytes tunnelled: {seen}");

    let mut next = RawConnection::connect(tollgate.addr()).await;
    assert_eq!(
        get_text(&mut next, "/public/after").await,
        (200, "/public/after".to_owned())
    );
}
