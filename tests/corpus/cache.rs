//! Cache confusion: the verified-token cache must never let a token pass
//! that would fail on its own, and must never let a refusal stick to a
//! good token.
//!
//! Each case sends several requests to one gate and checks each answer and
//! what the service received.

use std::time::Duration;

use serde_json::json;

use crate::common::*;
use crate::support::{claims, keys, now, swap_claims};

/// Asserts a good token passes as `sub`, and returns how many requests the
/// service has received so far.
async fn passes(gate: &Gate, token: &str, sub: &str) -> usize {
    let answer = gate.get("/games/1").bearer(token).send().await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let requests = gate.forwarded();
    let last = requests.last().expect("a forwarded request");
    assert_eq!(last.header("x-user-id"), [sub]);
    requests.len()
}

/// Asserts a refusal that reaches nothing.
async fn refused(gate: &Gate, token: &str, expected: Challenge) {
    let before = gate.forwarded().len();
    let answer = gate.get("/games/1").bearer(token).send().await;
    assert_refused(&answer, expected);
    assert_eq!(
        gate.forwarded().len(),
        before,
        "the refused token was forwarded"
    );
}

/// A good token for `alice` and its twin with the claims of an admin under
/// the same header and signature.
fn good_and_tampered() -> (String, String) {
    let good = keys().mint("HS256", &claims("alice"));
    let mut forged = claims("mallory");
    forged["roles"] = json!(["admin"]);
    let tampered = swap_claims(&good, &forged);
    (good, tampered)
}

cases! {
    /// RFC 7515 section 5.2: a cached token's tampered twin (claims
    /// swapped, same signature) is checked, not served from the cache.
    tampered_claims_after_a_cached_token: async {
        let gate = Gate::start().await;
        let (good, tampered) = good_and_tampered();
        passes(&gate, &good, "alice").await;
        passes(&gate, &good, "alice").await;
        refused(&gate, &tampered, BAD_SIGNATURE).await;
        let answer = gate.get("/admin/x").bearer(&tampered).send().await;
        assert_refused(&answer, BAD_SIGNATURE);
        let hits = gate.tollgate.metric("tollgate_cache_hits_total").await;
        assert_eq!(hits, 1.0, "only the good token's repeat hits the cache");
    };
    /// RFC 7515 section 5.2: a cached token with one signature character
    /// changed is refused.
    tampered_signature_after_a_cached_token: async {
        let gate = Gate::start().await;
        let good = keys().mint("ES256", &claims("alice"));
        passes(&gate, &good, "alice").await;
        let mut tampered = good.clone();
        let last = tampered.pop().expect("a signature");
        tampered.push(if last == 'A' { 'Q' } else { 'A' });
        refused(&gate, &tampered, BAD_SIGNATURE).await;
    };
    /// RFC 7515 section 7.1: a cached token with a trailing `.` is another
    /// (malformed) token, not a cache hit.
    cached_token_with_a_trailing_dot: async {
        let gate = Gate::start().await;
        let good = keys().mint("HS256", &claims("alice"));
        passes(&gate, &good, "alice").await;
        refused(&gate, &format!("{good}."), MALFORMED).await;
    };
    /// RFC 7515 section 2: a cached token with `=` appended is another
    /// (malformed) spelling, not a cache hit.
    cached_token_with_padding_appended: async {
        let gate = Gate::start().await;
        let good = keys().mint("HS256", &claims("alice"));
        passes(&gate, &good, "alice").await;
        refused(&gate, &format!("{good}="), MALFORMED).await;
        let hits = gate.tollgate.metric("tollgate_cache_hits_total").await;
        assert_eq!(hits, 0.0);
    };
    /// RFC 7515 section 5.2: a refused forgery sent first does not poison
    /// the good token with the same claims that follows.
    refused_token_does_not_poison_a_good_one: async {
        let gate = Gate::start().await;
        let good = keys().mint("HS256", &claims("alice"));
        let forged = keys().mint_signed_by("HS384", &json!({"alg": "HS256", "typ": "JWT"}),
            &claims("alice"));
        refused(&gate, &forged, BAD_SIGNATURE).await;
        refused(&gate, &forged, BAD_SIGNATURE).await;
        passes(&gate, &good, "alice").await;
        passes(&gate, &good, "alice").await;
    };
    /// RFC 7519 section 4.1.4: an expired token refused first does not
    /// stop a fresh token for the same subject.
    expired_token_does_not_poison_a_fresh_one: async {
        let gate = Gate::start().await;
        let mut old = claims("alice");
        old["exp"] = json!(now() - 3600);
        refused(&gate, &hs256(&old), EXPIRED).await;
        passes(&gate, &hs256(&claims("alice")), "alice").await;
    };
    /// RFC 7519 section 4.1.4: a cached entry dies at `exp`; the cache
    /// answered the second request, and the third, after `exp`, is refused.
    cached_entry_dies_at_exp: async {
        let gate = Gate::with(|h| h.with_leeway("0s")).await;
        let mut short = claims("alice");
        short["exp"] = json!(now() + 2);
        let token = hs256(&short);
        passes(&gate, &token, "alice").await;
        passes(&gate, &token, "alice").await;
        let hits = gate.tollgate.metric("tollgate_cache_hits_total").await;
        assert!(hits >= 1.0, "the second request was not a cache hit");
        tokio::time::sleep(Duration::from_secs(3)).await;
        refused(&gate, &token, EXPIRED).await;
    };
    /// RFC 7519 section 4.1.4: a token expired a second ago but inside
    /// the 30 s leeway passes, and its cached entry serves the repeat.
    cached_within_the_leeway: async {
        let gate = Gate::with(|h| h.with_leeway("30s")).await;
        let mut short = claims("alice");
        short["exp"] = json!(now() - 1);
        let token = hs256(&short);
        passes(&gate, &token, "alice").await;
        passes(&gate, &token, "alice").await;
        let hits = gate.tollgate.metric("tollgate_cache_hits_total").await;
        assert!(hits >= 1.0, "the repeat was not a cache hit");
    };
    /// RFC 7515 section 5.2: two cached tokens never swap identities.
    cached_identity_is_the_tokens_own: async {
        let gate = Gate::start().await;
        let alice = keys().mint("HS256", &claims("alice"));
        let bob = keys().mint("HS256", &claims("bob"));
        passes(&gate, &alice, "alice").await;
        passes(&gate, &bob, "bob").await;
        passes(&gate, &alice, "alice").await;
        passes(&gate, &bob, "bob").await;
    };
}
