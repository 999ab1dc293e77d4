//! Key documents: a JWKS or an x509 map, as read from a `jwks_file` or a
//! fetched `jwks_uri`.
//!
//! The bytes are parsed in each of the three ways tollgate reads a key
//! document (its shape deciding, or said to be a JWKS, or an x509 map).
//! Every entry must come out as a key or as a skip reason, and the key set
//! built from the keys must pick each key by its `kid` for exactly the
//! algorithms its type allows.

use serde_json::Value;
use tollgate::keys::{
    ALGORITHMS, KeyChoice, KeyDocumentKind, KeySet, ParsedJwks, parse_key_document,
};

/// Parses one document every way and checks what comes out.
pub fn check(data: &[u8]) {
    for kind in [
        None,
        Some(KeyDocumentKind::Jwks),
        Some(KeyDocumentKind::X509Map),
    ] {
        let Ok(parsed) = parse_key_document(data, kind) else {
            continue;
        };
        assert_every_entry_accounted_for(data, kind, &parsed);
        assert_chosen_by_kid(parsed);
    }
}

/// A JWKS yields one key or one skip reason per entry of `keys`, and an
/// x509 map one per member.
fn assert_every_entry_accounted_for(
    data: &[u8],
    kind: Option<KeyDocumentKind>,
    parsed: &ParsedJwks,
) {
    let document: Value = serde_json::from_slice(data).expect("a parsed document is JSON");
    let entries = match document.get("keys").and_then(Value::as_array) {
        Some(keys) if kind != Some(KeyDocumentKind::X509Map) => keys.len(),
        _ => document.as_object().map_or(0, |members| members.len()),
    };
    assert_eq!(
        parsed.keys.len() + parsed.skipped.len(),
        entries,
        "keys and skip reasons do not add up to the entries"
    );
}

/// Each key is found by its `kid` for the algorithms it allows (the first
/// of a repeated `kid` wins), and never for the others.
fn assert_chosen_by_kid(parsed: ParsedJwks) {
    let kids: Vec<(Option<String>, usize)> = parsed
        .keys
        .iter()
        .enumerate()
        .map(|(at, key)| (key.kid().map(str::to_owned), at))
        .collect();
    let allowed: Vec<Vec<bool>> = parsed
        .keys
        .iter()
        .map(|key| ALGORITHMS.iter().map(|alg| key.allows(*alg)).collect())
        .collect();
    let set = KeySet::new(Vec::new(), parsed.keys);

    for (kid, at) in &kids {
        let Some(kid) = kid else { continue };
        let first = kids
            .iter()
            .find(|(other, _)| other.as_deref() == Some(kid.as_str()))
            .map(|(_, first)| *first)
            .expect("the key itself has this kid");
        if first != *at {
            continue;
        }
        for (alg, allows) in ALGORITHMS.iter().zip(&allowed[*at]) {
            if tollgate::keys::is_hmac(*alg) {
                continue;
            }
            match (set.choose(*alg, Some(kid)), allows) {
                (KeyChoice::Public(key), true) => assert_eq!(key.kid(), Some(kid.as_str())),
                (KeyChoice::WrongType, false) => {}
                (_, allows) => {
                    panic!("kid {kid:?} with {alg:?}: allows is {allows}, choice differs")
                }
            }
        }
    }
}
