//! Unit tests of verification with an HMAC provider built by hand.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};

use super::verify;
use crate::auth::{Provider, Providers, Reason};
use crate::config::{ClaimPath, ProviderSettings};
use crate::keys::KeySet;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-unit-tests";
const NOW: f64 = 1_800_000_000.0;

fn settings() -> ProviderSettings {
    ProviderSettings::for_tests()
}

fn providers(keys: KeySet) -> Providers {
    let secret = DecodingKey::from_secret(SECRET).expect("secret");
    let keys = if keys.is_empty() {
        KeySet::new(vec![secret], Vec::new())
    } else {
        keys
    };
    Providers::new(vec![Provider::new(&settings(), keys, 1024)])
}

fn claims() -> Value {
    json!({"iss": "https://issuer.test", "aud": "api", "sub": "alice", "exp": NOW + 60.0})
}

fn sign(claims: &Value) -> String {
    let key = EncodingKey::from_secret(SECRET).expect("secret");
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).expect("sign")
}

/// Signs raw header and claims text, so tests can write JSON that serde
/// would never produce (duplicate members, odd spacing).
fn sign_raw(header: &str, claims: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let key = EncodingKey::from_secret(SECRET).expect("secret");
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256).expect("sign");
    format!("{input}.{signature}")
}

fn reason(token: &str) -> Option<Reason> {
    verify(token, &providers(KeySet::default()), NOW)
        .err()
        .map(|r| r.reason)
}

#[test]
fn a_good_token_yields_its_identity_and_expiry() {
    let verified = verify(&sign(&claims()), &providers(KeySet::default()), NOW).expect("valid");
    assert_eq!(verified.identity.subject.as_deref(), Some("alice"));
    assert_eq!(verified.not_after, NOW + 60.0 + 30.0);
    assert_eq!(verified.identity.headers[0].1, "alice");
}

#[test]
fn fractional_times_are_numbers_and_pass() {
    let mut claims = claims();
    claims["exp"] = json!(NOW + 0.5);
    claims["nbf"] = json!(NOW - 0.25);
    assert_eq!(reason(&sign(&claims)), None);
}

#[test]
fn times_written_as_strings_are_refused() {
    for member in ["exp", "nbf", "iat"] {
        let mut claims = claims();
        claims[member] = json!(format!("{}", NOW + 60.0));
        assert_eq!(
            reason(&sign(&claims)),
            Some(Reason::InvalidClaims),
            "{member}"
        );
    }
}

#[test]
fn leeway_applies_to_exp_and_nbf() {
    let mut claims = claims();
    claims["exp"] = json!(NOW - 29.0);
    assert_eq!(reason(&sign(&claims)), None);
    claims["exp"] = json!(NOW - 30.0);
    assert_eq!(reason(&sign(&claims)), Some(Reason::Expired));

    let mut claims = self::claims();
    claims["nbf"] = json!(NOW + 30.0);
    assert_eq!(reason(&sign(&claims)), None);
    claims["nbf"] = json!(NOW + 31.0);
    assert_eq!(reason(&sign(&claims)), Some(Reason::NotYetValid));
}

#[test]
fn duplicate_members_are_refused_in_claims_and_header() {
    let claims = format!(
        r#"{{"iss":"https://issuer.test","aud":"api","sub":"alice","sub":"admin","exp":{}}}"#,
        NOW + 60.0
    );
    assert_eq!(
        reason(&sign_raw(r#"{"alg":"HS256"}"#, &claims)),
        Some(Reason::Malformed)
    );

    let claims = claims.replace(r#""sub":"admin","#, "");
    assert_eq!(reason(&sign_raw(r#"{"alg":"HS256"}"#, &claims)), None);
    let header = r#"{"alg":"HS256","alg":"none"}"#;
    assert_eq!(reason(&sign_raw(header, &claims)), Some(Reason::Malformed));
}

#[test]
fn a_crit_header_is_refused() {
    let claims = claims().to_string();
    let header = r#"{"alg":"HS256","crit":["b64"],"b64":false}"#;
    assert_eq!(reason(&sign_raw(header, &claims)), Some(Reason::Malformed));
}

#[test]
fn unknown_and_none_algorithms_are_disallowed() {
    let claims = claims().to_string();
    for alg in ["none", "None", "HS257", "RS256"] {
        let header = format!(r#"{{"alg":"{alg}"}}"#);
        assert_eq!(
            reason(&sign_raw(&header, &claims)),
            Some(Reason::DisallowedAlg),
            "{alg}"
        );
    }
}

#[test]
fn required_claims_must_be_present_and_typed() {
    for (member, value) in [
        ("exp", Value::Null),
        ("sub", json!("")),
        ("sub", json!(7)),
        ("aud", json!(5)),
        ("aud", json!(["api", 5])),
        ("iss", json!(1)),
    ] {
        let mut claims = claims();
        if value.is_null() {
            claims.as_object_mut().expect("object").remove(member);
        } else {
            claims[member] = value.clone();
        }
        assert_eq!(
            reason(&sign(&claims)),
            Some(Reason::InvalidClaims),
            "{member}={value}"
        );
    }
}

#[test]
fn audience_must_hold_one_of_ours() {
    let mut claims = claims();
    claims["aud"] = json!(["other", "api"]);
    assert_eq!(reason(&sign(&claims)), None);
    claims["aud"] = json!(["other"]);
    assert_eq!(reason(&sign(&claims)), Some(Reason::WrongAudience));
    claims["aud"] = json!("other");
    assert_eq!(reason(&sign(&claims)), Some(Reason::WrongAudience));
}

#[test]
fn an_unknown_issuer_is_wrong_issuer_with_no_provider() {
    let mut claims = claims();
    claims["iss"] = json!("https://evil.test");
    let refusal = verify(&sign(&claims), &providers(KeySet::default()), NOW).expect_err("refused");
    assert_eq!(refusal.reason, Reason::WrongIssuer);
    assert_eq!(refusal.provider, None);
}

#[test]
fn a_provider_without_keys_answers_no_keys() {
    let empty = Providers::new(vec![Provider::new(&settings(), KeySet::default(), 1024)]);
    let refusal = verify(&sign(&claims()), &empty, NOW).expect_err("refused");
    assert_eq!(refusal.reason, Reason::NoKeys);
    assert_eq!(refusal.provider, Some(0));
}

#[test]
fn non_canonical_base64_is_malformed() {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let token = sign(&claims());
    // A 32-byte HS256 signature is 43 characters: the last one carries 4
    // data bits and 2 zero bits. Setting a zero bit spells the same bytes
    // for a lenient decoder, so it must be refused as non-canonical.
    let (head, last) = token.split_at(token.len() - 1);
    let at = ALPHABET
        .iter()
        .position(|c| *c == last.as_bytes()[0])
        .expect("base64url character");
    assert_eq!(at % 4, 0, "a canonical encoder leaves the spare bits zero");
    let twin = char::from(ALPHABET[at + 1]);
    assert_eq!(reason(&format!("{head}{twin}")), Some(Reason::Malformed));
}

#[test]
fn a_tampered_payload_fails_the_signature() {
    let token = sign(&claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut forged = claims();
    forged["sub"] = json!("admin");
    let forged = URL_SAFE_NO_PAD.encode(forged.to_string());
    parts[1] = &forged;
    assert_eq!(reason(&parts.join(".")), Some(Reason::BadSignature));
}

// --- issuer shapes: audience_claim and require_sub ---

/// Verifies `claims` with a provider whose settings `edit` adjusted.
fn reason_with(edit: impl FnOnce(&mut ProviderSettings), claims: &Value) -> Option<Reason> {
    let mut settings = settings();
    edit(&mut settings);
    let secret = DecodingKey::from_secret(SECRET).expect("secret");
    let keys = KeySet::new(vec![secret], Vec::new());
    let providers = Providers::new(vec![Provider::new(&settings, keys, 1024)]);
    verify(&sign(claims), &providers, NOW)
        .err()
        .map(|r| r.reason)
}

fn reads_client_id(settings: &mut ProviderSettings) {
    settings.audience_claim = ClaimPath::parse("client_id");
}

#[test]
fn the_audience_may_come_from_another_claim() {
    let mut claims = claims();
    claims.as_object_mut().expect("object").remove("aud");
    claims["client_id"] = json!("api");
    assert_eq!(reason_with(reads_client_id, &claims), None);

    claims["client_id"] = json!("another-client");
    assert_eq!(
        reason_with(reads_client_id, &claims),
        Some(Reason::WrongAudience)
    );
    claims["client_id"] = json!(["another-client", "api"]);
    assert_eq!(reason_with(reads_client_id, &claims), None);
    claims["client_id"] = json!(7);
    assert_eq!(
        reason_with(reads_client_id, &claims),
        Some(Reason::InvalidClaims)
    );
}

#[test]
fn a_named_audience_claim_that_is_absent_is_invalid_even_with_a_good_aud() {
    assert_eq!(
        reason_with(reads_client_id, &claims()),
        Some(Reason::InvalidClaims)
    );
}

#[test]
fn an_aud_beside_the_named_audience_claim_must_name_us_too() {
    let mut claims = claims();
    claims["client_id"] = json!("api");
    claims["aud"] = json!("another-service");
    assert_eq!(
        reason_with(reads_client_id, &claims),
        Some(Reason::WrongAudience)
    );
}

#[test]
fn without_require_sub_an_absent_sub_passes_but_a_bad_one_does_not() {
    let optional = |settings: &mut ProviderSettings| settings.require_sub = false;
    let mut claims = claims();
    claims.as_object_mut().expect("object").remove("sub");
    assert_eq!(reason_with(optional, &claims), None);
    assert_eq!(
        reason_with(|_| {}, &claims),
        Some(Reason::InvalidClaims),
        "sub is required by default"
    );
    for bad in [json!(""), json!(7), json!(null)] {
        claims["sub"] = bad.clone();
        assert_eq!(
            reason_with(optional, &claims),
            Some(Reason::InvalidClaims),
            "{bad}"
        );
    }
}

// --- the JOSE header ---

#[test]
fn the_header_is_read_strictly() {
    let claims = claims().to_string();
    let cases = [
        (r#"{"alg":"HS256","typ":"JWT","kid":"any"}"#, None),
        (
            r#"{"typ":"JWT","alg":"HS256","x5t":{"a":[1,{"b":null}]}}"#,
            None,
        ),
        (r#"{"alg":"HS256","alg":"HS256"}"#, Some(Reason::Malformed)),
        (
            r#"{"alg":"HS256","jwk":{"kty":"oct","kty":"oct"}}"#,
            Some(Reason::Malformed),
        ),
        (
            r#"{"alg":"HS256","x":[{"k":1,"k":2}]}"#,
            Some(Reason::Malformed),
        ),
        (r#"{"alg":"HS256","crit":["exp"]}"#, Some(Reason::Malformed)),
        (r#"{"alg":"HS256","kid":7}"#, Some(Reason::Malformed)),
        (r#"{"alg":["HS256"]}"#, Some(Reason::Malformed)),
        (r#"{"typ":"JWT"}"#, Some(Reason::Malformed)),
        (r#"["HS256"]"#, Some(Reason::Malformed)),
        (r#"{"alg":"HS256"} x"#, Some(Reason::Malformed)),
        (r#"{"alg":"none"}"#, Some(Reason::DisallowedAlg)),
        (r#"{"alg":"HS256"}"#, None),
        (
            r#"{"alg":"HS256","kid":"a","kid":"b"}"#,
            Some(Reason::Malformed),
        ),
    ];
    for (header, expected) in cases {
        assert_eq!(reason(&sign_raw(header, &claims)), expected, "{header}");
    }
}

#[test]
fn a_header_of_many_members_is_refused_for_a_repeat_at_any_position() {
    let claims = claims().to_string();
    let members: Vec<String> = (0..2000).map(|at| format!(r#""m{at}":{at}"#)).collect();
    let unique = format!(r#"{{"alg":"HS256",{}}}"#, members.join(","));
    assert_eq!(reason(&sign_raw(&unique, &claims)), None);
    let repeated = format!(r#"{{"alg":"HS256",{},"m1999":0}}"#, members.join(","));
    assert_eq!(
        reason(&sign_raw(&repeated, &claims)),
        Some(Reason::Malformed)
    );
}

#[test]
fn an_hmac_token_with_any_kid_verifies() {
    // HMAC secrets carry no kid: an HMAC token's kid picks nothing.
    let token = sign_raw(
        r#"{"alg":"HS256","kid":"made-up-7f3a"}"#,
        &claims().to_string(),
    );
    assert_eq!(reason(&token), None);
}

// --- the claims, read for `iss` before the signature ---

const HEADER: &str = r#"{"alg":"HS256"}"#;

/// Signs raw claims with a secret the provider does not hold.
fn forge_raw(claims: &str) -> String {
    let token = sign_raw(HEADER, claims);
    let (input, _) = token.rsplit_once('.').expect("three segments");
    let key =
        EncodingKey::from_secret(b"not the provider's secret, but as long as it").expect("key");
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256).expect("sign");
    format!("{input}.{signature}")
}

/// The claims of [`claims`] with `member` (raw JSON) added at the end.
fn claims_with(member: &str) -> String {
    let text = claims().to_string();
    format!("{},{member}}}", text.trim_end_matches('}'))
}

#[test]
fn duplicates_deep_in_the_claims_are_malformed_before_the_issuer_is_read() {
    let cases = [
        r#""x":{"a":1,"a":2}"#,
        r#""x":[{"a":1},{"b":[{"c":1,"c":1}]}]"#,
        r#""realm_access":{"roles":["p"],"roles":["admin"]}"#,
        r#""iss":"https://issuer.test""#,
        r#""\u0069ss":"https://evil.test""#,
    ];
    for member in cases {
        let claims = claims_with(member);
        assert_eq!(
            reason(&sign_raw(HEADER, &claims)),
            Some(Reason::Malformed),
            "{member}"
        );
        let elsewhere = claims.replace("https://issuer.test", "https://unknown.test");
        assert_eq!(
            reason(&sign_raw(HEADER, &elsewhere)),
            Some(Reason::Malformed),
            "an unknown issuer comes second: {member}"
        );
    }
}

#[test]
fn an_iss_that_is_absent_or_not_a_string_is_invalid_with_no_provider() {
    let without = claims().as_object().expect("object").clone();
    for iss in [None, Some(json!(7)), Some(json!(null)), Some(json!(["x"]))] {
        let mut claims = without.clone();
        match &iss {
            Some(iss) => claims.insert("iss".to_owned(), iss.clone()),
            None => claims.remove("iss"),
        };
        let token = sign(&Value::Object(claims));
        let refusal = verify(&token, &providers(KeySet::default()), NOW).expect_err("refused");
        assert_eq!(refusal.reason, Reason::InvalidClaims, "{iss:?}");
        assert_eq!(refusal.provider, None, "{iss:?}");
    }

    let nested = r#"{"iss":{"https://issuer.test":1},"exp":1}"#;
    assert_eq!(
        reason(&sign_raw(HEADER, nested)),
        Some(Reason::InvalidClaims)
    );
    let repeats = r#"{"iss":{"a":1,"a":1},"exp":1}"#;
    assert_eq!(reason(&sign_raw(HEADER, repeats)), Some(Reason::Malformed));
}

#[test]
fn claims_that_are_not_one_object_are_malformed() {
    for claims in [
        r#"["https://issuer.test"]"#,
        r#""https://issuer.test""#,
        "3",
        "null",
        "{",
        r#"{"iss":"https://issuer.test"} {}"#,
        r#"{"iss":"https://issuer.test","exp":1e400}"#,
        "{\"iss\":\"https://issuer.test\",\"x\":\"\u{0}\"}",
    ] {
        assert_eq!(
            reason(&sign_raw(HEADER, claims)),
            Some(Reason::Malformed),
            "{claims}"
        );
        assert_eq!(
            reason(&forge_raw(claims)),
            Some(Reason::Malformed),
            "{claims}"
        );
    }
}

#[test]
fn an_iss_with_escapes_picks_its_provider() {
    for iss in [
        r#""https:\/\/issuer.test""#,
        r#""\u0068ttps://issuer.test""#,
    ] {
        let claims = claims()
            .to_string()
            .replace(r#""https://issuer.test""#, iss);
        assert!(claims.contains(iss), "{claims}");
        assert_eq!(reason(&sign_raw(HEADER, &claims)), None, "{iss}");
        assert_eq!(
            reason(&forge_raw(&claims)),
            Some(Reason::BadSignature),
            "{iss}"
        );
    }
    let other = claims()
        .to_string()
        .replace(r#""https://issuer.test""#, r#""https:\/\/evil.test""#);
    assert_eq!(reason(&sign_raw(HEADER, &other)), Some(Reason::WrongIssuer));
}

#[test]
fn a_bad_signature_is_named_before_bad_claims() {
    let exp = NOW + 60.0;
    let cases = [
        format!(
            r#"{{"iss":"https://issuer.test","aud":"api","sub":"alice","exp":{}}}"#,
            NOW - 3600.0
        ),
        format!(r#"{{"iss":"https://issuer.test","aud":"other","sub":"alice","exp":{exp}}}"#),
        format!(r#"{{"iss":"https://issuer.test","aud":"api","sub":7,"exp":{exp}}}"#),
        format!(r#"{{"iss":"https://issuer.test","aud":"api","sub":"alice","exp":"{exp}"}}"#),
        r#"{"iss":"https://issuer.test"}"#.to_owned(),
    ];
    for claims in &cases {
        assert_ne!(reason(&sign_raw(HEADER, claims)), None, "{claims}");
        let refusal =
            verify(&forge_raw(claims), &providers(KeySet::default()), NOW).expect_err("refused");
        assert_eq!(refusal.reason, Reason::BadSignature, "{claims}");
        assert_eq!(refusal.provider, Some(0), "{claims}");
    }

    // A repeat is a syntax fault, so it comes before even the signature.
    let repeated = claims_with(r#""sub":"admin""#);
    assert_eq!(reason(&forge_raw(&repeated)), Some(Reason::Malformed));
}

/// How many levels of `{"a":…}` serde_json's nesting limit lets a claim
/// hold, with the claims object around them and `{}` at the bottom.
const DEEPEST: usize = 125;

#[test]
fn claims_and_header_nested_as_deep_as_json_allows_fit_the_stack() {
    // Each level of the first read keeps its names in place on the stack;
    // the deepest claims or header serde_json accepts must still fit a test thread's
    // stack (no larger than a tokio worker's) in a debug build.
    let nested = |depth: usize| {
        format!(
            "{}{}",
            r#"{"a":"#.repeat(depth),
            "{}".to_owned() + &"}".repeat(depth)
        )
    };
    let deepest = claims_with(&format!(r#""x":{}"#, nested(DEEPEST)));
    assert_eq!(reason(&sign_raw(HEADER, &deepest)), None);
    assert_eq!(reason(&forge_raw(&deepest)), Some(Reason::BadSignature));

    let too_deep = claims_with(&format!(r#""x":{}"#, nested(DEEPEST + 1)));
    assert_eq!(
        reason(&sign_raw(HEADER, &too_deep)),
        Some(Reason::Malformed)
    );
    assert_eq!(reason(&forge_raw(&too_deep)), Some(Reason::Malformed));

    let header = format!(r#"{{"alg":"HS256","x":{}}}"#, nested(DEEPEST));
    assert_eq!(reason(&sign_raw(&header, &claims().to_string())), None);
}
