//! Findings of the fourth attack run (a newcomer's, against the limits,
//! path rules and header hygiene), one test per hole; each failed before
//! its fix. The header and path findings of that run are corpus cases
//! (`identity::x_forwarded_*_spoofed`, `paths::exact_rule_*`). Real
//! tollgate, real upstreams, real HS256 tokens, loopback only.

mod support;

use std::time::Duration;

use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::wire::websocket_handshake;
use support::{Harness, Upstream};

/// With `trusted_hops`, the login limit is keyed by the whole IPv6
/// address, so one client holding a /64 (the usual smallest allocation)
/// gets a fresh bucket per address and is never limited.
#[tokio::test]
async fn ipv6_clients_in_one_slash_64_share_a_login_bucket() {
    let upstream = Upstream::start().await;
    let store = Upstream::start().await;
    let limits = "account_store_rate_per_minute = 1\naccount_store_burst = 1\ntrusted_hops = 1\n";
    let tollgate = Harness::new(upstream.addr())
        .with_account_store(&format!("http://{}", store.addr()), "2s")
        .with_extra(&format!("[limits]\n{limits}"))
        .start()
        .await;

    let mut passed = 0;
    for host in 1..=5 {
        let answer = tollgate
            .request(Method::POST, "/auth/login")
            .header("x-forwarded-for", &format!("2001:db8:1:2::{host}"))
            .send()
            .await;
        if answer.status == StatusCode::OK {
            passed += 1;
        }
    }

    assert_eq!(passed, 1, "logins let through from one /64");
}

/// Over HTTP/1.1 the service gets the client's `Host`; over HTTP/2 it gets
/// the upstream's own address, and the client's authority only in
/// `X-Forwarded-Host`. A service that reads `Host` sees two answers for
/// one request depending on the client's protocol.
#[tokio::test]
async fn the_service_sees_the_same_host_over_http1_and_http2() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let request = http::Request::builder()
        .uri(format!("http://{}/public/x", tollgate.addr()))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");

    let h1 = tollgate.get("/public/x").send().await;
    let h2 = support::send_h2(tollgate.addr(), request).await;

    assert_eq!(h1.status, StatusCode::OK, "{h1:?}");
    assert_eq!(h2.status, StatusCode::OK, "{h2:?}");
    assert_eq!(h1.upstream_saw("host"), h2.upstream_saw("host"));
}

/// `limits.idle_timeout` does not reach an upgraded connection: an idle
/// WebSocket tunnel lives on (past the token's `exp` too) and keeps its
/// `max_connections` slot, so one holder of any valid token can take every
/// slot for good with idle tunnels and no traffic.
#[tokio::test]
async fn an_idle_websocket_tunnel_is_closed_at_the_idle_timeout() {
    let upstream = Upstream::websocket().await;
    let limits = "idle_timeout = \"1s\"\nheader_read_timeout = \"1s\"\n";
    let tollgate = Harness::new(upstream.addr())
        .with_extra(&format!("[limits]\n{limits}"))
        .start()
        .await;
    let token = support::keys().mint("HS256", &support::claims("alice"));
    let handshake = websocket_handshake(Some(&token));
    let mut tunnel = TcpStream::connect(tollgate.addr()).await.expect("connect");
    tunnel.write_all(&handshake).await.expect("write");
    let mut head = [0u8; 12];
    tunnel.read_exact(&mut head).await.expect("read");
    assert_eq!(&head, b"HTTP/1.1 101");

    // Read whatever the upstream greets with, then stay idle well past
    // the idle timeout: tollgate should have closed the tunnel by then.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut rest = Vec::new();
    let drained = tokio::time::timeout(Duration::from_secs(2), tunnel.read_to_end(&mut rest));
    assert!(
        drained.await.is_ok(),
        "the tunnel is still open after 5 s idle with idle_timeout = 1s"
    );
}
