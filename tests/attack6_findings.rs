//! The sixth attack run, against one listening socket per worker
//! (`SO_REUSEPORT`), connection slots taken after accept, and the log
//! writer that gathers lines for a moment: one test per hole found, each
//! failing before its fix. Real upstreams on 127.0.0.1:0, real sockets.

mod support;

use std::net::SocketAddr;

use http::StatusCode;
use socket2::{Domain, Protocol, Socket, Type};

use support::{Harness, Upstream, keys};

/// A listening socket with `SO_REUSEPORT` set, as nginx's `reuseport`,
/// Envoy or a second tollgate would hold a port.
fn reuseport_listener(address: SocketAddr) -> Socket {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    socket.set_reuse_port(true).expect("SO_REUSEPORT");
    socket.bind(&address.into()).expect("bind");
    socket.listen(16).expect("listen");
    socket
}

/// Finding: with more than one worker, tollgate bound its sockets with
/// `SO_REUSEPORT` without first checking the port, so when another
/// program of the same user already listened there with `SO_REUSEPORT`
/// set, tollgate joined it and started "serving": the kernel then handed
/// that program a share of the connections (8 of 30 in a manual run),
/// requests that never met a token check. One worker (no `SO_REUSEPORT`)
/// refused the port with exit code 1, as the README promises for a
/// listener that cannot be bound; now every worker count does.
#[tokio::test]
async fn a_port_another_program_shares_through_so_reuseport_is_refused_for_any_worker_count() {
    let holder = reuseport_listener("127.0.0.1:0".parse().expect("an address"));
    let taken = holder
        .local_addr()
        .expect("bound")
        .as_socket()
        .expect("an inet address");
    let upstream = Upstream::start().await;

    for workers in [1, 2, 4] {
        let started = Harness::new(upstream.addr())
            .with_workers(workers)
            .with_listen(taken)
            .try_start()
            .await;
        match started {
            Err(tollgate::StartError::Bind { what, source, .. }) => {
                assert_eq!(what, "proxied traffic", "{workers} workers");
                assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
            }
            Ok(tollgate) => {
                tollgate.shutdown().await;
                panic!("{workers} workers joined a port another program listens on");
            }
            Err(other) => panic!("{workers} workers: unexpected error: {other}"),
        }
    }
}

/// The check that refuses a port in use must not refuse a port a
/// previous tollgate just gave up, with its closed connections still in
/// TIME_WAIT: a restart on a fixed port binds again at once.
#[tokio::test]
async fn a_restart_on_the_same_port_binds_at_once_with_two_workers() {
    let upstream = Upstream::start().await;
    let first = Harness::new(upstream.addr()).with_workers(2).start().await;
    let address = first.addr();
    let token = keys().mint("HS256", &support::claims("alice"));
    for _ in 0..8 {
        let answer = first.get("/api/games").bearer(&token).send().await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    // The drain closes the kept-alive connections from tollgate's side,
    // which leaves them in TIME_WAIT on the port.
    first.shutdown().await;

    let second = Harness::new(upstream.addr())
        .with_workers(2)
        .with_listen(address)
        .try_start()
        .await
        .expect("the port is bound again");
    assert_eq!(second.addr(), address);
    let answer = second.get("/api/games").bearer(&token).send().await;
    assert_eq!(answer.status, StatusCode::OK);
    second.shutdown().await;
}

/// Found on the way, older than the last commit: the admin listener took
/// its cap from `limits.max_connections` as well (a pool of its own, so
/// proxied traffic never starves it). With a small cap, kept-alive
/// scraper connections held every admin slot, and a health probe on a
/// new connection waited in the backlog until one closed: an orchestrator
/// would see the probe time out and restart a healthy tollgate. The admin
/// listener now has a cap of its own.
#[tokio::test]
async fn a_kept_alive_scraper_does_not_hold_off_a_health_probe_at_a_cap_of_one() {
    use support::RawConnection;
    use support::wire::request_head;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_extra("[limits]\nmax_connections = 1\n")
        .start()
        .await;
    let mut scraper = RawConnection::connect(tollgate.admin_addr()).await;
    let scraped = scraper.send(&request_head("GET", "/metrics", &[])).await;
    assert_eq!(scraped.status, StatusCode::OK);

    let mut probe = tokio::net::TcpStream::connect(tollgate.admin_addr())
        .await
        .expect("connect");
    let health = request_head("GET", "/health", &["Connection: close"]);
    probe.write_all(&health).await.expect("write");
    let mut status = [0u8; 12];
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        probe.read_exact(&mut status),
    );
    assert!(
        answered.await.is_ok(),
        "the health probe waited for the scraper"
    );
    assert_eq!(&status, b"HTTP/1.1 200");
    drop(scraper);
    tollgate.shutdown().await;
}
