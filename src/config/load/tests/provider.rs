//! Tests for `[[providers]]`: names, algorithms, key sources and the
//! identity headers.

use std::path::Path;
use std::time::Duration;

use super::{MINIMAL, UPSTREAM, invalid, line_of, load, provider_keys};
use crate::config::{ClaimPath, SecretSource};

// --- providers ---------------------------------------------------------------

#[test]
fn at_least_one_provider_is_required() {
    let text = format!("providers = []\n{UPSTREAM}");
    invalid(&text, "providers", "providers");
}

#[test]
fn a_provider_name_must_be_plain() {
    let text = MINIMAL.replace("\"accounts\"", "\"main accounts\"");
    invalid(&text, "providers[0].name", "main accounts");
}

#[test]
fn provider_names_and_issuers_must_be_unique() {
    let second = |name: &str, issuer: &str| {
        format!(
            "{MINIMAL}\n[[providers]]\nname = {name}\nissuer = {issuer}\n\
             audiences = [\"api\"]\nalgorithms = [\"HS256\"]\nsecret_env = \"K\"\n"
        )
    };
    let text = second("\"accounts\" # again", "\"https://other.test\"");
    let message = invalid(&text, "providers[1].name", "# again");
    assert!(message.contains("providers[0]"), "{message}");

    let text = second("\"partners\"", "\"https://accounts.test\" # again");
    let message = invalid(&text, "providers[1].issuer", "# again");
    assert!(message.contains("providers[0]"), "{message}");
}

#[test]
fn a_provider_issuer_may_not_be_empty() {
    let text = MINIMAL.replace("\"https://accounts.test\"", "\"\"");
    invalid(&text, "providers[0].issuer", "issuer");
}

#[test]
fn audiences_must_be_a_non_empty_list_of_non_empty_strings() {
    let text = MINIMAL.replace("[\"api\"]", "[]");
    invalid(&text, "providers[0].audiences", "audiences");
    let text = MINIMAL.replace("[\"api\"]", "[\n  \"api\",\n  \"\",\n]");
    invalid(&text, "providers[0].audiences", "  \"\",");
}

#[test]
fn the_none_algorithm_is_refused_with_its_own_message() {
    for none in ["none", "None", "NONE"] {
        let text = MINIMAL.replace("[\"HS256\"]", &format!("[\"HS256\", {none:?}]"));
        let message = invalid(&text, "providers[0].algorithms", "algorithms");
        assert!(
            message.contains("unsigned tokens are never accepted"),
            "{message}"
        );
    }
}

#[test]
fn algorithms_must_be_known_listed_once_and_present() {
    let text = MINIMAL.replace("[\"HS256\"]", "[\"HS256\", \"hs256\"]");
    let message = invalid(&text, "providers[0].algorithms", "algorithms");
    assert!(message.contains("\"hs256\""), "{message}");

    let list = "[\n  \"HS256\",\n  \"HS384\",\n  \"HS256\", # again\n]";
    let text = MINIMAL.replace("[\"HS256\"]", list);
    let message = invalid(&text, "providers[0].algorithms", "# again");
    assert!(message.contains("twice"), "{message}");

    let text = MINIMAL.replace("[\"HS256\"]", "[]");
    invalid(&text, "providers[0].algorithms", "algorithms");
}

#[test]
fn a_provider_needs_a_key_source() {
    let text = provider_keys("[\"HS256\"]", "");
    let message = invalid(&text, "providers[0]", "[[providers]]");
    assert!(
        message.contains("secret_env, secret_file, jwks_file or jwks_uri"),
        "{message}"
    );
}

#[test]
fn secret_env_and_secret_file_are_exclusive() {
    let text = provider_keys(
        "[\"HS256\"]",
        "secret_env = \"K\"\nsecret_file = \"k.key\"\n",
    );
    invalid(&text, "providers[0].secret_file", "secret_file");
}

#[test]
fn an_hmac_algorithm_needs_a_secret() {
    let text = provider_keys("[\"RS256\", \"HS512\"]", "jwks_file = \"jwks.json\"\n");
    let message = invalid(&text, "providers[0]", "[[providers]]");
    assert!(message.contains("HS512"), "{message}");
}

#[test]
fn a_public_key_algorithm_needs_a_jwks_file_or_uri() {
    for algorithm in ["RS256", "PS384", "ES256", "EdDSA"] {
        let list = format!("[\"HS256\", {algorithm:?}]");
        let text = provider_keys(&list, "secret_env = \"K\"\n");
        let message = invalid(&text, "providers[0]", "[[providers]]");
        assert!(
            message.contains("neither jwks_file nor jwks_uri is set"),
            "{message}"
        );
    }
}

#[test]
fn a_secret_without_an_hmac_algorithm_is_refused() {
    let keys = "secret_env = \"K\"\njwks_file = \"jwks.json\"\n";
    let message = invalid(
        &provider_keys("[\"RS256\"]", keys),
        "providers[0]",
        "[[providers]]",
    );
    assert_eq!(
        message,
        "secret_env is set but algorithms allows no HMAC algorithm"
    );

    let keys = "secret_file = \"k.key\"\njwks_file = \"jwks.json\"\n";
    let message = invalid(
        &provider_keys("[\"ES256\"]", keys),
        "providers[0]",
        "[[providers]]",
    );
    assert_eq!(
        message,
        "secret_file is set but algorithms allows no HMAC algorithm"
    );
}

#[test]
fn a_jwks_file_without_a_public_key_algorithm_is_refused() {
    let keys = "secret_env = \"K\"\njwks_file = \"jwks.json\"\n";
    let message = invalid(
        &provider_keys("[\"HS256\"]", keys),
        "providers[0]",
        "[[providers]]",
    );
    assert_eq!(
        message,
        "jwks_file is set but algorithms allows no public-key algorithm"
    );
}

#[test]
fn the_second_provider_is_blamed_on_its_own_line() {
    let text = format!(
        "{MINIMAL}\n[[providers]] # second\nname = \"b\"\nissuer = \"j\"\n\
         audiences = [\"api\"]\nalgorithms = [\"RS256\"]\nsecret_env = \"K\"\n"
    );
    let message = invalid(&text, "providers[1]", "# second");
    assert!(message.contains("RS256"), "{message}");
}

#[test]
fn key_sources_are_located_for_later_errors() {
    let text = format!(
        "{UPSTREAM}[[providers]]\nname = \"a\"\nissuer = \"i\"\naudiences = [\"x\"]\n\
         algorithms = [\"HS256\"]\nsecret_env = \"K\"\n\
         [[providers]]\nname = \"b\"\nissuer = \"j\"\naudiences = [\"x\"]\n\
         algorithms = [\"HS256\", \"RS256\"]\nsecret_file = \"secrets/b.key\"\n\
         jwks_file = \"config/b.json\"\n"
    );
    let settings = load(&text);
    let b = &settings.providers[1];

    let secret = b.secret.as_ref().expect("secret is set");
    assert!(
        matches!(&secret.value, SecretSource::File(paths) if paths == &[Path::new("secrets/b.key")])
    );
    assert_eq!(secret.key, "providers[1].secret_file");
    assert_eq!(
        secret.origin,
        format!("test.toml:{}", line_of(&text, "secret_file"))
    );

    let jwks = b.jwks_file.as_ref().expect("jwks_file is set");
    assert_eq!(jwks.key, "providers[1].jwks_file");
    assert_eq!(
        jwks.origin,
        format!("test.toml:{}", line_of(&text, "jwks_file"))
    );
}

#[test]
fn empty_key_source_names_are_refused() {
    let text = provider_keys("[\"HS256\"]", "secret_env = \"\"\n");
    invalid(&text, "providers[0].secret_env", "secret_env");
    let text = provider_keys("[\"HS256\"]", "secret_file = \"\"\n");
    invalid(&text, "providers[0].secret_file", "secret_file");
    let text = provider_keys("[\"RS256\"]", "jwks_file = \"\"\n");
    invalid(&text, "providers[0].jwks_file", "jwks_file");
}

#[test]
fn leeway_is_capped_at_five_minutes() {
    let text = format!("{MINIMAL}leeway = \"5m\"\n");
    assert_eq!(load(&text).providers[0].leeway, Duration::from_secs(300));

    let text = format!("{MINIMAL}leeway = \"5m 1s\"\n");
    invalid(&text, "providers[0].leeway", "leeway");
    let text = format!("{MINIMAL}leeway = \"thirty\"\n");
    invalid(&text, "providers[0].leeway", "leeway");
}

#[test]
fn roles_claim_may_be_a_pointer_but_not_empty() {
    let text = format!("{MINIMAL}roles_claim = \"/realm_access/roles\"\n");
    let expected = ClaimPath::Pointer("/realm_access/roles".into());
    assert_eq!(load(&text).providers[0].roles_claim, [expected]);

    let text = format!("{MINIMAL}roles_claim = \"\"\n");
    invalid(&text, "providers[0].roles_claim", "roles_claim");
}

// --- claim_to_headers --------------------------------------------------------

/// Builds a file whose provider maps the given `header = claim` lines.
fn with_headers(lines: &str) -> String {
    format!("{MINIMAL}[providers.claim_to_headers]\n{lines}")
}

#[test]
fn claim_headers_keep_file_order_and_are_stored_lower_case() {
    let text = with_headers("\"X-Z\" = \"sub\"\n\"X-A\" = \"/org/id\"\n\"X-M\" = \"email\"\n");
    let headers = &load(&text).providers[0].claim_to_headers;
    let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["x-z", "x-a", "x-m"]);
    assert_eq!(headers[1].1, ClaimPath::Pointer("/org/id".into()));
}

#[test]
fn claim_headers_clash_ignoring_case() {
    let text = with_headers("\"X-User-Id\" = \"sub\"\n\"x-user-id\" = \"uid\"\n");
    let key = "providers[0].claim_to_headers.x-user-id";
    let message = invalid(&text, key, "\"x-user-id\" =");
    assert!(message.contains("\"X-User-Id\""), "{message}");
}

#[test]
fn claim_headers_clash_with_underscore_read_as_dash() {
    let text = with_headers("\"x-user-id\" = \"sub\"\n\"X-User_Id\" = \"uid\"\n");
    let key = "providers[0].claim_to_headers.X-User_Id";
    let message = invalid(&text, key, "X-User_Id");
    assert!(message.contains("clashes"), "{message}");
}

#[test]
fn reserved_headers_cannot_carry_claims() {
    for name in [
        "Authorization",
        "X_Forwarded_For",
        "content-length",
        "X-Request-Id",
        "TE",
    ] {
        let text = with_headers(&format!("{name:?} = \"sub\"\n"));
        let key = format!("providers[0].claim_to_headers.{name}");
        let message = invalid(&text, &key, &format!("{name:?} ="));
        assert!(message.contains("reserved"), "{message}");
    }
}

#[test]
fn claim_header_names_and_claims_must_be_valid() {
    let text = with_headers("\"X User\" = \"sub\"\n");
    invalid(&text, "providers[0].claim_to_headers.\"X User\"", "X User");
    let text = with_headers("\"X-Empty\" = \"\"\n");
    invalid(&text, "providers[0].claim_to_headers.X-Empty", "X-Empty");
}
