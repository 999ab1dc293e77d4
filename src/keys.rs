//! Key sets: the keys a provider's tokens may be verified with.
//!
//! A [`KeySet`] is immutable once built. It binds every key to the
//! algorithms its type allows, so a token can never pick how its own key is
//! used: an RSA public key is never fed to HMAC, an HMAC secret never to
//! RSA, and a P-384 key never checks an ES256 signature. Keys named by the
//! token itself (`jku`, `x5u`, `jwk`, `x5c`) are never looked at. Key
//! documents come as a JWKS or as an x509 map ([`parse_key_document`]).

mod checker;
mod document;
mod jwks;
mod load;
pub mod remote;
mod weak;
mod x509;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey};

pub use self::checker::{ALGORITHMS, Checker};
pub use self::document::{KeyDocumentError, KeyDocumentKind, parse_key_document};
pub use self::jwks::{JwksError, ParsedJwks, parse_jwks};
pub use self::load::{KeyError, MIN_SECRET_BYTES, load};

/// Names the type of a public key, which fixes the algorithms it may check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// An RSA key: RS256/384/512 and PS256/384/512.
    Rsa,
    /// An ECDSA key on P-256: ES256 only.
    EcP256,
    /// An ECDSA key on P-384: ES384 only.
    EcP384,
    /// An Ed25519 key: EdDSA only.
    Ed25519,
}

impl KeyKind {
    /// Says whether a key of this type may check signatures made with `alg`.
    pub fn allows(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::EcP256 => alg == ES256,
            KeyKind::EcP384 => alg == ES384,
            KeyKind::Ed25519 => alg == EdDSA,
        }
    }
}

/// Holds one public key, with its id and the only algorithms it may check.
pub struct PublicKey {
    kid: Option<Arc<str>>,
    kind: KeyKind,
    /// Set when the JWK named an `alg`: then only that one is accepted.
    alg: Option<Algorithm>,
    /// The key, parsed once for each algorithm it may check.
    checker: Checker,
}

impl PublicKey {
    /// Wraps a decoded key, parsing it for the algorithms it may check.
    pub fn new(
        kid: Option<Arc<str>>,
        kind: KeyKind,
        alg: Option<Algorithm>,
        key: DecodingKey,
    ) -> Self {
        let checker = Checker::public(kind, &key, |wanted| alg.is_none_or(|only| only == wanted));
        Self {
            kid,
            kind,
            alg,
            checker,
        }
    }

    /// Returns the key id, when the key has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Returns the key's type.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Says whether this key may check a signature made with `alg`.
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.kind.allows(alg) && self.alg.is_none_or(|only| only == alg)
    }

    /// Returns the key when the crypto backend could parse it for at least
    /// one algorithm, or says why not (a point off its curve, say): such a
    /// key would refuse every token, so a document skips it with a reason
    /// rather than count it as loaded.
    pub fn usable(self) -> Result<Self, String> {
        if self.checker.is_empty() {
            return Err(format!(
                "the crypto backend rejects this {:?} key",
                self.kind
            ));
        }
        Ok(self)
    }

    /// Says whether `signature` is this key's signature of `message`
    /// under `alg`; `false` for an algorithm the key may not check.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.allows(alg) && self.checker.verify(alg, message, signature)
    }
}

impl fmt::Debug for PublicKey {
    // By hand: key material is never printed, only what identifies the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Holds a provider's HMAC secrets and public keys.
#[derive(Clone, Default)]
pub struct KeySet {
    secrets: Vec<Checker>,
    public: Vec<Arc<PublicKey>>,
    by_kid: HashMap<Arc<str>, Arc<PublicKey>>,
}

/// Says which keys may check a token, or why none may.
pub enum KeyChoice<'a> {
    /// HMAC: try each secret (the current one first, during a rotation).
    Secrets(&'a [Checker]),
    /// One public key.
    Public(&'a PublicKey),
    /// A key with the token's `kid` exists but is of another type.
    WrongType,
    /// No key fits the token's `kid` (or, without a `kid`, not exactly one).
    Unknown,
}

impl KeySet {
    /// Builds a key set; public keys with a `kid` already present are
    /// dropped, so the first one in the document wins.
    pub fn new(secrets: Vec<DecodingKey>, public: Vec<PublicKey>) -> Self {
        let mut set = KeySet {
            secrets: secrets.iter().filter_map(Checker::secret).collect(),
            ..KeySet::default()
        };
        for key in public {
            let key = Arc::new(key);
            if let Some(kid) = &key.kid {
                if set.by_kid.contains_key(kid) {
                    continue;
                }
                set.by_kid.insert(kid.clone(), key.clone());
            }
            set.public.push(key);
        }
        set
    }

    /// Builds the union of two key sets; on a `kid` held by both, this
    /// set's key wins, so a remote document cannot displace a key the
    /// operator configured locally.
    pub fn merged(&self, other: &KeySet) -> KeySet {
        let mut set = self.clone();
        set.secrets.extend(other.secrets.iter().cloned());
        for key in &other.public {
            if let Some(kid) = &key.kid {
                if set.by_kid.contains_key(kid) {
                    continue;
                }
                set.by_kid.insert(kid.clone(), key.clone());
            }
            set.public.push(key.clone());
        }
        set
    }

    /// Says whether there is no key at all.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty() && self.public.is_empty()
    }

    /// Returns how many HMAC secrets the set holds.
    pub fn secret_count(&self) -> usize {
        self.secrets.len()
    }

    /// Returns the public keys, in document order.
    pub fn public_keys(&self) -> &[Arc<PublicKey>] {
        &self.public
    }

    /// Picks the keys that may check a token signed with `alg`.
    ///
    /// A token without a `kid` is accepted only when exactly one public key
    /// could check it: guessing among several would let the token's author
    /// steer which key is used.
    pub fn choose(&self, alg: Algorithm, kid: Option<&str>) -> KeyChoice<'_> {
        if is_hmac(alg) {
            return KeyChoice::Secrets(&self.secrets);
        }
        if let Some(kid) = kid {
            return match self.by_kid.get(kid) {
                Some(key) if key.allows(alg) => KeyChoice::Public(key),
                Some(_) => KeyChoice::WrongType,
                None => KeyChoice::Unknown,
            };
        }
        let mut fitting = self.public.iter().filter(|key| key.allows(alg));
        match (fitting.next(), fitting.next()) {
            (Some(key), None) => KeyChoice::Public(key),
            _ => KeyChoice::Unknown,
        }
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("secrets", &self.secrets.len())
            .field("public", &self.public)
            .finish()
    }
}

/// Says whether `alg` is one of the HMAC algorithms.
pub fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, kind: KeyKind) -> PublicKey {
        let point = [4u8; 65];
        PublicKey::new(
            Some(Arc::from(kid)),
            kind,
            None,
            DecodingKey::from_ec_der(&point),
        )
    }

    #[test]
    fn a_merge_keeps_both_sets_and_the_first_key_of_a_shared_kid() {
        let secret = DecodingKey::from_secret(&[7u8; 32]).expect("secret");
        let local = KeySet::new(vec![secret], vec![key("shared", KeyKind::EcP256)]);
        let remote = KeySet::new(
            Vec::new(),
            vec![key("shared", KeyKind::EcP384), key("new", KeyKind::EcP256)],
        );

        let merged = local.merged(&remote);
        assert_eq!(merged.secret_count(), 1);
        assert_eq!(merged.public_keys().len(), 2);
        assert!(matches!(
            merged.choose(Algorithm::ES256, Some("shared")),
            KeyChoice::Public(_)
        ));
        assert!(matches!(
            merged.choose(Algorithm::ES256, Some("new")),
            KeyChoice::Public(_)
        ));
    }
}
