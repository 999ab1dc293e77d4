//! Criterion benchmarks for the pieces every request goes through: bearer
//! extraction, path normalisation, rule matching, header scrubbing and the
//! forwarding headers, the cache lookup and hit, and an uncached
//! verification per algorithm beside aws-lc-rs's own check of the same
//! signature.
//!
//! Run with `cargo bench --bench hot_path`. These time the decision logic
//! alone; whole-proxy load figures come from the load benchmark script.
#![allow(missing_docs, unreachable_pub)]

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::{hmac, signature};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method};
use tollgate::auth::{self, path};
use tollgate::env::Env;
use tollgate::proxy::headers;
use tollgate::state::State;
use tollgate::telemetry::Metrics;

#[path = "../tests/support/keys.rs"]
#[allow(dead_code)]
mod keys;

const ISSUER: &str = "https://accounts.chessmate.test";
const AUDIENCE: &str = "chessmate-api";
const ALGORITHMS: [&str; 6] = ["HS256", "RS256", "PS256", "ES256", "ES384", "EdDSA"];

/// Builds the same provider the integration tests use, from TOML.
fn state(keys: &keys::TestKeys, dir: &std::path::Path) -> State {
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, keys.jwks().to_string()).expect("write jwks");
    let text = format!(
        r#"
[upstream]
url = "http://127.0.0.1:8000"
[[providers]]
name = "accounts"
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
algorithms = ["HS256", "RS256", "PS256", "ES256", "ES384", "EdDSA"]
secret_env = "BENCH_SECRET"
jwks_file = "{}"
[providers.claim_to_headers]
"X-User-Id" = "sub"
"X-User-Email" = "email"
"X-User-Roles" = "roles"
[[rules]]
path_prefix = "/public/"
public = true
[[rules]]
path_prefix = "/admin/"
roles = ["admin"]
"#,
        jwks.display()
    );
    let settings = tollgate::config::from_str(&text, "bench.toml").expect("bench config");
    let env = Env::from_vars([("BENCH_SECRET", keys.secret_text())]);
    State::try_new(settings, &env, Metrics::new()).expect("keys load")
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn bench_verify(c: &mut Criterion) {
    let keys = keys::TestKeys::generate();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(&keys, dir.path());
    let snapshot = state.load();

    // The same token through tollgate's verifier and through aws-lc-rs
    // alone, so that the cost of everything around the signature check
    // (base64, JSON, claims, identity) reads off as a ratio.
    let tokens: Vec<(&str, String)> = ALGORITHMS
        .iter()
        .map(|alg| (*alg, keys.mint(alg, &keys::claims("alice"))))
        .collect();
    let mut group = c.benchmark_group("verify_uncached");
    for (alg, token) in &tokens {
        assert!(
            auth::verify(token, &snapshot.providers, now()).is_ok(),
            "{alg} verifies"
        );
        group.bench_function(*alg, |b| {
            b.iter(|| auth::verify(black_box(token), &snapshot.providers, now()))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("verify_raw_aws_lc");
    for (alg, token) in &tokens {
        let check = raw_check(&keys, alg, token);
        assert!(check(), "{alg} verifies with aws-lc-rs alone");
        group.bench_function(*alg, |b| b.iter(&check));
    }
    group.finish();

    let token = keys.mint("ES256", &keys::claims("alice"));
    let generation = snapshot.generation;
    let (verdict, _) =
        auth::authenticate(&token, &snapshot.providers, &state.cache, generation, now());
    assert!(verdict.is_ok());
    c.bench_function("cache_hit", |b| {
        b.iter(|| {
            auth::authenticate(
                black_box(&token),
                &snapshot.providers,
                &state.cache,
                generation,
                now(),
            )
        })
    });
    // The lookup alone, for the < 300 ns target: hash the token, find it,
    // check its generation and expiry.
    let at = now();
    c.bench_function("cache_lookup", |b| {
        b.iter(|| {
            matches!(
                state
                    .cache
                    .get(state.cache.key(black_box(&token)), generation, at),
                auth::CacheLookup::Hit(_)
            )
        })
    });
}

/// Returns a check of `token`'s signature with aws-lc-rs directly: the
/// signing input and the decoded signature prepared once, as a verifier
/// that had already split the token would have them, and the key parsed
/// once (`ParsedPublicKey`, a prepared HMAC key), as tollgate's key sets
/// hold them: the cheapest check aws-lc-rs offers.
fn raw_check(keys: &keys::TestKeys, alg: &str, token: &str) -> Box<dyn Fn() -> bool> {
    let (message, signature) = token.rsplit_once('.').expect("three segments");
    let message = message.as_bytes().to_vec();
    let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
    let public = keys.public_key(alg);
    let algorithm: &'static dyn signature::VerificationAlgorithm = match alg {
        "HS256" => {
            let key = hmac::Key::new(hmac::HMAC_SHA256, &public);
            return Box::new(move || hmac::verify(&key, &message, &signature).is_ok());
        }
        "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
        "ES256" => &signature::ECDSA_P256_SHA256_FIXED,
        "ES384" => &signature::ECDSA_P384_SHA384_FIXED,
        "EdDSA" => &signature::ED25519,
        other => panic!("no raw check for {other}"),
    };
    let key = signature::ParsedPublicKey::new(algorithm, public).expect("a valid public key");
    Box::new(move || key.verify_sig(&message, &signature).is_ok())
}

fn bench_request_steps(c: &mut Criterion) {
    let token = keys::TestKeys::generate().mint("HS256", &keys::claims("alice"));
    let mut request = HeaderMap::new();
    request.insert("host", HeaderValue::from_static("game.chessmate.test"));
    request.insert("user-agent", HeaderValue::from_static("bench/1.0"));
    request.insert("accept", HeaderValue::from_static("application/json"));
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
    request.insert("authorization", bearer);

    c.bench_function("bearer_token", |b| {
        b.iter(|| auth::bearer_token(black_box(&request), 8192).map(str::len))
    });

    c.bench_function("path_normalize/plain", |b| {
        b.iter(|| path::normalize(black_box("/api/games/12345/moves")).map(|p| p.len()))
    });
    c.bench_function("path_normalize/dotted", |b| {
        b.iter(|| {
            path::normalize(black_box("/api/./games/%7euser/../12345//moves")).map(|p| p.len())
        })
    });

    let keys = keys::TestKeys::generate();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(&keys, dir.path());
    let snapshot = state.load();
    c.bench_function("rules_find", |b| {
        b.iter(|| {
            snapshot
                .rules
                .find_at(&Method::GET, black_box("/api/games/12345"))
                .0
        })
    });
    // Rendered once per connection by the proxy, so outside the loop.
    let client = headers::ClientIp::from(std::net::IpAddr::from([203, 0, 113, 7]));
    c.bench_function("forwarding_headers", |b| {
        b.iter_batched(
            || request.clone(),
            |mut headers| {
                let upgrade = headers::websocket_upgrade(&headers);
                headers::remove_hop_by_hop(&mut headers, upgrade);
                let host = headers.get(http::header::HOST).cloned();
                headers::set_forwarding(&mut headers, &client, "http", host);
                headers
            },
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("scrub_identity_and_hop_by_hop", |b| {
        b.iter_batched(
            || request.clone(),
            |mut headers| {
                headers::scrub_identity(&mut headers, &snapshot.identity_names);
                headers::remove_hop_by_hop(&mut headers, None);
                headers
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench_verify, bench_request_steps);
criterion_main!(benches);
