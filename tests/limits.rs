//! Limits and abuse: every `[limits]` key against a real tollgate, real
//! upstreams and raw bytes on loopback.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, Request, StatusCode};
use http_body_util::Empty;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use bytes::Bytes;
use support::h2wire::{
    CANCEL, CONTINUATION, END_HEADERS, END_STREAM, Ending, H2Wire, HEADERS, RST_STREAM, frame,
    get_block, literal,
};
use support::recorder::Recorder;
use support::wire::{request_head, websocket_handshake};
use support::{Harness, RawConnection, Tollgate, Upstream, metric_matching, send_h2};

/// Starts tollgate in front of `upstream` with `limits` as the body of its
/// `[limits]` table.
async fn start_with_limits(upstream: SocketAddr, limits: &str) -> Tollgate {
    Harness::new(upstream)
        .with_extra(&format!("[limits]\n{limits}"))
        .start()
        .await
}

/// Reads a connection-level limit counter of the proxy listener.
async fn connection_limit(tollgate: &Tollgate, limit: &str) -> f64 {
    let text = tollgate.metrics().await;
    metric_matching(
        &text,
        "tollgate_connection_limits_total",
        &[("listener", "proxy"), ("limit", limit)],
    )
}

/// Waits up to 3 s for a connection-level counter to reach `want`: it is
/// counted when the connection task ends, just after the client sees it.
async fn wait_for_limit(tollgate: &Tollgate, limit: &str, want: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let seen = connection_limit(tollgate, limit).await;
        if seen >= want || Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads how many downstream connections the proxy listener holds open.
async fn open_proxy_connections(tollgate: &Tollgate) -> f64 {
    let text = tollgate.metrics().await;
    metric_matching(&text, "tollgate_open_connections", &[("listener", "proxy")])
}

/// Counts the requests answered with `outcome`, over every rule.
async fn outcomes(tollgate: &Tollgate, outcome: &str) -> f64 {
    let text = tollgate.metrics().await;
    metric_matching(&text, "tollgate_requests_total", &[("outcome", outcome)])
}

/// Reads until the server closes; `None` if it is still open after
/// `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut read = Vec::new();
    let until = tokio::time::timeout(within, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => read.extend_from_slice(&chunk[..n]),
            }
        }
    });
    until.await.ok().map(|()| read)
}

// --- request heads ---------------------------------------------------------

#[tokio::test]
async fn a_request_head_over_max_header_bytes_gets_431_and_is_counted() {
    let upstream = Upstream::start().await;
    let tollgate = start_with_limits(upstream.addr(), "max_header_bytes = 8192\n").await;
    let big = format!("X-Padding: {}", "a".repeat(9000));

    let mut connection = RawConnection::connect(tollgate.addr()).await;
    let answer = connection
        .send(&request_head("GET", "/public/x", &[&big]))
        .await;

    assert_eq!(answer.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(upstream.hits(), 0);
    assert_eq!(
        wait_for_limit(&tollgate, "header_too_large", 1.0).await,
        1.0
    );
    // Just under the cap passes.
    let fits = format!("X-Padding: {}", "a".repeat(7000));
    let mut connection = RawConnection::connect(tollgate.addr()).await;
    let answer = connection
        .send(&request_head("GET", "/public/x", &[&fits]))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn more_header_fields_than_max_headers_get_431() {
    let upstream = Upstream::start().await;
    let tollgate = start_with_limits(upstream.addr(), "max_headers = 10\n").await;
    let lines: Vec<String> = (0..12).map(|i| format!("X-Field-{i}: {i}")).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();

    let mut connection = RawConnection::connect(tollgate.addr()).await;
    let answer = connection
        .send(&request_head("GET", "/public/x", &lines))
        .await;

    assert_eq!(answer.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(upstream.hits(), 0);
    let mut connection = RawConnection::connect(tollgate.addr()).await;
    let answer = connection
        .send(&request_head("GET", "/public/x", &lines[..5]))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn the_default_cap_of_100_header_fields_holds() {
    // At the default, tollgate leaves the cap to hyper's own, which must
    // be the same 100. The upstream frames requests by hand, so it takes
    // whatever tollgate forwards.
    let recorder = Recorder::start().await;
    let tollgate = start_with_limits(recorder.addr(), "").await;
    let lines: Vec<String> = (0..100).map(|i| format!("X-Field-{i}: {i}")).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();

    // With Host, 100 fields pass and 101 do not.
    let mut connection = RawConnection::connect(tollgate.addr()).await;
    let answer = connection
        .send(&request_head("GET", "/public/x", &lines[..99]))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let mut connection = RawConnection::connect(tollgate.addr()).await;
    let answer = connection
        .send(&request_head("GET", "/public/x", &lines))
        .await;
    assert_eq!(answer.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let forwarded = recorder.requests();
    assert_eq!(forwarded.len(), 1);
    assert_eq!(forwarded[0].header("x-field-98"), ["98"]);
}

#[tokio::test]
async fn a_request_target_over_max_uri_bytes_gets_414_and_is_counted() {
    let upstream = Upstream::start().await;
    let tollgate = start_with_limits(upstream.addr(), "max_uri_bytes = 64\n").await;
    let long = format!("/public/{}", "a".repeat(40));
    let query = format!("/public/x?q={}", "b".repeat(60));

    assert_eq!(tollgate.get(&long).send().await.status, StatusCode::OK);
    let answer = tollgate.get(&query).send().await;

    assert_eq!(answer.status, StatusCode::URI_TOO_LONG);
    assert_eq!(answer.json()["error"], "invalid_request");
    assert_eq!(upstream.hits(), 1);
    assert_eq!(outcomes(&tollgate, "too_large").await, 1.0);
}

// --- request bodies --------------------------------------------------------

#[tokio::test]
async fn a_content_length_over_max_body_bytes_gets_413_without_contacting_any_target() {
    let upstream = Upstream::start().await;
    let store = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_account_store(&format!("http://{}", store.addr()), "2s")
        .with_extra("[limits]\nmax_body_bytes = 16\n")
        .start()
        .await;

    let public = tollgate
        .request(Method::POST, "/public/x")
        .body(vec![b'a'; 17])
        .send()
        .await;
    let login = tollgate
        .request(Method::POST, "/auth/login")
        .body(vec![b'a'; 100])
        .send()
        .await;
    let fits = tollgate
        .request(Method::POST, "/auth/login")
        .body(vec![b'a'; 16])
        .send()
        .await;

    assert_eq!(public.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(login.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(fits.status, StatusCode::OK);
    assert_eq!(fits.json()["body_len"], 16);
    assert_eq!(upstream.hits(), 0);
    assert_eq!(store.hits(), 1);
    assert_eq!(outcomes(&tollgate, "too_large").await, 2.0);
}

#[tokio::test]
async fn a_chunked_body_growing_past_max_body_bytes_never_fully_reaches_the_upstream() {
    let recorder = Recorder::start().await;
    let tollgate = start_with_limits(recorder.addr(), "max_body_bytes = 16\n").await;
    let mut request = request_head("POST", "/public/x", &["Transfer-Encoding: chunked"]);
    for _ in 0..10 {
        request.extend_from_slice(b"a\r\n0123456789\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");

    let mut connection = RawConnection::connect(tollgate.addr()).await;
    let answer = connection.send(&request).await;

    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Give a late write the time to land before looking.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(recorder.requests().is_empty(), "{:?}", recorder.requests());
    let forwarded: usize = recorder.connections().iter().map(|c| c.raw.len()).sum();
    assert!(forwarded < 400, "{forwarded} bytes reached the upstream");
    assert_eq!(outcomes(&tollgate, "too_large").await, 1.0);
}

// --- timeouts --------------------------------------------------------------

#[tokio::test]
async fn a_client_that_sends_its_head_slowly_is_cut_off_at_the_header_read_timeout() {
    let upstream = Upstream::start().await;
    let tollgate = start_with_limits(upstream.addr(), "header_read_timeout = \"1s\"\n").await;
    let mut stream = TcpStream::connect(tollgate.addr()).await.expect("connect");
    let started = Instant::now();

    // A slowloris: a request line and a header, a byte at a time, never
    // the empty line that ends the head.
    for byte in b"GET /public/x HTTP/1.1\r\nHost: tollgate.test\r\nX-Slow: ".iter() {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closed = closed_within(&mut stream, Duration::from_secs(5)).await;

    let waited = started.elapsed();
    assert!(closed.is_some(), "still open after {waited:?}");
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    assert_eq!(upstream.hits(), 0);
    assert!(wait_for_limit(&tollgate, "header_read_timeout", 1.0).await >= 1.0);
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_at_the_idle_timeout() {
    let upstream = Upstream::start().await;
    let tollgate = start_with_limits(upstream.addr(), "idle_timeout = \"1s\"\n").await;
    let stream = TcpStream::connect(tollgate.addr()).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    let connection = tokio::spawn(connection);

    let request = Request::get(format!("http://{}/public/x", tollgate.addr()))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let answered = Instant::now();

    let ended = tokio::time::timeout(Duration::from_secs(5), connection).await;
    let waited = answered.elapsed();
    assert!(ended.is_ok(), "h2 connection still open after {waited:?}");
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    assert_eq!(wait_for_limit(&tollgate, "idle_timeout", 1.0).await, 1.0);
}

#[tokio::test]
async fn an_idle_http1_connection_is_closed_by_the_header_read_timeout() {
    let upstream = Upstream::start().await;
    let limits = "header_read_timeout = \"1s\"\nidle_timeout = \"30s\"\n";
    let tollgate = start_with_limits(upstream.addr(), limits).await;
    let mut stream = TcpStream::connect(tollgate.addr()).await.expect("connect");
    let started = Instant::now();
    stream
        .write_all(&request_head("GET", "/public/x", &[]))
        .await
        .expect("write");

    // hyper's header timer starts again as soon as a kept-alive connection
    // waits for its next request head, so that one closes it.
    let read = closed_within(&mut stream, Duration::from_secs(5)).await;

    let waited = started.elapsed();
    let read = read.unwrap_or_else(|| panic!("still open after {waited:?}"));
    assert!(
        read.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&read)
    );
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
}

// --- connections -----------------------------------------------------------

#[tokio::test]
async fn at_max_connections_a_new_client_waits_until_one_closes() {
    let upstream = Upstream::start().await;
    let tollgate = start_with_limits(upstream.addr(), "max_connections = 2\n").await;
    let mut first = RawConnection::connect(tollgate.addr()).await;
    let held = TcpStream::connect(tollgate.addr()).await.expect("connect");
    let answer = first.send(&request_head("GET", "/public/x", &[])).await;
    assert_eq!(answer.status, StatusCode::OK);
    // Each worker accepts from a socket of its own: until `held` holds its
    // slot, the third connection may land on the other worker and take the
    // slot first, leaving `held` to wait instead.
    let deadline = Instant::now() + Duration::from_secs(3);
    while open_proxy_connections(&tollgate).await < 2.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The kernel completes the handshake from its backlog, but tollgate
    // does not accept, so the request waits.
    let mut third = TcpStream::connect(tollgate.addr()).await.expect("connect");
    third
        .write_all(&request_head("GET", "/public/x", &[]))
        .await
        .expect("write");
    let mut status = [0u8; 12];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read_exact(&mut status));
    assert!(early.await.is_err(), "answered over the cap");
    assert_eq!(open_proxy_connections(&tollgate).await, 2.0);
    assert_eq!(connection_limit(&tollgate, "max_connections").await, 1.0);

    drop(held);
    let read = tokio::time::timeout(Duration::from_secs(5), third.read_exact(&mut status));
    read.await
        .expect("answered once a slot freed")
        .expect("read");
    assert_eq!(&status, b"HTTP/1.1 200");
}

#[tokio::test]
async fn a_websocket_tunnel_keeps_its_connection_slot() {
    let upstream = Upstream::websocket().await;
    let tollgate = start_with_limits(upstream.addr(), "max_connections = 1\n").await;
    let token = support::keys().mint("HS256", &support::claims("alice"));
    let handshake = websocket_handshake(Some(&token));
    let mut tunnel = RawConnection::connect(tollgate.addr()).await;
    assert_eq!(tunnel.send(&handshake).await.status, 101);

    // The upgraded socket lives on in the tunnel, and so does its slot:
    // otherwise WebSockets would escape max_connections.
    let mut second = TcpStream::connect(tollgate.addr()).await.expect("connect");
    second
        .write_all(&request_head("GET", "/public/x", &[]))
        .await
        .expect("write");
    let mut status = [0u8; 12];
    let early = tokio::time::timeout(Duration::from_millis(500), second.read_exact(&mut status));
    assert!(
        early.await.is_err(),
        "answered while the tunnel held the slot"
    );

    drop(tunnel);
    let read = tokio::time::timeout(Duration::from_secs(5), second.read_exact(&mut status));
    read.await
        .expect("answered once the tunnel closed")
        .expect("read");
    assert_eq!(&status, b"HTTP/1.1 200");
}

// --- HTTP/2 floods ---------------------------------------------------------

/// Asserts that a well-behaved HTTP/2 client still gets 200.
async fn a_second_client_is_served(tollgate: &Tollgate) {
    let request = Request::get(format!("http://{}/public/x", tollgate.addr()))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let answer = send_h2(tollgate.addr(), request).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn the_http2_limits_are_announced_in_the_server_settings() {
    let upstream = Upstream::start().await;
    let limits = "h2_max_concurrent_streams = 7\nh2_max_header_list_bytes = 4096\n";
    let tollgate = start_with_limits(upstream.addr(), limits).await;
    let mut client = H2Wire::connect(tollgate.addr()).await;

    let settings = client.server_settings().await;

    // SETTINGS_MAX_CONCURRENT_STREAMS (0x3), SETTINGS_MAX_HEADER_LIST_SIZE (0x6).
    assert!(settings.contains(&(0x3, 7)), "{settings:?}");
    assert!(settings.contains(&(0x6, 4096)), "{settings:?}");
}

#[tokio::test]
async fn a_rapid_reset_flood_closes_its_connection_and_others_are_served() {
    let upstream = Upstream::start().await;
    let tollgate = start_with_limits(upstream.addr(), "").await;
    let mut flood = H2Wire::connect(tollgate.addr()).await;
    let block = get_block("/public/x");

    // CVE-2023-44487: open a stream and cancel it at once, again and again.
    let started = Instant::now();
    let mut sent = 0u32;
    for batch in 0..50u32 {
        let mut bytes = Vec::new();
        for i in 0..100u32 {
            let stream = 1 + 2 * (batch * 100 + i);
            bytes.extend(frame(HEADERS, END_HEADERS | END_STREAM, stream, &block));
            bytes.extend(frame(RST_STREAM, 0, stream, &CANCEL.to_be_bytes()));
        }
        if !flood.write(&bytes).await {
            break;
        }
        sent += 100;
        a_second_client_is_served(&tollgate).await;
    }
    let ending = flood.ending(Duration::from_secs(5)).await;

    // h2 answers GOAWAY with ENHANCE_YOUR_CALM (0xb).
    assert_eq!(ending, Ending::GoAway(0xb), "after {sent} resets");
    assert!(started.elapsed() < Duration::from_secs(10));
    a_second_client_is_served(&tollgate).await;
}

#[tokio::test]
async fn an_endless_continuation_stream_closes_its_connection_and_others_are_served() {
    let upstream = Upstream::start().await;
    let tollgate = start_with_limits(upstream.addr(), "").await;
    let mut flood = H2Wire::connect(tollgate.addr()).await;

    // CVE-2024-27316 class: a header block that never ends, each piece
    // a valid literal field so that it decodes as it grows.
    let mut piece = Vec::new();
    for _ in 0..100 {
        literal(
            &mut piece,
            0x0e,
            b"0123456789012345678901234567890123456789",
        );
    }
    let started = Instant::now();
    let mut frames = vec![frame(HEADERS, 0, 1, &get_block("/public/x"))];
    let mut written = 0u32;
    'flood: while started.elapsed() < Duration::from_secs(5) {
        for bytes in frames.drain(..) {
            if !flood.write(&bytes).await {
                break 'flood;
            }
        }
        written += 1;
        frames.push(frame(CONTINUATION, 0, 1, &piece));
        if written % 16 == 0 {
            a_second_client_is_served(&tollgate).await;
        }
    }
    let ending = flood.ending(Duration::from_secs(5)).await;

    assert!(
        matches!(ending, Ending::GoAway(_)),
        "{ending:?} after {written} frames"
    );
    assert!(written < 10_000, "{written} frames were taken");
    a_second_client_is_served(&tollgate).await;
}

// --- account store rate limit ---------------------------------------------

#[tokio::test]
async fn the_login_routes_answer_429_with_retry_after_past_the_burst() {
    let upstream = Upstream::start().await;
    let store = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_account_store(&format!("http://{}", store.addr()), "2s")
        .with_extra("[limits]\naccount_store_rate_per_minute = 6\naccount_store_burst = 3\n")
        .start()
        .await;

    for _ in 0..3 {
        let answer = tollgate.request(Method::POST, "/auth/login").send().await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    let refused = tollgate.request(Method::POST, "/auth/login").send().await;
    let public = tollgate.get("/public/x").send().await;

    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=10).contains(&wait), "Retry-After: {wait}");
    assert_eq!(refused.json()["error"], "rate_limited");
    assert_eq!(store.hits(), 3);
    assert_eq!(
        public.status,
        StatusCode::OK,
        "other routes are not limited"
    );
    assert_eq!(outcomes(&tollgate, "rate_limited").await, 1.0);
}

#[tokio::test]
async fn with_trusted_hops_each_forwarded_client_has_its_own_bucket() {
    let upstream = Upstream::start().await;
    let store = Upstream::start().await;
    let limits = "account_store_rate_per_minute = 1\naccount_store_burst = 1\ntrusted_hops = 1\n";
    let tollgate = Harness::new(upstream.addr())
        .with_account_store(&format!("http://{}", store.addr()), "2s")
        .with_extra(&format!("[limits]\n{limits}"))
        .start()
        .await;
    let login = |client: &'static str| {
        tollgate
            .request(Method::POST, "/auth/login")
            .header("x-forwarded-for", &format!("203.0.113.9, {client}"))
    };

    assert_eq!(login("198.51.100.1").send().await.status, StatusCode::OK);
    assert_eq!(login("198.51.100.2").send().await.status, StatusCode::OK);
    // The spoofable left entry changes, the trusted one does not.
    let again = tollgate
        .request(Method::POST, "/auth/login")
        .header("x-forwarded-for", "192.0.2.55, 198.51.100.1")
        .send()
        .await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(store.hits(), 2);
}
