//! Reading a JWKS document (RFC 7517) into public keys.
//!
//! One bad or foreign key does not spoil the set: keys for encryption, of
//! unsupported types or with broken members are skipped, each with a reason
//! the caller logs. Only a document that is not a JWKS at all is an error.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use super::{KeyKind, PublicKey, weak};

/// Says why a document is not a JWKS.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// Not JSON.
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but without a `keys` array.
    #[error("not a JWKS: expected an object with a \"keys\" array")]
    Shape,
}

/// Holds the usable keys of a document and why the others were skipped.
#[derive(Debug, Default)]
pub struct ParsedJwks {
    /// Keys that can verify signatures.
    pub keys: Vec<PublicKey>,
    /// One line for each key that was skipped.
    pub skipped: Vec<String>,
}

/// Parses a JWKS document.
pub fn parse_jwks(bytes: &[u8]) -> Result<ParsedJwks, JwksError> {
    let document: Value = serde_json::from_slice(bytes)?;
    jwks_keys(&document).ok_or(JwksError::Shape)
}

/// Reads the keys of a parsed JWKS; `None` when it has no `keys` array.
pub(super) fn jwks_keys(document: &Value) -> Option<ParsedJwks> {
    let entries = document.get("keys").and_then(Value::as_array)?;
    let mut parsed = ParsedJwks::default();
    for (at, entry) in entries.iter().enumerate() {
        match parse_key(entry) {
            Ok(key) => parsed.keys.push(key),
            Err(why) => parsed.skipped.push(format!("keys[{at}]: {why}")),
        }
    }
    Some(parsed)
}

fn parse_key(entry: &Value) -> Result<PublicKey, String> {
    let Some(jwk) = entry.as_object() else {
        return Err("not a JSON object".into());
    };
    if let Some(usage) = jwk.get("use") {
        if usage != "sig" {
            return Err("not a signing key (use is not \"sig\")".into());
        }
    }
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(Arc::<str>::from(kid.as_str())),
        Some(_) => return Err("kid is not a string".into()),
    };

    let (kind, key) = match text(jwk, "kty")? {
        "RSA" => (KeyKind::Rsa, rsa_key(jwk)?),
        "EC" => ec_key(jwk)?,
        "OKP" => (KeyKind::Ed25519, ed_key(jwk)?),
        other => return Err(format!("unsupported key type {other:?}")),
    };

    let alg = declared_alg(jwk, kind)?;
    PublicKey::new(kid, kind, alg, key).usable()
}

/// Reads the optional `alg`, which must fit the key's type.
fn declared_alg(jwk: &Map<String, Value>, kind: KeyKind) -> Result<Option<Algorithm>, String> {
    let Some(name) = jwk.get("alg") else {
        return Ok(None);
    };
    let name = name.as_str().ok_or("alg is not a string")?;
    let alg: Algorithm = name
        .parse()
        .map_err(|_| format!("unsupported algorithm {name:?}"))?;
    if !kind.allows(alg) {
        return Err(format!("algorithm {name} does not fit a {kind:?} key"));
    }
    Ok(Some(alg))
}

fn rsa_key(jwk: &Map<String, Value>) -> Result<DecodingKey, String> {
    rsa_from_components(binary(jwk, "n")?, binary(jwk, "e")?)
}

/// Builds an RSA key from its big-endian modulus and exponent, refusing
/// weak ones; shared with keys read from X.509 certificates.
pub(super) fn rsa_from_components(n: Vec<u8>, e: Vec<u8>) -> Result<DecodingKey, String> {
    let n = strip_leading_zeros(n);
    let e = strip_leading_zeros(e);
    if let Some(why) = weak::rsa_weakness(&n, &e) {
        return Err(why);
    }
    Ok(DecodingKey::from_rsa_raw_components(&n, &e))
}

fn ec_key(jwk: &Map<String, Value>) -> Result<(KeyKind, DecodingKey), String> {
    let (kind, size) = match text(jwk, "crv")? {
        "P-256" => (KeyKind::EcP256, 32),
        "P-384" => (KeyKind::EcP384, 48),
        other => return Err(format!("unsupported curve {other:?}")),
    };
    let x = binary(jwk, "x")?;
    let y = binary(jwk, "y")?;
    if x.len() != size || y.len() != size {
        return Err("EC coordinates have the wrong length".into());
    }
    // The backend takes the SEC 1 uncompressed point: 0x04 || x || y.
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok((kind, DecodingKey::from_ec_der(&point)))
}

fn ed_key(jwk: &Map<String, Value>) -> Result<DecodingKey, String> {
    let crv = text(jwk, "crv")?;
    if crv != "Ed25519" {
        return Err(format!("unsupported curve {crv:?}"));
    }
    let x = binary(jwk, "x")?;
    if x.len() != 32 {
        return Err("Ed25519 key has the wrong length".into());
    }
    if let Some(why) = weak::ed25519_weakness(&x) {
        return Err(why.into());
    }
    Ok(DecodingKey::from_ed_der(&x))
}

fn text<'a>(jwk: &'a Map<String, Value>, member: &str) -> Result<&'a str, String> {
    jwk.get(member)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{member} is missing or not a string"))
}

/// Decodes a base64url member; trailing `=` padding, which some issuers
/// still emit, is tolerated here since a key is configuration, not input.
fn binary(jwk: &Map<String, Value>, member: &str) -> Result<Vec<u8>, String> {
    let encoded = text(jwk, member)?.trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| format!("{member} is not base64url"))
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const P256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    fn ec(extra: &str) -> String {
        format!(
            concat!(
                r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"a/b+c=:d","#,
                r#""x":"{P256_X}","y":"{P256_Y}"{extra}}}]}}"#
            ),
            P256_X = P256_X,
            P256_Y = P256_Y,
            extra = extra
        )
    }

    #[test]
    fn an_ec_key_is_read_with_an_opaque_kid() {
        let parsed = parse_jwks(ec("").as_bytes()).expect("valid jwks");
        assert_eq!(parsed.keys.len(), 1);
        assert_eq!(parsed.keys[0].kid(), Some("a/b+c=:d"));
        assert!(parsed.keys[0].allows(Algorithm::ES256));
        assert!(!parsed.keys[0].allows(Algorithm::ES384));
        assert!(!parsed.keys[0].allows(Algorithm::HS256));
    }

    #[test]
    fn encryption_and_unknown_keys_are_skipped_not_fatal() {
        let doc = format!(
            r#"{{"keys":[{{"kty":"EC","use":"enc","crv":"P-256","x":"{P256_X}","y":"{P256_Y}"}},
            {{"kty":"oct","k":"c2VjcmV0"}}, 5,
            {{"kty":"EC","crv":"P-256","x":"{P256_X}","y":"{P256_Y}"}}]}}"#
        );
        let parsed = parse_jwks(doc.as_bytes()).expect("valid jwks");
        assert_eq!(parsed.keys.len(), 1);
        assert_eq!(parsed.skipped.len(), 3, "{:?}", parsed.skipped);
    }

    #[test]
    fn a_declared_alg_must_fit_the_key_type() {
        let parsed = parse_jwks(ec(r#","alg":"RS256""#).as_bytes()).expect("valid jwks");
        assert!(parsed.keys.is_empty());
        let parsed = parse_jwks(ec(r#","alg":"ES256""#).as_bytes()).expect("valid jwks");
        assert!(parsed.keys[0].allows(Algorithm::ES256));
    }

    #[test]
    fn short_rsa_moduli_are_refused() {
        let doc = r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#;
        let parsed = parse_jwks(doc.as_bytes()).expect("valid jwks");
        assert!(parsed.keys.is_empty());
        assert!(
            parsed.skipped[0].contains("too small"),
            "{:?}",
            parsed.skipped
        );
    }

    /// A 2048-bit modulus; parsing never checks it is a product of primes.
    fn modulus(leading_zero: bool) -> String {
        let mut n = vec![0xC3u8; 256];
        if leading_zero {
            n.insert(0, 0);
        }
        URL_SAFE_NO_PAD.encode(n)
    }

    #[test]
    fn an_rsa_key_with_an_x5c_chain_beside_n_and_e_is_read_from_n_and_e() {
        // The shape Entra ID and Auth0 publish: n and e, plus the
        // certificate chain and thumbprints, and members of their own.
        let doc = format!(
            r#"{{"keys":[{{"kty":"RSA","use":"sig","kid":"nOo3ZDrODXEK1jKWhXslHR_KXEg",
            "x5t":"nOo3ZDrODXEK1jKWhXslHR_KXEg","n":"{}","e":"AQAB",
            "x5c":["MIIDBTCCAe2gAwIBAgIQN33ROaIJ6bJBWDCxtmJEbjANBgkqhkiG9w0BAQsFADAt"],
            "issuer":"https://login.test/{{tenantid}}/v2.0"}}]}}"#,
            modulus(false)
        );
        let parsed = parse_jwks(doc.as_bytes()).expect("valid jwks");
        assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
        assert_eq!(parsed.keys[0].kid(), Some("nOo3ZDrODXEK1jKWhXslHR_KXEg"));
        assert!(parsed.keys[0].allows(Algorithm::RS256));
        assert!(parsed.keys[0].allows(Algorithm::PS512));
    }

    #[test]
    fn an_rsa_key_with_only_an_x5c_chain_is_skipped() {
        // RFC 7518 section 6.3.1 requires n and e; the certificate is never
        // parsed for a key, so such an entry cannot be used.
        let doc = r#"{"keys":[{"kty":"RSA","kid":"c","x5c":["MIIDBTCCAe2gAwIBAgIQ"]}]}"#;
        let parsed = parse_jwks(doc.as_bytes()).expect("valid jwks");
        assert!(parsed.keys.is_empty());
        assert!(
            parsed.skipped[0].contains("n is missing"),
            "{:?}",
            parsed.skipped
        );
    }

    #[test]
    fn padding_and_leading_zeros_are_tolerated() {
        // Some issuers pad base64url with '=' and keep the sign byte of a
        // DER integer in front of the modulus.
        let doc = format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"padded","n":"{}==","e":"AAEAAQ=="}}]}}"#,
            modulus(true)
        );
        let parsed = parse_jwks(doc.as_bytes()).expect("valid jwks");
        assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
        assert!(parsed.keys[0].allows(Algorithm::RS256));
    }

    #[test]
    fn keys_without_alg_or_use_accept_every_algorithm_of_their_type() {
        let doc = format!(
            r#"{{"keys":[{{"kty":"RSA","n":"{}","e":"AQAB"}}]}}"#,
            modulus(false)
        );
        let parsed = parse_jwks(doc.as_bytes()).expect("valid jwks");
        assert_eq!(parsed.keys[0].kid(), None);
        for alg in [Algorithm::RS256, Algorithm::RS384, Algorithm::PS256] {
            assert!(parsed.keys[0].allows(alg), "{alg:?}");
        }
        assert!(!parsed.keys[0].allows(Algorithm::ES256));
    }

    #[test]
    fn an_empty_key_list_is_a_jwks_without_keys() {
        let parsed = parse_jwks(br#"{"keys":[]}"#).expect("valid jwks");
        assert!(parsed.keys.is_empty() && parsed.skipped.is_empty());
    }

    #[test]
    fn a_document_without_keys_is_an_error() {
        assert!(matches!(parse_jwks(b"{}"), Err(JwksError::Shape)));
        assert!(matches!(parse_jwks(b"nope"), Err(JwksError::Json(_))));
    }
}
