//! Reading an x509 map: a JSON object from key id to PEM certificate.
//!
//! Google publishes the keys for Firebase ID tokens (and, at its `v1` certs
//! address, for Google ID tokens) this way rather than as a JWKS. Only the
//! subject public key of each certificate is used, bound to its type like a
//! JWKS key. The certificates' validity dates and signatures are not
//! checked: they are self-signed, and the document as a whole is what is
//! trusted, exactly as a JWKS is; rotation happens by publishing a new map.
//! As in a JWKS, one bad entry is skipped with a reason, not fatal.

use std::sync::Arc;

use jsonwebtoken::DecodingKey;
use pkcs1::RsaPublicKeyRef;
use pkcs1::der::Decode;
use serde_json::Value;
use x509_cert::Certificate;
use x509_cert::der::DecodePem;
use x509_cert::spki::{ObjectIdentifier, SubjectPublicKeyInfoOwned};

use super::jwks::{ParsedJwks, rsa_from_components};
use super::{KeyKind, PublicKey, weak};

/// `rsaEncryption` (RFC 8017 appendix C).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-ecPublicKey` (RFC 5480 section 2.1.1).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1`, the curve named P-256 (RFC 5480 section 2.1.1.1).
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// `secp384r1`, the curve named P-384 (RFC 5480 section 2.1.1.1).
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// `id-Ed25519` (RFC 8410 section 3).
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Says whether a document looks like an x509 map: an object of strings
/// without a `keys` member, so that it cannot be a JWKS with odd members.
pub(super) fn is_x509_map(document: &Value) -> bool {
    document.as_object().is_some_and(|entries| {
        !entries.is_empty()
            && !entries.contains_key("keys")
            && entries.values().all(Value::is_string)
    })
}

/// Reads the keys of an x509 map; `None` when the document is not an object.
pub(super) fn map_keys(document: &Value) -> Option<ParsedJwks> {
    let entries = document.as_object()?;
    let mut parsed = ParsedJwks::default();
    for (kid, entry) in entries {
        let key = entry
            .as_str()
            .ok_or_else(|| "not a string".to_owned())
            .and_then(certificate_key);
        let key = key.and_then(|(kind, key)| {
            let kid = Some(Arc::<str>::from(kid.as_str()));
            PublicKey::new(kid, kind, None, key).usable()
        });
        match key {
            Ok(key) => parsed.keys.push(key),
            Err(why) => parsed.skipped.push(format!("{kid:?}: {why}")),
        }
    }
    Some(parsed)
}

/// Extracts the subject public key of one PEM certificate.
fn certificate_key(pem: &str) -> Result<(KeyKind, DecodingKey), String> {
    let certificate = Certificate::from_pem(pem.trim().as_bytes())
        .map_err(|error| format!("not a PEM certificate: {error}"))?;
    let info: &SubjectPublicKeyInfoOwned = certificate.tbs_certificate().subject_public_key_info();
    let Some(bits) = info.subject_public_key.as_bytes() else {
        return Err("the public key is not a whole number of bytes".into());
    };
    match info.algorithm.oid {
        RSA_ENCRYPTION => Ok((KeyKind::Rsa, rsa_key(bits)?)),
        EC_PUBLIC_KEY => ec_key(info, bits),
        ED25519 if bits.len() == 32 => match weak::ed25519_weakness(bits) {
            Some(why) => Err(why.into()),
            None => Ok((KeyKind::Ed25519, DecodingKey::from_ed_der(bits))),
        },
        ED25519 => Err("Ed25519 key has the wrong length".into()),
        other => Err(format!("unsupported key algorithm {other}")),
    }
}

/// Reads a PKCS#1 `RSAPublicKey`, held to the same size floor as a JWK's.
fn rsa_key(bits: &[u8]) -> Result<DecodingKey, String> {
    let key = RsaPublicKeyRef::from_der(bits).map_err(|_| "malformed RSA public key")?;
    rsa_from_components(
        key.modulus.as_bytes().to_vec(),
        key.public_exponent.as_bytes().to_vec(),
    )
}

/// Reads an uncompressed EC point on P-256 or P-384; the curve comes from
/// the algorithm parameters, never from the point's length alone.
fn ec_key(info: &SubjectPublicKeyInfoOwned, bits: &[u8]) -> Result<(KeyKind, DecodingKey), String> {
    let curve = info
        .algorithm
        .parameters
        .as_ref()
        .and_then(|any| any.decode_as::<ObjectIdentifier>().ok())
        .ok_or("EC key without a named curve")?;
    let (kind, size) = match curve {
        P256 => (KeyKind::EcP256, 32),
        P384 => (KeyKind::EcP384, 48),
        other => return Err(format!("unsupported curve {other}")),
    };
    if bits.len() != 1 + 2 * size || bits[0] != 0x04 {
        return Err("EC key is not an uncompressed point on its curve".into());
    }
    Ok((kind, DecodingKey::from_ec_der(bits)))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::Algorithm;
    use serde_json::json;

    use super::*;

    /// The mixed map the issuer fixtures generate: one certificate per
    /// supported key type, plus a P-521 and an RSA-1024 one that must be
    /// skipped.
    const MIXED: &str = include_str!("../../tests/fixtures/issuers/x509/keys.json");

    fn mixed() -> ParsedJwks {
        let document: Value = serde_json::from_str(MIXED).expect("fixture is JSON");
        map_keys(&document).expect("fixture is an object")
    }

    fn kind_of(parsed: &ParsedJwks, kid: &str) -> Option<KeyKind> {
        let key = parsed.keys.iter().find(|key| key.kid() == Some(kid))?;
        Some(key.kind())
    }

    #[test]
    fn each_certificate_key_is_bound_to_its_type() {
        let parsed = mixed();
        assert_eq!(kind_of(&parsed, "rsa-2048"), Some(KeyKind::Rsa));
        assert_eq!(kind_of(&parsed, "ec-p256"), Some(KeyKind::EcP256));
        assert_eq!(kind_of(&parsed, "ec-p384"), Some(KeyKind::EcP384));
        assert_eq!(kind_of(&parsed, "ed25519"), Some(KeyKind::Ed25519));
        let p256 = parsed.keys.iter().find(|k| k.kid() == Some("ec-p256"));
        let p256 = p256.expect("p256 key");
        assert!(p256.allows(Algorithm::ES256));
        assert!(!p256.allows(Algorithm::RS256));
    }

    #[test]
    fn unsupported_and_weak_certificate_keys_are_skipped_with_a_reason() {
        let parsed = mixed();
        assert_eq!(parsed.keys.len(), 4, "{:?}", parsed.skipped);
        let skipped = parsed.skipped.join("\n");
        assert!(
            skipped.contains("\"ec-p521\": unsupported curve"),
            "{skipped}"
        );
        assert!(
            skipped.contains("\"rsa-1024\": RSA modulus of 1024 bits"),
            "{skipped}"
        );
    }

    #[test]
    fn entries_that_are_not_certificates_are_skipped() {
        let document =
            json!({"a": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "b": 7});
        let parsed = map_keys(&document).expect("an object");
        assert!(parsed.keys.is_empty());
        assert_eq!(parsed.skipped.len(), 2, "{:?}", parsed.skipped);
    }

    #[test]
    fn only_an_object_of_strings_without_keys_looks_like_a_map() {
        assert!(is_x509_map(&json!({"kid": "pem"})));
        assert!(!is_x509_map(&json!({})));
        assert!(!is_x509_map(&json!({"keys": "pem"})));
        assert!(!is_x509_map(&json!({"kid": 1})));
        assert!(!is_x509_map(&json!(["pem"])));
    }
}
