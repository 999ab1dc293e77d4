//! The fuzzing keys: one of each type tollgate verifies, committed under
//! `fuzz/keys/` so that a token minted from fuzzer input verifies the same
//! way in every run and in the regression tests.
//!
//! They are test-only keys, published with the repository: nothing outside
//! fuzzing may trust them.

use std::path::PathBuf;
use std::sync::OnceLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use aws_lc_rs::{hmac, rsa};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// The HMAC secret, as the provider's environment variable holds it.
pub const SECRET: &str = include_str!("../keys/secret.txt");

/// Names the signers the `token` target picks from, in the order its
/// selector byte counts them. `HS256-CONFUSED` signs HS256 with the
/// public JWKS text as the secret, the classic key-confusion forgery,
/// which must never verify.
pub const SIGNERS: [&str; 11] = [
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS512",
    "PS256",
    "PS384",
    "ES256",
    "ES384",
    "EdDSA",
    "HS256-CONFUSED",
];

/// Holds the private keys.
pub struct FuzzKeys {
    rsa: rsa::KeyPair,
    ec256: EcdsaKeyPair,
    ec384: EcdsaKeyPair,
    ed: Ed25519KeyPair,
}

/// Returns the folder of the repository, whichever crate compiled this
/// library: the fuzz crate (`fuzz/`) or the main crate's tests.
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if here.join("fuzz_targets").is_dir() {
        here.parent().map(PathBuf::from).unwrap_or(here)
    } else {
        here
    }
}

impl FuzzKeys {
    /// Returns the keys, read once per process.
    pub fn get() -> &'static FuzzKeys {
        static KEYS: OnceLock<FuzzKeys> = OnceLock::new();
        KEYS.get_or_init(|| FuzzKeys {
            rsa: rsa::KeyPair::from_pkcs8(include_bytes!("../keys/rsa.pk8")).expect("rsa key"),
            ec256: EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                include_bytes!("../keys/p256.pk8"),
            )
            .expect("p-256 key"),
            ec384: EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                include_bytes!("../keys/p384.pk8"),
            )
            .expect("p-384 key"),
            ed: Ed25519KeyPair::from_pkcs8_maybe_unchecked(include_bytes!("../keys/ed25519.pk8"))
                .expect("ed25519 key"),
        })
    }

    /// Returns the public halves as a JWKS: kids `rsa`, `p256`, `p384`,
    /// `ed`; what `fuzz/keys/jwks.json` must hold.
    pub fn public_jwks(&self) -> Value {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let rsa = self.rsa.public_key();
        let ec = |key: &EcdsaKeyPair, size: usize| {
            let point = key.public_key().as_ref();
            (b64(&point[1..1 + size]), b64(&point[1 + size..]))
        };
        let (x256, y256) = ec(&self.ec256, 32);
        let (x384, y384) = ec(&self.ec384, 48);
        json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "use": "sig",
             "n": b64(rsa.modulus().big_endian_without_leading_zero()),
             "e": b64(rsa.exponent().big_endian_without_leading_zero())},
            {"kty": "EC", "kid": "p256", "crv": "P-256", "x": x256, "y": y256},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": x384, "y": y384, "alg": "ES384"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64(self.ed.public_key().as_ref())},
        ]})
    }

    /// Signs `message` as the named signer of [`SIGNERS`] would.
    pub fn sign(&self, signer: &str, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        let rsa_sign = |padding: &'static dyn signature::RsaEncoding| {
            let mut out = vec![0u8; self.rsa.public_modulus_len()];
            self.rsa
                .sign(padding, &rng, message, &mut out)
                .expect("rsa signs any message");
            out
        };
        let ec_sign = |key: &EcdsaKeyPair| {
            let signature = key.sign(&rng, message).expect("ecdsa signs any message");
            signature.as_ref().to_vec()
        };
        let hmac_sign = |algorithm, secret: &[u8]| {
            let key = hmac::Key::new(algorithm, secret);
            hmac::sign(&key, message).as_ref().to_vec()
        };
        match signer {
            "HS256" => hmac_sign(hmac::HMAC_SHA256, SECRET.as_bytes()),
            "HS384" => hmac_sign(hmac::HMAC_SHA384, SECRET.as_bytes()),
            "HS512" => hmac_sign(hmac::HMAC_SHA512, SECRET.as_bytes()),
            "RS256" => rsa_sign(&signature::RSA_PKCS1_SHA256),
            "RS512" => rsa_sign(&signature::RSA_PKCS1_SHA512),
            "PS256" => rsa_sign(&signature::RSA_PSS_SHA256),
            "PS384" => rsa_sign(&signature::RSA_PSS_SHA384),
            "ES256" => ec_sign(&self.ec256),
            "ES384" => ec_sign(&self.ec384),
            "EdDSA" => self.ed.sign(message).as_ref().to_vec(),
            "HS256-CONFUSED" => {
                let jwks = self.public_jwks().to_string();
                hmac_sign(hmac::HMAC_SHA256, jwks.as_bytes())
            }
            other => panic!("no fuzzing key for {other}"),
        }
    }
}
