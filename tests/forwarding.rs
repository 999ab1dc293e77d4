//! End-to-end forwarding: what the upstream learns about the caller, the
//! request id, how a failing upstream is reported, and that bodies,
//! keep-alive, HTTP/2 and WebSocket upgrades all pass through.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Empty;

use support::upstream::{Behaviour, WEBSOCKET_GREETING};
use support::wire::{request_head, websocket_handshake};
use support::{Harness, RawConnection, Upstream};

fn token() -> String {
    support::keys().mint("HS256", &support::claims("alice"))
}

/// Checks that an id is one tollgate made up (a UUID), not one it was sent.
fn is_generated(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok_and(|uuid| uuid.get_version_num() == 4)
}

// --- What the upstream learns about the caller ------------------------------

#[tokio::test]
async fn x_forwarded_for_gets_the_client_appended_to_what_it_sent() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;

    let answer = tollgate
        .get("/public/x")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-for", "198.51.100.1")
        .send()
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.upstream_saw("x-forwarded-for"),
        ["203.0.113.7, 198.51.100.1, 127.0.0.1"]
    );
}

#[tokio::test]
async fn x_forwarded_proto_and_host_replace_what_the_client_sent() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;

    let lines = [
        "X-Forwarded-Proto: https",
        "X-Forwarded-Host: evil.test",
        "X-Forwarded-Host: evil-too.test",
    ];
    let answer = RawConnection::connect(tollgate.addr())
        .await
        .send(&request_head("GET", "/public/x", &lines))
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.upstream_saw("x-forwarded-proto"), ["http"]);
    assert_eq!(answer.upstream_saw("x-forwarded-host"), ["tollgate.test"]);
}

// --- Request id -------------------------------------------------------------

#[tokio::test]
async fn a_sane_request_id_is_kept_and_returned() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;

    let id = "req-42.b:c_d";
    let answer = tollgate
        .get("/public/x")
        .header("x-request-id", id)
        .send()
        .await;

    assert_eq!(answer.upstream_saw("x-request-id"), [id]);
    assert_eq!(answer.header("x-request-id"), Some(id));
}

#[tokio::test]
async fn an_insane_request_id_is_replaced_everywhere() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let long = "a".repeat(300);

    for sent in [&[long.as_str()][..], &["has spaces"], &["one", "two"]] {
        let mut call = tollgate.get("/public/x");
        for id in sent {
            call = call.header("x-request-id", id);
        }
        let answer = call.send().await;

        let returned = answer.header("x-request-id").unwrap_or_default();
        assert!(is_generated(returned), "{sent:?} came back as {returned:?}");
        assert_eq!(answer.upstream_saw("x-request-id"), [returned], "{sent:?}");
    }
}

#[tokio::test]
async fn a_missing_request_id_is_generated_and_shared_with_the_upstream() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;

    let answer = tollgate.get("/public/x").send().await;

    let returned = answer.header("x-request-id").unwrap_or_default();
    assert!(is_generated(returned), "{returned:?}");
    assert_eq!(answer.upstream_saw("x-request-id"), [returned]);
}

#[tokio::test]
async fn refusals_carry_the_request_id_too() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let down = Harness::new(upstream.addr())
        .with_upstream_url(&format!("http://{}", support::closed_port().await))
        .start()
        .await;

    let refusals = [
        tollgate
            .get("/api/x")
            .header("x-request-id", "unauthorised-1"),
        tollgate.get("/admin/x").bearer(&token()),
        tollgate.get("/a;b").header("x-request-id", "bad-path-1"),
        down.get("/public/x")
            .header("x-request-id", "bad-gateway-1"),
    ];
    let mut answers = Vec::new();
    for call in refusals {
        answers.push(call.send().await);
    }

    let kept: Vec<(StatusCode, Option<&str>)> = answers
        .iter()
        .map(|answer| (answer.status, answer.header("x-request-id")))
        .collect();
    assert_eq!(kept[0], (StatusCode::UNAUTHORIZED, Some("unauthorised-1")));
    assert_eq!(kept[2], (StatusCode::BAD_REQUEST, Some("bad-path-1")));
    assert_eq!(kept[3], (StatusCode::BAD_GATEWAY, Some("bad-gateway-1")));
    assert_eq!(kept[1].0, StatusCode::FORBIDDEN);
    assert!(is_generated(kept[1].1.unwrap_or_default()), "{kept:?}");
    assert_eq!(upstream.hits(), 0);
}

// --- A failing upstream -----------------------------------------------------

#[tokio::test]
async fn an_upstream_that_refuses_connections_gives_502() {
    let tollgate = Harness::new(support::closed_port().await).start().await;

    let answer = tollgate.get("/api/x").bearer(&token()).send().await;

    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.json()["error"], "upstream_unavailable");
}

#[tokio::test]
async fn an_upstream_slower_than_the_timeout_gives_504() {
    let upstream = Upstream::with(Behaviour {
        delay: Some(Duration::from_secs(2)),
        ..Behaviour::default()
    })
    .await;
    let tollgate = Harness::new(upstream.addr())
        .with_upstream_timeout("200ms")
        .start()
        .await;

    let answer = tollgate.get("/api/x").bearer(&token()).send().await;

    assert_eq!(answer.status, 504, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.json()["error"], "upstream_timeout");
}

// --- Bodies and connections -------------------------------------------------

#[tokio::test]
async fn a_large_request_body_reaches_the_upstream_whole() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let body = vec![b'x'; 8 << 20];

    let answer = tollgate
        .request(Method::POST, "/api/upload")
        .bearer(&token())
        .body(body)
        .send()
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["body_len"], 8 << 20);
}

#[tokio::test]
async fn a_chunked_request_body_reaches_the_upstream_whole() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let mut connection = RawConnection::connect(tollgate.addr()).await;

    let head = request_head("POST", "/public/upload", &["Transfer-Encoding: chunked"]);
    connection.write(&head).await;
    let chunk = vec![b'y'; 64 << 10];
    for _ in 0..16 {
        connection
            .write(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await;
        connection.write(&chunk).await;
        connection.write(b"\r\n").await;
    }
    connection.write(b"0\r\n\r\n").await;
    let answer = connection.read_answer().await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["body_len"], 16 * (64 << 10));
}

#[tokio::test]
async fn one_connection_carries_several_requests() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let bearer = format!("Authorization: Bearer {}", token());
    let mut connection = RawConnection::connect(tollgate.addr()).await;

    let first = connection
        .send(&request_head("GET", "/api/one", &[&bearer]))
        .await;
    let refused = connection.send(&request_head("GET", "/api/two", &[])).await;
    let third = connection
        .send(&request_head("GET", "/api/three", &[&bearer]))
        .await;

    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(third.status, 200, "{third:?}");
    assert_eq!(third.upstream_path(), "/api/three");
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served_and_forwarded_as_http1() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;

    let request = Request::builder()
        .uri("http://tollgate.test/api/profile")
        .header("authorization", format!("Bearer {}", token()))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let answer = support::send_h2(tollgate.addr(), request).await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["version"], "HTTP/1.1");
    assert_eq!(answer.upstream_saw("x-user-id"), ["alice"]);
    assert_eq!(answer.upstream_saw("x-forwarded-host"), ["tollgate.test"]);
}

// --- WebSocket --------------------------------------------------------------

#[tokio::test]
async fn an_authorised_websocket_upgrade_carries_bytes_both_ways() {
    let upstream = Upstream::websocket().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let mut connection = RawConnection::connect(tollgate.addr()).await;

    let answer = connection.send(&websocket_handshake(Some(&token()))).await;
    assert_eq!(answer.status, 101, "{answer:?}");
    assert_eq!(answer.header("upgrade"), Some("websocket"));

    let greeting = connection.read_exact(WEBSOCKET_GREETING.len()).await;
    assert_eq!(greeting, WEBSOCKET_GREETING);
    connection.write(b"e4 e5\n").await;
    assert_eq!(connection.read_exact(6).await, b"e4 e5\n");
}

#[tokio::test]
async fn a_websocket_upgrade_without_a_token_gets_401() {
    let upstream = Upstream::websocket().await;
    let tollgate = Harness::new(upstream.addr()).start().await;

    let answer = RawConnection::connect(tollgate.addr())
        .await
        .send(&websocket_handshake(None))
        .await;

    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(upstream.hits(), 0);
}
