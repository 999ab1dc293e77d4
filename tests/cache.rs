//! The validated-token cache, seen from outside: repeats are hits with the
//! same identity, an entry dies with its token, and only the exact text of
//! a good token is ever remembered.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use support::{Answer, Harness, Tollgate, Upstream, claims, keys, now, swap_claims, verdicts};

const PROTECTED: &str = "/games/42";
const HITS: &str = "tollgate_cache_hits_total";
const MISSES: &str = "tollgate_cache_misses_total";

async fn start(configure: impl FnOnce(Harness) -> Harness) -> (Tollgate, Upstream) {
    let upstream = Upstream::start().await;
    let tollgate = configure(Harness::new(upstream.addr())).start().await;
    (tollgate, upstream)
}

/// Hits and misses so far.
async fn lookups(tollgate: &Tollgate) -> (f64, f64) {
    let text = tollgate.metrics().await;
    (
        support::metric_value(&text, HITS),
        support::metric_value(&text, MISSES),
    )
}

/// The identity headers the upstream saw, in a fixed order.
fn identity(answer: &Answer) -> [Vec<String>; 3] {
    ["x-user-id", "x-user-email", "x-user-roles"].map(|name| answer.upstream_saw(name))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

#[tokio::test]
async fn a_repeated_token_is_a_cache_hit_with_the_same_identity() {
    let (tollgate, _upstream) = start(|harness| harness).await;
    let mut claims = claims("alice");
    claims["roles"] = json!(["player", "moderator"]);
    let token = keys().mint("RS256", &claims);

    let first = tollgate.get(PROTECTED).bearer(&token).send().await;
    assert_eq!(first.status, 200);
    assert_eq!(lookups(&tollgate).await, (0.0, 1.0), "the first is a miss");

    let second = tollgate.get(PROTECTED).bearer(&token).send().await;
    assert_eq!(second.status, 200);
    assert_eq!(lookups(&tollgate).await, (1.0, 1.0), "the second is a hit");
    assert_eq!(identity(&second), identity(&first));
    assert_eq!(
        identity(&second),
        [
            vec!["alice".to_owned()],
            vec!["alice@chessmate.test".to_owned()],
            vec!["player,moderator".to_owned()],
        ]
    );
}

#[tokio::test]
async fn a_cached_token_stops_working_when_it_expires() {
    // tollgate reads the wall clock for exp, so this waits for real; the
    // token lives two seconds at most.
    let (tollgate, _upstream) = start(|harness| harness.with_leeway("0s")).await;
    let exp = now() + 2;
    let mut claims = claims("bob");
    claims["exp"] = json!(exp);
    let token = keys().mint("ES256", &claims);

    for _ in 0..2 {
        let answer = tollgate.get(PROTECTED).bearer(&token).send().await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    assert_eq!(lookups(&tollgate).await, (1.0, 1.0), "cached while fresh");

    let wait = exp as f64 + 0.1 - unix_now();
    tokio::time::sleep(Duration::from_secs_f64(wait.max(0.0))).await;

    let answer = tollgate.get(PROTECTED).bearer(&token).send().await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["error_description"], "the token has expired");
    let text = tollgate.metrics().await;
    assert_eq!(verdicts(&text, "accounts", "expired"), 1.0);
}

#[tokio::test]
async fn a_tampered_copy_of_a_cached_token_is_refused() {
    let (tollgate, _upstream) = start(|harness| harness).await;
    let token = keys().mint("HS256", &claims("carol"));
    let answer = tollgate.get(PROTECTED).bearer(&token).send().await;
    assert_eq!(answer.status, 200);

    // Same header and signature, claims promoted to admin: the cache is
    // keyed by the full text, so this is a miss and fails verification.
    let mut forged = claims("carol");
    forged["roles"] = json!(["admin"]);
    let tampered = swap_claims(&token, &forged);
    let answer = tollgate.get("/admin/x").bearer(&tampered).send().await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.json()["error_description"],
        "the token signature is invalid"
    );
    let text = tollgate.metrics().await;
    assert_eq!(verdicts(&text, "accounts", "bad_signature"), 1.0);
    assert_eq!(lookups(&tollgate).await, (0.0, 2.0));

    let answer = tollgate.get(PROTECTED).bearer(&token).send().await;
    assert_eq!(answer.status, 200, "the genuine token still passes");
    assert_eq!(answer.upstream_saw("x-user-roles"), ["player"]);
}

#[tokio::test]
async fn a_refused_token_is_never_cached_and_never_shadows_a_good_one() {
    let (tollgate, _upstream) = start(|harness| harness).await;
    let token = keys().mint("EdDSA", &claims("dave"));
    let mut forged = claims("dave");
    forged["sub"] = json!("erin");
    let tampered = swap_claims(&token, &forged);

    for _ in 0..2 {
        let answer = tollgate.get(PROTECTED).bearer(&tampered).send().await;
        assert_eq!(answer.status, 401);
    }
    assert_eq!(
        lookups(&tollgate).await,
        (0.0, 2.0),
        "refusals are re-verified"
    );

    let answer = tollgate.get(PROTECTED).bearer(&token).send().await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.upstream_saw("x-user-id"), ["dave"]);
}

#[tokio::test]
async fn a_cache_hit_still_checks_the_roles_of_each_route() {
    let (tollgate, _upstream) = start(|harness| harness).await;
    let token = keys().mint("PS256", &claims("frank"));

    let answer = tollgate.get(PROTECTED).bearer(&token).send().await;
    assert_eq!(answer.status, 200);
    let answer = tollgate.get("/admin/bans").bearer(&token).send().await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        lookups(&tollgate).await,
        (1.0, 1.0),
        "the 403 came from a hit"
    );
    let text = tollgate.metrics().await;
    assert_eq!(verdicts(&text, "accounts", "insufficient_role"), 1.0);
}
