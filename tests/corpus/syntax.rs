//! Token syntax: where the token sits, how it is split into segments, how
//! those are encoded, and how big it is.

use serde_json::json;

use crate::common::*;
use crate::support::keys::b64;
use crate::support::{claims, keys};

fn good() -> String {
    keys().mint("HS256", &claims("alice"))
}

/// Sends the token in `Authorization: <value>` (one header, as written).
async fn authorization(value: String) -> (Gate, crate::support::Answer) {
    let gate = Gate::start().await;
    let answer = gate
        .get("/games/1")
        .header("authorization", &value)
        .send()
        .await;
    (gate, answer)
}

async fn authorization_refused(value: String, expected: Challenge) {
    let (gate, answer) = authorization(value).await;
    assert_refused(&answer, expected);
    gate.assert_nothing_forwarded();
}

async fn authorization_missing(value: String) {
    let (gate, answer) = authorization(value).await;
    assert_missing(&answer);
    gate.assert_nothing_forwarded();
}

async fn authorization_passes(value: String) {
    let (gate, answer) = authorization(value).await;
    let request = gate.assert_forwarded_once(&answer);
    assert_eq!(request.header("x-user-id"), ["alice"]);
}

/// Sends raw header lines (exact bytes) to an authenticated route.
async fn raw_lines(lines: &[&str]) -> (Gate, crate::support::Answer) {
    let gate = Gate::start().await;
    let answer = gate.raw_head("GET", "/games/1", lines).await;
    (gate, answer)
}

async fn raw_refused(line: String, expected: Challenge) {
    let (gate, answer) = raw_lines(&[&line]).await;
    assert_refused(&answer, expected);
    gate.assert_nothing_forwarded();
}

/// A token made of these segments, HS256-signed over the first two when
/// there are at least two.
fn segments(parts: &[&str]) -> String {
    parts.join(".")
}

/// A signed token whose header segment is `header` text encoded as is.
fn signed_segments(header: &str, claims_segment: &str) -> String {
    let input = format!("{header}.{claims_segment}");
    let signature = keys().sign("HS256", input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

fn claims_segment() -> String {
    b64(claims("alice").to_string().as_bytes())
}

fn header_segment() -> String {
    b64(br#"{"alg":"HS256","typ":"JWT"}"#)
}

/// A header of 28 bytes, whose base64url ends in a character with four
/// unused bits; the last one is set, and the result signed as written.
fn non_canonical_header() -> String {
    let header = non_canonical_tail(&b64(br#"{"alg":"HS256", "typ":"JWT"}"#));
    signed_segments(&header, &claims_segment())
}

fn claims_text(text: &[u8]) -> String {
    signed_segments(&header_segment(), &b64(text))
}

cases! {
    /// RFC 6750 section 2.1, RFC 9110 section 11.1: the scheme is
    /// case-insensitive, so `bearer` passes.
    scheme_lowercase_passes: authorization_passes(format!("bearer {}", good()));
    /// RFC 9110 section 11.1: `BEARER` passes.
    scheme_uppercase_passes: authorization_passes(format!("BEARER {}", good()));
    /// RFC 9110 section 11.4: `1*SP` between scheme and token allows two
    /// spaces.
    two_spaces_after_the_scheme_pass: authorization_passes(format!("Bearer  {}", good()));
    /// RFC 6750 section 2.1: a tab is not the SP the grammar asks for.
    tab_after_the_scheme: authorization_refused(format!("Bearer\t{}", good()), MALFORMED);
    /// RFC 6750 section 2.1: scheme and token glued together.
    no_space_after_the_scheme: authorization_refused(format!("Bearer{}", good()), MALFORMED);
    /// RFC 6750 section 2.1: the scheme with no token.
    scheme_without_a_token: authorization_refused("Bearer".to_owned(), MALFORMED);
    /// RFC 6750 section 2.1: the scheme and a space, no token.
    scheme_and_space_only: authorization_refused("Bearer ".to_owned(), MALFORMED);
    /// RFC 6750 section 3.1: another scheme is no bearer credential; the
    /// challenge carries no error code.
    basic_scheme: authorization_missing("Basic YWxpY2U6c2VjcmV0".to_owned());
    /// RFC 6750 section 3.1: a made-up scheme carrying a good token.
    token_scheme: authorization_missing(format!("Token {}", good()));
    /// RFC 6750 section 3.1: `Bearertoken` spelled as a different scheme
    /// word would be; a truncated `Bear` is a malformed bearer attempt.
    truncated_scheme: authorization_refused("Bear".to_owned(), MALFORMED);
    /// RFC 6750 section 2.1: two tokens joined by a comma in one header.
    two_tokens_in_one_header: authorization_refused(
        format!("Bearer {}, Bearer {}", good(), good()), MALFORMED);
    /// RFC 6750 section 2.1: a space inside the token.
    space_inside_the_token: authorization_refused(format!("Bearer {} x", good()), MALFORMED);
    /// RFC 9110 section 5.3: `Authorization` is not a list; two of them
    /// are refused rather than one picked (tollgate and the service could
    /// pick differently).
    two_authorization_headers: async {
        let gate = Gate::start().await;
        let answer = gate.get("/games/1").bearer(&good()).bearer(&good()).send().await;
        assert_refused(&answer, MALFORMED);
        gate.assert_nothing_forwarded();
    };
    /// RFC 9110 section 5.3: a good token beside an empty `Authorization`.
    a_second_empty_authorization_header: raw_lines_refused(
        vec![format!("Authorization: Bearer {}", good()), "Authorization: ".to_owned()],
        MALFORMED);
    /// RFC 6750 section 2.3: a token in the query is not accepted (it
    /// leaks into logs); no credentials, and nothing forwarded.
    token_in_the_query: async {
        let gate = Gate::start().await;
        let answer = gate.get(&format!("/games/1?access_token={}", good())).send().await;
        assert_missing(&answer);
        gate.assert_nothing_forwarded();
    };
    /// RFC 6750 section 2.1: only `Authorization` carries the token, not a
    /// cookie.
    token_in_a_cookie: async {
        let gate = Gate::start().await;
        let answer = gate.get("/games/1")
            .header("cookie", &format!("access_token={}", good())).send().await;
        assert_missing(&answer);
        gate.assert_nothing_forwarded();
    };
    /// RFC 9110 section 11.7.2: `Proxy-Authorization` is for the proxy hop,
    /// not the service's bearer.
    token_in_proxy_authorization: async {
        let gate = Gate::start().await;
        let answer = gate.get("/games/1")
            .header("proxy-authorization", &format!("Bearer {}", good())).send().await;
        assert_missing(&answer);
        gate.assert_nothing_forwarded();
    };
    /// RFC 7515 section 7.1: one segment.
    one_segment: token_refused(header_segment(), MALFORMED);
    /// RFC 7515 section 7.1: two segments (signature dropped with its dot).
    two_segments: token_refused(segments(&[&header_segment(), &claims_segment()]), MALFORMED);
    /// RFC 7515 section 7.1: four segments.
    four_segments: token_refused(format!("{}.{}", good(), claims_segment()), MALFORMED);
    /// RFC 7516 section 7.1: five segments, the shape of a JWE.
    five_segments_jwe_shape: token_refused(
        segments(&[&header_segment(), "", "", &claims_segment(), "tag"]), MALFORMED);
    /// RFC 7515 section 7.1: an empty header segment.
    empty_header_segment: token_refused(format!(".{}.sig", claims_segment()), MALFORMED);
    /// RFC 7515 section 7.1: an empty claims segment.
    empty_claims_segment: token_refused(format!("{}..sig", header_segment()), MALFORMED);
    /// RFC 7515 section 7.1: two dots and nothing else.
    only_dots: token_refused("..".to_owned(), MALFORMED);
    /// RFC 7515 section 7.1: dots percent-encoded.
    percent_encoded_dots: token_refused(good().replace('.', "%2E"), MALFORMED);
    /// RFC 7515 section 2: a header segment with `=` padding.
    header_with_padding: token_refused(
        signed_segments(&format!("{}=", header_segment()), &claims_segment()), MALFORMED);
    /// RFC 7515 section 2: a claims segment with `==` padding.
    claims_with_padding: token_refused(
        signed_segments(&header_segment(), &format!("{}==", claims_segment())), MALFORMED);
    /// RFC 7515 section 2: the standard alphabet's `+` and `/`.
    standard_alphabet: token_refused(good().replace('-', "+").replace('_', "/") + "+/", MALFORMED);
    /// RFC 4648 section 3.5: a header with non-zero unused bits, signed
    /// as written: one token must have one spelling.
    header_non_canonical_bits: token_refused(non_canonical_header(), MALFORMED);
    /// RFC 7515 section 4: a header that is not JSON.
    header_not_json: token_refused(signed_segments(&b64(b"hello"), &claims_segment()), MALFORMED);
    /// RFC 7515 section 4: a header that is a JSON array.
    header_json_array: token_refused(
        signed_segments(&b64(br#"[{"alg":"HS256"}]"#), &claims_segment()), MALFORMED);
    /// RFC 7519 section 7.2 step 10: claims that are a JSON array.
    claims_json_array: token_refused(claims_text(b"[]"), MALFORMED);
    /// RFC 7519 section 7.2 step 10: claims that are JSON `null`.
    claims_json_null: token_refused(claims_text(b"null"), MALFORMED);
    /// RFC 8259 section 2: a claims object followed by garbage.
    claims_trailing_garbage: token_refused(
        claims_text(format!("{}x", claims("alice")).as_bytes()), MALFORMED);
    /// RFC 8259 section 8.1: a byte order mark before the claims.
    claims_with_a_bom: token_refused(
        claims_text(&[b"\xef\xbb\xbf".as_slice(), claims("alice").to_string().as_bytes()]
            .concat()), MALFORMED);
    /// RFC 7519 section 7.2: a JSON string holding the claims object.
    claims_json_string: token_refused(
        claims_text(json!(claims("alice").to_string()).to_string().as_bytes()), MALFORMED);
    /// RFC 9110 section 5.5: a token with a byte above 0x7f.
    non_ascii_in_the_token: raw_refused(
        format!("Authorization: Bearer {}\u{e9}", good()), MALFORMED);
    /// RFC 9110 section 5.4: a 16 KiB token, under the header cap but over
    /// the token cap: malformed before any decoding, never forwarded.
    huge_token: raw_refused(
        format!("Authorization: Bearer {}.{}.x", header_segment(), "a".repeat(16384)),
        MALFORMED);
}

async fn raw_lines_refused(lines: Vec<String>, expected: Challenge) {
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let (gate, answer) = raw_lines(&lines).await;
    assert_refused(&answer, expected);
    gate.assert_nothing_forwarded();
}

/// Sends a request whose header section is too large to hold; hyper
/// answers 431 (RFC 6585 section 5) and nothing is forwarded.
async fn header_section_too_large(lines: Vec<String>) {
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let gate = Gate::start().await;
    let answer = gate.raw_head("GET", "/public/x", &lines).await;
    assert_eq!(answer.status, 431, "{answer:?}");
    gate.assert_nothing_forwarded();
}

cases! {
    /// RFC 6585 section 5: a 500 kB header line.
    header_of_500_kb: header_section_too_large(vec![format!("X-Big: {}", "a".repeat(500_000))]);
    /// RFC 6585 section 5: a 64 KiB token fills the whole header cap
    /// (`limits.max_header_bytes`) before the token cap is reached.
    token_over_the_header_cap: header_section_too_large(vec![format!(
        "Authorization: Bearer {}.{}.x", header_segment(), "a".repeat(65536))]);
    /// RFC 6585 section 5: 150 header lines.
    header_lines_150: header_section_too_large(
        (0..150).map(|i| format!("X-H{i}: v")).collect());
}
