//! Algorithm abuse: a token that picks its own algorithm or its own key.
//!
//! The algorithm is bound to the key's type and to the provider's
//! allowlist (RFC 8725 section 3.1), and keys come only from the provider's
//! configuration, never from the token (RFC 8725 section 3.10).

use aws_lc_rs::hmac;
use serde_json::{Value, json};

use crate::common::*;
use crate::support::keys::{b64, signing_input};
use crate::support::{claims, hs256_with_key, keys};

/// Every algorithm the test keys can sign except HMAC: a provider that
/// trusts public keys only.
const PUBLIC_ONLY: [&str; 7] = [
    "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA",
];

/// An unsecured JWT (RFC 7519 section 6): `alg` as given, empty signature.
fn unsigned(alg: &str) -> String {
    format!(
        "{}.",
        signing_input(&json!({"alg": alg, "typ": "JWT"}), &claims("alice"))
    )
}

/// A token with this header, signed by the test key named `signer`.
fn signed_by(signer: &str, header: Value) -> String {
    keys().mint_signed_by(signer, &header, &claims("alice"))
}

/// A token with a raw header text (any `alg` value at all), HS256-signed.
fn raw_header(header: &str) -> String {
    raw_hs256(header, &raw_claims(r#","sub":"alice""#))
}

/// An HMAC token keyed with `key`, whose header names the RSA key.
fn hmac_keyed(alg: &str, key: &[u8]) -> String {
    let algorithm = match alg {
        "HS256" => hmac::HMAC_SHA256,
        "HS384" => hmac::HMAC_SHA384,
        _ => hmac::HMAC_SHA512,
    };
    let header = json!({"alg": alg, "typ": "JWT", "kid": "rsa-1"});
    let input = signing_input(&header, &claims("alice"));
    let tag = hmac::sign(&hmac::Key::new(algorithm, key), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// A provider that trusts public keys only refuses any HMAC token, whatever
/// the token was keyed with.
async fn public_only_refuses(token: String) {
    let gate = Gate::with(|h| h.without_secret().with_algorithms(&PUBLIC_ONLY)).await;
    refused_by(gate, &token, DISALLOWED_ALG).await;
}

fn rsa_pem(form: &str) -> Vec<u8> {
    let label = if form == "pkcs1" {
        "RSA PUBLIC KEY"
    } else {
        "PUBLIC KEY"
    };
    pem(label, &keys().rsa_public_der(form)).into_bytes()
}

/// A token naming a key URL (`jku` or `x5u`) on a trap, with `kid`; the
/// refusal must come without any connection to the trap.
async fn key_url_ignored(member: &str, kid: &str, expected: Challenge) {
    let trap = Trap::start().await;
    let mut header = json!({"alg": "RS256", "kid": kid});
    header[member] = json!(trap.url("/jwks.json"));
    token_refused(signed_by("OTHER-RS256", header), expected).await;
    trap.assert_untouched().await;
}

fn kid_token(kid: Value) -> String {
    signed_by("OTHER-RS256", json!({"alg": "RS256", "kid": kid}))
}

cases! {
    /// Control: RS256 from the JWKS key passes (RFC 7518 section 3.3).
    rs256_from_the_provider_key_passes: token_passes(
        keys().mint("RS256", &claims("alice")), "alice");
    /// RFC 7518 section 3.6, RFC 8725 section 3.1: `alg: none` never passes.
    none_lowercase: token_refused(unsigned("none"), DISALLOWED_ALG);
    /// RFC 8725 section 3.1: `None` is not a registered name; still refused.
    none_capitalised: token_refused(unsigned("None"), DISALLOWED_ALG);
    /// RFC 8725 section 3.1: `NONE`, the spelling case-folding libraries let by.
    none_uppercase: token_refused(unsigned("NONE"), DISALLOWED_ALG);
    /// RFC 8725 section 3.1: mixed case `nOnE`.
    none_mixed_case: token_refused(unsigned("nOnE"), DISALLOWED_ALG);
    /// RFC 8725 section 3.1: `none` with a trailing space.
    none_with_trailing_space: token_refused(unsigned("none "), DISALLOWED_ALG);
    /// RFC 8725 section 3.1: `none` carrying a real HS256 signature anyway.
    none_with_a_real_signature: token_refused(
        signed_by("HS256", json!({"alg": "none", "typ": "JWT"})), DISALLOWED_ALG);
    /// RFC 8725 section 3.1: `none` naming a key that exists.
    none_with_a_known_kid: token_refused(
        signed_by("RS256", json!({"alg": "none", "kid": "rsa-1"})), DISALLOWED_ALG);
    /// RFC 7515 section 4.1.1: an empty `alg` names no algorithm.
    alg_empty_string: token_refused(raw_header(r#"{"alg":""}"#), DISALLOWED_ALG);
    /// RFC 7515 section 4.1.1: `alg` is required; a header without it is
    /// not a JWS at all.
    alg_missing: token_refused(raw_header(r#"{"typ":"JWT"}"#), MALFORMED);
    /// RFC 7515 section 4.1.1: `alg` is a string; `null` is malformed.
    alg_null: token_refused(raw_header(r#"{"alg":null}"#), MALFORMED);
    /// RFC 7515 section 4.1.1: a number as `alg` is malformed.
    alg_number: token_refused(raw_header(r#"{"alg":256}"#), MALFORMED);
    /// RFC 7515 section 4.1.1: a list of algorithms is malformed.
    alg_array: token_refused(raw_header(r#"{"alg":["HS256"]}"#), MALFORMED);
    /// RFC 7515 section 4.1.1: an object as `alg` is malformed.
    alg_object: token_refused(raw_header(r#"{"alg":{"name":"HS256"}}"#), MALFORMED);
    /// RFC 7518 section 3.1: names are case-sensitive; `hs256` is unknown.
    alg_lowercase_hs256: token_refused(raw_header(r#"{"alg":"hs256"}"#), DISALLOWED_ALG);
    /// RFC 7518 section 3.1: `HS256 ` with a trailing space is not HS256.
    alg_with_a_trailing_space: token_refused(raw_header(r#"{"alg":"HS256 "}"#), DISALLOWED_ALG);
    /// RFC 7518 section 3.1: an unregistered name (`HS1`).
    alg_unregistered_name: token_refused(raw_header(r#"{"alg":"HS1"}"#), DISALLOWED_ALG);
    /// RFC 7518 section 3.4: ES512 is registered but not supported here.
    alg_es512_unsupported: token_refused(
        signed_by("ES384", json!({"alg": "ES512", "kid": "ec-384"})), DISALLOWED_ALG);
    /// RFC 8725 section 3.1: PS384 fits the RSA key but is off the allowlist.
    alg_off_the_allowlist: token_refused(
        signed_by("PS256", json!({"alg": "PS384", "kid": "rsa-1"})), DISALLOWED_ALG);
    /// RFC 8725 section 3.1: a good RS256 token where only HS256 is allowed.
    rs256_where_only_hmac_is_allowed: async {
        let gate = Gate::with(|h| h.with_algorithms(&["HS256"]).without_jwks_file()).await;
        refused_by(gate, &keys().mint("RS256", &claims("alice")), DISALLOWED_ALG).await;
    };
    /// CVE-2016-10555: HS256 keyed with the RSA modulus, public-key provider.
    hmac_keyed_with_rsa_modulus: public_only_refuses(hmac_keyed("HS256", &keys().rsa_modulus()));
    /// CVE-2016-10555: HS256 keyed with the PKCS#1 DER of the RSA key.
    hmac_keyed_with_rsa_pkcs1_der: public_only_refuses(
        hmac_keyed("HS256", &keys().rsa_public_der("pkcs1")));
    /// CVE-2016-10555: HS256 keyed with the SPKI DER of the RSA key.
    hmac_keyed_with_rsa_spki_der: public_only_refuses(
        hmac_keyed("HS256", &keys().rsa_public_der("spki")));
    /// CVE-2015-9235: HS256 keyed with the RSA key's PEM text.
    hmac_keyed_with_rsa_spki_pem: public_only_refuses(hmac_keyed("HS256", &rsa_pem("spki")));
    /// CVE-2015-9235: HS256 keyed with the `RSA PUBLIC KEY` PEM text.
    hmac_keyed_with_rsa_pkcs1_pem: public_only_refuses(hmac_keyed("HS256", &rsa_pem("pkcs1")));
    /// CVE-2022-29217: HS384 keyed with the PEM, another HMAC size.
    hs384_keyed_with_rsa_pem: public_only_refuses(hmac_keyed("HS384", &rsa_pem("spki")));
    /// CVE-2022-29217: HS512 keyed with the PEM.
    hs512_keyed_with_rsa_pem: public_only_refuses(hmac_keyed("HS512", &rsa_pem("spki")));
    /// CVE-2016-10555: HS256 keyed with the JWKS entry's own JSON text.
    hmac_keyed_with_the_jwk_text: public_only_refuses(
        hmac_keyed("HS256", keys().jwks()["keys"][0].to_string().as_bytes()));
    /// CVE-2016-10555: HS256 keyed with the base64url `n` of the JWK.
    hmac_keyed_with_the_jwk_modulus_text: public_only_refuses(
        hmac_keyed("HS256", b64(&keys().rsa_modulus()).as_bytes()));
    /// CVE-2016-10555: HS256 keyed with the P-256 public point.
    hmac_keyed_with_the_ec_point: public_only_refuses(hmac_keyed("HS256", &keys().ec256_point()));
    /// CVE-2016-10555: HS256 keyed with the Ed25519 public key.
    hmac_keyed_with_the_ed25519_key: public_only_refuses(hmac_keyed("HS256", &keys().ed_public()));
    /// CVE-2016-10555, where the provider also has a secret: the RSA kid
    /// does not turn the public key into an HMAC key.
    hmac_keyed_with_rsa_pem_beside_a_secret: token_refused(
        hmac_keyed("HS256", &rsa_pem("spki")), BAD_SIGNATURE);
    /// CVE-2016-10555 beside a secret, keyed with the raw modulus.
    hmac_keyed_with_rsa_modulus_beside_a_secret: token_refused(
        hmac_keyed("HS256", &keys().rsa_modulus()), BAD_SIGNATURE);
    /// RFC 8725 section 3.1: RS256 naming the P-256 key.
    rs256_naming_an_ec_key: token_refused(
        signed_by("ES256", json!({"alg": "RS256", "kid": "ec-256"})), DISALLOWED_ALG);
    /// RFC 8725 section 3.1: ES256 naming the RSA key.
    es256_naming_an_rsa_key: token_refused(
        signed_by("RS256", json!({"alg": "ES256", "kid": "rsa-1"})), DISALLOWED_ALG);
    /// RFC 8725 section 3.1: EdDSA naming the P-256 key.
    eddsa_naming_an_ec_key: token_refused(
        signed_by("ES256", json!({"alg": "EdDSA", "kid": "ec-256"})), DISALLOWED_ALG);
    /// RFC 8725 section 3.1: ES256 naming the Ed25519 key.
    es256_naming_an_ed25519_key: token_refused(
        signed_by("EdDSA", json!({"alg": "ES256", "kid": "ed-1"})), DISALLOWED_ALG);
    /// RFC 7518 section 3.4: ES384 naming the P-256 key (curve mismatch).
    es384_naming_a_p256_key: token_refused(
        signed_by("ES384", json!({"alg": "ES384", "kid": "ec-256"})), DISALLOWED_ALG);
    /// RFC 7518 section 3.4: ES256 naming the P-384 key (curve mismatch).
    es256_naming_a_p384_key: token_refused(
        signed_by("ES256", json!({"alg": "ES256", "kid": "ec-384"})), DISALLOWED_ALG);
    /// RFC 8725 section 3.1: ES384 naming the Ed25519 key.
    es384_naming_an_ed25519_key: token_refused(
        signed_by("ES384", json!({"alg": "ES384", "kid": "ed-1"})), DISALLOWED_ALG);
    /// RFC 8037 section 3.1: EdDSA naming the RSA key.
    eddsa_naming_an_rsa_key: token_refused(
        signed_by("EdDSA", json!({"alg": "EdDSA", "kid": "rsa-1"})), DISALLOWED_ALG);
    /// RFC 7518 section 3.5: a PKCS#1 v1.5 signature under a PS256 header.
    ps256_header_over_an_rs256_signature: token_refused(
        signed_by("RS256", json!({"alg": "PS256", "kid": "rsa-1"})), BAD_SIGNATURE);
    /// RFC 7518 section 3.3: a PSS signature under an RS256 header.
    rs256_header_over_a_ps256_signature: token_refused(
        signed_by("PS256", json!({"alg": "RS256", "kid": "rsa-1"})), BAD_SIGNATURE);
    /// CVE-2018-0114: an embedded `jwk` with no `kid`; the provider's one
    /// RSA key checks it, not the embedded one.
    embedded_jwk_without_kid: token_refused(signed_by("OTHER-RS256",
        json!({"alg": "RS256", "jwk": keys().other_rsa_jwk(None)})), BAD_SIGNATURE);
    /// CVE-2018-0114: an embedded `jwk` claiming the provider's kid.
    embedded_jwk_with_a_known_kid: token_refused(signed_by("OTHER-RS256",
        json!({"alg": "RS256", "kid": "rsa-1", "jwk": keys().other_rsa_jwk(Some("rsa-1"))})),
        BAD_SIGNATURE);
    /// CVE-2018-0114: an embedded `jwk` with a kid of its own.
    embedded_jwk_with_its_own_kid: token_refused(signed_by("OTHER-RS256",
        json!({"alg": "RS256", "kid": "mine", "jwk": keys().other_rsa_jwk(Some("mine"))})),
        UNKNOWN_KID);
    /// RFC 7515 section 4.1.2, RFC 8725 section 3.10: `jku` is never
    /// fetched; its kid is unknown.
    jku_is_never_fetched: key_url_ignored("jku", "mine", UNKNOWN_KID);
    /// RFC 7515 section 4.1.2: `jku` beside a known kid: still not fetched,
    /// and the provider's key refuses the signature.
    jku_with_a_known_kid: key_url_ignored("jku", "rsa-1", BAD_SIGNATURE);
    /// RFC 7515 section 4.1.5: `x5u` is never fetched.
    x5u_is_never_fetched: key_url_ignored("x5u", "mine", UNKNOWN_KID);
    /// RFC 7515 section 4.1.6: an `x5c` chain with the attacker's
    /// certificate is ignored; the provider's P-256 key checks the token.
    x5c_with_the_attackers_certificate: token_refused(x5c_token(), BAD_SIGNATURE);
    /// RFC 7515 section 4.1.4: a kid that is a path is only a name.
    kid_path_traversal: token_refused(kid_token(json!("../../../../../../dev/null")), UNKNOWN_KID);
    /// RFC 7515 section 4.1.4: a path kid on HMAC, signed with an empty key
    /// (what `/dev/null` would give a file-reading verifier).
    kid_path_traversal_with_an_empty_hmac_key: token_refused(
        hs256_with_key(b"", &json!({"alg": "HS256", "kid": "../../../../dev/null"}),
            &claims("alice")), BAD_SIGNATURE);
    /// RFC 7515 section 4.1.4: an absolute path as kid.
    kid_absolute_path: token_refused(kid_token(json!("/dev/null")), UNKNOWN_KID);
    /// RFC 7515 section 4.1.4: a URL as kid is not fetched.
    kid_url: async {
        let trap = Trap::start().await;
        token_refused(kid_token(json!(trap.url("/jwks.json"))), UNKNOWN_KID).await;
        trap.assert_untouched().await;
    };
    /// RFC 7515 section 4.1.4: a known kid with a query appended.
    kid_with_a_query: token_refused(kid_token(json!("rsa-1?x=1")), UNKNOWN_KID);
    /// RFC 7515 section 4.1.4: SQL in the kid is only a name.
    kid_sql_injection: token_refused(kid_token(json!("x' UNION SELECT 'secret'--")), UNKNOWN_KID);
    /// RFC 7515 section 4.1.4: a known kid with a NUL after it.
    kid_with_a_nul: token_refused(kid_token(json!("rsa-1\u{0}")), UNKNOWN_KID);
    /// RFC 7515 section 4.1.4: kids are case-sensitive.
    kid_in_another_case: token_refused(kid_token(json!("RSA-1")), UNKNOWN_KID);
    /// RFC 7515 section 4.1.4: a known kid with a URL fragment mark.
    kid_with_a_fragment: token_refused(kid_token(json!("rsa-1#")), UNKNOWN_KID);
    /// RFC 7515 section 4.1.4: a known kid with a trailing space.
    kid_with_a_trailing_space: token_refused(kid_token(json!("rsa-1 ")), UNKNOWN_KID);
    /// RFC 7515 section 4.1.4: an empty kid names no key.
    kid_empty: token_refused(kid_token(json!("")), UNKNOWN_KID);
    /// RFC 7515 section 4.1.4: kid is a string; `null` is malformed.
    kid_null: token_refused(kid_token(Value::Null), MALFORMED);
    /// RFC 7515 section 4.1.4: a numeric kid is malformed.
    kid_number: token_refused(kid_token(json!(1)), MALFORMED);
    /// RFC 7515 section 4.1.4: a list of kids is malformed.
    kid_array: token_refused(kid_token(json!(["rsa-1"])), MALFORMED);
    /// RFC 7515 section 4.1.11: `crit` names an extension tollgate does
    /// not understand, so the token must be refused.
    crit_unknown_extension: token_refused(
        signed_by("HS256", json!({"alg": "HS256", "crit": ["exp"], "exp": 1})), MALFORMED);
    /// RFC 7797: `b64: false` under `crit` changes the signing input;
    /// tollgate does not implement it, so the token is refused.
    crit_b64_false: token_refused(
        signed_by("HS256", json!({"alg": "HS256", "crit": ["b64"], "b64": false})), MALFORMED);
    /// RFC 7515 section 4.1.11: an empty `crit` list is itself an error.
    crit_empty_list: token_refused(
        signed_by("HS256", json!({"alg": "HS256", "crit": []})), MALFORMED);
}

/// An ES256 token signed by a fresh P-256 key whose self-signed
/// certificate rides along in `x5c`.
fn x5c_token() -> String {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    use base64::Engine;
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key pair");
    let cert = rcgen::CertificateParams::new(vec!["attacker.test".to_owned()])
        .expect("params")
        .self_signed(&pair)
        .expect("certificate");
    let chain = base64::engine::general_purpose::STANDARD.encode(cert.der());
    let header = json!({"alg": "ES256", "x5c": [chain]});
    let input = signing_input(&header, &claims("alice"));
    let signer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pair.serialize_der())
        .expect("pkcs8");
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let signature = signer.sign(&rng, input.as_bytes()).expect("sign");
    format!("{input}.{}", b64(signature.as_ref()))
}
