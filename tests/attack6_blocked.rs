//! The sixth attack run: what held against one listening socket per
//! worker, connection slots taken after accept, and the log writer that
//! gathers lines for a moment before it writes them. Real upstreams on
//! 127.0.0.1:0, the real binary where the process matters.

mod support;

use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::time::Duration;

use http::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use support::binary::{self, Blind, SECRET_ENV, command};
use support::upstream::Behaviour;
use support::wire::request_head;
use support::{Harness, RawConnection, Upstream, keys, metric_matching};

/// Clients that each open a connection per request.
const CLIENTS: usize = 12;
/// Requests each client sends, one connection each.
const ROUNDS: usize = 3;

/// Sends one request on a connection of its own and reads the status.
async fn one_request_on_its_own_connection(addr: std::net::SocketAddr) -> StatusCode {
    let mut connection = RawConnection::connect(addr).await;
    let request = request_head("GET", "/public/x", &["Connection: close"]);
    connection.send(&request).await.status
}

/// Fetches `/metrics` on a connection that closes after it: the admin
/// listener has `max_connections` of its own, and at a cap of 1 a pooled
/// client's idle connection would hold its only slot.
async fn metrics_once(tollgate: &support::Tollgate) -> String {
    let url = format!("http://{}/metrics", tollgate.admin_addr());
    binary::get(&url, &[("connection", "close")]).await.text()
}

/// Reads a proxy listener metric until it reads `want`, for up to 2 s
/// (a closed connection gives its slot back when its task ends).
async fn settles_at(tollgate: &support::Tollgate, name: &str, want: f64) -> f64 {
    let mut seen = f64::NAN;
    for _ in 0..40 {
        seen = metric_matching(
            &metrics_once(tollgate).await,
            name,
            &[("listener", "proxy")],
        );
        if seen == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

/// With `max_connections` of 1 or 2 and 1, 2 or 4 workers, a crowd of
/// clients that connect, send one request and close: every one is
/// answered 200 (none dropped while it waited for a slot, none starved),
/// the upstream never has more requests at once than the cap, and the
/// open-connections gauge is back at 0 when they are done, with the
/// stretches at the cap counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_at_a_small_cap_is_served_whole_and_never_over_the_cap() {
    for (cap, workers) in [(1, 1), (1, 2), (1, 4), (2, 2), (2, 4)] {
        let upstream = Upstream::with(Behaviour {
            delay: Some(Duration::from_millis(10)),
            ..Behaviour::default()
        })
        .await;
        let tollgate = Harness::new(upstream.addr())
            .with_workers(workers)
            .with_extra(&format!("[limits]\nmax_connections = {cap}\n"))
            .start()
            .await;
        let addr = tollgate.addr();

        let mut clients = JoinSet::new();
        for _ in 0..CLIENTS {
            clients.spawn(async move {
                let mut served = 0;
                for _ in 0..ROUNDS {
                    if one_request_on_its_own_connection(addr).await == StatusCode::OK {
                        served += 1;
                    }
                }
                served
            });
        }
        let served = tokio::time::timeout(Duration::from_secs(60), async {
            let mut served = 0;
            while let Some(done) = clients.join_next().await {
                served += done.expect("a client was answered on every connection");
            }
            served
        })
        .await
        .unwrap_or_else(|_| panic!("cap {cap}, {workers} workers: a client starved"));

        let case = format!("cap {cap}, {workers} workers");
        assert_eq!(served, CLIENTS * ROUNDS, "{case}");
        assert_eq!(upstream.hits(), CLIENTS * ROUNDS, "{case}");
        assert!(
            upstream.peak() <= cap,
            "{case}: {} at once",
            upstream.peak()
        );
        let open = settles_at(&tollgate, "tollgate_open_connections", 0.0).await;
        assert_eq!(open, 0.0, "{case}");
        let text = metrics_once(&tollgate).await;
        let stretches = metric_matching(
            &text,
            "tollgate_connection_limits_total",
            &[("listener", "proxy"), ("limit", "max_connections")],
        );
        assert!(stretches >= 1.0, "{case}: the cap was met and not counted");
        tollgate.shutdown().await;
    }
}

/// SIGTERM's drain while a worker holds an accepted connection that waits
/// for a slot: the drain ends (the one kept-alive connection holding the
/// slot is idle and closes), and the waiting connection is closed
/// unanswered, as a connection left in the listen backlog always was; it
/// never reaches the upstream.
#[tokio::test]
async fn a_drain_with_a_connection_waiting_for_a_slot_ends_and_closes_it_unanswered() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_workers(2)
        .with_extra("[limits]\nmax_connections = 1\n")
        .start()
        .await;
    let addr = tollgate.addr();
    let get = request_head("GET", "/public/x", &[]);
    let mut holder = RawConnection::connect(addr).await;
    assert_eq!(holder.send(&get).await.status, StatusCode::OK);

    let mut waiting = TcpStream::connect(addr).await.expect("connect");
    waiting.write_all(&get).await.expect("write");
    let mut first = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), waiting.read(&mut first));
    assert!(early.await.is_err(), "answered over the cap");

    tokio::time::timeout(binary::DEADLINE, tollgate.shutdown())
        .await
        .expect("the drain ended");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(binary::DEADLINE, waiting.read_to_end(&mut rest)).await;
    match read.expect("the waiting connection was closed") {
        Ok(_) => assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest)),
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
    }
    assert_eq!(upstream.hits(), 1);
}

/// A start that fails after the log sink is up (the proxy's port is
/// taken) still gets its error line out to stdout before the exit, the
/// gather delay notwithstanding, and exits 1.
#[test]
fn the_error_line_of_a_failed_start_reaches_stdout_before_the_exit() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("bound");
    let config = binary::config("attack6-test", "http://127.0.0.1:9").replacen(
        "address = \"127.0.0.1:0\"",
        &format!("address = \"{address}\""),
        1,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = binary::write_config(dir.path(), "tollgate.toml", &config);
    let secret = keys().secret_text();

    for workers in ["1", "2"] {
        let output = binary::run(
            command()
                .env(SECRET_ENV, &secret)
                .env("TOKIO_WORKER_THREADS", workers)
                .arg("run")
                .arg("--config")
                .arg(&path),
        );
        assert_eq!(output.code(), Some(1), "{workers}: {}", output.stderr);
        let lines = output.json_lines();
        let error = lines
            .iter()
            .find(|line| line["level"] == "ERROR")
            .unwrap_or_else(|| panic!("{workers}: no error line in {lines:?}"));
        assert_eq!(error["message"], "cannot start");
        assert!(output.stderr.contains("cannot listen"), "{}", output.stderr);
    }
}

/// Requests sent while stdout is a pipe nobody reads.
const BLOCKED_REQUESTS: usize = 2000;

/// Stdout is a pipe that nobody reads while 2,000 requests with 6 KB
/// paths pass (12 MB of access lines, past both the pipe and the sink's
/// 8 MiB bound): every request is answered 200, and once the pipe is read
/// again, the access lines written plus the dropped lines the notice
/// counts make exactly the requests sent; SIGTERM then exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdout_pipe_nobody_reads_neither_stops_requests_nor_loses_count_of_lines() {
    let upstream = Upstream::start().await;
    let config = binary::config("attack6-test", &format!("http://{}", upstream.addr()));
    let secret = keys().secret_text();
    let (reader, writer) = std::io::pipe().expect("pipe");
    let stderr = tempfile::tempfile().expect("stderr file");
    let stdout = std::fs::File::from(OwnedFd::from(writer));
    let mut tollgate = Blind::start(&config, &[(SECRET_ENV, &secret)], stdout, stderr);
    let proxy = proxy_of(tollgate.wait_listening()).await;

    let token = keys().mint("HS256", &support::claims("alice"));
    let bearer = format!("Authorization: Bearer {token}");
    let request = request_head("GET", &format!("/api/{}", "a".repeat(6000)), &[&bearer]);
    let mut senders = JoinSet::new();
    for _ in 0..4 {
        let request = request.clone();
        senders.spawn(async move {
            let mut connection = RawConnection::connect(proxy).await;
            let mut ok = 0;
            for _ in 0..BLOCKED_REQUESTS / 4 {
                if connection.send(&request).await.status == StatusCode::OK {
                    ok += 1;
                }
            }
            ok
        });
    }
    let mut ok = 0;
    let sent = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(done) = senders.join_next().await {
            ok += done.expect("sender");
        }
    });
    sent.await
        .expect("the requests were answered while stdout was stuck");
    assert_eq!(ok, BLOCKED_REQUESTS);

    let lines = std::thread::spawn(move || {
        BufReader::new(reader)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    // Lets the writer get through its backlog before the end.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = tokio::task::spawn_blocking(move || tollgate.terminate())
        .await
        .expect("terminate");
    assert_eq!(status.code(), Some(0), "{status}");

    let lines: Vec<Value> = lines
        .join()
        .expect("reader")
        .iter()
        .map(|line| serde_json::from_str(line).expect("a whole JSON line"))
        .collect();
    let access = lines
        .iter()
        .filter(|line| line["target"] == "tollgate::access")
        .count();
    let dropped: u64 = lines
        .iter()
        .filter_map(|line| line["dropped"].as_u64())
        .sum();
    assert!(dropped > 0, "the sink's bound was never reached");
    // One more: the `/health` that told the proxy from the admin listener.
    assert_eq!(access as u64 + dropped, BLOCKED_REQUESTS as u64 + 1);
}

/// Picks the proxy among the two listening addresses: its `/health` wants
/// a token, the admin listener's answers.
async fn proxy_of(ports: Vec<std::net::SocketAddr>) -> std::net::SocketAddr {
    for addr in ports {
        let health = binary::get(&format!("http://{addr}/health"), &[]).await;
        if health.status == StatusCode::UNAUTHORIZED {
            return addr;
        }
    }
    panic!("no listener is the proxy");
}
