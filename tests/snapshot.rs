//! The snapshot a request reads: several providers chosen by issuer, and
//! a new keyset making earlier cache entries void.

mod support;

use serde_json::json;
use support::{Harness, Upstream, claims, keys, verdicts};

const PARTNER_SECRET: &str = "partner-secret-partner-secret-partner-secret";

fn partner_provider(dir: &std::path::Path) -> String {
    let secret = dir.join("partner.key");
    std::fs::write(&secret, format!("{PARTNER_SECRET}\n")).expect("write secret");
    format!(
        r#"
[[providers]]
name = "partner"
issuer = "https://partner.test"
audiences = ["partner-api"]
algorithms = ["HS256"]
secret_file = "{}"
[providers.claim_to_headers]
"X-User-Id" = "sub"
"X-Partner-Org" = "org"
"#,
        secret.display().to_string().replace('\\', "/")
    )
}

fn partner_claims(sub: &str) -> serde_json::Value {
    let mut claims = claims(sub);
    claims["iss"] = json!("https://partner.test");
    claims["aud"] = json!("partner-api");
    claims["org"] = json!("acme");
    claims
}

#[tokio::test]
async fn the_token_issuer_picks_the_provider_and_its_keys() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tollgate = Harness::new(upstream.addr())
        .with_extra(&partner_provider(dir.path()))
        .start()
        .await;
    let header = json!({"alg": "HS256", "typ": "JWT"});

    let partner =
        support::hs256_with_key(PARTNER_SECRET.as_bytes(), &header, &partner_claims("p-1"));
    let answer = tollgate.get("/api/orders").bearer(&partner).send().await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.upstream_saw("x-user-id"), ["p-1"]);
    assert_eq!(answer.upstream_saw("x-partner-org"), ["acme"]);

    let ours = keys().mint("HS256", &claims("alice"));
    let answer = tollgate.get("/api/orders").bearer(&ours).send().await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.upstream_saw("x-user-id"), ["alice"]);
    assert!(
        answer.upstream_saw("x-partner-org").is_empty(),
        "header of the other provider"
    );

    // The accounts secret cannot sign for the partner issuer.
    let crossed = keys().mint("HS256", &partner_claims("p-2"));
    let answer = tollgate.get("/api/orders").bearer(&crossed).send().await;
    assert_eq!(answer.status, 401);

    let metrics = tollgate.metrics().await;
    assert_eq!(verdicts(&metrics, "partner", "ok"), 1.0);
    assert_eq!(verdicts(&metrics, "accounts", "ok"), 1.0);
    assert_eq!(verdicts(&metrics, "partner", "bad_signature"), 1.0);
}

#[tokio::test]
async fn identity_headers_of_every_provider_are_scrubbed() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tollgate = Harness::new(upstream.addr())
        .with_extra(&partner_provider(dir.path()))
        .start()
        .await;

    let ours = keys().mint("HS256", &claims("alice"));
    let answer = tollgate
        .get("/api/orders")
        .bearer(&ours)
        .header("x-partner-org", "forged")
        .header("X_Partner_Org", "forged")
        .send()
        .await;
    assert_eq!(answer.status, 200);
    assert!(answer.upstream_saw("x-partner-org").is_empty());
    assert!(answer.upstream_saw("x_partner_org").is_empty());
}

#[tokio::test]
async fn a_cached_token_is_checked_again_once_the_keyset_changes() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let token = keys().mint("HS256", &claims("alice"));

    for _ in 0..2 {
        let answer = tollgate.get("/api/games").bearer(&token).send().await;
        assert_eq!(answer.status, 200);
    }
    assert_eq!(tollgate.metric("tollgate_cache_hits_total").await, 1.0);

    // The HMAC secret is rotated away: the token is no longer good, and
    // the cache must not keep vouching for it.
    let rotated = Harness::new(upstream.addr()).with_secret(&"r".repeat(64));
    let generation = tollgate.reload(rotated);
    assert_eq!(generation, 2);

    let answer = tollgate.get("/api/games").bearer(&token).send().await;
    assert_eq!(answer.status, 401);
    let metrics = tollgate.metrics().await;
    assert_eq!(verdicts(&metrics, "accounts", "bad_signature"), 1.0);
    assert_eq!(
        support::metric_value(&metrics, "tollgate_keyset_generation"),
        2.0
    );
    assert_eq!(
        support::metric_value(&metrics, "tollgate_cache_hits_total"),
        1.0
    );
}
