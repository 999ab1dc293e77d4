//! The eighth attack run, on the cache's `expired` entries and a clock
//! that was wrong and is put right.
//!
//! The proxy reads the system clock, which a test cannot move; the
//! requests served while the clock was ahead are therefore made through
//! `auth::authenticate`, the function the proxy calls, against the running
//! tollgate's own cache and snapshot. Everything after is a real request
//! over TCP at the real time.

mod support;

use http::StatusCode;

use support::{Harness, Upstream, claims, keys, now};

/// How far ahead the broken clock ran: past the hour a test token lives.
const AHEAD_SECONDS: f64 = 7200.0;

/// Serves `token` once as tollgate would have while its clock ran ahead,
/// and returns the refusal reason it gave.
fn served_with_the_clock_ahead(tollgate: &support::Tollgate, token: &str) -> &'static str {
    let state = tollgate.running().state();
    let snapshot = state.load();
    let ahead = now() as f64 + AHEAD_SECONDS;
    let (verdict, _) = tollgate::auth::authenticate(
        token,
        &snapshot.providers,
        &state.cache,
        snapshot.generation,
        ahead,
    );
    verdict
        .err()
        .map_or("ok", |refusal| refusal.reason.as_str())
}

/// Finding: the cache kept "expired" for good. A token judged expired
/// while the node's clock ran ahead (an NTP fault; the runbook's
/// "`expired` for everyone: a clock is wrong") stayed refused as expired
/// once the clock was put right, until a reload or a key refresh, while a
/// fresh check (and `tollgate inspect`) let it through. Before the cache
/// kept expired tokens, fixing the clock fixed tollgate at once. Both ways
/// in are covered: a token first seen with the clock ahead, and a cached
/// good token that the clock ahead turned into an expired entry.
#[tokio::test]
async fn a_token_refused_as_expired_while_the_clock_ran_ahead_passes_once_it_is_right() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;

    let first_seen_ahead = keys().mint("HS256", &claims("alice"));
    let cached_then_ahead = keys().mint("ES256", &claims("bob"));
    let answer = tollgate
        .get("/api/games")
        .bearer(&cached_then_ahead)
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");

    for token in [&first_seen_ahead, &cached_then_ahead] {
        assert_eq!(served_with_the_clock_ahead(&tollgate, token), "expired");
    }

    // The clock is right again: both tokens have most of an hour to live.
    for (token, sub) in [(&first_seen_ahead, "alice"), (&cached_then_ahead, "bob")] {
        let answer = tollgate.get("/api/games").bearer(token).send().await;
        assert_eq!(answer.status, StatusCode::OK, "{sub}: {answer:?}");
        assert_eq!(answer.upstream_saw("x-user-id"), [sub]);
    }
    // And a second look is a cache hit again, not a check each time.
    let hits = tollgate.metric("tollgate_cache_hits_total").await;
    let answer = tollgate
        .get("/api/games")
        .bearer(&first_seen_ahead)
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        tollgate.metric("tollgate_cache_hits_total").await,
        hits + 1.0
    );
}

/// What the fix must keep: with the clock right, a token past its `exp`
/// is refused, and its retries are answered from the cache.
#[tokio::test]
async fn with_a_right_clock_an_expired_token_is_still_answered_from_the_cache() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let mut old = claims("alice");
    old["exp"] = serde_json::json!(now() - 600);
    let expired = keys().mint("HS256", &old);

    for _ in 0..3 {
        let answer = tollgate.get("/api/games").bearer(&expired).send().await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        let challenge = answer.header("www-authenticate").unwrap_or_default();
        assert!(challenge.contains("the token has expired"), "{challenge}");
    }
    assert_eq!(tollgate.metric("tollgate_cache_misses_total").await, 1.0);
    assert_eq!(tollgate.metric("tollgate_cache_hits_total").await, 2.0);
    assert_eq!(upstream.hits(), 0);
}
