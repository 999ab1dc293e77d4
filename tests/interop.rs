//! Tokens minted by other JWT libraries (PyJWT and npm jose, see
//! tests/fixtures/interop/README.md): the good ones pass with their
//! identity, the bad ones are refused for the one reason each was made
//! to fail.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Deserialize;

use support::{Harness, Tollgate, Upstream, all_verdicts, verdicts};

/// One entry of tokens.json.
#[derive(Debug, Deserialize)]
struct Fixture {
    name: String,
    library: String,
    alg: String,
    expect: String,
    sub: String,
    email: String,
    roles: Vec<String>,
    token: String,
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interop")
}

fn fixtures() -> Vec<Fixture> {
    let text = std::fs::read(fixtures_dir().join("tokens.json")).expect("read tokens.json");
    serde_json::from_slice(&text).expect("tokens.json is a list of fixtures")
}

/// Starts tollgate with the fixtures' JWKS and secret, allowing exactly
/// the algorithms the fixtures use.
async fn start(fixtures: &[Fixture]) -> (Tollgate, Upstream) {
    let secret = std::fs::read_to_string(fixtures_dir().join("hmac_secret.txt"))
        .expect("read hmac_secret.txt");
    assert_eq!(secret.len(), 64, "the secret is 64 bytes with no newline");
    let algorithms: BTreeSet<&str> = fixtures.iter().map(|f| f.alg.as_str()).collect();
    let algorithms: Vec<&str> = algorithms.into_iter().collect();

    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_jwks_file(&fixtures_dir().join("jwks.json"))
        .with_secret(&secret)
        .with_algorithms(&algorithms)
        .start()
        .await;
    (tollgate, upstream)
}

#[test]
fn the_fixtures_hold_every_algorithm_and_every_refusal_from_both_libraries() {
    let fixtures = fixtures();
    let wanted = [
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA",
    ];
    for library in ["pyjwt", "jose"] {
        let from = |f: &&Fixture| f.library.starts_with(library);
        let passing: BTreeSet<&str> = fixtures
            .iter()
            .filter(from)
            .filter(|f| f.expect == "ok")
            .map(|f| f.alg.as_str())
            .collect();
        assert_eq!(passing, BTreeSet::from(wanted), "{library}");
        let refused: BTreeSet<&str> = fixtures
            .iter()
            .filter(from)
            .filter(|f| f.expect != "ok")
            .map(|f| f.expect.as_str())
            .collect();
        let reasons = BTreeSet::from(["expired", "wrong_audience", "wrong_issuer"]);
        assert_eq!(refused, reasons, "{library}");
    }
}

#[tokio::test]
async fn every_token_minted_to_pass_is_forwarded_with_its_identity() {
    let fixtures = fixtures();
    let (tollgate, _upstream) = start(&fixtures).await;
    let passing: Vec<&Fixture> = fixtures.iter().filter(|f| f.expect == "ok").collect();

    for fixture in &passing {
        let answer = tollgate
            .get("/games/42")
            .bearer(&fixture.token)
            .send()
            .await;
        let name = &fixture.name;
        assert_eq!(answer.status, 200, "{name}: {}", answer.text());
        assert_eq!(
            answer.upstream_saw("x-user-id"),
            [fixture.sub.as_str()],
            "{name}"
        );
        assert_eq!(
            answer.upstream_saw("x-user-email"),
            [fixture.email.as_str()],
            "{name}"
        );
        assert_eq!(
            answer.upstream_saw("x-user-roles"),
            [fixture.roles.join(",")],
            "{name}"
        );
    }

    let text = tollgate.metrics().await;
    assert_eq!(verdicts(&text, "accounts", "ok"), passing.len() as f64);
    assert_eq!(all_verdicts(&text), passing.len() as f64, "nothing refused");
}

#[tokio::test]
async fn every_token_minted_to_fail_is_refused_for_its_reason() {
    let fixtures = fixtures();
    let (tollgate, upstream) = start(&fixtures).await;

    for fixture in fixtures.iter().filter(|f| f.expect != "ok") {
        let name = &fixture.name;
        let reason = fixture.expect.as_str();
        // An unknown issuer is refused before any provider is picked.
        let provider = if reason == "wrong_issuer" {
            "none"
        } else {
            "accounts"
        };

        let before = tollgate.metrics().await;
        let answer = tollgate
            .get("/games/42")
            .bearer(&fixture.token)
            .send()
            .await;
        let after = tollgate.metrics().await;

        assert_eq!(answer.status, 401, "{name}");
        let challenge = answer.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with(r#"Bearer realm="game-api", error="invalid_token""#),
            "{name}: {challenge}"
        );
        let counted = verdicts(&after, provider, reason) - verdicts(&before, provider, reason);
        assert_eq!(counted, 1.0, "{name}: provider={provider} reason={reason}");
        assert_eq!(all_verdicts(&after) - all_verdicts(&before), 1.0, "{name}");
    }
    assert_eq!(upstream.hits(), 0, "no refused token reached the upstream");
}
