//! Signature forgery: signatures that are empty, cut, zero, in the wrong
//! encoding, or good for other bytes than the ones they arrive with.

use serde_json::json;

use crate::common::*;
use crate::support::keys::signing_input;
use crate::support::{claims, hs256_with_key, keys, swap_claims};

/// The order n of P-256 (SEC 2 section 2.4.2), big-endian.
const P256_ORDER: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
/// The order L of the Ed25519 base point (RFC 8032 section 5.1), big-endian.
const ED25519_ORDER: &str = "1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
        .collect()
}

fn empty(_: Vec<u8>) -> Vec<u8> {
    Vec::new()
}

fn drop_last_byte(mut signature: Vec<u8>) -> Vec<u8> {
    signature.pop();
    signature
}

fn zeros(signature: Vec<u8>) -> Vec<u8> {
    vec![0; signature.len()]
}

/// ECDSA `r || s` (RFC 7518 section 3.4) rewritten as the ASN.1 DER
/// `SEQUENCE { INTEGER r, INTEGER s }` other APIs produce.
fn der_encoded(signature: Vec<u8>) -> Vec<u8> {
    let integer = |bytes: &[u8]| {
        let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        let mut value = trimmed;
        if value.first().is_some_and(|b| b & 0x80 != 0) {
            value.insert(0, 0);
        }
        let mut out = vec![0x02, u8::try_from(value.len()).expect("short integer")];
        out.extend(value);
        out
    };
    let (r, s) = signature.split_at(signature.len() / 2);
    let body = [integer(r), integer(s)].concat();
    let mut out = vec![0x30, u8::try_from(body.len()).expect("short sequence")];
    out.extend(body);
    out
}

/// Adds the Ed25519 group order L to the signature's S half (little-endian),
/// the malleated twin RFC 8032 section 5.1.7 requires verifiers to refuse.
fn s_plus_order(mut signature: Vec<u8>) -> Vec<u8> {
    let mut order = hex(ED25519_ORDER);
    order.reverse();
    let mut carry = 0u16;
    for (byte, add) in signature[32..].iter_mut().zip(order) {
        let sum = u16::from(*byte) + u16::from(add) + carry;
        *byte = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    signature
}

/// A good token for `alg` with `sub: admin` swapped in under its signature.
fn payload_swapped(alg: &str) -> String {
    let token = keys().mint(alg, &claims("alice"));
    let mut forged = claims("admin");
    forged["roles"] = json!(["admin"]);
    swap_claims(&token, &forged)
}

fn signature_in_standard_base64() -> String {
    use base64::Engine;
    let (header, claims, signature) = signature_of("HS256");
    let text = base64::engine::general_purpose::STANDARD.encode(signature);
    format!("{}.{text}", signing_input(&header, &claims))
}

fn signature_in_hex() -> String {
    let (header, claims, signature) = signature_of("HS256");
    let text: String = signature.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}.{text}", signing_input(&header, &claims))
}

/// The signature of a good token for `bob`, under alice's header and claims.
fn lifted_signature() -> String {
    let (header, claims, _) = signature_of("HS256");
    let other = keys().mint("HS256", &crate::support::claims("bob"));
    let (_, signature) = other.rsplit_once('.').expect("a signature");
    format!("{}.{signature}", signing_input(&header, &claims))
}

cases! {
    /// Control: a good HS256 token passes (RFC 7518 section 3.2).
    hs256_good_signature_passes: token_passes(keys().mint("HS256", &claims("alice")), "alice");
    /// Control: a good ES256 token passes (RFC 7518 section 3.4).
    es256_good_signature_passes: token_passes(keys().mint("ES256", &claims("alice")), "alice");
    /// Control: a good EdDSA token passes (RFC 8037 section 3.1).
    eddsa_good_signature_passes: token_passes(keys().mint("EdDSA", &claims("alice")), "alice");
    /// RFC 8725 section 2.1: an empty HS256 signature.
    empty_hs256: token_refused(tampered_signature("HS256", empty), BAD_SIGNATURE);
    /// RFC 8725 section 2.1: an empty RS256 signature.
    empty_rs256: token_refused(tampered_signature("RS256", empty), BAD_SIGNATURE);
    /// RFC 7518 section 3.4: an empty ES256 signature (64 octets required).
    empty_es256: token_refused(tampered_signature("ES256", empty), BAD_SIGNATURE);
    /// RFC 8032 section 5.1.7: an empty Ed25519 signature.
    empty_eddsa: token_refused(tampered_signature("EdDSA", empty), BAD_SIGNATURE);
    /// RFC 7518 section 3.2: an HMAC tag one byte short (truncated MACs).
    truncated_hs256: token_refused(tampered_signature("HS256", drop_last_byte), BAD_SIGNATURE);
    /// RFC 8017 section 8.2.2: an RSA signature one byte short of the modulus.
    truncated_rs256: token_refused(tampered_signature("RS256", drop_last_byte), BAD_SIGNATURE);
    /// RFC 7518 section 3.4: an ES256 `r || s` one byte short.
    truncated_es256: token_refused(tampered_signature("ES256", drop_last_byte), BAD_SIGNATURE);
    /// RFC 7518 section 3.4: an ES256 signature cut to `r` alone.
    es256_r_only: token_refused(
        tampered_signature("ES256", |s| s[..32].to_vec()), BAD_SIGNATURE);
    /// RFC 8032 section 5.1.7: an Ed25519 signature one byte short.
    truncated_eddsa: token_refused(tampered_signature("EdDSA", drop_last_byte), BAD_SIGNATURE);
    /// RFC 8017 section 8.2.2: an RSA signature with a leading zero byte
    /// added (longer than the modulus).
    rs256_with_a_leading_zero: token_refused(
        tampered_signature("RS256", |s| [vec![0], s].concat()), BAD_SIGNATURE);
    /// RFC 7518 section 3.2: the tag written twice.
    hs256_signature_doubled: token_refused(
        tampered_signature("HS256", |s| [s.clone(), s].concat()), BAD_SIGNATURE);
    /// CVE-2022-21449 ("psychic signatures"): ES256 with r = s = 0.
    es256_zero_signature: token_refused(tampered_signature("ES256", zeros), BAD_SIGNATURE);
    /// CVE-2022-21449: ES384 with r = s = 0.
    es384_zero_signature: token_refused(tampered_signature("ES384", zeros), BAD_SIGNATURE);
    /// CVE-2022-21449: ES256 with r = s = n, which is 0 modulo n.
    es256_r_and_s_equal_to_the_order: token_refused(tampered_signature("ES256", |_| {
        [hex(P256_ORDER), hex(P256_ORDER)].concat()
    }), BAD_SIGNATURE);
    /// RFC 7518 section 3.4: a good ES256 signature in DER, not `r || s`.
    es256_der_encoded: token_refused(tampered_signature("ES256", der_encoded), BAD_SIGNATURE);
    /// RFC 7518 section 3.4: a good ES384 signature in DER.
    es384_der_encoded: token_refused(tampered_signature("ES384", der_encoded), BAD_SIGNATURE);
    /// RFC 8032 section 5.1.7: an all-zero Ed25519 signature.
    eddsa_zero_signature: token_refused(tampered_signature("EdDSA", zeros), BAD_SIGNATURE);
    /// RFC 8032 section 5.1.7: R the identity point, S = 0.
    eddsa_identity_r_and_zero_s: token_refused(tampered_signature("EdDSA", |_| {
        let mut signature = vec![0u8; 64];
        signature[0] = 1;
        signature
    }), BAD_SIGNATURE);
    /// RFC 8032 section 5.1.7: S + L, the malleated twin of a good
    /// signature; S must be below L.
    eddsa_s_not_reduced: token_refused(tampered_signature("EdDSA", s_plus_order), BAD_SIGNATURE);
    /// RFC 8017 section 8.2.2: an all-zero RSA signature.
    rs256_zero_signature: token_refused(tampered_signature("RS256", zeros), BAD_SIGNATURE);
    /// RFC 8017 section 5.2.2: the RSA signature 1 (s^e = 1 for any e).
    rs256_signature_one: token_refused(tampered_signature("RS256", |s| {
        let mut one = vec![0u8; s.len()];
        one[s.len() - 1] = 1;
        one
    }), BAD_SIGNATURE);
    /// RFC 8725 section 3.2: HS256 with another secret.
    hs256_with_another_secret: token_refused(
        hs256_with_key(b"another secret that is long enough!!", &header_for("HS256"),
            &claims("alice")), BAD_SIGNATURE);
    /// RFC 8725 section 3.5: HS256 with an empty key.
    hs256_with_an_empty_key: token_refused(
        hs256_with_key(b"", &header_for("HS256"), &claims("alice")), BAD_SIGNATURE);
    /// RFC 7515 section 5.2: RS256 by an RSA key outside the JWKS, kid of
    /// the one inside.
    rs256_by_a_foreign_key: token_refused(keys().mint_signed_by(
        "OTHER-RS256", &header_for("RS256"), &claims("alice")), BAD_SIGNATURE);
    /// RFC 7515 section 2: a signature in standard base64 with padding.
    signature_standard_base64: token_refused(signature_in_standard_base64(), MALFORMED);
    /// RFC 7515 section 2: a signature spelled in hex (valid base64url
    /// characters, wrong bytes).
    signature_hex_encoded: token_refused(signature_in_hex(), BAD_SIGNATURE);
    /// RFC 4648 section 3.5: the good HS256 signature with non-zero unused
    /// bits, a second spelling of the same bytes.
    signature_non_canonical_hs256: token_refused(
        non_canonical_tail(&keys().mint("HS256", &claims("alice"))), MALFORMED);
    /// RFC 4648 section 3.5: the same for an ES256 signature.
    signature_non_canonical_es256: token_refused(
        non_canonical_tail(&keys().mint("ES256", &claims("alice"))), MALFORMED);
    /// RFC 7515 section 5.2: HS256 claims swapped under a good signature.
    payload_swapped_hs256: token_refused(payload_swapped("HS256"), BAD_SIGNATURE);
    /// RFC 7515 section 5.2: RS256 claims swapped.
    payload_swapped_rs256: token_refused(payload_swapped("RS256"), BAD_SIGNATURE);
    /// RFC 7515 section 5.2: PS256 claims swapped.
    payload_swapped_ps256: token_refused(payload_swapped("PS256"), BAD_SIGNATURE);
    /// RFC 7515 section 5.2: ES256 claims swapped.
    payload_swapped_es256: token_refused(payload_swapped("ES256"), BAD_SIGNATURE);
    /// RFC 7515 section 5.2: ES384 claims swapped.
    payload_swapped_es384: token_refused(payload_swapped("ES384"), BAD_SIGNATURE);
    /// RFC 7515 section 5.2: EdDSA claims swapped.
    payload_swapped_eddsa: token_refused(payload_swapped("EdDSA"), BAD_SIGNATURE);
    /// RFC 7515 section 5.2: the header is signed too; dropping `typ`
    /// under a good signature breaks it.
    header_swapped_hs256: token_refused(
        swap_header(&keys().mint("HS256", &claims("alice")), &json!({"alg": "HS256"})),
        BAD_SIGNATURE);
    /// RFC 8725 section 3.1: RS256 relabelled RS512 under its signature.
    rs256_relabelled_rs512: token_refused(
        swap_header(&keys().mint("RS256", &claims("alice")),
            &json!({"alg": "RS512", "typ": "JWT", "kid": "rsa-1"})), BAD_SIGNATURE);
    /// RFC 7515 section 5.2: a good signature lifted from another token.
    signature_from_another_token: token_refused(lifted_signature(), BAD_SIGNATURE);
}
