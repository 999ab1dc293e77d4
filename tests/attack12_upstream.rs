//! What a broken or hostile upstream sends back: framing that disagrees
//! with itself, answers nobody asked for, and headers that only make sense
//! on the upstream's own connection.
//!
//! The upstream here is raw TCP, so it can write what no HTTP library
//! would. Each test checks what the caller gets, and that the next request
//! on the same downstream connection is answered as itself: no byte of one
//! answer may leak into the next.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::wire::{RawConnection, request_head};
use support::{Answer, Harness, Tollgate, claims, keys, metric_matching};

/// What the scripted upstream answers a path it has no script for.
const NORMAL: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nnormal";

/// The most connections and requests per connection the scripted upstream
/// serves, so that its loops end by themselves.
const MAX_CONNECTIONS: usize = 64;
const MAX_REQUESTS: usize = 16;

/// How long the scripted upstream waits for a request before it hangs up.
const IDLE: Duration = Duration::from_secs(5);

fn token() -> String {
    keys().mint("HS256", &claims("alice"))
}

fn bearer() -> String {
    format!("Authorization: Bearer {}", token())
}

/// The bytes the upstream writes for a path's last segment.
fn script(name: &str) -> &'static [u8] {
    match name {
        "unasked-switch" => {
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\n\r\nbytes-of-another-protocol"
        }
        "http10" => b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "length-list" => b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
        "length-twice" => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        "no-content" => b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
        "chunked-and-length" => {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n\
              30\r\nabcHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsmuggle\r\n0\r\n\r\n"
        }
        "longer-than-declared" => {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n\
              okHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"
        }
        "early-hints" => {
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\
              Link: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        }
        "trailers" => {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n\
              2\r\nok\r\n0\r\nX-Checksum: abc\r\nConnection: close\r\nKeep-Alive: 5\r\n\
              Transfer-Encoding: chunked\r\nContent-Length: 9\r\nX-Request-Id: spoofed\r\n\r\n"
        }
        "head-with-body" => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        _ => NORMAL,
    }
}

/// Starts an upstream on 127.0.0.1:0 that answers each request on a
/// kept-alive connection with [`script`] of its path, and reports the raw
/// bytes of every request it read.
async fn scripted_upstream() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("upstream addr");
    let (seen, heads) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        for _ in 0..MAX_CONNECTIONS {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve(stream, seen.clone()));
        }
    });
    (addr, heads)
}

async fn serve(mut stream: TcpStream, seen: tokio::sync::mpsc::UnboundedSender<String>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    for _ in 0..MAX_REQUESTS {
        let end = loop {
            if let Some(at) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                break at + 4;
            }
            match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
                Ok(Ok(read)) if read > 0 => buffer.extend_from_slice(&chunk[..read]),
                _ => return,
            }
        };
        // Give a body the time to arrive, then keep it with the head.
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Ok(Ok(read)) =
            tokio::time::timeout(Duration::from_millis(1), stream.read(&mut chunk)).await
        {
            buffer.extend_from_slice(&chunk[..read]);
        }
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        let whole = String::from_utf8_lossy(&buffer).into_owned();
        buffer.clear();
        let _ = seen.send(whole);
        let path = head.split(' ').nth(1).unwrap_or_default();
        let name = path.rsplit('/').next().unwrap_or_default();
        if stream.write_all(script(name)).await.is_err() {
            return;
        }
    }
}

async fn in_front_of(upstream: SocketAddr) -> Tollgate {
    Harness::new(upstream)
        .with_upstream_timeout("2s")
        .start()
        .await
}

/// Sends `<method> /api/<name>` then `GET /api/normal` on one HTTP/1.1
/// connection, and returns both answers.
async fn twice_on_one_connection(tollgate: &Tollgate, method: &str, name: &str) -> [Answer; 2] {
    let stream = TcpStream::connect(tollgate.addr()).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("http1 handshake");
    tokio::spawn(connection);
    let mut answers = Vec::new();
    for (method, path) in [(method, name), ("GET", "normal")] {
        let request = Request::builder()
            .method(method)
            .uri(format!("/api/{path}"))
            .header("host", "tollgate.test")
            .header("authorization", format!("Bearer {}", token()))
            .body(Empty::<Bytes>::new())
            .expect("valid request");
        let sent = tokio::time::timeout(Duration::from_secs(5), sender.send_request(request))
            .await
            .expect("an answer within 5 s")
            .expect("an answer on the same connection");
        answers.push(Answer::read(sent).await);
    }
    let normal = answers.pop().expect("two answers");
    [answers.pop().expect("two answers"), normal]
}

fn assert_normal(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.text(), "normal", "{answer:?}");
}

async fn other_errors(tollgate: &Tollgate) -> f64 {
    metric_matching(
        &tollgate.metrics().await,
        "tollgate_upstream_errors_total",
        &[("target", "upstream"), ("kind", "other")],
    )
}

/// Sends `GET /api/<name>` then `GET /api/normal` on one HTTP/2
/// connection; the first answer is `None` when its stream failed.
async fn twice_over_http2(tollgate: &Tollgate, name: &str) -> (Option<Answer>, Answer) {
    let stream = TcpStream::connect(tollgate.addr()).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(connection);
    let mut answers = Vec::new();
    for path in [name, "normal"] {
        let request = Request::get(format!("http://tollgate.test/api/{path}"))
            .header("authorization", format!("Bearer {}", token()))
            .body(Empty::<Bytes>::new())
            .expect("valid request");
        let sent = tokio::time::timeout(Duration::from_secs(5), sender.send_request(request))
            .await
            .expect("an answer within 5 s");
        answers.push(match sent {
            Ok(response) => Some(Answer::read(response).await),
            Err(_) => None,
        });
    }
    let normal = answers
        .pop()
        .flatten()
        .expect("the normal request answered");
    (answers.pop().flatten(), normal)
}

// --- answers nobody asked for ------------------------------------------------

/// RFC 9110 section 15.2.2: a server switches protocols only when the
/// request asked to, in `Upgrade`. Passed on, a 101 to a plain GET told
/// an HTTP/1.1 caller that the connection now spoke another protocol (and
/// then closed it), and reset an HTTP/2 caller's stream as malformed,
/// while the request counted as forwarded and no upstream error was.
#[tokio::test]
async fn a_switch_of_protocols_nobody_asked_for_gets_502() {
    let (upstream, _heads) = scripted_upstream().await;
    let tollgate = in_front_of(upstream).await;

    let [switched, next] = twice_on_one_connection(&tollgate, "GET", "unasked-switch").await;
    assert_eq!(switched.status, StatusCode::BAD_GATEWAY, "{switched:?}");
    assert_normal(&next);
    assert_eq!(other_errors(&tollgate).await, 1.0);

    let (switched, next) = twice_over_http2(&tollgate, "unasked-switch").await;
    let switched = switched.expect("an answer, not a reset stream");
    assert_eq!(switched.status, StatusCode::BAD_GATEWAY, "{switched:?}");
    assert_normal(&next);
    assert_eq!(other_errors(&tollgate).await, 2.0);
    tollgate.shutdown().await;
}

// --- the upstream's own connection --------------------------------------------

/// RFC 9110 section 6.2: an intermediary sends its own HTTP version. An
/// HTTP/1.0 upstream's version was passed on, so the HTTP/1.1 caller got
/// `HTTP/1.0 200` and hyper, seeing a 1.0 answer without keep-alive,
/// closed the caller's connection after it: every request a new
/// connection.
#[tokio::test]
async fn an_http10_upstream_answers_the_caller_in_http11_on_a_kept_connection() {
    let (upstream, _heads) = scripted_upstream().await;
    let tollgate = in_front_of(upstream).await;

    let mut connection = RawConnection::connect(tollgate.addr()).await;
    connection
        .write(&request_head("GET", "/api/http10", &[&bearer()]))
        .await;
    let status_line = String::from_utf8_lossy(&connection.read_exact(9).await).into_owned();
    assert_eq!(
        status_line, "HTTP/1.1 ",
        "the status line names tollgate's version"
    );

    let [first, second] = twice_on_one_connection(&tollgate, "GET", "http10").await;
    assert_eq!(first.text(), "ok");
    assert_normal(&second);
    tollgate.shutdown().await;
}

/// RFC 9110 section 8.6: a sender must not pass on a `Content-Length`
/// that is a list, and a list of one repeated value may be replaced by
/// that value. hyper takes `5, 5` as the length 5 and tollgate passed the
/// list on as it was, for a client or cache ahead of tollgate to read its
/// own way; two `Content-Length` lines reached an HTTP/2 caller as two.
#[tokio::test]
async fn a_repeated_content_length_reaches_the_caller_once() {
    let (upstream, _heads) = scripted_upstream().await;
    let tollgate = in_front_of(upstream).await;

    for name in ["length-list", "length-twice"] {
        let [answer, next] = twice_on_one_connection(&tollgate, "GET", name).await;
        let lengths: Vec<_> = answer.headers.get_all("content-length").iter().collect();
        assert_eq!(lengths, ["5"], "{name}: {answer:?}");
        assert_eq!(answer.text(), "hello");
        assert_normal(&next);

        let (answer, next) = twice_over_http2(&tollgate, name).await;
        let answer = answer.expect("an answer");
        let lengths: Vec<_> = answer.headers.get_all("content-length").iter().collect();
        assert_eq!(lengths, ["5"], "{name} over HTTP/2: {answer:?}");
        assert_normal(&next);
    }
    tollgate.shutdown().await;
}

/// RFC 9110 section 8.6: no `Content-Length` on a 204. hyper drops it on
/// HTTP/1.1, but an HTTP/2 caller got `content-length: 5` with an empty
/// body, which RFC 9113 section 8.1.1 makes a malformed response a strict
/// client may reset.
#[tokio::test]
async fn a_204_reaches_the_caller_without_a_content_length() {
    let (upstream, _heads) = scripted_upstream().await;
    let tollgate = in_front_of(upstream).await;

    let [answer, next] = twice_on_one_connection(&tollgate, "GET", "no-content").await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert!(answer.headers.get("content-length").is_none(), "{answer:?}");
    assert_normal(&next);

    let (answer, next) = twice_over_http2(&tollgate, "no-content").await;
    let answer = answer.expect("an answer");
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert!(answer.headers.get("content-length").is_none(), "{answer:?}");
    assert!(answer.body.is_empty());
    assert_normal(&next);
    tollgate.shutdown().await;
}

/// RFC 9110 section 6.5.1: framing and connection fields have no place in
/// trailers. The target's trailers reached HTTP/2 callers as they came: a
/// `Connection` or `Transfer-Encoding` among them made h2 reset the
/// stream after the whole body (CANCEL), and a `Content-Length` or a
/// second `X-Request-Id` reached the caller beside the head's.
#[tokio::test]
async fn a_targets_trailers_reach_an_http2_caller_without_connection_fields() {
    let (upstream, _heads) = scripted_upstream().await;
    let tollgate = in_front_of(upstream).await;

    let stream = TcpStream::connect(tollgate.addr()).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(connection);
    let request = Request::get("http://tollgate.test/api/trailers")
        .header("authorization", format!("Bearer {}", token()))
        .header("te", "trailers")
        .body(Empty::<Bytes>::new())
        .expect("valid request");
    let response = sender.send_request(request).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    let body = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
        .await
        .expect("the body within 5 s")
        .expect("the stream ends cleanly");
    let trailers = body.trailers().cloned().expect("the trailers");
    assert_eq!(body.to_bytes(), "ok");
    let names: Vec<_> = trailers.keys().map(|name| name.as_str()).collect();
    assert_eq!(names, ["x-checksum"], "{trailers:?}");
    tollgate.shutdown().await;
}

// --- what held -----------------------------------------------------------------

/// Both `Transfer-Encoding: chunked` and `Content-Length`: chunked wins
/// (RFC 9112 section 6.3), the length is dropped, and a "response" inside
/// the chunk stays body bytes of the first answer.
#[tokio::test]
async fn a_response_hidden_in_a_chunk_stays_in_its_body() {
    let (upstream, _heads) = scripted_upstream().await;
    let tollgate = in_front_of(upstream).await;

    let [answer, next] = twice_on_one_connection(&tollgate, "GET", "chunked-and-length").await;
    assert!(answer.headers.get("content-length").is_none(), "{answer:?}");
    assert!(answer.text().ends_with("smuggle"), "{answer:?}");
    assert_normal(&next);
    tollgate.shutdown().await;
}

/// Bytes past the declared length, a HEAD answer with a body, and 1xx
/// answers before the final one: the caller gets the declared answer
/// only, and the next request on its connection gets its own.
#[tokio::test]
async fn bytes_beyond_an_answer_never_reach_the_next_request() {
    let (upstream, _heads) = scripted_upstream().await;
    let tollgate = in_front_of(upstream).await;

    let [answer, next] = twice_on_one_connection(&tollgate, "GET", "longer-than-declared").await;
    assert_eq!(answer.text(), "ok");
    assert_normal(&next);

    let [answer, next] = twice_on_one_connection(&tollgate, "HEAD", "head-with-body").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_normal(&next);

    let [answer, next] = twice_on_one_connection(&tollgate, "GET", "early-hints").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "ok");
    assert_normal(&next);
    tollgate.shutdown().await;
}

/// Trailers arrive after the identity headers were scrubbed, so a caller
/// could try to send its own `X-User-Id` as one. tollgate drops the
/// caller's `Trailer` header as hop-by-hop, and hyper sends only the
/// trailers that header declares: none reach the upstream, over HTTP/1.1
/// chunked or HTTP/2.
#[tokio::test]
async fn a_callers_trailers_never_reach_the_upstream() {
    let (upstream, mut heads) = scripted_upstream().await;
    let tollgate = in_front_of(upstream).await;

    let chunked = format!(
        "POST /api/upload HTTP/1.1\r\nHost: tollgate.test\r\n{}\r\n\
         Transfer-Encoding: chunked\r\nTrailer: X-User-Id\r\n\r\n\
         5\r\nhello\r\n0\r\nX-User-Id: admin\r\n\r\n",
        bearer()
    );
    let mut connection = RawConnection::connect(tollgate.addr()).await;
    let answer = connection.send(chunked.as_bytes()).await;
    assert_normal(&answer);
    let seen = heads.recv().await.expect("the upstream saw the request");
    assert!(seen.contains("x-user-id: alice\r\n"), "{seen}");
    assert!(!seen.contains("admin"), "{seen}");

    let stream = TcpStream::connect(tollgate.addr()).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(connection);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-user-id", http::HeaderValue::from_static("admin"));
    let body = Frames(
        vec![
            Frame::data(Bytes::from_static(b"hello")),
            Frame::trailers(trailers),
        ]
        .into_iter(),
    );
    let request = Request::post("http://tollgate.test/api/upload")
        .header("authorization", format!("Bearer {}", token()))
        .body(body)
        .expect("valid request");
    let response = sender.send_request(request).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    let _ = response.into_body().collect().await;
    let seen = heads.recv().await.expect("the upstream saw the request");
    assert!(seen.contains("x-user-id: alice\r\n"), "{seen}");
    assert!(!seen.contains("admin"), "{seen}");
    tollgate.shutdown().await;
}

/// A request body of fixed frames, trailers included, which no body type
/// of the client libraries here builds.
struct Frames(std::vec::IntoIter<Frame<Bytes>>);

impl hyper::body::Body for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.next().map(Ok))
    }
}
