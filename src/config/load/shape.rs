//! Checks for the provider keys that fit tollgate to how an issuer shapes
//! its tokens and key documents: `audience_claim`, `roles_claim`,
//! `roles_header` and `keys_format`.
//!
//! Issuers disagree on where the audience and the roles live (Cognito access
//! tokens have no `aud`, Keycloak splits roles between the realm and each
//! client) and on how keys are published (Google's x509 map beside JWKS).
//! These keys say where to look; every check names the key and line at
//! fault, as the rest of loading does.

use http::HeaderName;
use toml::Spanned;

use super::Document;
use super::provider::{claim_path, field, fold_header, header_name};
use crate::config::raw::{ClaimNames, ProviderConfig};
use crate::config::{ClaimPath, ConfigError};
use crate::keys::KeyDocumentKind;

/// Holds what the shape keys of one provider come to.
pub(super) struct Shape {
    /// `audience_claim`, parsed.
    pub(super) audience_claim: ClaimPath,
    /// `roles_claim`, as a list.
    pub(super) roles_claim: Vec<ClaimPath>,
    /// `roles_header`, if set.
    pub(super) roles_header: Option<HeaderName>,
    /// `keys_format`, if set.
    pub(super) keys_format: Option<KeyDocumentKind>,
}

/// Checks the shape keys of provider `index`. `has_document` says whether
/// it has a key document for `keys_format` to describe; `claim_headers` are
/// its checked `claim_to_headers`, which `roles_header` must not clash with.
pub(super) fn check(
    doc: Document<'_>,
    index: usize,
    raw: &ProviderConfig,
    has_document: bool,
    claim_headers: &[(HeaderName, ClaimPath)],
) -> Result<Shape, ConfigError> {
    let key = |name| field(index, name);
    Ok(Shape {
        audience_claim: claim_path(doc, &raw.audience_claim, &key("audience_claim"))?,
        roles_claim: roles_claim(doc, &raw.roles_claim, &key("roles_claim"))?,
        roles_header: roles_header(
            doc,
            raw.roles_header.as_ref(),
            &key("roles_header"),
            claim_headers,
        )?,
        keys_format: keys_format(
            doc,
            raw.keys_format.as_ref(),
            &key("keys_format"),
            has_document,
        )?,
    })
}

/// Parses `roles_claim`: one claim, or a non-empty list of distinct claims.
fn roles_claim(
    doc: Document<'_>,
    value: &Spanned<ClaimNames>,
    key: &str,
) -> Result<Vec<ClaimPath>, ConfigError> {
    let names = match value.get_ref() {
        ClaimNames::One(name) => {
            let written = Spanned::new(value.span(), name.clone());
            return Ok(vec![claim_path(doc, &written, key)?]);
        }
        ClaimNames::Many(names) => names,
    };
    if names.is_empty() {
        return Err(doc.invalid(value.span(), key, "at least one claim is required"));
    }
    let mut paths = Vec::with_capacity(names.len());
    for name in names {
        let path = claim_path(doc, name, key)?;
        if paths.contains(&path) {
            let message = format!("{:?} is listed twice", name.get_ref());
            return Err(doc.invalid(name.span(), key, message));
        }
        paths.push(path);
    }
    Ok(paths)
}

/// Parses `roles_header`, which follows the rules of a `claim_to_headers`
/// name and must not clash with one of them (compared folded, for the same
/// reason `claim_to_headers` names are).
fn roles_header(
    doc: Document<'_>,
    value: Option<&Spanned<String>>,
    key: &str,
    claim_headers: &[(HeaderName, ClaimPath)],
) -> Result<Option<HeaderName>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let written = value.get_ref();
    let header = header_name(written).map_err(|m| doc.invalid(value.span(), key, m))?;
    let fold = fold_header(written);
    if let Some((taken, _)) = claim_headers
        .iter()
        .find(|(n, _)| fold_header(n.as_str()) == fold)
    {
        let message = format!(
            "{written:?} clashes with claim_to_headers {:?}: one header cannot carry both",
            taken.as_str()
        );
        return Err(doc.invalid(value.span(), key, message));
    }
    Ok(Some(header))
}

/// Parses `keys_format`, which only means something beside a key document.
fn keys_format(
    doc: Document<'_>,
    value: Option<&Spanned<String>>,
    key: &str,
    has_document: bool,
) -> Result<Option<KeyDocumentKind>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let kind = match value.get_ref().as_str() {
        "jwks" => KeyDocumentKind::Jwks,
        "x509_map" => KeyDocumentKind::X509Map,
        other => {
            let message = format!("{other:?} is not a key format; use \"jwks\" or \"x509_map\"");
            return Err(doc.invalid(value.span(), key, message));
        }
    };
    if !has_document {
        let message = "keys_format is set but jwks_file is not";
        return Err(doc.invalid(value.span(), key, message));
    }
    Ok(Some(kind))
}
