//! Reading a key document in either shape issuers publish it: a JWKS
//! (RFC 7517), or an x509 map from key id to PEM certificate.
//!
//! This is the one entry point for key documents, whatever they were read
//! from, so a file and a fetched document are understood the same way.

use serde_json::Value;

use super::jwks::{self, ParsedJwks};
use super::x509;

/// Names the shape of a key document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDocumentKind {
    /// A JWKS: an object with a `keys` array of JWKs.
    Jwks,
    /// An object from key id to PEM X.509 certificate (Google's legacy
    /// format, still the only one for Firebase ID tokens).
    X509Map,
}

/// Says why a document holds no keys tollgate can read.
#[derive(Debug, thiserror::Error)]
pub enum KeyDocumentError {
    /// Not JSON.
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Said to be a JWKS, but without a `keys` array.
    #[error("not a JWKS: expected an object with a \"keys\" array")]
    NotJwks,
    /// Said to be an x509 map, but not a JSON object.
    #[error("not an x509 map: expected an object from key id to PEM certificate")]
    NotX509Map,
    /// Of no shape tollgate knows.
    #[error(
        "neither a JWKS (an object with a \"keys\" array) nor an x509 map \
         (an object from key id to PEM certificate)"
    )]
    Unrecognised,
}

/// Parses a key document of the given kind, or, with `None`, of the kind
/// its shape shows: a `keys` array makes a JWKS, an object of strings an
/// x509 map.
pub fn parse_key_document(
    bytes: &[u8],
    kind: Option<KeyDocumentKind>,
) -> Result<ParsedJwks, KeyDocumentError> {
    let document: Value = serde_json::from_slice(bytes)?;
    let kind = match kind {
        Some(kind) => kind,
        None if document.get("keys").is_some_and(Value::is_array) => KeyDocumentKind::Jwks,
        None if x509::is_x509_map(&document) => KeyDocumentKind::X509Map,
        None => return Err(KeyDocumentError::Unrecognised),
    };
    match kind {
        KeyDocumentKind::Jwks => jwks::jwks_keys(&document).ok_or(KeyDocumentError::NotJwks),
        KeyDocumentKind::X509Map => x509::map_keys(&document).ok_or(KeyDocumentError::NotX509Map),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"a",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
    const X509: &str = include_str!("../../tests/fixtures/issuers/x509/keys.json");

    #[test]
    fn the_shape_decides_when_no_kind_is_given() {
        let parsed = parse_key_document(JWKS.as_bytes(), None).expect("a jwks");
        assert_eq!(parsed.keys.len(), 1);
        let parsed = parse_key_document(X509.as_bytes(), None).expect("an x509 map");
        assert_eq!(parsed.keys.len(), 4);
    }

    #[test]
    fn a_stated_kind_must_match_the_document() {
        let wrong = parse_key_document(X509.as_bytes(), Some(KeyDocumentKind::Jwks));
        assert!(matches!(wrong, Err(KeyDocumentError::NotJwks)), "{wrong:?}");
        // A JWKS read as a map has one entry, `keys`, which is no
        // certificate: nothing usable, and the reason says why.
        let wrong = parse_key_document(JWKS.as_bytes(), Some(KeyDocumentKind::X509Map));
        let wrong = wrong.expect("an object");
        assert!(wrong.keys.is_empty());
        assert!(
            wrong.skipped[0].starts_with("\"keys\""),
            "{:?}",
            wrong.skipped
        );
    }

    #[test]
    fn unknown_shapes_are_refused() {
        for document in ["{}", "[]", r#"{"kid": 5}"#, r#"{"keys": {}}"#] {
            let result = parse_key_document(document.as_bytes(), None);
            assert!(
                matches!(result, Err(KeyDocumentError::Unrecognised)),
                "{document}: {result:?}"
            );
        }
        let result = parse_key_document(b"nope", None);
        assert!(matches!(result, Err(KeyDocumentError::Json(_))));
    }
}
