//! Tests for the keys that fit a provider to its issuer's token shapes:
//! `audience_claim`, `roles_claim` lists, `roles_header`, `require_sub` and
//! `keys_format`.

use http::HeaderName;

use super::{MINIMAL, invalid, load, provider_keys};
use crate::config::ClaimPath;
use crate::keys::KeyDocumentKind;

// --- audience_claim ------------------------------------------------------------

#[test]
fn audience_claim_may_name_another_claim_or_a_pointer() {
    let text = format!("{MINIMAL}audience_claim = \"client_id\"\n");
    let expected = ClaimPath::Name("client_id".into());
    assert_eq!(load(&text).providers[0].audience_claim, expected);

    let text = format!("{MINIMAL}audience_claim = \"/app/aud\"\n");
    let expected = ClaimPath::Pointer("/app/aud".into());
    assert_eq!(load(&text).providers[0].audience_claim, expected);
}

#[test]
fn audience_claim_may_not_be_empty() {
    let text = format!("{MINIMAL}audience_claim = \"\"\n");
    invalid(&text, "providers[0].audience_claim", "audience_claim");
}

// --- roles_claim ---------------------------------------------------------------

#[test]
fn roles_claim_may_list_several_claims_in_order() {
    let text = format!(
        "{MINIMAL}roles_claim = [\"/realm_access/roles\", \"/resource_access/api/roles\"]\n"
    );
    let expected = [
        ClaimPath::Pointer("/realm_access/roles".into()),
        ClaimPath::Pointer("/resource_access/api/roles".into()),
    ];
    assert_eq!(load(&text).providers[0].roles_claim, expected);
}

#[test]
fn a_roles_claim_list_is_not_empty_and_lists_each_claim_once() {
    let text = format!("{MINIMAL}roles_claim = []\n");
    invalid(&text, "providers[0].roles_claim", "roles_claim");

    let list = "[\n  \"groups\",\n  \"roles\",\n  \"groups\", # again\n]";
    let text = format!("{MINIMAL}roles_claim = {list}\n");
    let message = invalid(&text, "providers[0].roles_claim", "# again");
    assert!(message.contains("twice"), "{message}");

    let text = format!("{MINIMAL}roles_claim = [\n  \"groups\",\n  \"\", # empty\n]\n");
    invalid(&text, "providers[0].roles_claim", "# empty");
}

#[test]
fn a_roles_claim_of_another_type_is_a_parse_error() {
    let text = format!("{MINIMAL}roles_claim = 7\n");
    let (origin, message) = super::parse_error(&text);
    assert!(origin.starts_with("test.toml:"), "{origin}");
    assert!(message.contains("a claim name or a list"), "{message}");
}

// --- roles_header --------------------------------------------------------------

#[test]
fn roles_header_is_stored_and_counts_as_an_identity_header() {
    let text = format!("{MINIMAL}roles_header = \"X-User-Roles\"\n");
    let settings = load(&text);
    let provider = &settings.providers[0];
    let expected = HeaderName::from_static("x-user-roles");
    assert_eq!(provider.roles_header.as_ref(), Some(&expected));
    let names: Vec<&str> = provider
        .identity_header_names()
        .map(HeaderName::as_str)
        .collect();
    assert_eq!(names, ["x-user-id", "x-user-roles"]);
}

#[test]
fn roles_header_follows_the_rules_of_claim_headers() {
    for name in ["X User", "Authorization", "X_Forwarded_For"] {
        let text = format!("{MINIMAL}roles_header = {name:?}\n");
        invalid(&text, "providers[0].roles_header", "roles_header");
    }
}

#[test]
fn roles_header_may_not_clash_with_a_claim_header() {
    let text = format!(
        "{MINIMAL}roles_header = \"X-User_Roles\"\n\
         [providers.claim_to_headers]\n\"x-user-roles\" = \"roles\"\n"
    );
    let message = invalid(&text, "providers[0].roles_header", "roles_header");
    assert!(message.contains("clashes"), "{message}");
}

// --- require_sub ---------------------------------------------------------------

#[test]
fn require_sub_defaults_to_true_and_may_be_turned_off() {
    assert!(load(MINIMAL).providers[0].require_sub);
    let text = format!("{MINIMAL}require_sub = false\n");
    assert!(!load(&text).providers[0].require_sub);
}

// --- keys_format ---------------------------------------------------------------

#[test]
fn keys_format_names_one_of_two_formats() {
    let keys = "jwks_file = \"keys.json\"\n";
    for (written, kind) in [
        ("jwks", KeyDocumentKind::Jwks),
        ("x509_map", KeyDocumentKind::X509Map),
    ] {
        let text = provider_keys(
            "[\"RS256\"]",
            &format!("{keys}keys_format = \"{written}\"\n"),
        );
        assert_eq!(load(&text).providers[0].keys_format, Some(kind));
    }

    let text = provider_keys("[\"RS256\"]", &format!("{keys}keys_format = \"pem\"\n"));
    let message = invalid(&text, "providers[0].keys_format", "keys_format");
    assert!(message.contains("x509_map"), "{message}");
}

#[test]
fn keys_format_needs_a_key_document() {
    let text = format!("{MINIMAL}keys_format = \"jwks\"\n");
    let message = invalid(&text, "providers[0].keys_format", "keys_format");
    assert!(message.contains("jwks_file"), "{message}");
}
