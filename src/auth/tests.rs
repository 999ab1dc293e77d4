//! Unit tests of [`authenticate`]: the cache and revocation together.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;
use crate::config::ProviderSettings;
use crate::keys::KeySet;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-auth-tests";
const NOW: f64 = 1_800_000_000.0;

fn provider(revoke: Revocation) -> Providers {
    let settings = ProviderSettings::for_tests();
    let keys = KeySet::new(
        vec![DecodingKey::from_secret(SECRET).expect("secret")],
        Vec::new(),
    );
    Providers::new(vec![
        Provider::new(&settings, keys, 1024).with_revocation(revoke),
    ])
}

fn token(claims: &Value) -> String {
    let key = EncodingKey::from_secret(SECRET).expect("secret");
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).expect("sign")
}

fn claims(sub: &str, jti: &str) -> Value {
    json!({
        "iss": "https://issuer.test", "aud": "api", "sub": sub, "jti": jti,
        "iat": NOW - 10.0, "exp": NOW + 60.0,
    })
}

fn denying(text: &str) -> Revocation {
    Revocation::new(None, Denylist::parse(text).expect("a valid denylist"))
}

#[test]
fn a_denylisted_token_is_refused_on_a_cache_hit() {
    let cache = TokenCache::new(10, 1 << 20);
    let token = token(&claims("alice", "j-1"));

    // Verified and cached while nothing is revoked.
    let open = provider(Revocation::default());
    let (verdict, cached) = authenticate(&token, &open, &cache, 1, NOW);
    assert!(verdict.is_ok());
    assert_eq!(cached, CacheOutcome::Miss);

    // Same generation, so the entry is still used: the denylist must be
    // consulted after the lookup, not only on a fresh verification.
    for list in ["jti:j-1", "sub:alice"] {
        let (verdict, cached) = authenticate(&token, &provider(denying(list)), &cache, 1, NOW);
        assert_eq!(cached, CacheOutcome::Hit, "{list}");
        let refusal = verdict.expect_err(list);
        assert_eq!(refusal.reason, Reason::Revoked);
        assert_eq!(refusal.provider, Some(0));
    }

    let (verdict, _) = authenticate(&token, &provider(denying("jti:j-2")), &cache, 1, NOW);
    assert!(verdict.is_ok(), "another jti is not revoked");
}

#[test]
fn a_token_issued_before_the_cut_off_is_refused_as_revoked() {
    let cache = TokenCache::new(0, 0);
    let cut_off = std::time::UNIX_EPOCH + Duration::from_secs_f64(NOW);
    let providers = provider(Revocation::new(Some(cut_off), Denylist::default()));

    let old = token(&claims("alice", "j-1"));
    let (verdict, _) = authenticate(&old, &providers, &cache, 1, NOW);
    assert_eq!(
        verdict.map(|_| ()).map_err(|r| r.reason),
        Err(Reason::Revoked)
    );

    let mut fresh = claims("alice", "j-2");
    fresh["iat"] = json!(NOW + 1.0);
    let (verdict, _) = authenticate(&token(&fresh), &providers, &cache, 1, NOW);
    assert!(verdict.is_ok());

    let mut undated = claims("alice", "j-3");
    undated.as_object_mut().map(|claims| claims.remove("iat"));
    let (verdict, _) = authenticate(&token(&undated), &providers, &cache, 1, NOW);
    assert_eq!(
        verdict.map(|_| ()).map_err(|r| r.reason),
        Err(Reason::Revoked)
    );
}

#[test]
fn an_expired_token_is_checked_once_and_a_forged_one_every_time() {
    let cache = TokenCache::new(10, 1 << 20);
    let providers = provider(Revocation::default());
    let outcome = |token: &str| {
        let (verdict, cached) = authenticate(token, &providers, &cache, 1, NOW);
        let refusal = verdict.expect_err("refused");
        (refusal.reason, refusal.provider, cached)
    };

    let mut old = claims("alice", "j-1");
    old["exp"] = json!(NOW - 3600.0);
    let expired = token(&old);
    let first = (Reason::Expired, Some(0), CacheOutcome::Miss);
    assert_eq!(outcome(&expired), first);
    let again = (Reason::Expired, Some(0), CacheOutcome::Hit);
    assert_eq!(outcome(&expired), again);
    assert_eq!(cache.len(), 1);

    // The same expired claims under a signature that does not hold: no
    // answer about it is kept, so forgeries cannot fill the cache.
    let (head, _) = expired.rsplit_once('.').expect("three segments");
    let forged = format!("{head}.{}", "A".repeat(43));
    for _ in 0..2 {
        let forged_outcome = (Reason::BadSignature, Some(0), CacheOutcome::Miss);
        assert_eq!(outcome(&forged), forged_outcome);
    }
    assert_eq!(cache.len(), 1);

    // A reload starts over: the entry's generation is not the new one.
    let (verdict, cached) = authenticate(&expired, &providers, &cache, 2, NOW);
    assert_eq!(verdict.map_err(|r| r.reason).err(), Some(Reason::Expired));
    assert_eq!(cached, CacheOutcome::Miss);
}
