//! Claims: registered claims of the wrong type, times around the leeway,
//! numbers out of range, duplicate members, deep nesting and huge claims.
//!
//! Every token here is properly signed with the provider's HMAC secret, so
//! only the claims can be at fault.

use serde_json::{Value, json};

use crate::common::*;
use crate::support::{AUDIENCE, ISSUER, now};

/// A signed token whose claims are `claims_with(changes)`.
fn with(changes: &[(&str, Value)]) -> String {
    hs256(&claims_with(changes))
}

/// The HS256 header as JSON text.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// A signed token whose claims text is written out in full.
fn raw(claims: &str) -> String {
    raw_hs256(HEADER, claims)
}

/// A signed token with `sub: alice` and `extra` appended to good claims.
fn raw_extra(extra: &str) -> String {
    raw(&raw_claims(&format!(r#","sub":"alice"{extra}"#)))
}

/// Claims text with the given `exp` literal and nothing else odd.
fn raw_exp(exp: &str) -> String {
    raw(&format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"alice","exp":{exp}}}"#
    ))
}

/// Seconds from now, as a JSON number.
fn at(offset: i64) -> Value {
    json!(i64::try_from(now()).expect("a 2020s clock") + offset)
}

/// A gate with a 30 s leeway, so each boundary case sits 15 s from it.
async fn thirty_second_leeway() -> Gate {
    Gate::with(|h| h.with_leeway("30s")).await
}

async fn leeway_refuses(token: String, expected: Challenge) {
    refused_by(thirty_second_leeway().await, &token, expected).await;
}

async fn leeway_passes(token: String) {
    passes_by(thirty_second_leeway().await, &token, "alice").await;
}

/// `depth` nested arrays around `"x"`, as claim `deep`.
fn nested(depth: usize) -> String {
    let value = format!("{}\"x\"{}", "[".repeat(depth), "]".repeat(depth));
    raw_extra(&format!(r#","deep":{value}"#))
}

/// A good token carrying an extra claim of `bytes` characters, to land the
/// whole token near the 8192-byte cap.
fn padded(bytes: usize) -> String {
    with(&[("pad", json!("p".repeat(bytes)))])
}

/// The token length an HS256 token reaches with a `pad` of `bytes`.
fn padded_len(bytes: usize) -> usize {
    padded(bytes).len()
}

/// The largest pad whose token is within `limit` bytes.
fn pad_for(limit: usize) -> usize {
    let base = padded_len(0);
    // base64url grows 4 characters per 3 bytes; step down from the estimate.
    let mut pad = (limit - base) * 3 / 4 + 3;
    while padded_len(pad) > limit {
        pad -= 1;
    }
    pad
}

cases! {
    /// RFC 7519 section 4.1.4: `exp` is optional in the RFC but required
    /// here, strictly: a token without it would never expire.
    exp_missing: token_refused(with(&[("exp", Value::Null)]), INVALID_CLAIMS);
    /// RFC 7519 section 2: NumericDate is a number; a string is refused.
    exp_as_string: token_refused(with(&[("exp", json!("9999999999"))]), INVALID_CLAIMS);
    /// RFC 7519 section 2: a literal `null` `exp`.
    exp_null: token_refused(raw_exp("null"), INVALID_CLAIMS);
    /// RFC 7519 section 2: a boolean `exp`.
    exp_true: token_refused(raw_exp("true"), INVALID_CLAIMS);
    /// RFC 7519 section 2: an `exp` wrapped in an array.
    exp_in_an_array: token_refused(with(&[("exp", json!([now() + 3600]))]), INVALID_CLAIMS);
    /// RFC 7519 section 2: an `exp` object.
    exp_object: token_refused(with(&[("exp", json!({"$numberLong": "9999999999"}))]),
        INVALID_CLAIMS);
    /// RFC 7519 section 4.1.4: `exp` 0 is 1970.
    exp_zero: token_refused(raw_exp("0"), EXPIRED);
    /// RFC 7519 section 4.1.4: a negative `exp` (i64::MIN) is long past.
    exp_most_negative: token_refused(raw_exp("-9223372036854775808"), EXPIRED);
    /// RFC 8259 section 6: a number beyond f64 (1e400) is no NumericDate;
    /// the claims do not parse.
    exp_beyond_f64: token_refused(raw_exp("1e400"), MALFORMED);
    /// RFC 8259 section 6: `-0` is zero, not a way around the sign check.
    exp_negative_zero: token_refused(raw_exp("-0"), EXPIRED);
    /// RFC 7519 section 2: a fractional `exp` in the future is allowed.
    exp_fractional_future: token_passes(raw_exp(&format!("{}.5", now() + 3600)), "alice");
    /// RFC 7519 section 2: `exp` past u64::MAX still parses as a (huge)
    /// NumericDate; the token is valid and the cache must cope.
    exp_beyond_u64: token_passes(raw_exp("18446744073709551616"), "alice");
    /// RFC 7519 section 2: `exp` 1e300 must not overflow any duration.
    exp_1e300: token_passes(raw_exp("1e300"), "alice");
    /// RFC 7519 section 4.1.4: expired 15 s ago, inside a 30 s leeway.
    exp_inside_the_leeway: leeway_passes(with(&[("exp", at(-15))]));
    /// RFC 7519 section 4.1.4: expired 45 s ago, beyond a 30 s leeway.
    exp_beyond_the_leeway: leeway_refuses(with(&[("exp", at(-45))]), EXPIRED);
    /// RFC 7519 section 4.1.4: with no leeway, expired a second ago.
    exp_one_second_ago_without_leeway: async {
        let gate = Gate::with(|h| h.with_leeway("0s")).await;
        refused_by(gate, &with(&[("exp", at(-1))]), EXPIRED).await;
    };
    /// RFC 7519 section 4.1.5: `nbf` 15 s ahead, inside a 30 s leeway.
    nbf_inside_the_leeway: leeway_passes(with(&[("nbf", at(15))]));
    /// RFC 7519 section 4.1.5: `nbf` 45 s ahead, beyond a 30 s leeway.
    nbf_beyond_the_leeway: leeway_refuses(with(&[("nbf", at(45))]), NOT_YET_VALID);
    /// RFC 7519 section 4.1.5: `nbf` as a string is refused, not parsed.
    nbf_as_string: token_refused(with(&[("nbf", json!("0"))]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.5: a literal `null` `nbf`.
    nbf_null: token_refused(raw_extra(r#","nbf":null"#), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.5: `nbf` far in the future (year 33658).
    nbf_far_future: token_refused(with(&[("nbf", json!(1e12))]), NOT_YET_VALID);
    /// RFC 7519 section 4.1.5: `nbf` wrapped in an array.
    nbf_in_an_array: token_refused(with(&[("nbf", json!([now()]))]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.5: a boolean `nbf`.
    nbf_true: token_refused(with(&[("nbf", json!(true))]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.6: a literal `null` `iat`.
    iat_null: token_refused(raw_extra(r#","iat":null"#), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.6: `iat` as a string.
    iat_as_string: token_refused(with(&[("iat", json!("yesterday"))]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.6: `iat` as an array.
    iat_in_an_array: token_refused(with(&[("iat", json!([now()]))]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.6: `iat` as a boolean.
    iat_false: token_refused(with(&[("iat", json!(false))]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.3: no audience at all is refused.
    aud_missing: token_refused(with(&[("aud", Value::Null)]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.3: another service's audience.
    aud_other_service: token_refused(with(&[("aud", json!("billing-api"))]), WRONG_AUDIENCE);
    /// RFC 7519 section 4.1.3: audiences compare case-sensitively.
    aud_other_case: token_refused(with(&[("aud", json!("Chessmate-API"))]), WRONG_AUDIENCE);
    /// RFC 7519 section 4.1.3: a trailing space is another audience.
    aud_trailing_space: token_refused(with(&[("aud", json!(format!("{AUDIENCE} ")))]),
        WRONG_AUDIENCE);
    /// RFC 7519 section 4.1.3: a prefix of ours is not ours.
    aud_prefix: token_refused(with(&[("aud", json!("chessmate"))]), WRONG_AUDIENCE);
    /// RFC 7519 section 4.1.3: an empty audience list.
    aud_empty_array: token_refused(with(&[("aud", json!([]))]), WRONG_AUDIENCE);
    /// RFC 7519 section 4.1.3: a list holding ours passes.
    aud_array_holding_ours: token_passes(with(&[("aud", json!(["billing-api", AUDIENCE]))]),
        "alice");
    /// RFC 7519 section 4.1.3: a list with a non-string beside ours.
    aud_array_with_a_number: token_refused(with(&[("aud", json!([AUDIENCE, 1]))]),
        INVALID_CLAIMS);
    /// RFC 7519 section 4.1.3: ours nested one array deeper.
    aud_nested_array: token_refused(with(&[("aud", json!([[AUDIENCE]]))]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.3: an audience number.
    aud_number: token_refused(with(&[("aud", json!(1))]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.3: an audience object keyed by ours.
    aud_object: token_refused(with(&[("aud", json!({AUDIENCE: true}))]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.3: a literal `null` audience.
    aud_null: token_refused(raw(&format!(
        r#"{{"iss":"{ISSUER}","aud":null,"sub":"alice","exp":{}}}"#, now() + 3600)),
        INVALID_CLAIMS);
    /// RFC 7519 section 4.1.1: no issuer picks no provider.
    iss_missing: token_refused(with(&[("iss", Value::Null)]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.1: the issuer in an array.
    iss_in_an_array: token_refused(with(&[("iss", json!([ISSUER]))]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.1: a numeric issuer.
    iss_number: token_refused(with(&[("iss", json!(1))]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.1: an issuer with a trailing slash.
    iss_trailing_slash: token_refused(with(&[("iss", json!(format!("{ISSUER}/")))]),
        WRONG_ISSUER);
    /// RFC 7519 section 4.1.1: issuers compare case-sensitively.
    iss_other_case: token_refused(with(&[("iss", json!(ISSUER.to_uppercase()))]),
        WRONG_ISSUER);
    /// RFC 7519 section 4.1.1: the issuer over plain http.
    iss_http_scheme: token_refused(
        with(&[("iss", json!(ISSUER.replacen("https", "http", 1)))]), WRONG_ISSUER);
    /// RFC 7519 section 4.1.2: `sub` is required by this provider.
    sub_missing: token_refused(with(&[("sub", Value::Null)]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.2: an empty `sub` identifies no one.
    sub_empty: token_refused(with(&[("sub", json!(""))]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.2: `sub` is a StringOrURI; a number is refused.
    sub_number: token_refused(with(&[("sub", json!(42))]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.2: a `sub` array.
    sub_in_an_array: token_refused(with(&[("sub", json!(["alice"]))]), INVALID_CLAIMS);
    /// RFC 7519 section 4.1.2: an object `sub`.
    sub_object: token_refused(with(&[("sub", json!({"id": "alice"}))]), INVALID_CLAIMS);
    /// RFC 9110 section 5.5: a `sub` with CR LF would split the identity
    /// header the upstream receives.
    sub_with_crlf: token_refused(with(&[("sub", json!("alice\r\nX-User-Roles: admin"))]),
        INVALID_CLAIMS);
    /// RFC 9110 section 5.5: a NUL in `sub`.
    sub_with_a_nul: token_refused(with(&[("sub", json!("alice\u{0}admin"))]), INVALID_CLAIMS);
    /// RFC 9110 section 5.5: a `sub` longer than the identity header cap.
    sub_over_the_header_cap: token_refused(with(&[("sub", json!("a".repeat(4097)))]),
        INVALID_CLAIMS);
    /// RFC 7519 section 4: claim names must be unique; two `exp`.
    duplicate_exp: token_refused(raw_extra(r#","exp":1"#), MALFORMED);
    /// RFC 7519 section 4: two `sub`, the last one `admin`.
    duplicate_sub: token_refused(raw_extra(r#","sub":"admin""#), MALFORMED);
    /// RFC 7519 section 4: a duplicate spelled with an escape (`s\u0075b`).
    duplicate_sub_escaped: token_refused(raw_extra(r#","s\u0075b":"admin""#), MALFORMED);
    /// RFC 7519 section 4: two `aud`.
    duplicate_aud: token_refused(raw_extra(r#","aud":"billing-api""#), MALFORMED);
    /// RFC 7515 section 4: header names must be unique; two `alg`.
    duplicate_alg_in_the_header: token_refused(
        raw_hs256(r#"{"alg":"none","alg":"HS256"}"#, &raw_claims(r#","sub":"alice""#)),
        MALFORMED);
    /// RFC 7515 section 4: two `alg`, one spelled `\u0061lg`.
    duplicate_alg_escaped_in_the_header: token_refused(
        raw_hs256(r#"{"alg":"HS256","\u0061lg":"none"}"#, &raw_claims(r#","sub":"alice""#)),
        MALFORMED);
    /// RFC 8259 section 4: a duplicate inside a nested claim object.
    duplicate_inside_a_nested_object: token_refused(
        raw_extra(r#","realm_access":{"roles":["player"],"roles":["admin"]}"#), MALFORMED);
    /// RFC 8259 section 9: 200 nested arrays exceed the parser's depth
    /// limit; refused, not a crash.
    deeply_nested_claim: token_refused(nested(200), MALFORMED);
    /// RFC 8259 section 9: 2500 levels of nesting, inside the token cap.
    very_deeply_nested_claim: token_refused(nested(2500), MALFORMED);
    /// RFC 8259 section 9: modest nesting (20 levels) is fine.
    modestly_nested_claim: token_passes(nested(20), "alice");
    /// RFC 9110 section 5.4 (field limits): a token of exactly the
    /// 8192-byte cap (`limits.max_token_bytes`) passes.
    token_at_the_size_cap: token_passes(padded(pad_for(8192)), "alice");
    /// RFC 9110 section 5.4: a token just over the 8192-byte cap is
    /// refused before it is parsed.
    token_over_the_size_cap: token_refused(padded(pad_for(8192) + 1), MALFORMED);
    /// RFC 7519 section 4.1.4: `exp` as a numeric string with an exponent.
    exp_as_exponent_string: token_refused(with(&[("exp", json!("1e10"))]), INVALID_CLAIMS);
    /// RFC 8259 section 6: `exp` written with a leading zero is not JSON.
    exp_with_a_leading_zero: token_refused(raw_exp(&format!("0{}", now() + 3600)), MALFORMED);
    /// RFC 8259 section 8.1: claims text that is not UTF-8.
    claims_not_utf8: token_refused(raw_hs256_bytes(b"{\"sub\":\"\xff\"}"), MALFORMED);
}

/// Signs claims bytes that need not be UTF-8.
fn raw_hs256_bytes(claims: &[u8]) -> String {
    use crate::support::keys::b64;
    let input = format!("{}.{}", b64(HEADER.as_bytes()), b64(claims));
    let signature = crate::support::keys().sign("HS256", input.as_bytes());
    format!("{input}.{}", b64(&signature))
}
