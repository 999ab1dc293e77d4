//! Keys made ready for the crypto backend once, when a key set is built.
//!
//! `jsonwebtoken::crypto::verify` rebuilds the backend's key from its
//! bytes at every call: an HMAC key schedule (two SHA-256 blocks), an RSA
//! key from its modulus and exponent, an EC point checked against its
//! curve, each behind a boxed verifier, with the signature decoded into a
//! fresh `Vec`. On a stream of distinct tokens that is paid per request.
//! Here each key is parsed once for every algorithm it may check, and a
//! check runs only the signature math (aws-lc-rs `ParsedPublicKey`, and
//! `hmac::verify`, which compares in constant time). The algorithm-to-
//! parameter table is the one jsonwebtoken's aws-lc-rs backend uses, so
//! the same signatures pass and fail as before.

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};

use super::KeyKind;

/// Every algorithm tollgate verifies, in the order keys are prepared.
pub const ALGORITHMS: [Algorithm; 12] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// One key, ready to check signatures of each algorithm it may check.
#[derive(Clone)]
pub struct Checker {
    prepared: Vec<(Algorithm, Prepared)>,
}

#[derive(Clone)]
enum Prepared {
    /// Boxed: a key schedule holds two hash states, over a kilobyte.
    Hmac(Box<hmac::Key>),
    Public(ParsedPublicKey),
}

impl Checker {
    /// Prepares an HMAC secret for HS256, HS384 and HS512; `None` when the
    /// key is not a secret.
    pub fn secret(key: &DecodingKey) -> Option<Self> {
        let DecodingKeyKind::SecretOrDer(secret) = key.kind() else {
            return None;
        };
        if key.family() != AlgorithmFamily::Hmac {
            return None;
        }
        let prepared = ALGORITHMS
            .iter()
            .filter_map(|&alg| {
                Some((
                    alg,
                    Prepared::Hmac(Box::new(hmac::Key::new(hmac_of(alg)?, secret))),
                ))
            })
            .collect();
        Some(Checker { prepared })
    }

    /// Prepares a public key of `kind` for every algorithm `allows` admits.
    ///
    /// An algorithm whose key the backend rejects (a point off its curve,
    /// say) is left out, so its signatures fail as they did when the key
    /// was parsed at each check.
    pub fn public(kind: KeyKind, key: &DecodingKey, allows: impl Fn(Algorithm) -> bool) -> Self {
        let prepared = ALGORITHMS
            .iter()
            .filter(|&&alg| kind.allows(alg) && allows(alg))
            .filter_map(|&alg| Some((alg, Prepared::Public(parse(alg, key)?))))
            .collect();
        Checker { prepared }
    }

    /// Says whether the key was prepared for no algorithm at all.
    pub fn is_empty(&self) -> bool {
        self.prepared.is_empty()
    }

    /// Says whether `signature` is a good signature of `message` under
    /// `alg`; `false` for an algorithm this key was not prepared for.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        let Some((_, prepared)) = self.prepared.iter().find(|(known, _)| *known == alg) else {
            return false;
        };
        match prepared {
            Prepared::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            Prepared::Public(key) => key.verify_sig(message, signature).is_ok(),
        }
    }
}

/// Parses `key` for `alg`: RSA from its modulus and exponent, EC from its
/// uncompressed point, Ed25519 from its 32 bytes.
fn parse(alg: Algorithm, key: &DecodingKey) -> Option<ParsedPublicKey> {
    match (key.kind(), rsa_of(alg)) {
        (DecodingKeyKind::RsaModulusExponent { n, e }, Some(params)) => {
            let components = RsaPublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            };
            components.to_parsed_public_key(params).ok()
        }
        (DecodingKeyKind::SecretOrDer(bytes), None) => {
            let algorithm: &'static dyn signature::VerificationAlgorithm = match alg {
                Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
                Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
                Algorithm::EdDSA => &signature::ED25519,
                _ => return None,
            };
            ParsedPublicKey::new(algorithm, bytes).ok()
        }
        _ => None,
    }
}

fn hmac_of(alg: Algorithm) -> Option<hmac::Algorithm> {
    match alg {
        Algorithm::HS256 => Some(hmac::HMAC_SHA256),
        Algorithm::HS384 => Some(hmac::HMAC_SHA384),
        Algorithm::HS512 => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

fn rsa_of(alg: Algorithm) -> Option<&'static RsaParameters> {
    match alg {
        Algorithm::RS256 => Some(&signature::RSA_PKCS1_2048_8192_SHA256),
        Algorithm::RS384 => Some(&signature::RSA_PKCS1_2048_8192_SHA384),
        Algorithm::RS512 => Some(&signature::RSA_PKCS1_2048_8192_SHA512),
        Algorithm::PS256 => Some(&signature::RSA_PSS_2048_8192_SHA256),
        Algorithm::PS384 => Some(&signature::RSA_PSS_2048_8192_SHA384),
        Algorithm::PS512 => Some(&signature::RSA_PSS_2048_8192_SHA512),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize, PublicKeyComponents};
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    use super::*;

    const MESSAGE: &[u8] = b"eyJhbGciOiJ4In0.eyJzdWIiOiJhbGljZSJ9";

    fn rsa() -> (RsaKeyPair, DecodingKey) {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("rsa key");
        let public = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let key = DecodingKey::from_rsa_raw_components(&public.n, &public.e);
        (pair, key)
    }

    fn rsa_sign(pair: &RsaKeyPair, padding: &'static dyn signature::RsaEncoding) -> Vec<u8> {
        let mut out = vec![0u8; pair.public_modulus_len()];
        pair.sign(padding, &SystemRandom::new(), MESSAGE, &mut out)
            .expect("signed");
        out
    }

    #[test]
    fn a_secret_checks_each_hmac_algorithm_with_its_own_hash() {
        let secret = b"a-secret-of-at-least-thirty-two-bytes!!";
        let checker =
            Checker::secret(&DecodingKey::from_secret(secret).expect("key")).expect("a secret");

        for (alg, hash) in [
            (Algorithm::HS256, hmac::HMAC_SHA256),
            (Algorithm::HS384, hmac::HMAC_SHA384),
            (Algorithm::HS512, hmac::HMAC_SHA512),
        ] {
            let tag = hmac::sign(&hmac::Key::new(hash, secret), MESSAGE);
            assert!(checker.verify(alg, MESSAGE, tag.as_ref()), "{alg:?}");
            assert!(
                !checker.verify(alg, b"another message", tag.as_ref()),
                "{alg:?}"
            );
        }
        // A SHA-256 tag is not a SHA-512 one, nor an RSA signature.
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), MESSAGE);
        assert!(!checker.verify(Algorithm::HS512, MESSAGE, tag.as_ref()));
        assert!(!checker.verify(Algorithm::RS256, MESSAGE, tag.as_ref()));
    }

    #[test]
    fn another_secret_or_an_empty_tag_fails() {
        let checker = Checker::secret(
            &DecodingKey::from_secret(b"first-secret-32-bytes-long-enough").expect("key"),
        )
        .expect("a secret");
        let other = hmac::Key::new(hmac::HMAC_SHA256, b"other-secret-32-bytes-long-enough");
        let tag = hmac::sign(&other, MESSAGE);

        assert!(!checker.verify(Algorithm::HS256, MESSAGE, tag.as_ref()));
        assert!(!checker.verify(Algorithm::HS256, MESSAGE, &[]));
    }

    #[test]
    fn an_rsa_key_checks_pkcs1_and_pss_unless_narrowed_to_one_algorithm() {
        let (pair, key) = rsa();
        let pkcs1 = rsa_sign(&pair, &signature::RSA_PKCS1_SHA256);
        let pss = rsa_sign(&pair, &signature::RSA_PSS_SHA256);

        let any = Checker::public(KeyKind::Rsa, &key, |_| true);
        assert!(any.verify(Algorithm::RS256, MESSAGE, &pkcs1));
        assert!(any.verify(Algorithm::PS256, MESSAGE, &pss));
        assert!(!any.verify(Algorithm::RS256, MESSAGE, &pss));
        assert!(!any.verify(Algorithm::RS384, MESSAGE, &pkcs1));
        assert!(!any.verify(Algorithm::ES256, MESSAGE, &pkcs1));

        let only_rs256 = Checker::public(KeyKind::Rsa, &key, |alg| alg == Algorithm::RS256);
        assert!(only_rs256.verify(Algorithm::RS256, MESSAGE, &pkcs1));
        assert!(!only_rs256.verify(Algorithm::PS256, MESSAGE, &pss));
    }

    #[test]
    fn an_ec_key_checks_its_curve_only_and_a_bad_point_checks_nothing() {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("p256");
        let key = DecodingKey::from_ec_der(pair.public_key().as_ref());
        let signed = pair.sign(&rng, MESSAGE).expect("signed");

        let checker = Checker::public(KeyKind::EcP256, &key, |_| true);
        assert!(checker.verify(Algorithm::ES256, MESSAGE, signed.as_ref()));
        assert!(!checker.verify(Algorithm::ES384, MESSAGE, signed.as_ref()));
        assert!(!checker.verify(Algorithm::ES256, b"another message", signed.as_ref()));

        // Not a point on P-256: the backend rejects it once, at preparation.
        let off_curve = DecodingKey::from_ec_der(&[4u8; 65]);
        let broken = Checker::public(KeyKind::EcP256, &off_curve, |_| true);
        assert!(!broken.verify(Algorithm::ES256, MESSAGE, signed.as_ref()));
    }

    #[test]
    fn a_public_key_is_never_taken_for_a_secret() {
        let (_, rsa) = rsa();
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("p256");
        let ec = DecodingKey::from_ec_der(pair.public_key().as_ref());

        assert!(Checker::secret(&rsa).is_none());
        // Its bytes could be fed to HMAC; its family says they must not.
        assert!(Checker::secret(&ec).is_none());
    }
}
