//! Unit tests of `inspect`: the explanation's first failing check always
//! names the verdict's reason, over a corpus of broken tokens.

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Method;
use serde_json::{Value, json};

use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef-inspect-tests";
const NOW: f64 = 1_800_000_000.0;
const ISSUER: &str = "https://issuer.test";

/// A snapshot with an HMAC and EC provider (revoking tokens issued before
/// 2020 and the subject `mallory`), a Cognito-like provider, and rules
/// for roles, a public prefix and a report-only prefix.
struct Fixture {
    snapshot: Arc<Snapshot>,
    ec: EcdsaKeyPair,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("p256");
        let point = ec.public_key().as_ref();
        let jwks = json!({"keys": [{"kty": "EC", "kid": "ec-1", "crv": "P-256",
            "x": b64(&point[1..33]), "y": b64(&point[33..])}]});
        let jwks_path = dir.path().join("jwks.json");
        std::fs::write(&jwks_path, jwks.to_string()).expect("write jwks");
        let deny_path = dir.path().join("deny.txt");
        std::fs::write(&deny_path, "sub:mallory\njti:stolen\n").expect("write denylist");

        let text = format!(
            r#"service = "unit"
[upstream]
url = "http://127.0.0.1:9"

[[providers]]
name = "accounts"
issuer = "{ISSUER}"
audiences = ["api"]
algorithms = ["HS256", "ES256", "RS256"]
secret_env = "SECRET"
jwks_file = "{jwks}"
leeway = "30s"
roles_header = "X-User-Roles"
revoke = {{ issued_before = "2020-01-01T00:00:00Z", denylist_file = "{deny}" }}
[providers.claim_to_headers]
"X-User-Id" = "sub"
"X-User-Email" = "email"

[[providers]]
name = "cognito"
issuer = "https://cognito.test"
audiences = ["client-1"]
audience_claim = "client_id"
algorithms = ["HS256"]
secret_env = "SECRET"
require_sub = false

[[rules]]
path_prefix = "/admin/"
roles = ["admin"]

[[rules]]
path_prefix = "/public/"
public = true

[[rules]]
path_prefix = "/try/"
roles = ["admin"]
mode = "report_only"
"#,
            jwks = jwks_path.display().to_string().replace('\\', "/"),
            deny = deny_path.display().to_string().replace('\\', "/"),
        );
        let settings = crate::config::from_str(&text, "unit.toml").expect("valid config");
        let env = Env::from_vars([("SECRET", SECRET)]);
        let state = State::try_new(settings, &env, Metrics::new()).expect("keys load");
        Fixture {
            snapshot: state.load(),
            ec,
            _dir: dir,
        }
    }

    fn report(&self, token: &str, path: Option<&str>) -> Report {
        let request = RequestLine {
            method: Method::GET,
            path: path.map(str::to_owned),
        };
        Report::new(Arc::clone(&self.snapshot), request, token, NOW, Vec::new())
    }

    /// Asserts the verdict, and that the explanation accounts for it.
    fn expect(&self, token: &str, path: Option<&str>, verdict: &str) -> Report {
        let report = self.report(token, path);
        let shown = report.to_string();
        assert_eq!(report.verdict(), verdict, "{shown}");
        assert!(report.is_consistent(), "explanation disagrees:\n{shown}");
        assert!(!shown.contains("Please report"), "{shown}");
        report
    }

    fn es256(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let signature = self
            .ec
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("sign");
        format!("{input}.{}", b64(signature.as_ref()))
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

fn hs256_raw(header: &str, claims: &str) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

fn hs256(claims: &Value) -> String {
    hs256_raw(r#"{"alg":"HS256","typ":"JWT"}"#, &claims.to_string())
}

fn good_claims() -> Value {
    json!({
        "iss": ISSUER, "aud": "api", "sub": "alice", "email": "alice@test",
        "roles": ["player"], "iat": NOW - 10.0, "exp": NOW + 600.0,
    })
}

fn with(mut claims: Value, name: &str, value: Option<Value>) -> Value {
    let object = claims.as_object_mut().expect("an object");
    match value {
        Some(value) => object.insert(name.to_owned(), value),
        None => object.remove(name),
    };
    claims
}

#[test]
fn a_good_token_is_allowed_and_every_check_passes() {
    let fixture = Fixture::new();
    let report = fixture.expect(&hs256(&good_claims()), None, "ok");
    assert!(report.is_allowed());
    let shown = report.to_string();
    assert!(!shown.contains("FAIL"), "{shown}");
    assert!(shown.contains("x-user-id: alice"), "{shown}");
    assert!(shown.contains("x-user-roles: player"), "{shown}");
}

#[test]
fn every_pair_of_broken_claims_is_explained_by_the_verdicts_reason() {
    let fixture = Fixture::new();
    let dimensions: Vec<(&str, Vec<Option<Value>>)> = vec![
        (
            "exp",
            vec![
                None,
                Some(json!("soon")),
                Some(json!(NOW - 100.0)),
                Some(json!(NOW - 10.0)),
                Some(json!(NOW + 100.0)),
            ],
        ),
        (
            "nbf",
            vec![
                None,
                Some(json!("x")),
                Some(json!(NOW + 100.0)),
                Some(json!(NOW + 10.0)),
                Some(json!(NOW - 10.0)),
            ],
        ),
        (
            "iat",
            vec![
                None,
                Some(json!("x")),
                Some(json!(NOW - 10.0)),
                Some(json!(1.0)),
                Some(json!(NOW + 300.0)),
            ],
        ),
        (
            "aud",
            vec![
                None,
                Some(json!("api")),
                Some(json!("other")),
                Some(json!(["other", "api"])),
                Some(json!([1])),
                Some(json!(5)),
            ],
        ),
        (
            "sub",
            vec![
                None,
                Some(json!("")),
                Some(json!("alice")),
                Some(json!(7)),
                Some(json!("mallory")),
            ],
        ),
        (
            "roles",
            vec![
                None,
                Some(json!(["admin"])),
                Some(json!("player")),
                Some(json!([1])),
                Some(json!(["a,b"])),
                Some(json!({"x": 1})),
            ],
        ),
        (
            "email",
            vec![
                None,
                Some(json!("a@b")),
                Some(json!("a\r\nb")),
                Some(json!(["x", ""])),
                Some(json!(null)),
                Some(json!(" padded")),
            ],
        ),
        (
            "jti",
            vec![None, Some(json!("stolen")), Some(json!("fine"))],
        ),
        (
            "iss",
            vec![
                Some(json!(ISSUER)),
                Some(json!("https://elsewhere.test")),
                Some(json!(1)),
                None,
            ],
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (i, (first, firsts)) in dimensions.iter().enumerate() {
        for (second, seconds) in &dimensions[i + 1..] {
            for a in firsts {
                for b in seconds {
                    let claims = with(with(good_claims(), first, a.clone()), second, b.clone());
                    for path in [None, Some("/admin/x")] {
                        let report = fixture.report(&hs256(&claims), path);
                        assert!(
                            report.is_consistent(),
                            "{first}={a:?} {second}={b:?} path {path:?}:\n{report}"
                        );
                        seen.insert(report.verdict());
                    }
                }
            }
        }
    }
    for reason in [
        "ok",
        "expired",
        "not_yet_valid",
        "wrong_audience",
        "wrong_issuer",
        "invalid_claims",
        "revoked",
        "insufficient_role",
    ] {
        assert!(seen.contains(reason), "no case gave {reason}: {seen:?}");
    }
}

#[test]
fn header_key_and_signature_faults_are_explained() {
    let fixture = Fixture::new();
    let claims = good_claims();
    let es = |header: Value| fixture.es256(&header, &claims);

    fixture.expect(&es(json!({"alg": "ES256", "kid": "ec-1"})), None, "ok");
    let report = fixture.expect(&es(json!({"alg": "ES256"})), None, "ok");
    assert!(report.to_string().contains("the only key that fits"));
    let report = fixture.expect(
        &es(json!({"alg": "ES256", "kid": "gone"})),
        None,
        "unknown_kid",
    );
    assert!(
        report.to_string().contains("known kids: \"ec-1\""),
        "{report}"
    );
    let report = fixture.expect(
        &es(json!({"alg": "RS256", "kid": "ec-1"})),
        None,
        "disallowed_alg",
    );
    assert!(
        report
            .to_string()
            .contains("kid \"ec-1\" (EC P-256) cannot check RS256"),
        "{report}"
    );
    fixture.expect(&es(json!({"alg": "RS256"})), None, "unknown_kid");
    fixture.expect(
        &es(json!({"alg": "ES384", "kid": "ec-1"})),
        None,
        "disallowed_alg",
    );
    fixture.expect(&es(json!({"alg": "HS512"})), None, "disallowed_alg");
    fixture.expect(
        &es(json!({"alg": "ES256", "kid": "ec-1", "crit": ["b64"]})),
        None,
        "malformed",
    );
    fixture.expect(&es(json!({"alg": "ES256", "kid": 1})), None, "malformed");
    fixture.expect(&es(json!({"kid": "ec-1"})), None, "malformed");

    let unsigned = format!("{}.", signing_input(&json!({"alg": "none"}), &claims));
    let report = fixture.expect(&unsigned, None, "disallowed_alg");
    assert!(
        report
            .to_string()
            .contains("an unsigned token, never accepted"),
        "{report}"
    );

    let good = hs256(&claims);
    let (input, _) = good.rsplit_once('.').expect("three segments");
    let forged = format!("{input}.{}", b64(&[7u8; 32]));
    let report = fixture.expect(&forged, None, "bad_signature");
    assert!(
        report
            .to_string()
            .contains("does not verify with the HMAC secret")
    );
}

#[test]
fn syntax_faults_name_the_rule_broken() {
    let fixture = Fixture::new();
    let good = hs256(&good_claims());
    let cases = [
        (format!("{good}.x"), "4 segments"),
        (good.replacen('.', ".+", 1), "standard base64"),
        (format!("{good}="), "padding"),
        (
            hs256_raw(r#"{"alg":"HS256","alg":"HS256"}"#, "{}"),
            "repeats a member",
        ),
        (hs256_raw(r#"{"alg":"HS256"}"#, "[1]"), "not an object"),
        (hs256_raw(r#"{"alg":"HS256"}"#, "nope"), "not JSON"),
        (String::new(), "no token was given"),
        ("a".repeat(9_000), "over limits.max_token_bytes"),
    ];
    for (token, why) in cases {
        let report = fixture.expect(&token, None, "malformed");
        assert!(report.to_string().contains(why), "{why}:\n{report}");
    }
}

#[test]
fn the_audience_claim_and_aud_are_both_held_to_the_provider() {
    let fixture = Fixture::new();
    let base = json!({"iss": "https://cognito.test", "client_id": "client-1", "exp": NOW + 60.0});
    fixture.expect(&hs256(&base), None, "ok");
    let other_aud = with(base.clone(), "aud", Some(json!("someone-else")));
    let report = fixture.expect(&hs256(&other_aud), None, "wrong_audience");
    assert!(
        report
            .to_string()
            .contains("aud = \"someone-else\" must hold one too"),
        "{report}"
    );
    let no_client = with(base, "client_id", None);
    fixture.expect(&hs256(&no_client), None, "invalid_claims");
}

#[test]
fn rules_decide_roles_public_routes_report_only_and_bad_paths() {
    let fixture = Fixture::new();
    let player = hs256(&good_claims());
    let admin = hs256(&with(good_claims(), "roles", Some(json!(["admin"]))));
    let expired = hs256(&with(good_claims(), "exp", Some(json!(NOW - 100.0))));

    fixture.expect(&player, Some("/admin/x"), "insufficient_role");
    fixture.expect(&admin, Some("/admin/x"), "ok");
    let public = fixture.expect(&expired, Some("/public/a"), "-");
    assert!(public.is_allowed());

    let reported = fixture.expect(&expired, Some("/try/x"), "expired");
    assert!(!reported.is_allowed());
    assert!(reported.decision.answer.is_none(), "report_only forwards");
    assert!(reported.to_string().contains("report_only forwards it"));

    let refused = fixture.expect(&admin, Some("/public/%2e%2e/admin/x"), "ok");
    assert_eq!(refused.decision.path, Some(Ok("/admin/x".to_owned())));
    let refused = fixture.expect(&admin, Some("/a%2fb"), "-");
    assert!(!refused.is_allowed());
    assert_eq!(
        refused.decision.answer.as_ref().map(|a| a.status.as_u16()),
        Some(400)
    );
}

#[test]
fn the_signature_and_the_token_never_appear_in_the_output() {
    let fixture = Fixture::new();
    for token in [
        hs256(&good_claims()),
        hs256(&with(good_claims(), "exp", Some(json!(NOW - 100.0)))),
        fixture.es256(&json!({"alg": "ES256", "kid": "gone"}), &good_claims()),
    ] {
        let (_, signature) = token.rsplit_once('.').expect("three segments");
        for path in [None, Some("/admin/x")] {
            let shown = fixture.report(&token, path).to_string();
            assert!(!shown.contains(signature), "{shown}");
            assert!(!shown.contains(&token));
        }
    }
}

#[test]
fn clock_skew_is_spelled_out_for_times_ahead_of_the_clock() {
    let fixture = Fixture::new();
    let early = hs256(&with(good_claims(), "nbf", Some(json!(NOW + 192.0))));
    let report = fixture.expect(&early, None, "not_yet_valid");
    let shown = report.to_string();
    assert!(shown.contains("not valid for another 3m12s"), "{shown}");
    assert!(shown.contains("clock skew"), "{shown}");

    let late = hs256(&with(good_claims(), "exp", Some(json!(NOW - 192.0))));
    let shown = fixture.expect(&late, None, "expired").to_string();
    assert!(shown.contains("expired 3m12s ago"), "{shown}");
    assert!(shown.contains("leeway 30s"), "{shown}");
}

#[test]
fn a_pasted_authorization_value_is_read_as_its_token() {
    let read = |arg: Option<&str>, stdin: &str| read_token(arg, stdin.as_bytes()).expect("read");
    assert_eq!(read(Some("a.b.c"), ""), "a.b.c");
    assert_eq!(read(None, "Bearer a.b.c\n"), "a.b.c");
    assert_eq!(read(Some("-"), "  bearer   a.b.c \r\n"), "a.b.c");
    assert_eq!(read(Some("Bearer a.b.c"), ""), "a.b.c");
    assert_eq!(read(None, ""), "");
}
