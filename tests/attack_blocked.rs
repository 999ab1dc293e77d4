//! Attacks tollgate blocks: kept as regression tests.
//!
//! Every test here passes on `main` as of 8dffa03. Each one is an attempt
//! from the attack report (request smuggling, protocol switches, request
//! targets, token tricks, cache confusion, floods, logs) and asserts that
//! it got nowhere. The attacks that did get through are in
//! `attack_findings.rs`. The framing tricks, path spellings, token tricks
//! and tampered cache twins moved to the corpus (`tests/corpus/`), one case
//! per attempt.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::binary::{self, SECRET_ENV, Served};
use support::recorder::Recorder;
use support::wire::request_head;
use support::{Harness, RawConnection, Tollgate, Upstream, keys, verdicts};

fn player_token() -> String {
    keys().mint("HS256", &support::claims("alice"))
}

async fn send_raw(tollgate: &Tollgate, bytes: &[u8]) -> support::Answer {
    RawConnection::connect(tollgate.addr())
        .await
        .send(bytes)
        .await
}

// --- Request smuggling through tollgate --------------------------------------

/// The oracle itself: sent straight to the recorder (no tollgate), a
/// request hidden after a chunked body is framed as a request of its own.
#[tokio::test]
async fn the_recorder_frames_a_hidden_request_as_its_own() {
    let recorder = Recorder::start().await;
    let mut stream = TcpStream::connect(recorder.addr()).await.expect("connect");
    stream
        .write_all(b"POST /public/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("write");
    let mut answers = vec![0u8; 2 * 40];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut answers))
        .await
        .expect("two answers in time")
        .expect("two answers");

    let lines: Vec<String> = recorder
        .requests()
        .iter()
        .map(|r| r.request_line().to_owned())
        .collect();
    assert_eq!(lines, ["POST /public/x HTTP/1.1", "GET /admin/x HTTP/1.1"]);
}

#[tokio::test]
async fn a_request_pipelined_behind_a_good_one_is_checked_on_its_own() {
    let recorder = Recorder::start().await;
    let tollgate = Harness::new(recorder.addr()).start().await;
    let bearer = format!("Authorization: Bearer {}", player_token());

    let mut connection = RawConnection::connect(tollgate.addr()).await;
    let mut both = request_head("GET", "/games/1", &[&bearer]);
    both.extend(request_head("GET", "/games/2", &[]));
    connection.write(&both).await;
    let first = connection.read_answer().await;
    let second = connection.read_answer().await;

    assert_eq!(first.status, 200);
    assert_eq!(second.status, 401);
    let lines: Vec<String> = recorder
        .requests()
        .iter()
        .map(|r| r.request_line().to_owned())
        .collect();
    assert_eq!(lines, ["GET /games/1 HTTP/1.1"]);
}

// --- Protocol switches ---------------------------------------------------------

#[tokio::test]
async fn a_websocket_upgrade_the_upstream_declines_opens_no_tunnel() {
    // The recorder answers 200, not 101, to the handshake: tollgate must
    // go on reading HTTP from the client, checking each request.
    let recorder = Recorder::start().await;
    let tollgate = Harness::new(recorder.addr()).start().await;
    let lines = [
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ];

    let mut connection = RawConnection::connect(tollgate.addr()).await;
    let answer = connection
        .send(&request_head("GET", "/public/ws", &lines))
        .await;
    assert_eq!(answer.status, 200);
    let follow_up = connection.send(&request_head("GET", "/admin/x", &[])).await;

    assert_eq!(follow_up.status, 401);
    assert_eq!(recorder.requests().len(), 1);
}

// --- Request targets and routes -------------------------------------------------

#[tokio::test]
async fn an_absolute_form_target_cannot_pick_the_upstream_or_dodge_a_rule() {
    let recorder = Recorder::start().await;
    let tollgate = Harness::new(recorder.addr()).start().await;
    let bearer = format!("Authorization: Bearer {}", player_token());

    let admin = send_raw(
        &tollgate,
        &request_head("GET", "http://evil.test/public/../admin/x", &[&bearer]),
    )
    .await;
    assert_eq!(admin.status, 403);

    // The admin listener is one port away; the target is still the
    // upstream, with only the path taken from the request.
    let target = format!("http://{}/metrics", tollgate.admin_addr());
    let answer = send_raw(&tollgate, &request_head("GET", &target, &[&bearer])).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "ok", "answered by the recorder");
    let requests = recorder.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].request_line(), "GET /metrics HTTP/1.1");
}

#[tokio::test]
async fn account_store_routes_match_exactly_and_never_lead_to_the_upstream() {
    let upstream = Upstream::start().await;
    let store = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_account_store(&format!("http://{}", store.addr()), "2s")
        .start()
        .await;

    // (path, status, reaches the store)
    let cases = [
        ("/auth/login", 200, true),
        ("/auth/login?next=/admin/x", 200, true),
        ("/auth//login", 200, true),
        ("/auth/%6cogin", 200, true),
        ("/auth/login/", 401, false),
        ("/AUTH/LOGIN", 401, false),
        ("/auth/login/../../admin/x", 401, false),
        ("/auth/login/..%2f..%2fadmin/x", 400, false),
        ("/auth/login;/../../admin/x", 400, false),
    ];
    for (path, status, to_store) in cases {
        let store_hits = store.hits();
        let answer = send_raw(
            &tollgate,
            &request_head("POST", path, &["Content-Length: 0"]),
        )
        .await;
        assert_eq!(answer.status, status, "{path}: {answer:?}");
        assert_eq!(store.hits() - store_hits, usize::from(to_store), "{path}");
    }
    assert_eq!(
        upstream.hits(),
        0,
        "no account store route led to the upstream"
    );
}

// --- Cache confusion --------------------------------------------------------------

#[tokio::test]
async fn a_cached_identity_is_not_reused_once_a_reload_reads_roles_elsewhere() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let mut claims = support::claims("root");
    claims["roles"] = json!(["admin"]);
    let token = keys().mint("HS256", &claims);

    for _ in 0..2 {
        let answer = tollgate.get("/admin/x").bearer(&token).send().await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.upstream_saw("x-user-roles"), ["admin"]);
    }
    assert_eq!(tollgate.metric("tollgate_cache_hits_total").await, 1.0);

    // Same issuer and secret, but roles now come from a claim the token
    // lacks: the cached identity (with `admin`) must not be used.
    let moved = Harness::new(upstream.addr()).with_provider_lines("roles_claim = \"realm_roles\"");
    tollgate.reload(moved);

    let answer = tollgate.get("/admin/x").bearer(&token).send().await;
    assert_eq!(answer.status, 403);
    let answer = tollgate.get("/games/1").bearer(&token).send().await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.upstream_saw("x-user-roles"),
        ["admin"],
        "header mapping unchanged"
    );
}

#[tokio::test]
async fn a_flood_of_bad_tokens_leaves_the_cache_empty() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let header = json!({"alg": "HS256", "typ": "JWT"});

    // Bounded: 1,000 distinct forgeries over one keep-alive connection.
    let mut connection = RawConnection::connect(tollgate.addr()).await;
    for at in 0..1000 {
        let token = support::hs256_with_key(
            b"not-the-secret-not-the-secret!!!",
            &header,
            &support::claims(&format!("u{at}")),
        );
        let bearer = format!("Authorization: Bearer {token}");
        let answer = connection
            .send(&request_head("GET", "/games/1", &[&bearer]))
            .await;
        assert_eq!(answer.status, 401);
    }

    let metrics = tollgate.metrics().await;
    assert_eq!(
        support::metric_value(&metrics, "tollgate_cache_entries"),
        0.0
    );
    assert_eq!(verdicts(&metrics, "accounts", "bad_signature"), 1000.0);
    assert_eq!(upstream.hits(), 0);
}

// --- Slow clients and HTTP/2 floods ----------------------------------------------

#[tokio::test]
async fn a_request_head_sent_too_slowly_is_cut_off() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let mut stream = TcpStream::connect(tollgate.addr()).await.expect("connect");
    stream
        .write_all(b"GET /public/x HTTP/1.1\r\nHost: a\r\n")
        .await
        .expect("write");

    // Dribble a header line every second; the 10 s header timeout must
    // end it (bounded at 15 s).
    let started = tokio::time::Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(15) {
        if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
            closed = true;
            break;
        }
        let mut buffer = [0u8; 1024];
        let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buffer)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            closed = true;
            break;
        }
    }
    assert!(closed, "a dribbled head was still open after 15 s");
    assert!(started.elapsed() >= Duration::from_secs(9));
    assert_eq!(upstream.hits(), 0);
}

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len())
        .expect("small frame")
        .to_be_bytes();
    let mut frame = length[1..].to_vec();
    frame.extend_from_slice(&[kind, flags]);
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// Writes `frames` after the preface and an empty SETTINGS (stopping at
/// the first write error, as a closed connection gives), and returns the
/// GOAWAY error code the server sent, if any.
async fn h2_flood(addr: SocketAddr, frames: impl Iterator<Item = Vec<u8>>) -> Option<u32> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut opening = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    opening.extend(h2_frame(4, 0, 0, &[]));
    stream.write_all(&opening).await.expect("preface");
    let mut batch = Vec::new();
    for frame in frames {
        batch.extend(frame);
        if batch.len() > 16 * 1024 {
            if stream.write_all(&batch).await.is_err() {
                break;
            }
            batch.clear();
        }
    }
    let _ = stream.write_all(&batch).await;

    let mut received = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut received)).await;
    let mut at = 0;
    while at + 9 <= received.len() {
        let length = usize::from(received[at]) << 16
            | usize::from(received[at + 1]) << 8
            | usize::from(received[at + 2]);
        if received[at + 3] == 7 && at + 17 <= received.len() {
            let code: [u8; 4] = received[at + 13..at + 17].try_into().expect("4 bytes");
            return Some(u32::from_be_bytes(code));
        }
        at += 9 + length;
    }
    None
}

#[tokio::test]
async fn http2_rapid_reset_and_continuation_floods_end_in_goaway() {
    const ENHANCE_YOUR_CALM: u32 = 11;
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let bearer = player_token();
    // HPACK: :method GET, :scheme http, :path / (static table).
    let get_root = [0x82u8, 0x86, 0x84];

    // Rapid reset: HEADERS then RST_STREAM(CANCEL), 5,000 streams at most.
    let resets = (0..5000u32).flat_map(|at| {
        let stream = 2 * at + 1;
        [
            h2_frame(1, 0x4, stream, &get_root),
            h2_frame(3, 0, stream, &8u32.to_be_bytes()),
        ]
    });
    assert_eq!(
        h2_flood(tollgate.addr(), resets).await,
        Some(ENHANCE_YOUR_CALM)
    );

    // CONTINUATION flood: one header block that never ends, 20,000 frames
    // of a 100-byte literal at most.
    let mut literal = vec![0x00, 3];
    literal.extend_from_slice(b"x-a");
    literal.push(100);
    literal.extend_from_slice(&[b'a'; 100]);
    let continuations = std::iter::once(h2_frame(1, 0, 1, &get_root))
        .chain((0..20_000).map(move |_| h2_frame(9, 0, 1, &literal)));
    assert_eq!(
        h2_flood(tollgate.addr(), continuations).await,
        Some(ENHANCE_YOUR_CALM)
    );

    let answer = tollgate.get("/games/1").bearer(&bearer).send().await;
    assert_eq!(answer.status, StatusCode::OK, "still serving");
}

// --- Logs ------------------------------------------------------------------------------

#[tokio::test]
async fn trace_logs_of_http1_and_http2_traffic_never_hold_a_token_or_the_secret() {
    let upstream = Upstream::start().await;
    let config = binary::config("attack-logs", &format!("http://{}", upstream.addr()));
    let secret = keys().secret_text();
    let served = Served::start(&config, &[(SECRET_ENV, &secret), ("RUST_LOG", "trace")]);

    let good = player_token();
    let signature = good.rsplit('.').next().expect("signature").to_owned();
    let bad = format!("{good}x");
    for token in [&good, &bad] {
        let authorization = format!("Bearer {token}");
        let url = served.url(&format!("/games/1?access_token={token}"));
        let answer = binary::get(&url, &[("authorization", &authorization)]).await;
        assert!(answer.status == 200 || answer.status == 401);
        let answer = binary::get(&served.url("/a;b"), &[("authorization", &authorization)]).await;
        assert_eq!(answer.status, 400);

        let addr: SocketAddr = served
            .url("")
            .trim_start_matches("http://")
            .parse()
            .expect("proxy address");
        let request = http::Request::builder()
            .uri(format!("http://tollgate.test/games/1?access_token={token}"))
            .header("authorization", &authorization)
            .body(http_body_util::Empty::<Bytes>::new())
            .expect("request");
        let answer = support::send_h2(addr, request).await;
        assert!(answer.status == 200 || answer.status == 401);
    }

    let output = served.terminate();
    assert_eq!(output.code(), Some(0), "stderr: {}", output.stderr);
    let everything = format!("{}\n{}", output.stdout_text(), output.stderr);
    assert!(everything.lines().count() > 50, "trace logging was on");
    for (what, needle) in [
        ("a signature", signature.as_str()),
        ("the secret", secret.as_str()),
    ] {
        assert!(!everything.contains(needle), "{what} appears in the output");
    }
    let lines: Vec<Value> = output.json_lines();
    assert!(lines.iter().all(|line| line.is_object()));
}

// --- HTTP/2 pseudo-header tricks, over raw frames ------------------------------

/// An HPACK literal without indexing: a static-table name, or a new one.
fn hpack_literal(name_index: u8, name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = vec![name_index];
    if name_index == 0 {
        out.push(u8::try_from(name.len()).expect("short name"));
        out.extend_from_slice(name.as_bytes());
    }
    out.push(u8::try_from(value.len()).expect("short value"));
    out.extend_from_slice(value);
    out
}

/// What came back on stream 1.
#[derive(Debug, Default)]
struct H2Reply {
    /// The `:status`, when the server sent one tollgate can read.
    status: Option<u16>,
    /// Every DATA byte.
    data: Vec<u8>,
    /// RST_STREAM or GOAWAY instead of (or after) an answer.
    refused: bool,
}

/// Sends one header block (already HPACK-encoded, END_STREAM set) on
/// stream 1 of a fresh prior-knowledge connection and reads the reply.
async fn h2_exchange(addr: SocketAddr, block: &[u8]) -> H2Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut opening = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    opening.extend(h2_frame(4, 0, 0, &[]));
    opening.extend(h2_frame(1, 0x5, 1, block));
    stream.write_all(&opening).await.expect("write");

    let mut reply = H2Reply::default();
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        // Parse what is complete.
        let mut at = 0;
        let mut done = false;
        reply.data.clear();
        while at + 9 <= received.len() {
            let length = usize::from(received[at]) << 16
                | usize::from(received[at + 1]) << 8
                | usize::from(received[at + 2]);
            let Some(payload) = received.get(at + 9..at + 9 + length) else {
                break;
            };
            let (kind, flags) = (received[at + 3], received[at + 4]);
            let id = u32::from_be_bytes(received[at + 5..at + 9].try_into().expect("4 bytes"))
                & 0x7fff_ffff;
            match (kind, id) {
                (1, 1) => {
                    reply.status = h2_status(payload);
                    done |= flags & 0x1 != 0;
                }
                (0, 1) => {
                    reply.data.extend_from_slice(payload);
                    done |= flags & 0x1 != 0;
                }
                (3, 1) | (7, _) => {
                    reply.refused = true;
                    done = true;
                }
                _ => {}
            }
            at += 9 + length;
        }
        if done {
            return reply;
        }
        let mut buffer = [0u8; 16 * 1024];
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(read)) if read > 0 => received.extend_from_slice(&buffer[..read]),
            _ => return reply,
        }
    }
}

/// Reads `:status` from the first field of a response header block: an
/// indexed static entry or a plain (not Huffman) literal.
fn h2_status(block: &[u8]) -> Option<u16> {
    let first = *block.first()?;
    match first {
        0x88 => Some(200),
        0x89 => Some(204),
        0x8a => Some(206),
        0x8b => Some(304),
        0x8c => Some(400),
        0x8d => Some(404),
        0x8e => Some(500),
        0x08 | 0x18 | 0x48 => {
            let length = usize::from(*block.get(1)? & 0x7f);
            let value = block.get(2..2 + length)?;
            let text = if block[1] & 0x80 == 0 {
                String::from_utf8(value.to_vec()).ok()?
            } else {
                huffman_digits(value)?
            };
            text.parse().ok()
        }
        _ => None,
    }
}

/// Decodes a Huffman-coded string of decimal digits (RFC 7541 appendix B:
/// `0`-`2` are five bits, `00000`-`00010`; `3`-`9` are six, `011001`-
/// `011111`); the padding is ones.
fn huffman_digits(bytes: &[u8]) -> Option<String> {
    let bits: Vec<u8> = bytes
        .iter()
        .flat_map(|byte| (0..8).rev().map(move |at| (byte >> at) & 1))
        .collect();
    let read = |from: usize, count: usize| -> Option<u8> {
        let slice = bits.get(from..from + count)?;
        Some(slice.iter().fold(0, |acc, bit| acc << 1 | bit))
    };
    let mut text = String::new();
    let mut at = 0;
    while at < bits.len() {
        if bits[at..].iter().all(|bit| *bit == 1) && bits.len() - at < 8 {
            break;
        }
        match read(at, 5)? {
            code @ 0..=2 => {
                text.push(char::from(b'0' + code));
                at += 5;
            }
            _ => {
                let code = read(at, 6)?;
                if !(0b011001..=0b011111).contains(&code) {
                    return None;
                }
                text.push(char::from(b'3' + code - 0b011001));
                at += 6;
            }
        }
    }
    Some(text)
}

#[tokio::test]
async fn http2_pseudo_header_tricks_never_reach_the_upstream() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let get = 0x82u8;
    let http = 0x86u8;
    let path = |value: &str| hpack_literal(0x04, "", value.as_bytes());
    let authority = hpack_literal(0x01, "", b"tollgate.test");
    let header = |name: &str, value: &[u8]| hpack_literal(0, name, value);
    let block = |parts: &[&[u8]]| parts.concat();

    // The control: a well-formed public request is answered by the echo.
    let control = block(&[&[get, http], &path("/public/x"), &authority]);
    let reply = h2_exchange(tollgate.addr(), &control).await;
    assert_eq!(reply.status, Some(200), "{reply:?}");
    assert_eq!(upstream.hits(), 1);

    // A spoofed identity header with an `_` reaches nobody.
    let spoof = block(&[
        &[get, http],
        &path("/public/x"),
        &authority,
        &header("x_user_id", b"mallory"),
    ]);
    let reply = h2_exchange(tollgate.addr(), &spoof).await;
    assert_eq!(reply.status, Some(200), "{reply:?}");
    let echo = String::from_utf8_lossy(&reply.data);
    assert!(!echo.contains("mallory"), "{echo}");
    assert_eq!(upstream.hits(), 2);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a path without its slash",
            block(&[&[get, http], &path("public/x"), &authority]),
        ),
        (
            "an asterisk path on GET",
            block(&[&[get, http], &path("*"), &authority]),
        ),
        (
            "a dot-dot path",
            block(&[&[get, http], &path("/public/../admin/x"), &authority]),
        ),
        (
            "an encoded slash",
            block(&[&[get, http], &path("/public/..%2fadmin/x"), &authority]),
        ),
        (
            "two paths",
            block(&[
                &[get, http],
                &path("/public/x"),
                &path("/admin/x"),
                &authority,
            ]),
        ),
        (
            "a pseudo-header after a regular one",
            block(&[
                &[get, http],
                &authority,
                &header("x-a", b"1"),
                &path("/public/x"),
            ]),
        ),
        ("no path at all", block(&[&[get, http], &authority])),
        (
            "an upper-case header name",
            block(&[
                &[get, http],
                &path("/public/x"),
                &authority,
                &header("X-User-Id", b"admin"),
            ]),
        ),
        (
            "a CR LF inside a value",
            block(&[
                &[get, http],
                &path("/public/x"),
                &authority,
                &header("x-a", b"1\r\nx-user-id: admin"),
            ]),
        ),
        (
            "a connection header",
            block(&[
                &[get, http],
                &path("/public/x"),
                &authority,
                &header("connection", b"close"),
            ]),
        ),
        (
            "te other than trailers",
            block(&[
                &[get, http],
                &path("/public/x"),
                &authority,
                &header("te", b"gzip"),
            ]),
        ),
        (
            "a foreign authority on an admin path",
            block(&[
                &[get, http],
                &path("/admin/x"),
                &hpack_literal(0x01, "", b"evil.test"),
            ]),
        ),
    ];
    for (case, bytes) in cases {
        let reply = h2_exchange(tollgate.addr(), &bytes).await;
        assert!(
            reply.refused || reply.status.is_some_and(|status| status >= 400),
            "{case}: {reply:?}"
        );
        assert_eq!(upstream.hits(), 2, "{case} reached the upstream");
    }
}
