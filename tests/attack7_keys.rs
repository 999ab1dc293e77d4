//! The seventh attack run, against keys parsed once per key set
//! (`keys/checker.rs`) and the signature decoded once on the stack
//! (`auth/verify.rs`): keys a JWKS may hold that the crypto backend
//! accepts at parse time but that are weak, broken or never usable, and
//! signatures at the edges of their encodings. Keys and signatures are
//! made here with aws-lc-rs or by hand, never by the code under test.

mod support;

use std::time::Duration;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use http::StatusCode;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use tollgate::keys::{ParsedJwks, parse_jwks};

use support::jwks_server::{JwksServer, RemoteKey, Reply, jwks_of};
use support::keys::{b64, signing_input};
use support::{Harness, Upstream, VERDICTS, claims, keys, metric_matching, verdicts};

/// What the keys sign: any bytes will do, a token's signing input is bytes.
const MESSAGE: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0";

/// The order n of P-256 (SEC 2 section 2.4.2), big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

fn jwks(keys: &[Value]) -> ParsedJwks {
    let document = json!({ "keys": keys });
    parse_jwks(document.to_string().as_bytes()).expect("a jwks")
}

fn rsa_jwk(kid: &str, n: &[u8], e: &[u8]) -> Value {
    json!({"kty": "RSA", "kid": kid, "n": b64(n), "e": b64(e)})
}

fn ed_jwk(kid: &str, x: &[u8]) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(x)})
}

/// The EMSA-PKCS1-v1_5 encoding of SHA-256(`message`) for a `k`-byte
/// modulus (RFC 8017 section 9.2): what `s^e mod n` must equal.
fn pkcs1_sha256_encoding(message: &[u8], k: usize) -> Vec<u8> {
    // DigestInfo prefix for SHA-256 (RFC 8017 section 9.2, note 1).
    const PREFIX: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let hash = digest::digest(&digest::SHA256, message);
    let tail = PREFIX.len() + hash.as_ref().len();
    let mut encoded = vec![0x00, 0x01];
    encoded.resize(k - tail - 1, 0xff);
    encoded.push(0x00);
    encoded.extend_from_slice(&PREFIX);
    encoded.extend_from_slice(hash.as_ref());
    encoded
}

/// `a - b` for big-endian numbers of equal length with `a >= b`.
fn minus(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for at in (0..a.len()).rev() {
        let mut digit = i16::from(a[at]) - i16::from(b[at]) - borrow;
        borrow = i16::from(digit < 0);
        if digit < 0 {
            digit += 256;
        }
        out[at] = u8::try_from(digit).expect("a byte");
    }
    out
}

// --- Ed25519 keys of small order -----------------------------------------

/// The identity point (0, 1) as an Ed25519 public key.
fn ed25519_identity() -> [u8; 32] {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    identity
}

/// R = the identity, S = 0: under a public key A of order 1, [S]B - [k]A
/// is the identity for every message, so this signs everything.
fn constant_signature() -> [u8; 64] {
    let mut signature = [0u8; 64];
    signature[0] = 1;
    signature
}

/// Finding: a JWKS (or x509 map) holding an Ed25519 public key of small
/// order was loaded like any other, and the crypto backend, which follows
/// RFC 8032 section 5.1.7 to the letter, verifies the constant signature
/// above under the identity key for any header and claims: a request
/// with a token naming that key's `kid` was forwarded with the identity
/// the token claimed. Such keys (and non-canonical encodings) are now
/// skipped with a reason when the document is read.
#[tokio::test]
async fn an_ed25519_key_of_small_order_cannot_admit_a_token_with_a_constant_signature() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_extra_jwk(ed_jwk("ed-small", &ed25519_identity()))
        .start()
        .await;
    let header = json!({"alg": "EdDSA", "kid": "ed-small"});
    let token = format!(
        "{}.{}",
        signing_input(&header, &claims("mallory")),
        b64(&constant_signature())
    );

    let answer = tollgate.get("/api/games").bearer(&token).send().await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text());
    assert!(answer.upstream_saw("x-user-id").is_empty());
    // The real Ed25519 key beside it still works.
    let good = keys().mint("EdDSA", &claims("alice"));
    let answer = tollgate.get("/api/games").bearer(&good).send().await;
    assert_eq!(answer.status, StatusCode::OK);
    tollgate.shutdown().await;
}

#[test]
fn every_small_order_ed25519_key_is_skipped_with_a_reason() {
    let mut identity_negative = ed25519_identity();
    identity_negative[31] |= 0x80;
    let mut identity_non_canonical = [0xffu8; 32];
    identity_non_canonical[0] = 0xee;
    identity_non_canonical[31] = 0x7f;
    let mut order_two = [0xffu8; 32];
    order_two[0] = 0xec;
    order_two[31] = 0x7f;
    for (what, x) in [
        ("identity", ed25519_identity()),
        ("identity, x sign bit set", identity_negative),
        ("identity as y = p + 1", identity_non_canonical),
        ("order 2", order_two),
        ("order 4", [0u8; 32]),
    ] {
        let parsed = jwks(&[ed_jwk("small", &x)]);
        assert!(parsed.keys.is_empty(), "{what} was loaded");
        assert!(
            parsed.skipped[0].contains("Ed25519"),
            "{what}: {:?}",
            parsed.skipped
        );
    }
    // A real key is not caught by the check.
    let parsed = jwks(&[ed_jwk("real", &keys().ed_public())]);
    assert_eq!(parsed.keys.len(), 1, "{:?}", parsed.skipped);
}

// --- keys the backend parses and then never verifies with -------------------

/// Finding: an RSA key the backend refuses at every check (a modulus of
/// 2,047 bits, which the old byte count took for 2,048, or above 8,192
/// bits, an even modulus, an exponent of 1, even or over 33 bits) and an
/// EC point off its curve were counted as loaded: no skipped-key warning,
/// `/ready` green, and every token refused as a bad signature. With an
/// exponent of 1 the PKCS#1 encoding itself would be the signature; the
/// backend refuses it, which is now checked here too.
#[test]
fn keys_the_backend_never_verifies_with_are_skipped_with_a_reason() {
    let n = keys().rsa_modulus();
    let mut short = vec![0x7fu8; 256];
    short[255] = 0xc3;
    let mut long = vec![0xc3u8; 1026];
    long[0] = 0x80;
    let mut even = n.clone();
    *even.last_mut().expect("a byte") &= 0xfe;
    for (what, n, e) in [
        ("e = 1", n.clone(), vec![1u8]),
        ("e = 2", n.clone(), vec![2]),
        ("e = 65536", n.clone(), vec![1, 0, 0]),
        ("e = 2^40 + 1", n.clone(), vec![1, 0, 0, 0, 0, 1]),
        ("2047-bit modulus", short, vec![1, 0, 1]),
        ("8201-bit modulus", long, vec![1, 0, 1]),
        ("even modulus", even, vec![1, 0, 1]),
    ] {
        let parsed = jwks(&[rsa_jwk("weak", &n, &e)]);
        assert!(parsed.keys.is_empty(), "{what} was loaded");
        assert!(
            parsed.skipped[0].contains("RSA"),
            "{what}: {:?}",
            parsed.skipped
        );
    }

    // Had e = 1 been let through, the backend must still refuse the
    // encoding as its own signature.
    let forged = pkcs1_sha256_encoding(MESSAGE, n.len());
    let loose = tollgate::keys::PublicKey::new(
        None,
        tollgate::keys::KeyKind::Rsa,
        None,
        jsonwebtoken::DecodingKey::from_rsa_raw_components(&n, &[1]),
    );
    assert!(!loose.verify(Algorithm::RS256, MESSAGE, &forged));

    let point = keys().ec256_point();
    let mut off = point.clone();
    off[64] ^= 1;
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "off",
        "x": b64(&off[1..33]), "y": b64(&off[33..])});
    let parsed = jwks(&[jwk]);
    assert!(parsed.keys.is_empty(), "an off-curve point was loaded");
    assert!(
        parsed.skipped[0].contains("rejects"),
        "{:?}",
        parsed.skipped
    );
}

/// What held: a high-S twin (n - s) of a good ES256 signature verifies,
/// as ECDSA allows and RFC 7518 does not forbid; it is a second spelling
/// of a token the issuer signed, not a forgery. Revocation works on `jti`
/// and `sub`, never on the token's bytes, so the twin is revoked with it.
/// A 65-byte `0 || r || s` is refused.
#[test]
fn a_high_s_twin_verifies_and_a_padded_signature_does_not() {
    let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("p256");
    let point = pair.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "ec",
        "x": b64(&point[1..33]), "y": b64(&point[33..])});
    let parsed = jwks(&[jwk]);
    let key = &parsed.keys[0];
    let signed = pair.sign(&SystemRandom::new(), MESSAGE).expect("signed");
    let signed = signed.as_ref();
    let twin = [&signed[..32], &minus(&P256_ORDER, &signed[32..])[..]].concat();
    assert!(key.verify(Algorithm::ES256, MESSAGE, signed));
    assert!(key.verify(Algorithm::ES256, MESSAGE, &twin));
    let padded = [&[0u8][..], signed].concat();
    assert!(!key.verify(Algorithm::ES256, MESSAGE, &padded));
}

// --- a remote key replaced under the same kid ------------------------------

/// What held: when a refresh replaces the key behind a `kid`, the token
/// the old key signed, already in the cache, is refused: the prepared
/// keys and the cache generation follow the document.
#[tokio::test]
async fn a_cached_token_of_a_key_replaced_under_its_kid_is_refused_after_the_refresh() {
    let upstream = Upstream::start().await;
    let old = RemoteKey::generate("k1");
    let new = RemoteKey::generate("k1");
    let server = JwksServer::start(jwks_of(&[&old])).await;
    let lines = format!(
        "jwks_uri = \"{}\"\njwks_refresh_interval = \"200ms\"\n\
         min_refetch_interval = \"100ms\"\njwks_fetch_timeout = \"500ms\"",
        server.url()
    );
    let tollgate = Harness::new(upstream.addr())
        .without_secret()
        .without_jwks_file()
        .with_algorithms(&["ES256"])
        .with_provider_lines(&lines)
        .start()
        .await;
    let token = old.mint(&claims("alice"));
    let first = tollgate.get("/api/games").bearer(&token).send().await;
    assert_eq!(first.status, StatusCode::OK);

    server.reply(Reply::Jwks(jwks_of(&[&new])));
    let fresh = new.mint(&claims("bob"));
    let mut replaced = false;
    for _ in 0..200 {
        let answer = tollgate.get("/api/games").bearer(&fresh).send().await;
        if answer.status == StatusCode::OK {
            replaced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(replaced, "the new key did not take over within 5 s");
    let again = tollgate.get("/api/games").bearer(&token).send().await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    tollgate.shutdown().await;
}

// --- the longest signatures -------------------------------------------------

/// What held: the stack buffer the signature is decoded into is exactly
/// as long as the longest signature (RSA with an 8,192-bit modulus), so a
/// 1,024-byte signature verifies, and one byte more (a leading zero) or a
/// segment far longer is a bad signature, not a malformed token.
#[tokio::test]
async fn an_8192_bit_key_verifies_1024_byte_signatures_and_refuses_longer_ones() {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa8192)
        .expect("an 8192-bit key");
    let public = pair.public_key();
    let jwk = rsa_jwk(
        "rsa-8192",
        public.modulus().big_endian_without_leading_zero(),
        public.exponent().big_endian_without_leading_zero(),
    );
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_extra_jwk(jwk)
        .start()
        .await;
    let header = json!({"alg": "RS256", "kid": "rsa-8192"});
    let input = signing_input(&header, &claims("alice"));
    let mut signed = vec![0u8; pair.public_modulus_len()];
    pair.sign(
        &signature::RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut signed,
    )
    .expect("signed");
    assert_eq!(signed.len(), 1024);

    let good = format!("{input}.{}", b64(&signed));
    let answer = tollgate.get("/api/games").bearer(&good).send().await;
    assert_eq!(answer.status, StatusCode::OK);

    let padded = format!("{input}.{}", b64(&[&[0u8][..], &signed].concat()));
    let doubled = format!("{input}.{}", b64(&[&signed[..], &signed].concat()));
    for token in [padded, doubled] {
        let answer = tollgate.get("/api/games").bearer(&token).send().await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let metrics = tollgate.metrics().await;
    assert_eq!(verdicts(&metrics, "accounts", "bad_signature"), 2.0);
    let malformed = metric_matching(&metrics, VERDICTS, &[("reason", "malformed")]);
    assert_eq!(malformed, 0.0);
    tollgate.shutdown().await;
}
