//! Keys and tokens for the tests, made with aws-lc-rs directly so that the
//! tokens do not come from the code under test.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use aws_lc_rs::{hmac, rsa};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::{AUDIENCE, ISSUER};

/// One key of every type the provider accepts, plus an HMAC secret.
pub struct TestKeys {
    rsa: rsa::KeyPair,
    ec256: EcdsaKeyPair,
    ec384: EcdsaKeyPair,
    ed: Ed25519KeyPair,
    secret: String,
    /// A second RSA key that is not in the JWKS, for forgeries.
    pub other_rsa: rsa::KeyPair,
}

/// The current Unix time in seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Good claims for `sub`: right issuer and audience, an hour to live.
pub fn claims(sub: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "email": format!("{sub}@chessmate.test"),
        "roles": ["player"],
        "iat": now(),
        "exp": now() + 3600,
    })
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestKeys {
    /// Generates fresh keys.
    pub fn generate() -> Self {
        let mut secret = [0u8; 48];
        aws_lc_rs::rand::fill(&mut secret).expect("random");
        TestKeys {
            rsa: rsa::KeyPair::generate(rsa::KeySize::Rsa2048).expect("rsa key"),
            ec256: EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                .expect("p256"),
            ec384: EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING)
                .expect("p384"),
            ed: Ed25519KeyPair::generate().expect("ed25519"),
            secret: secret.iter().map(|b| format!("{b:02x}")).collect(),
            other_rsa: rsa::KeyPair::generate(rsa::KeySize::Rsa2048).expect("rsa key"),
        }
    }

    /// The HMAC secret, as the env var holds it.
    pub fn secret_text(&self) -> String {
        self.secret.clone()
    }

    /// The public JWKS: kids `rsa-1`, `ec-256`, `ec-384`, `ed-1`.
    pub fn jwks(&self) -> Value {
        let public = self.rsa.public_key();
        let ec = |key: &EcdsaKeyPair, crv: &str, size: usize| {
            let point = key.public_key().as_ref();
            (
                crv.to_owned(),
                b64(&point[1..1 + size]),
                b64(&point[1 + size..]),
            )
        };
        let (c256, x256, y256) = ec(&self.ec256, "P-256", 32);
        let (c384, x384, y384) = ec(&self.ec384, "P-384", 48);
        json!({"keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig",
             "n": b64(public.modulus().big_endian_without_leading_zero()),
             "e": b64(public.exponent().big_endian_without_leading_zero())},
            {"kty": "EC", "kid": "ec-256", "crv": c256, "x": x256, "y": y256},
            {"kty": "EC", "kid": "ec-384", "crv": c384, "x": x384, "y": y384},
            {"kty": "OKP", "kid": "ed-1", "crv": "Ed25519", "x": b64(self.ed.public_key().as_ref())},
        ]})
    }

    /// The kid of the key that signs `alg` (None for HMAC).
    pub fn kid_for(alg: &str) -> Option<&'static str> {
        match alg {
            "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => Some("rsa-1"),
            "ES256" => Some("ec-256"),
            "ES384" => Some("ec-384"),
            "EdDSA" => Some("ed-1"),
            _ => None,
        }
    }

    /// Mints a token with the right key for `alg` and its kid.
    pub fn mint(&self, alg: &str, claims: &Value) -> String {
        let mut header = json!({"alg": alg, "typ": "JWT"});
        if let Some(kid) = Self::kid_for(alg) {
            header["kid"] = json!(kid);
        }
        self.mint_with_header(&header, claims)
    }

    /// Mints a token with any header; the signature uses the key that
    /// header's `alg` (and kid) would select.
    pub fn mint_with_header(&self, header: &Value, claims: &Value) -> String {
        let alg = header["alg"].as_str().unwrap_or("HS256");
        self.mint_signed_by(alg, header, claims)
    }

    /// Mints a token whose header says one thing while `signer` (any name
    /// [`TestKeys::sign`] knows, such as `"OTHER-RS256"`) makes the
    /// signature.
    pub fn mint_signed_by(&self, signer: &str, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let signature = self.sign(signer, input.as_bytes());
        format!("{input}.{}", b64(&signature))
    }

    /// The big-endian modulus of the RSA key in the JWKS: what a confused
    /// verifier might use as an HMAC secret.
    pub fn rsa_modulus(&self) -> Vec<u8> {
        let public = self.rsa.public_key();
        public.modulus().big_endian_without_leading_zero().to_vec()
    }

    /// The RSA public key of the JWKS as DER: `"pkcs1"` (RSAPublicKey) or
    /// `"spki"` (SubjectPublicKeyInfo), the bytes a confused verifier might
    /// read from a PEM file and use as an HMAC secret.
    pub fn rsa_public_der(&self, form: &str) -> Vec<u8> {
        use aws_lc_rs::encoding::AsDer;
        let public = self.rsa.public_key();
        match form {
            "pkcs1" => public.as_ref().to_vec(),
            "spki" => public.as_der().expect("spki").as_ref().to_vec(),
            other => panic!("no DER form {other}"),
        }
    }

    /// The uncompressed SEC1 point of the P-256 key in the JWKS.
    pub fn ec256_point(&self) -> Vec<u8> {
        self.ec256.public_key().as_ref().to_vec()
    }

    /// The raw 32-byte public key of the Ed25519 key in the JWKS.
    pub fn ed_public(&self) -> Vec<u8> {
        self.ed.public_key().as_ref().to_vec()
    }

    /// The public half of the RSA key that is not in the JWKS, as a JWK.
    pub fn other_rsa_jwk(&self, kid: Option<&str>) -> Value {
        let public = self.other_rsa.public_key();
        let mut jwk = json!({
            "kty": "RSA",
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        });
        if let Some(kid) = kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// Signs `message` as `alg` would with this key set.
    pub fn sign(&self, alg: &str, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        let rsa_sign = |key: &rsa::KeyPair, padding: &'static dyn signature::RsaEncoding| {
            let mut out = vec![0u8; key.public_modulus_len()];
            key.sign(padding, &rng, message, &mut out)
                .expect("rsa sign");
            out
        };
        match alg {
            "HS256" => self.hmac(hmac::HMAC_SHA256, message),
            "HS384" => self.hmac(hmac::HMAC_SHA384, message),
            "HS512" => self.hmac(hmac::HMAC_SHA512, message),
            "RS256" => rsa_sign(&self.rsa, &signature::RSA_PKCS1_SHA256),
            "RS384" => rsa_sign(&self.rsa, &signature::RSA_PKCS1_SHA384),
            "RS512" => rsa_sign(&self.rsa, &signature::RSA_PKCS1_SHA512),
            "PS256" => rsa_sign(&self.rsa, &signature::RSA_PSS_SHA256),
            "ES256" => self
                .ec256
                .sign(&rng, message)
                .expect("sign")
                .as_ref()
                .to_vec(),
            "ES384" => self
                .ec384
                .sign(&rng, message)
                .expect("sign")
                .as_ref()
                .to_vec(),
            "EdDSA" => self.ed.sign(message).as_ref().to_vec(),
            "OTHER-RS256" => rsa_sign(&self.other_rsa, &signature::RSA_PKCS1_SHA256),
            other => panic!("no test key for {other}"),
        }
    }

    /// The public key `alg` verifies with, in the form aws-lc-rs's
    /// `UnparsedPublicKey` takes (DER for RSA, the point for EC and
    /// Ed25519), or the HMAC secret's bytes for `HS*`.
    pub fn public_key(&self, alg: &str) -> Vec<u8> {
        match alg {
            "HS256" | "HS384" | "HS512" => self.secret.as_bytes().to_vec(),
            "RS256" | "RS384" | "RS512" | "PS256" => self.rsa.public_key().as_ref().to_vec(),
            "ES256" => self.ec256.public_key().as_ref().to_vec(),
            "ES384" => self.ec384.public_key().as_ref().to_vec(),
            "EdDSA" => self.ed.public_key().as_ref().to_vec(),
            other => panic!("no test key for {other}"),
        }
    }

    fn hmac(&self, algorithm: hmac::Algorithm, message: &[u8]) -> Vec<u8> {
        let key = hmac::Key::new(algorithm, self.secret.as_bytes());
        hmac::sign(&key, message).as_ref().to_vec()
    }
}

/// The first two segments of a token: base64url header, `.`, base64url
/// claims.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// Mints an HS256 token keyed with arbitrary bytes rather than the
/// provider's secret.
pub fn hs256_with_key(key: &[u8], header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// Replaces a token's claims and keeps its header and signature: a
/// tampered token whose signature was good for the original claims.
pub fn swap_claims(token: &str, claims: &Value) -> String {
    let mut parts = token.split('.');
    let header = parts.next().expect("a header segment");
    let _claims = parts.next().expect("a claims segment");
    let signature = parts.next().expect("a signature segment");
    format!(
        "{header}.{}.{signature}",
        b64(claims.to_string().as_bytes())
    )
}
