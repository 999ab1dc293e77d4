//! Attack 11 on the routes delegated to the account store: who is blamed
//! when a login does not finish in time.

mod support;

use std::time::Duration;

use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::upstream::Behaviour;
use support::{Harness, Upstream};

/// The account store's timeout in these tests; the stalled body outlasts it.
const STORE_TIMEOUT: &str = "1s";

/// How long a test waits for tollgate's answer before giving up: a bound
/// on a hang, well past [`STORE_TIMEOUT`].
const ANSWER_DEADLINE: Duration = Duration::from_secs(10);

/// Sends `head` and the start of a body it promises in full, then waits,
/// sending nothing more, for the status line tollgate answers with.
async fn stall_mid_body(tollgate: std::net::SocketAddr, head: &str) -> String {
    let mut stream = TcpStream::connect(tollgate).await.expect("connect");
    stream
        .write_all(format!("{head}Content-Length: 16\r\n\r\nhello").as_bytes())
        .await
        .expect("send the head and part of the body");
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(ANSWER_DEADLINE, stream.read(&mut answer))
        .await
        .expect("tollgate answers before the deadline")
        .expect("read the answer");
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

/// Regression (attack 11): a client that sent part of a login body and then
/// stopped got 504 "the account store did not answer in time", a `warn`
/// line, and `tollgate_upstream_errors_total{target="account_store",
/// kind="timeout"}`: any anonymous caller could page the operator through
/// the 5xx and timeout alerts for a fault of its own. The store never had
/// the whole request, so it had nothing to answer; the caller's wait is
/// the caller's fault, a 408.
#[tokio::test]
async fn a_login_body_the_client_stops_sending_is_the_clients_timeout() {
    let upstream = Upstream::start().await;
    let store = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_account_store(&format!("http://{}", store.addr()), STORE_TIMEOUT)
        .start()
        .await;

    let head = "POST /auth/login HTTP/1.1\r\nHost: tollgate.test\r\n";
    let answer = stall_mid_body(tollgate.addr(), head).await;

    // "HTTP/1.1 504 Gateway Timeout" before the fix.
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    let timeouts = r#"tollgate_upstream_errors_total{target="account_store",kind="timeout"}"#;
    assert_eq!(tollgate.metric(timeouts).await, 0.0);
    let outcome = r#"tollgate_requests_total{rule="account_store",outcome="bad_request"}"#;
    assert_eq!(tollgate.metric(outcome).await, 1.0);
}

/// The same stall on a public route of the upstream: no token needed, so
/// this is the cheapest way to make tollgate blame its upstream.
#[tokio::test]
async fn a_public_body_the_client_stops_sending_is_the_clients_timeout() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_upstream_timeout(STORE_TIMEOUT)
        .with_rules("[[rules]]\npath_prefix = \"/public/\"\npublic = true\n")
        .start()
        .await;

    let head = "POST /public/upload HTTP/1.1\r\nHost: tollgate.test\r\n";
    let answer = stall_mid_body(tollgate.addr(), head).await;

    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    let timeouts = r#"tollgate_upstream_errors_total{target="upstream",kind="timeout"}"#;
    assert_eq!(tollgate.metric(timeouts).await, 0.0);
}

/// The other side of the same line: a whole login body sent to a store
/// that is slower than its timeout is still the store's 504, counted as its
/// timeout.
#[tokio::test]
async fn a_whole_login_body_to_a_slow_store_is_still_the_stores_timeout() {
    let upstream = Upstream::start().await;
    let store = Upstream::with(Behaviour {
        delay: Some(Duration::from_secs(3)),
        ..Behaviour::default()
    })
    .await;
    let tollgate = Harness::new(upstream.addr())
        .with_account_store(&format!("http://{}", store.addr()), STORE_TIMEOUT)
        .start()
        .await;

    let answer = tollgate
        .request(Method::POST, "/auth/login")
        .body(r#"{"username":"alice","password":"hunter2"}"#)
        .send()
        .await;

    assert_eq!(answer.status, 504, "{answer:?}");
    assert_eq!(answer.json()["error"], "account_store_timeout");
    let timeouts = r#"tollgate_upstream_errors_total{target="account_store",kind="timeout"}"#;
    assert_eq!(tollgate.metric(timeouts).await, 1.0);
}
