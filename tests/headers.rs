//! End-to-end header hygiene: the upstream trusts `X-User-*` because only
//! tollgate sets them, so no spelling a caller sends may get through, and
//! headers that describe the caller's connection stay on that connection.
//!
//! The requests go over raw TCP: a client library would lowercase the names
//! and might drop hop-by-hop headers itself, hiding exactly what is tested.

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use support::wire::request_head;
use support::{Answer, Harness, RawConnection, Upstream};

/// Every identity header, in the spellings servers and frameworks read as
/// the same name, with one name repeated.
const SPOOFED: [&str; 12] = [
    "X-User-Id: mallory",
    "x-user-id: mallory",
    "X_USER_ID: mallory",
    "x_user-id: mallory",
    "X-User-Id: mallory-again",
    "X-User-Email: mallory@evil.test",
    "x_user_email: mallory@evil.test",
    "X-USER_EMAIL: mallory@evil.test",
    "X-User-Roles: admin",
    "x-user-roles: admin",
    "X_User_Roles: admin",
    "x_user-ROLES: admin",
];

/// The identity headers the upstream saw, under whatever spelling: each
/// name it received that reads as `x-user-*` once `_` is taken as `-`.
fn identity_seen(answer: &Answer) -> Vec<(String, Value)> {
    let json = answer.json();
    let Some(headers) = json["headers"].as_object() else {
        panic!("not an echo: {answer:?}");
    };
    headers
        .iter()
        .filter(|(name, _)| name.replace('_', "-").starts_with("x-user-"))
        .map(|(name, values)| (name.clone(), values.clone()))
        .collect()
}

fn with_lines<'a>(first: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
    first.iter().chain(rest).copied().collect()
}

#[tokio::test]
async fn spoofed_identity_on_a_protected_route_is_replaced_by_the_tokens() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let token = support::keys().mint("HS256", &support::claims("alice"));
    let bearer = format!("Authorization: Bearer {token}");

    let lines = with_lines(&[&bearer], &SPOOFED);
    let answer = RawConnection::connect(tollgate.addr())
        .await
        .send(&request_head("GET", "/api/profile", &lines))
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    let mut seen = identity_seen(&answer);
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        vec![
            (
                "x-user-email".to_owned(),
                serde_json::json!(["alice@chessmate.test"])
            ),
            ("x-user-id".to_owned(), serde_json::json!(["alice"])),
            ("x-user-roles".to_owned(), serde_json::json!(["player"])),
        ]
    );
}

#[tokio::test]
async fn spoofed_identity_on_a_public_route_never_reaches_the_upstream() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;

    let answer = RawConnection::connect(tollgate.addr())
        .await
        .send(&request_head("GET", "/public/x", &SPOOFED))
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(identity_seen(&answer), vec![]);
}

#[tokio::test]
async fn spoofed_identity_on_an_account_store_route_never_reaches_the_store() {
    let upstream = Upstream::start().await;
    let store = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_account_store(&format!("http://{}", store.addr()), "2s")
        .start()
        .await;

    let lines = with_lines(&["Content-Length: 0"], &SPOOFED);
    let answer = RawConnection::connect(tollgate.addr())
        .await
        .send(&request_head("POST", "/auth/login", &lines))
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(store.hits(), 1);
    assert_eq!(identity_seen(&answer), vec![]);
}

#[tokio::test]
async fn naming_identity_headers_in_connection_cannot_remove_the_real_ones() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let token = support::keys().mint("HS256", &support::claims("alice"));
    let bearer = format!("Authorization: Bearer {token}");

    let lines = [
        bearer.as_str(),
        "Connection: X-User-Id, x_user_email",
        "Connection: X-USER-ROLES",
    ];
    let answer = RawConnection::connect(tollgate.addr())
        .await
        .send(&request_head("GET", "/api/profile", &lines))
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.upstream_saw("x-user-id"), ["alice"]);
    assert_eq!(
        answer.upstream_saw("x-user-email"),
        ["alice@chessmate.test"]
    );
    assert_eq!(answer.upstream_saw("x-user-roles"), ["player"]);
}

#[tokio::test]
async fn hop_by_hop_headers_never_reach_the_upstream() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let token = support::keys().mint("HS256", &support::claims("alice"));
    let bearer = format!("Authorization: Bearer {token}");

    let lines = [
        bearer.as_str(),
        "Connection: keep-alive, X-Hop-Trace, Upgrade, HTTP2-Settings",
        "X-Hop-Trace: per-connection",
        "Keep-Alive: timeout=5, max=100",
        "TE: trailers",
        "Proxy-Authorization: Basic cHJveHk6c2VjcmV0",
        "Upgrade: h2c",
        "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
        "X-End-To-End: kept",
    ];
    let answer = RawConnection::connect(tollgate.addr())
        .await
        .send(&request_head("GET", "/api/profile", &lines))
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    for name in [
        "x-hop-trace",
        "keep-alive",
        "te",
        "proxy-authorization",
        "upgrade",
        "http2-settings",
    ] {
        assert_eq!(answer.upstream_saw(name), Vec::<String>::new(), "{name}");
    }
    // The connection to the upstream is tollgate's own; whatever it says in
    // `Connection` must not carry the caller's list along.
    for value in answer.upstream_saw("connection") {
        assert!(
            !value.to_ascii_lowercase().contains("x-hop-trace"),
            "{value}"
        );
    }
    assert_eq!(answer.upstream_saw("x-end-to-end"), ["kept"]);
}

#[tokio::test]
async fn the_authorization_header_reaches_the_upstream_on_a_protected_route() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let token = support::keys().mint("HS256", &support::claims("alice"));
    let bearer = format!("Authorization: Bearer {token}");

    // Naming it in `Connection` must not hide the token the decision was
    // made on from an upstream that checks it again.
    let lines = [bearer.as_str(), "Connection: Authorization"];
    let answer = RawConnection::connect(tollgate.addr())
        .await
        .send(&request_head("GET", "/api/profile", &lines))
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.upstream_saw("authorization"),
        [format!("Bearer {token}")]
    );
}

#[tokio::test]
async fn a_claim_the_token_lacks_leaves_its_header_absent_not_spoofed() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let mut claims = support::claims("alice");
    claims
        .as_object_mut()
        .expect("claims are an object")
        .remove("email");
    let token = support::keys().mint("HS256", &claims);
    let bearer = format!("Authorization: Bearer {token}");

    let lines = [bearer.as_str(), "X-User-Email: root@chessmate.test"];
    let answer = RawConnection::connect(tollgate.addr())
        .await
        .send(&request_head("GET", "/api/profile", &lines))
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.upstream_saw("x-user-email"), Vec::<String>::new());
    assert_eq!(answer.upstream_saw("x-user-id"), ["alice"]);
}

/// Checks that no trailer the upstream received reads as an identity
/// header.
fn assert_no_identity_trailers(answer: &Answer) {
    assert_eq!(answer.status, 200, "{answer:?}");
    let trailers = &answer.json()["trailers"];
    let names = trailers
        .as_object()
        .map(|map| map.keys().collect::<Vec<_>>());
    for name in names.unwrap_or_default() {
        assert!(!name.replace('_', "-").starts_with("x-user-"), "{trailers}");
    }
}

#[tokio::test]
async fn identity_sent_as_http1_trailers_never_reaches_the_upstream() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let lines = [
        "Transfer-Encoding: chunked",
        "TE: trailers",
        "Trailer: X-User-Id, X_User_Roles",
    ];
    let mut connection = RawConnection::connect(tollgate.addr()).await;

    connection
        .write(&request_head("POST", "/public/x", &lines))
        .await;
    connection
        .write(b"4\r\nmove\r\n0\r\nX-User-Id: mallory\r\nX_User_Roles: admin\r\n\r\n")
        .await;
    let answer = connection.read_answer().await;

    assert_no_identity_trailers(&answer);
    assert_eq!(answer.json()["body_len"], 4);
}

#[tokio::test]
async fn identity_sent_as_http2_trailers_never_reaches_the_upstream() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-user-id", http::HeaderValue::from_static("mallory"));
    trailers.insert("x_user_roles", http::HeaderValue::from_static("admin"));
    let body = Full::new(Bytes::from_static(b"move"))
        .with_trailers(async move { Some(Ok::<_, std::convert::Infallible>(trailers)) })
        .boxed();

    let request = http::Request::builder()
        .method("POST")
        .uri("http://tollgate.test/public/x")
        .header("trailer", "x-user-id, x_user_roles")
        .body(body)
        .expect("request");
    let answer = support::send_h2(tollgate.addr(), request).await;

    assert_no_identity_trailers(&answer);
    assert_eq!(answer.json()["body_len"], 4);
}
