//! Faults around tollgate: the upstream refusing, resetting, stalling or
//! answering garbage; the account store down; a key set source that stops
//! answering; logs that cannot be written; SIGTERM under load.
//!
//! Each test checks the exact answer the caller gets for the fault, and
//! that a normal request on another connection, during the fault where it
//! lasts and right after it, still gets its 200.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use support::binary::{self, Blind, SECRET_ENV};
use support::faulty::{self, FaultyUpstream, RestartingUpstream};
use support::jwks_server::{JwksServer, RemoteKey, jwks_of};
use support::upstream::Behaviour;
use support::wire::request_head;
use support::{Harness, Tollgate, Upstream, claims, closed_port, keys, metric_matching};

/// A short upstream timeout, so the stalls of [`faulty::STALL`] outlast it.
const UPSTREAM_TIMEOUT: &str = "300ms";

fn token() -> String {
    keys().mint("HS256", &claims("alice"))
}

/// Starts tollgate in front of a [`FaultyUpstream`].
async fn in_front_of(upstream: &FaultyUpstream) -> Tollgate {
    Harness::new(upstream.addr())
        .with_upstream_timeout(UPSTREAM_TIMEOUT)
        .start()
        .await
}

/// Sends a normal authenticated request through tollgate (the test
/// client's pool, so another connection than the faulty one's) and
/// requires the upstream's 200.
async fn assert_serving(tollgate: &Tollgate) {
    let answer = tollgate.get("/api/games").bearer(&token()).send().await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.text(), faulty::NORMAL_BODY);
}

/// Polls `check` every 10 ms until it holds; fails the test after 5 s.
async fn wait_until(what: &str, check: impl Fn() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 5 s");
}

/// Reads `tollgate_upstream_errors_total` for the upstream and one kind.
async fn upstream_errors(tollgate: &Tollgate, kind: &str) -> f64 {
    metric_matching(
        &tollgate.metrics().await,
        "tollgate_upstream_errors_total",
        &[("target", "upstream"), ("kind", kind)],
    )
}

// --- the upstream -----------------------------------------------------------

#[tokio::test]
async fn an_upstream_that_refuses_connections_gives_502_while_logins_still_pass() {
    let account_store = Upstream::start().await;
    let tollgate = Harness::new(closed_port().await)
        .with_account_store(&format!("http://{}", account_store.addr()), "2s")
        .start()
        .await;

    let answer = tollgate.get("/api/games").bearer(&token()).send().await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{answer:?}");
    assert_eq!(answer.json()["error"], "upstream_unavailable");
    assert_eq!(upstream_errors(&tollgate, "connect").await, 1.0);

    let login = tollgate
        .request(Method::POST, "/auth/login")
        .body("user=alice")
        .send()
        .await;
    assert_eq!(login.status, StatusCode::OK, "{login:?}");
    assert_eq!(login.upstream_path(), "/auth/login");
    tollgate.shutdown().await;
}

#[tokio::test]
async fn an_upstream_reset_before_its_answer_gives_502() {
    let upstream = FaultyUpstream::start().await;
    let tollgate = in_front_of(&upstream).await;

    let answer = tollgate
        .get("/api/reset-before-head")
        .bearer(&token())
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{answer:?}");
    assert_eq!(answer.json()["error"], "upstream_unavailable");
    assert_eq!(upstream_errors(&tollgate, "other").await, 1.0);

    assert_serving(&tollgate).await;
    tollgate.shutdown().await;
}

/// The head (200, with its length) is already on its way when the upstream
/// resets, so the status cannot change any more: what must not happen is a
/// truncated body the caller could take for a whole one, or a connection
/// left hanging.
#[tokio::test]
async fn an_upstream_reset_mid_body_cuts_the_callers_connection_short() {
    let upstream = FaultyUpstream::start().await;
    let tollgate = in_front_of(&upstream).await;
    let bearer = format!("Authorization: Bearer {}", token());

    let mut stream = TcpStream::connect(tollgate.addr()).await.expect("connect");
    stream
        .write_all(&request_head("GET", "/api/reset-mid-body", &[&bearer]))
        .await
        .expect("write");
    let (seen, ended) = faulty::read_until_end(&mut stream, Duration::from_secs(5)).await;
    assert!(ended, "the connection was left open after the reset");

    let text = String::from_utf8_lossy(&seen);
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let declared = format!("content-length: {}", faulty::RESET_DECLARED);
    assert!(head.to_ascii_lowercase().contains(&declared), "{head}");
    assert!(
        body.len() < faulty::RESET_DECLARED,
        "the body looks whole: {} bytes",
        body.len()
    );

    assert_serving(&tollgate).await;
    tollgate.shutdown().await;
}

#[tokio::test]
async fn an_upstream_slower_than_the_timeout_gives_504_while_others_are_served() {
    let upstream = FaultyUpstream::start().await;
    let tollgate = Arc::new(in_front_of(&upstream).await);

    let slow = tokio::spawn({
        let tollgate = tollgate.clone();
        async move { tollgate.get("/api/slow-head").bearer(&token()).send().await }
    });
    wait_until("the request reaching the upstream", || {
        upstream.requests() > 0
    })
    .await;
    // The stalled request holds no lock others wait for.
    assert_serving(&tollgate).await;
    assert!(!slow.is_finished(), "the stalled request ended too early");

    let answer = slow.await.expect("slow request task");
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT, "{answer:?}");
    assert_eq!(answer.json()["error"], "upstream_timeout");
    assert_eq!(upstream_errors(&tollgate, "timeout").await, 1.0);

    assert_serving(&tollgate).await;
}

/// `upstream.timeout` bounds the wait for the head only: a body that
/// trickles in for longer than it is streamed through whole.
#[tokio::test]
async fn a_slow_body_after_a_prompt_head_arrives_whole() {
    let upstream = FaultyUpstream::start().await;
    let tollgate = Arc::new(in_front_of(&upstream).await);

    let slow = tokio::spawn({
        let tollgate = tollgate.clone();
        async move { tollgate.get("/api/slow-body").bearer(&token()).send().await }
    });
    wait_until("the request reaching the upstream", || {
        upstream.requests() > 0
    })
    .await;
    assert_serving(&tollgate).await;
    assert!(!slow.is_finished(), "the slow body ended too early");

    let answer = slow.await.expect("slow request task");
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.text(), faulty::SLOW_BODY.concat());
    assert_eq!(upstream_errors(&tollgate, "timeout").await, 0.0);
}

#[tokio::test]
async fn an_upstream_answering_garbage_gives_502() {
    let upstream = FaultyUpstream::start().await;
    let tollgate = in_front_of(&upstream).await;

    let answer = tollgate.get("/api/garbage").bearer(&token()).send().await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{answer:?}");
    assert_eq!(answer.json()["error"], "upstream_unavailable");
    assert!(
        !answer.text().contains("SSH"),
        "the garbage reached the caller"
    );
    assert_eq!(upstream_errors(&tollgate, "other").await, 1.0);

    assert_serving(&tollgate).await;
    tollgate.shutdown().await;
}

/// Regression (attack 11): a status past 599 was passed to the caller as
/// it came. RFC 9110 (section 15) has a client treat such a status as a
/// server error, and tollgate is the upstream's client: it answers 502.
#[tokio::test]
async fn an_upstream_status_past_599_gives_502() {
    let upstream = FaultyUpstream::start().await;
    let tollgate = in_front_of(&upstream).await;

    let answer = tollgate
        .get("/api/status-999")
        .bearer(&token())
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{answer:?}");
    assert_eq!(answer.json()["error"], "upstream_unavailable");
    assert_eq!(upstream_errors(&tollgate, "other").await, 1.0);

    assert_serving(&tollgate).await;
    tollgate.shutdown().await;
}

// --- the account store ------------------------------------------------------

#[tokio::test]
async fn an_account_store_that_is_down_gives_503_on_login_only() {
    let upstream = FaultyUpstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_account_store(&format!("http://{}", closed_port().await), "2s")
        .start()
        .await;

    let login = tollgate
        .request(Method::POST, "/auth/login")
        .body("user=alice")
        .send()
        .await;
    assert_eq!(login.status, StatusCode::SERVICE_UNAVAILABLE, "{login:?}");
    assert_eq!(login.json()["error"], "account_store_unavailable");
    let errors = metric_matching(
        &tollgate.metrics().await,
        "tollgate_upstream_errors_total",
        &[("target", "account_store"), ("kind", "connect")],
    );
    assert_eq!(errors, 1.0);

    assert_serving(&tollgate).await;
    tollgate.shutdown().await;
}

// --- the key set source -----------------------------------------------------

/// A second provider whose keys come only from `url`, beside the HMAC one.
fn remote_provider(url: &str) -> String {
    format!(
        r#"[[providers]]
name = "remote"
issuer = "https://remote.test"
audiences = ["{aud}"]
algorithms = ["ES256"]
jwks_uri = "{url}"
jwks_refresh_interval = "1h"
min_refetch_interval = "100ms"
jwks_fetch_timeout = "500ms"
"#,
        aud = support::AUDIENCE
    )
}

/// tests/jwks_remote.rs covers stale keys while the endpoint fails; what
/// it leaves out is an endpoint that accepts and then hangs while a token
/// with an unknown key id makes tollgate fetch: that caller waits at most
/// the fetch timeout, and nobody else waits at all.
#[tokio::test]
async fn a_key_set_source_that_hangs_delays_only_the_unknown_kid_caller() {
    let upstream = FaultyUpstream::start().await;
    let key = RemoteKey::generate("remote-1");
    let server = JwksServer::start(jwks_of(&[&key])).await;
    let tollgate = Arc::new(
        Harness::new(upstream.addr())
            .with_provider_table(&remote_provider(&server.url()))
            .start()
            .await,
    );
    let fetches_before = server.fetches();

    // Past min_refetch_interval since the fetch at start, so an unknown
    // key id may fetch again.
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.with_delay(Some(Duration::from_secs(5)));
    let stranger = RemoteKey::generate("remote-2");
    let mut remote_claims = claims("bob");
    remote_claims["iss"] = "https://remote.test".into();
    let unknown = tokio::spawn({
        let tollgate = tollgate.clone();
        let token = stranger.mint(&remote_claims);
        async move { tollgate.get("/api/games").bearer(&token).send().await }
    });
    wait_until("a refetch", || server.fetches() > fetches_before).await;
    // While the refetch hangs: HMAC tokens and the remote provider's own
    // known key still pass.
    assert_serving(&tollgate).await;
    let known = key.mint(&remote_claims);
    let answer = tollgate.get("/api/games").bearer(&known).send().await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert!(!unknown.is_finished(), "the refetch did not hang");

    // The fetch timeout (500 ms), not the endpoint's 5 s, ends the wait.
    let answer = tokio::time::timeout(Duration::from_secs(3), unknown)
        .await
        .expect("the unknown kid answered within the fetch timeout")
        .expect("unknown kid task");
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    let challenge = answer.header("www-authenticate").unwrap_or_default();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_serving(&tollgate).await;
}

// --- the real binary: logs and signals --------------------------------------

fn dev_full() -> std::fs::File {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full")
}

/// Runs the binary with its output on these files, and requires it to
/// serve 200s and 401s (each one tries to write an access line), take a
/// SIGHUP reload (which logs too), serve again, and exit 0 on SIGTERM.
async fn serves_and_stops_with_output(stdout: std::fs::File, stderr: std::fs::File) {
    let upstream = Upstream::start().await;
    let config = binary::config("faults-test", &format!("http://{}", upstream.addr()));
    let secret = keys().secret_text();
    let mut tollgate = Blind::start(&config, &[(SECRET_ENV, &secret)], stdout, stderr);
    let ports = tollgate.wait_listening();

    // The admin listener answers /health; the proxy wants a token there.
    let mut proxy = None;
    for addr in &ports {
        let health = binary::get(&format!("http://{addr}/health"), &[]).await;
        if health.status == StatusCode::UNAUTHORIZED {
            proxy = Some(*addr);
        }
    }
    let proxy = proxy.expect("one listener is the proxy");
    let url = format!("http://{proxy}/api/games");
    let bearer = format!("Bearer {}", token());
    for round in 0..20 {
        if round == 10 {
            tollgate.signal("HUP");
        }
        let answer = binary::get(&url, &[("authorization", &bearer)]).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        let refused = binary::get(&url, &[]).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(upstream.hits(), 20);
    assert!(tollgate.is_running());

    let status = tollgate.terminate();
    assert_eq!(status.code(), Some(0), "{status}");
}

/// Every write to stdout and stderr fails with ENOSPC, as on a full disk:
/// logging must never be what stops the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_stdout_and_stderr_on_a_full_disk_it_still_serves_and_stops_cleanly() {
    serves_and_stops_with_output(dev_full(), dev_full()).await;
}

/// The same with stderr readable: a log write that fails must not turn
/// into a panic or an error report on stderr, which a full disk would
/// hide in the test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_log_write_leaves_stderr_silent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stderr.txt");
    let stderr = std::fs::File::create(&path).expect("create stderr file");
    serves_and_stops_with_output(dev_full(), stderr).await;
    let written = std::fs::read_to_string(&path).expect("read stderr file");
    assert_eq!(written, "", "tollgate wrote to stderr");
}

/// tests/shutdown.rs drains one request in process; this is the real
/// binary under steady load from several clients, each opening a new
/// connection per request. Every request the upstream saw must reach its
/// caller as a 200, nothing may come back other than 200, and once the
/// process has exited nothing accepts connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_every_forwarded_request_and_exits_0() {
    let upstream = Upstream::with(Behaviour {
        delay: Some(Duration::from_millis(300)),
        ..Behaviour::default()
    })
    .await;
    let config = binary::config("faults-test", &format!("http://{}", upstream.addr()));
    let secret = keys().secret_text();
    let served = binary::Served::start(&config, &[(SECRET_ENV, &secret)]);
    let url = served.url("/api/games");
    let bearer = format!("Bearer {}", token());

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..6 {
        let (url, bearer, stop, ok) = (url.clone(), bearer.clone(), stop.clone(), ok.clone());
        clients.push(tokio::spawn(async move {
            load_until_refused(&url, &bearer, &stop, &ok).await
        }));
    }
    wait_until("load reaching the upstream", || upstream.hits() >= 12).await;

    let output = tokio::task::spawn_blocking(move || served.terminate())
        .await
        .expect("terminate task");
    stop.store(true, Ordering::SeqCst);
    let mut others = Vec::new();
    for client in clients {
        others.extend(client.await.expect("client task"));
    }

    assert_eq!(output.code(), Some(0), "stderr: {}", output.stderr);
    assert!(others.is_empty(), "answers other than 200: {others:?}");
    assert_eq!(ok.load(Ordering::SeqCst), upstream.hits());
    let refused = TcpStream::connect(url_addr(&url)).await;
    assert!(refused.is_err(), "a connection was accepted after exit");
}

/// Sends requests one after another, each on a new connection, until one
/// cannot be sent (the listener has closed) or `stop` is set; counts the
/// 200s and returns any other status.
async fn load_until_refused(
    url: &str,
    bearer: &str,
    stop: &AtomicBool,
    ok: &AtomicUsize,
) -> Vec<StatusCode> {
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;

    let mut others = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        // A fresh client per request: no pooled connection survives, so
        // each request is a new connection the listener must accept.
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let request = http::Request::get(url)
            .header("authorization", bearer)
            .body(Full::new(Bytes::new()))
            .expect("valid request");
        let sent = tokio::time::timeout(binary::DEADLINE, client.request(request)).await;
        let Ok(Ok(response)) = sent else {
            // Refused or closed before an answer: shutdown has begun.
            break;
        };
        let answer = support::Answer::read(response).await;
        if answer.status == StatusCode::OK {
            ok.fetch_add(1, Ordering::SeqCst);
        } else {
            others.push(answer.status);
        }
    }
    others
}

fn url_addr(url: &str) -> std::net::SocketAddr {
    let rest = url.strip_prefix("http://").expect("an http url");
    let authority = rest.split('/').next().expect("an authority");
    authority.parse().expect("a socket address")
}

/// A redeployed service closes every connection tollgate keeps in its
/// pool. The next request must find a fresh connection, not fail on a
/// pooled one the service has already closed.
#[tokio::test]
async fn an_upstream_restart_does_not_fail_requests_on_pooled_connections() {
    let mut upstream = RestartingUpstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;

    let mut statuses = Vec::new();
    for _ in 0..20 {
        let answer = tollgate.get("/api/games").bearer(&token()).send().await;
        statuses.push(answer.status);
        upstream.restart().await;
    }
    let failed: Vec<_> = statuses.iter().filter(|s| **s != StatusCode::OK).collect();
    assert!(failed.is_empty(), "{failed:?} of {statuses:?}");
    assert_eq!(upstream.requests(), 20);
    tollgate.shutdown().await;
}

/// The listener closes the moment SIGTERM arrives, not when the drain
/// ends: a load balancer retrying elsewhere finds out at once, while the
/// requests already forwarded (held 1 s at the upstream) still finish
/// with 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_new_connections_are_refused_while_forwarded_requests_finish() {
    // Well inside the config's 2 s drain_timeout, which would cut them.
    let upstream = Upstream::with(Behaviour {
        delay: Some(Duration::from_secs(1)),
        ..Behaviour::default()
    })
    .await;
    let config = binary::config("faults-test", &format!("http://{}", upstream.addr()));
    let secret = keys().secret_text();
    let served = binary::Served::start(&config, &[(SECRET_ENV, &secret)]);
    let url = served.url("/api/games");
    let bearer = format!("Bearer {}", token());

    let in_flight: Vec<_> = (0..3)
        .map(|_| {
            let (url, bearer) = (url.clone(), bearer.clone());
            tokio::spawn(async move { binary::get(&url, &[("authorization", &bearer)]).await })
        })
        .collect();
    wait_until("three requests at the upstream", || upstream.hits() == 3).await;

    served.signal("TERM");
    let addr = url_addr(&url);
    let mut refused = false;
    for _ in 0..500 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the listener still accepted 5 s after SIGTERM");
    assert!(
        in_flight.iter().all(|task| !task.is_finished()),
        "the forwarded requests ended before the listener closed"
    );

    for task in in_flight {
        let answer = task.await.expect("in-flight task");
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    }
    // A second SIGTERM is harmless; this one only waits for the exit.
    let output = tokio::task::spawn_blocking(move || served.terminate())
        .await
        .expect("terminate task");
    assert_eq!(output.code(), Some(0), "stderr: {}", output.stderr);
}

/// Over HTTP/2 many requests share one downstream connection, so a reset
/// mid-body must end only its own stream: a slow body on the same
/// connection still arrives whole, and the connection takes new requests.
#[tokio::test]
async fn an_upstream_reset_mid_body_ends_only_its_own_http2_stream() {
    let upstream = FaultyUpstream::start().await;
    let tollgate = in_front_of(&upstream).await;
    let stream = TcpStream::connect(tollgate.addr()).await.expect("connect");
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(connection);
    let get = |path: &str| {
        let mut sender = sender.clone();
        let request = http::Request::get(format!("http://{}{path}", tollgate.addr()))
            .header("authorization", format!("Bearer {}", token()))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .expect("valid request");
        async move {
            let response = sender.send_request(request).await.expect("response head");
            let status = response.status();
            let body = http_body_util::BodyExt::collect(response.into_body()).await;
            (status, body.map(|body| body.to_bytes()))
        }
    };

    let (reset, slow) = tokio::join!(get("/api/reset-mid-body"), get("/api/slow-body"));
    assert_eq!(reset.0, StatusCode::OK);
    assert!(
        reset.1.is_err(),
        "the cut body ended cleanly: {:?}",
        reset.1
    );
    assert_eq!(slow.0, StatusCode::OK);
    let slow_body = slow.1.expect("the slow body arrives whole");
    assert_eq!(slow_body, faulty::SLOW_BODY.concat().as_bytes());

    let (status, body) = get("/api/games").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.expect("a whole body"), faulty::NORMAL_BODY.as_bytes());
    tollgate.shutdown().await;
}

/// Regression: every message for the operator went through `eprintln!`,
/// which panics when stderr cannot be written, so a bad config on a full
/// disk exited 101 (a panic) instead of the documented 2.
#[test]
fn a_bad_config_exits_2_even_when_stderr_cannot_be_written() {
    for subcommand in ["run", "check"] {
        let mut command = binary::command();
        command
            .args([subcommand, "--config", "no/such/tollgate.toml"])
            .stdout(dev_full())
            .stderr(dev_full());
        let status = command.status().expect("run tollgate");
        assert_eq!(status.code(), Some(2), "tollgate {subcommand}: {status}");
    }
}

/// Likewise for `check` on a valid config: its summary cannot be written
/// to a full stdout, but the verdict is the exit code, 0.
#[test]
fn check_exits_0_on_a_valid_config_even_when_stdout_cannot_be_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = binary::config("faults-test", "http://127.0.0.1:1");
    let path = binary::write_config(dir.path(), "tollgate.toml", &config);
    let status = binary::command()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .env(SECRET_ENV, keys().secret_text())
        .stdout(dev_full())
        .stderr(dev_full())
        .status()
        .expect("run tollgate");
    assert_eq!(status.code(), Some(0), "{status}");
}
