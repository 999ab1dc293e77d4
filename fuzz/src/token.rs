//! Tokens, through the functions the proxy calls: the `Authorization`
//! header read by `bearer_token`, then `authenticate` against a snapshot
//! built from a config as `tollgate run` builds it, and the explanation
//! `tollgate inspect` gives.
//!
//! Input: a selector byte, then either (even selector) the raw
//! `Authorization` header value, or (odd selector) a JOSE header and a
//! claims text separated by a NUL byte, which the harness encodes and
//! signs with one of the fuzzing keys ([`SIGNERS`]) whatever the header
//! says. The second form reaches the claim checks, which a random
//! signature never does.
//!
//! Invariants: a token that passes is unexpired at the harness clock, was
//! signed by the key its `alg` names (never `none`, never the key-confusion
//! forgery), and yields identity headers that are safe to send; a second
//! look through the cache agrees with the first; `inspect` agrees with the
//! proxy and never prints the signature.

use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::{Map, Value};
use tollgate::auth::{self, CacheOutcome, TokenCache, Verdict};
use tollgate::config;
use tollgate::env::Env;
use tollgate::inspect::{Report, RequestLine};
use tollgate::state::{Snapshot, State};
use tollgate::telemetry::Metrics;

use super::keys::{FuzzKeys, SECRET, SIGNERS, repo_root};

/// The harness clock: a fixed instant, so a run can be replayed. The
/// interop fixtures were issued before it and expire long after.
pub const NOW: f64 = 1_800_000_000.0;

/// Two providers: the interop key set (tokens from other JWT libraries
/// verify against it) and the fuzzing keys, with roles from two claims,
/// a roles header, JSON Pointer claims, no `sub` required and a revocation
/// cut-off, so every part of the identity is reachable.
const CONFIG: &str = r#"
service = "fuzz"

[upstream]
url = "http://127.0.0.1:8000"

[[providers]]
name = "interop"
issuer = "https://accounts.chessmate.test"
audiences = ["chessmate-api"]
algorithms = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
secret_file = "{root}/tests/fixtures/interop/hmac_secret.txt"
jwks_file = "{root}/tests/fixtures/interop/jwks.json"

[providers.claim_to_headers]
"X-User-Id" = "sub"
"X-User-Email" = "email"
"X-User-Roles" = "roles"

[[providers]]
name = "fuzz"
issuer = "https://fuzz.test"
audiences = ["api", "other-api"]
algorithms = ["HS256", "HS384", "HS512", "RS256", "RS512", "PS256", "PS384", "ES256", "ES384", "EdDSA"]
secret_env = "FUZZ_HMAC_SECRET"
jwks_file = "{root}/fuzz/keys/jwks.json"
leeway = "1m"
require_sub = false
roles_claim = ["roles", "/realm_access/roles"]
roles_header = "X-Fuzz-Roles"

[providers.claim_to_headers]
"X-Fuzz-Id" = "sub"
"X-Fuzz-Tenant" = "/org/tenant"
"X-Fuzz-Groups" = "groups"

[providers.revoke]
issued_before = "2020-01-01T00:00:00Z"

[[providers]]
name = "cognito"
issuer = "https://cognito.fuzz.test"
audiences = ["client-1"]
audience_claim = "client_id"
algorithms = ["HS256"]
secret_env = "FUZZ_HMAC_SECRET"

[limits]
max_token_bytes = 4096
max_identity_header_bytes = 64
"#;

/// Returns the snapshot every input is judged under, built once.
fn snapshot() -> Arc<Snapshot> {
    static STATE: OnceLock<State> = OnceLock::new();
    let state = STATE.get_or_init(|| {
        let root = repo_root();
        let text = CONFIG.replace("{root}", &root.display().to_string());
        let settings = config::from_str(&text, "token.toml").expect("the fuzz config loads");
        let env = Env::from_vars([("FUZZ_HMAC_SECRET", SECRET)]);
        State::try_new(settings, &env, Metrics::new()).expect("the fuzz keys load")
    });
    state.load()
}

/// Builds the header value an input stands for, and the signer used, if
/// the harness signed it.
fn header_value(data: &[u8]) -> Option<(HeaderValue, Option<&'static str>)> {
    let (&selector, rest) = data.split_first()?;
    if selector % 2 == 0 {
        return Some((HeaderValue::from_bytes(rest).ok()?, None));
    }
    let signer = SIGNERS[usize::from(selector / 2) % SIGNERS.len()];
    let at = rest.iter().position(|&byte| byte == 0)?;
    let (header, claims) = (&rest[..at], &rest[at + 1..]);
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = FuzzKeys::get().sign(signer, input.as_bytes());
    let token = format!("Bearer {input}.{}", URL_SAFE_NO_PAD.encode(signature));
    Some((HeaderValue::from_str(&token).ok()?, Some(signer)))
}

/// Judges one input as the proxy would, without the invariants: `None`
/// when the input stands for no header value, or the header for no token.
pub fn verdict(data: &[u8]) -> Option<Verdict> {
    let (value, _) = header_value(data)?;
    let snapshot = snapshot();
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    let token = auth::bearer_token(&headers, snapshot.settings.limits.max_token_bytes).ok()?;
    let cache = TokenCache::new(0, 0);
    let (verdict, _) = auth::authenticate(token, &snapshot.providers, &cache, 1, NOW);
    Some(verdict)
}

/// Judges one input and checks every invariant.
pub fn check(data: &[u8]) {
    let Some((value, signer)) = header_value(data) else {
        return;
    };
    let snapshot = snapshot();
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    let max = snapshot.settings.limits.max_token_bytes;
    let Ok(token) = auth::bearer_token(&headers, max) else {
        return;
    };

    // A cache of its own per input: what one input cached must not decide
    // the next one's fate, or a crash could not be replayed alone.
    let cache = TokenCache::new(16, 1 << 20);
    let generation = snapshot.generation;
    let (first, outcome) = auth::authenticate(token, &snapshot.providers, &cache, generation, NOW);
    assert_eq!(outcome, CacheOutcome::Miss, "an empty cache hit");
    let (again, outcome) = auth::authenticate(token, &snapshot.providers, &cache, generation, NOW);
    assert_same_verdict(&first, &again);
    if first.is_ok() {
        assert_eq!(
            outcome,
            CacheOutcome::Hit,
            "a verified token was not cached"
        );
    }

    if let Ok(identity) = &first {
        assert_sound_pass(&snapshot, token, signer, identity);
    }
    assert_inspect_agrees(&snapshot, token, &first);
}

fn assert_same_verdict(first: &Verdict, again: &Verdict) {
    match (first, again) {
        (Ok(one), Ok(two)) => {
            assert_eq!(one.provider, two.provider);
            assert_eq!(one.subject, two.subject);
            assert_eq!(one.roles, two.roles);
            assert_eq!(one.headers, two.headers);
        }
        (Err(one), Err(two)) => assert_eq!(one, two, "the cache changed the refusal"),
        _ => panic!("the cache changed the verdict: {first:?} then {again:?}"),
    }
}

/// Checks what must hold of any token that passes.
fn assert_sound_pass(
    snapshot: &Snapshot,
    token: &str,
    signer: Option<&str>,
    identity: &auth::Identity,
) {
    let mut segments = token.split('.');
    let header = segments.next().and_then(decode).expect("a passing header");
    let claims = segments.next().and_then(decode).expect("passing claims");

    let alg = header.get("alg").and_then(Value::as_str).expect("an alg");
    assert_ne!(alg, "none", "an unsecured token passed");
    if let Some(signer) = signer {
        assert_eq!(alg, signer, "a token passed whose alg is not its key's");
    }

    let provider = &snapshot.providers.list()[identity.provider];
    let iss = claims.get("iss").and_then(Value::as_str);
    assert_eq!(
        iss,
        Some(provider.issuer.as_str()),
        "passed for another issuer"
    );
    assert!(provider.allows(alg.parse().expect("a known alg")));

    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .expect("a numeric exp");
    assert!(NOW < exp + provider.leeway, "an expired token passed");

    for (name, value) in &identity.headers {
        let bytes = value.as_bytes();
        assert!(bytes.len() <= provider.max_header_bytes, "{name} too long");
        assert!(
            !bytes.iter().any(|b| b.is_ascii_control()),
            "{name} carries a control byte"
        );
        assert!(
            bytes.first() != Some(&b' ') && bytes.last() != Some(&b' '),
            "{name} has surrounding spaces"
        );
    }
}

fn decode(segment: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `tollgate inspect` must reach the proxy's verdict, explain it with the
/// same first failure, and never print the signature.
fn assert_inspect_agrees(snapshot: &Arc<Snapshot>, token: &str, verdict: &Verdict) {
    let request = RequestLine {
        method: Method::GET,
        path: None,
    };
    let report = Report::offline(Arc::clone(snapshot), request, token, NOW);
    let expected = match verdict {
        Ok(_) => "ok",
        Err(refusal) => refusal.reason.as_str(),
    };
    assert_eq!(
        report.verdict(),
        expected,
        "inspect disagrees with the proxy"
    );
    assert!(
        report.is_consistent(),
        "the explanation's first failure is not the verdict"
    );

    // Only a signature that the header or claims do not quote themselves
    // can be told apart from them in the printout.
    let text = report.to_string();
    let mut segments = token.split('.');
    let (header, claims) = (segments.next(), segments.next());
    let signature = segments.next().unwrap_or_default();
    let quoted = [header, claims].into_iter().flatten().any(|segment| {
        let bytes = URL_SAFE_NO_PAD.decode(segment).unwrap_or_default();
        String::from_utf8_lossy(&bytes).contains(signature)
    });
    if signature.len() >= 16 && !quoted {
        assert!(!text.contains(signature), "inspect printed the signature");
    }
}
