//! Remote key sets (`jwks_uri`) end to end: a real tollgate in front of a
//! real upstream, fetching from a JWKS endpoint the test controls (it
//! rotates keys, fails, goes down, sends ETags and Cache-Control, and
//! counts what it saw).
//!
//! Intervals are a fraction of a second so the file stays quick; waits are
//! polls bounded by a deadline, never timed assertions.

mod support;

use std::future::Future;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use support::jwks_server::{JwksServer, RemoteKey, Reply, TestCa, jwks_of};
use support::{
    Harness, Tollgate, Upstream, binary, claims, metric_matching, metric_value, verdicts,
};

/// Intervals short enough for a test: refresh every 200 ms, retry after
/// 100 ms, give up on a fetch after 500 ms, keep stale keys for an hour.
const QUICK: &str = r#"jwks_refresh_interval = "200ms"
min_refetch_interval = "100ms"
jwks_fetch_timeout = "500ms"
max_stale = "1h""#;

/// Intervals that keep the background refresh out of the way, so every
/// fetch the endpoint sees was asked for by the test.
const STILL: &str = r#"jwks_refresh_interval = "1h"
min_refetch_interval = "10s""#;

/// A harness whose one provider takes ES256 keys from `url` only.
fn harness(upstream: &Upstream, url: &str, lines: &str) -> Harness {
    Harness::new(upstream.addr())
        .without_secret()
        .without_jwks_file()
        .with_algorithms(&["ES256"])
        .with_provider_lines(&format!("jwks_uri = \"{url}\"\n{lines}"))
}

async fn start(upstream: &Upstream, url: &str, lines: &str) -> Tollgate {
    harness(upstream, url, lines).start().await
}

/// Reads `tollgate_jwks_fetches_total` for one result.
async fn fetches(tollgate: &Tollgate, result: &str) -> f64 {
    let metrics = tollgate.metrics().await;
    metric_matching(
        &metrics,
        "tollgate_jwks_fetches_total",
        &[("provider", "accounts"), ("result", result)],
    )
}

async fn generation(tollgate: &Tollgate) -> f64 {
    metric_value(&tollgate.metrics().await, "tollgate_keyset_generation")
}

async fn ready(tollgate: &Tollgate) -> StatusCode {
    let url = format!("http://{}/ready", tollgate.admin_addr());
    binary::get(&url, &[]).await.status
}

/// Sends a request with a token freshly minted by `key`: a new token each
/// time, so the cache cannot answer for it.
async fn call(tollgate: &Tollgate, key: &RemoteKey) -> StatusCode {
    let token = key.mint(&claims(&uuid::Uuid::new_v4().to_string()));
    tollgate
        .get("/api/games")
        .bearer(&token)
        .send()
        .await
        .status
}

/// Polls `check` every 25 ms until it holds; fails the test after 5 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} did not happen within 5 s");
}

// --- start and rotation ---------------------------------------------------

#[tokio::test]
async fn keys_fetched_at_start_verify_tokens_before_the_first_request() {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("remote-1");
    let server = JwksServer::start(jwks_of(&[&key])).await;
    let tollgate = start(&upstream, &server.url(), STILL).await;

    assert_eq!(ready(&tollgate).await, StatusCode::OK);
    assert_eq!(call(&tollgate, &key).await, StatusCode::OK);
    assert_eq!(server.fetches(), 1);
    assert_eq!(fetches(&tollgate, "ok").await, 1.0);
    let metrics = tollgate.metrics().await;
    assert!(
        metrics.contains("tollgate_jwks_key_age_seconds{provider=\"accounts\"}"),
        "{metrics}"
    );
    tollgate.shutdown().await;
}

#[tokio::test]
async fn a_token_with_a_new_kid_passes_after_exactly_one_refetch() {
    let upstream = Upstream::start().await;
    let old = RemoteKey::generate("2024-old");
    let new = RemoteKey::generate("2025-new");
    let server = JwksServer::start(jwks_of(&[&old])).await;
    let tollgate = start(&upstream, &server.url(), STILL).await;
    assert_eq!(call(&tollgate, &old).await, StatusCode::OK);

    server.reply(Reply::Jwks(jwks_of(&[&old, &new])));
    assert_eq!(call(&tollgate, &new).await, StatusCode::OK);
    assert_eq!(
        server.fetches(),
        2,
        "one fetch at start, one for the new kid"
    );

    // Both keys now verify without asking again.
    assert_eq!(call(&tollgate, &new).await, StatusCode::OK);
    assert_eq!(call(&tollgate, &old).await, StatusCode::OK);
    assert_eq!(server.fetches(), 2);
    tollgate.shutdown().await;
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_the_issuer_at_most_one_fetch() {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("real");
    let server = JwksServer::start(jwks_of(&[&key])).await;
    let tollgate = start(&upstream, &server.url(), STILL).await;
    assert_eq!(server.fetches(), 1);

    for wave in 0..2 {
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let kid = uuid::Uuid::new_v4().to_string();
            let token = key.mint_as(&kid, &claims("mallory"));
            calls.spawn(tollgate.get("/api/games").bearer(&token).send());
        }
        while let Some(answer) = calls.join_next().await {
            let answer = answer.expect("call task");
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "wave {wave}");
        }
    }

    assert!(server.fetches() <= 2, "fetches: {}", server.fetches());
    let metrics = tollgate.metrics().await;
    assert_eq!(verdicts(&metrics, "accounts", "unknown_kid"), 100.0);
    assert_eq!(call(&tollgate, &key).await, StatusCode::OK);
    tollgate.shutdown().await;
}

// --- failures: stale-if-error -----------------------------------------------

/// The ways an endpoint fails.
enum Failure {
    Down,
    ServerError,
    Garbage,
    EmptyKeySet,
    Slow,
}

/// Checks that the last good keys keep working while the endpoint fails
/// in this way, and that the failures are counted.
async fn old_keys_serve_while(failure: Failure) {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("remote-1");
    let mut server = JwksServer::start(jwks_of(&[&key])).await;
    let tollgate = start(&upstream, &server.url(), QUICK).await;
    assert_eq!(call(&tollgate, &key).await, StatusCode::OK);

    match failure {
        Failure::Down => server.go_down(),
        Failure::ServerError => server.reply(Reply::Status(500)),
        Failure::Garbage => server.reply(Reply::Garbage),
        Failure::EmptyKeySet => server.reply(Reply::Jwks(json!({"keys": []}))),
        Failure::Slow => server.with_delay(Some(Duration::from_secs(2))),
    }
    let t = &tollgate;
    eventually("two failed fetches", || async move {
        fetches(t, "error").await >= 2.0
    })
    .await;

    assert_eq!(call(&tollgate, &key).await, StatusCode::OK);
    assert_eq!(ready(&tollgate).await, StatusCode::OK);
    tollgate.shutdown().await;
}

#[tokio::test]
async fn old_keys_serve_while_the_endpoint_is_down() {
    old_keys_serve_while(Failure::Down).await;
}

#[tokio::test]
async fn old_keys_serve_while_the_endpoint_answers_500() {
    old_keys_serve_while(Failure::ServerError).await;
}

#[tokio::test]
async fn old_keys_serve_while_the_endpoint_answers_garbage() {
    old_keys_serve_while(Failure::Garbage).await;
}

#[tokio::test]
async fn old_keys_serve_while_the_endpoint_answers_an_empty_key_set() {
    old_keys_serve_while(Failure::EmptyKeySet).await;
}

#[tokio::test]
async fn old_keys_serve_while_the_endpoint_is_slower_than_the_fetch_timeout() {
    old_keys_serve_while(Failure::Slow).await;
}

#[tokio::test]
async fn keys_older_than_max_stale_are_dropped_until_a_fetch_succeeds() {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("remote-1");
    let server = JwksServer::start(jwks_of(&[&key])).await;
    let lines = QUICK.replace("max_stale = \"1h\"", "max_stale = \"1s\"");
    let tollgate = start(&upstream, &server.url(), &lines).await;
    assert_eq!(call(&tollgate, &key).await, StatusCode::OK);

    server.reply(Reply::Status(503));
    let t = &tollgate;
    eventually("/ready turning 503", || async move {
        ready(t).await == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let token = key.mint(&claims("alice"));
    let answer = tollgate.get("/api/games").bearer(&token).send().await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json()["error"], "temporarily_unavailable");
    let metrics = tollgate.metrics().await;
    assert_eq!(verdicts(&metrics, "accounts", "no_keys"), 1.0);

    server.reply(Reply::Jwks(jwks_of(&[&key])));
    eventually("/ready turning 200 again", || async move {
        ready(t).await == StatusCode::OK
    })
    .await;
    let answer = tollgate.get("/api/games").bearer(&token).send().await;
    assert_eq!(answer.status, StatusCode::OK);
    tollgate.shutdown().await;
}

#[tokio::test]
async fn a_failed_first_fetch_serves_503_until_the_endpoint_comes_back() {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("remote-1");
    let mut server = JwksServer::start(jwks_of(&[&key])).await;
    server.go_down();
    let tollgate = start(&upstream, &server.url(), QUICK).await;

    assert_eq!(ready(&tollgate).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(call(&tollgate, &key).await, StatusCode::SERVICE_UNAVAILABLE);
    assert!(fetches(&tollgate, "error").await >= 1.0);

    server.come_back().await;
    let t = &tollgate;
    eventually("/ready turning 200", || async move {
        ready(t).await == StatusCode::OK
    })
    .await;
    assert_eq!(call(&tollgate, &key).await, StatusCode::OK);
    tollgate.shutdown().await;
}

// --- caching: ETag, Cache-Control, unchanged documents ----------------------

#[tokio::test]
async fn an_etag_turns_refreshes_into_304s_that_keep_the_keys_and_the_cache() {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("remote-1");
    let server = JwksServer::start(jwks_of(&[&key])).await;
    server.with_etag("\"v1\"");
    let tollgate = start(&upstream, &server.url(), QUICK).await;
    let before = generation(&tollgate).await;

    let t = &tollgate;
    eventually("two 304 answers", || async move {
        fetches(t, "not_modified").await >= 2.0
    })
    .await;
    assert!(server.conditional_fetches() >= 2);
    assert!(server.not_modified() >= 2);
    assert_eq!(fetches(&tollgate, "ok").await, 1.0);
    assert_eq!(
        generation(&tollgate).await,
        before,
        "a 304 publishes nothing"
    );
    assert_eq!(call(&tollgate, &key).await, StatusCode::OK);
    tollgate.shutdown().await;
}

#[tokio::test]
async fn the_same_document_served_again_does_not_void_the_cache() {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("remote-1");
    let server = JwksServer::start(jwks_of(&[&key])).await;
    let tollgate = start(&upstream, &server.url(), QUICK).await;
    let token = key.mint(&claims("alice"));
    let answer = tollgate.get("/api/games").bearer(&token).send().await;
    assert_eq!(answer.status, StatusCode::OK);
    let before = generation(&tollgate).await;

    let t = &tollgate;
    eventually("two more fetches", || async move {
        fetches(t, "ok").await >= 3.0
    })
    .await;
    assert_eq!(generation(&tollgate).await, before);
    let answer = tollgate.get("/api/games").bearer(&token).send().await;
    assert_eq!(answer.status, StatusCode::OK);
    let metrics = tollgate.metrics().await;
    assert_eq!(metric_value(&metrics, "tollgate_cache_hits_total"), 1.0);
    tollgate.shutdown().await;
}

#[tokio::test]
async fn a_zero_max_age_refreshes_at_the_minimum_interval_not_the_hourly_one() {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("remote-1");
    let server = JwksServer::start(jwks_of(&[&key])).await;
    server.with_cache_control("public, max-age=0");
    let lines = "jwks_refresh_interval = \"1h\"\nmin_refetch_interval = \"100ms\"";
    let tollgate = start(&upstream, &server.url(), lines).await;

    let s = &server;
    eventually("two refreshes", || async move { s.fetches() >= 3 }).await;
    tollgate.shutdown().await;
}

#[tokio::test]
async fn a_long_max_age_does_not_stretch_the_refresh_interval() {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("remote-1");
    let server = JwksServer::start(jwks_of(&[&key])).await;
    server.with_cache_control("max-age=86400");
    let tollgate = start(&upstream, &server.url(), QUICK).await;

    let s = &server;
    eventually("two refreshes", || async move { s.fetches() >= 3 }).await;
    tollgate.shutdown().await;
}

// --- reloads -------------------------------------------------------------------

#[tokio::test]
async fn a_reload_with_the_same_jwks_uri_keeps_the_keys_without_fetching() {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("remote-1");
    let server = JwksServer::start(jwks_of(&[&key])).await;
    let tollgate = start(&upstream, &server.url(), STILL).await;
    assert_eq!(server.fetches(), 1);

    tollgate.reload(harness(&upstream, &server.url(), STILL));
    assert_eq!(ready(&tollgate).await, StatusCode::OK);
    assert_eq!(call(&tollgate, &key).await, StatusCode::OK);
    assert_eq!(server.fetches(), 1);

    // Changed settings make a new source: it takes over the keys fetched
    // from the same URL at once (no 503 while it fetches), then fetches
    // for itself.
    let changed = STILL.replace("\"10s\"", "\"20s\"");
    tollgate.reload(harness(&upstream, &server.url(), &changed));
    assert_eq!(ready(&tollgate).await, StatusCode::OK);
    assert_eq!(call(&tollgate, &key).await, StatusCode::OK);
    let s = &server;
    eventually("the new source fetched for itself", || async move {
        s.fetches() == 2
    })
    .await;
    assert_eq!(call(&tollgate, &key).await, StatusCode::OK);
    tollgate.shutdown().await;
}

// --- TLS -----------------------------------------------------------------------

#[tokio::test]
async fn https_works_with_a_ca_file_and_fails_without_one() {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("remote-1");
    let ca = TestCa::generate();
    let server = JwksServer::start_tls(jwks_of(&[&key]), &ca).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).expect("write ca");
    let ca_line = format!(
        "ca_file = \"{}\"\n{QUICK}",
        ca_file.display().to_string().replace('\\', "/")
    );

    let trusting = start(&upstream, &server.url(), &ca_line).await;
    assert_eq!(ready(&trusting).await, StatusCode::OK);
    assert_eq!(call(&trusting, &key).await, StatusCode::OK);

    let untrusting = start(&upstream, &server.url(), QUICK).await;
    assert_eq!(ready(&untrusting).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        call(&untrusting, &key).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(fetches(&untrusting, "error").await >= 1.0);
    assert_eq!(fetches(&untrusting, "ok").await, 0.0);

    trusting.shutdown().await;
    untrusting.shutdown().await;
}
