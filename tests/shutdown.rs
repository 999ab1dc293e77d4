//! End-to-end graceful shutdown: a request already in flight is finished,
//! and nothing new is accepted.

mod support;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::upstream::Behaviour;
use support::wire::{request_head, websocket_handshake};
use support::{Harness, Upstream};

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish_then_refuses_connections() {
    let upstream = Upstream::with(Behaviour {
        delay: Some(Duration::from_secs(1)),
        ..Behaviour::default()
    })
    .await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let addr = tollgate.addr();
    let token = support::keys().mint("HS256", &support::claims("alice"));

    let in_flight = tokio::spawn(tollgate.get("/api/slow").bearer(&token).send());
    // Shut down only once the request has reached the upstream, so it is
    // truly in flight rather than still queued in the client.
    for _ in 0..200 {
        if upstream.hits() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(upstream.hits(), 1, "the request never reached the upstream");
    tollgate.shutdown().await;

    let answer = in_flight.await.expect("request task");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.upstream_saw("x-user-id"), ["alice"]);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "a connection was accepted after shutdown"
    );
}

/// Regression: connection tasks were detached, so a request still running
/// at the drain deadline went on after `shutdown` had returned, and was
/// answered by a tollgate that had logged "closing remaining connections".
#[tokio::test]
async fn a_request_still_running_at_the_drain_deadline_is_cut_off() {
    let upstream = Upstream::with(Behaviour {
        delay: Some(Duration::from_secs(3)),
        ..Behaviour::default()
    })
    .await;
    let tollgate = Harness::new(upstream.addr())
        .with_drain_timeout("200ms")
        .with_upstream_timeout("10s")
        .start()
        .await;
    let mut stream = TcpStream::connect(tollgate.addr()).await.expect("connect");

    stream
        .write_all(&request_head("GET", "/public/slow", &[]))
        .await
        .expect("write");
    for _ in 0..200 {
        if upstream.hits() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(upstream.hits(), 1, "the request never reached the upstream");
    tollgate.shutdown().await;

    // Once shutdown has returned nothing of tollgate may still be serving,
    // so the connection ends without the upstream's late answer.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the connection ends");
    assert!(
        read.is_err() || answer.is_empty(),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

/// Reads until the peer closes; `None` when it has not closed in time.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let reading = async {
        let mut buffer = [0u8; 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => seen.extend_from_slice(&buffer[..read]),
            }
        }
    };
    tokio::time::timeout(within, reading).await.ok()?;
    Some(seen)
}

#[tokio::test]
async fn an_open_websocket_is_closed_once_the_drain_deadline_passes() {
    let upstream = Upstream::websocket().await;
    let tollgate = Harness::new(upstream.addr())
        .with_drain_timeout("300ms")
        .start()
        .await;
    let token = support::keys().mint("HS256", &support::claims("alice"));
    let handshake = websocket_handshake(Some(&token));
    let mut stream = TcpStream::connect(tollgate.addr()).await.expect("connect");
    stream.write_all(&handshake).await.expect("handshake");
    let mut head = vec![0u8; 12];
    stream.read_exact(&mut head).await.expect("status line");
    assert_eq!(&head, b"HTTP/1.1 101", "{}", String::from_utf8_lossy(&head));

    tollgate.shutdown().await;

    // The tunnel outlives the listener by at most the drain deadline.
    let rest = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    assert!(
        rest.is_some(),
        "the tunnel was still open 3 s after shutdown"
    );
}
