//! Tests for what issue 3 added to the file: secret lists for rotation,
//! `[providers.revoke]`, and the report-only `mode`.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use super::{MINIMAL, invalid, load, minimal_with, parse_error, provider_keys};
use crate::config::{EnforceMode, SecretSource};

// --- secret lists ------------------------------------------------------------

#[test]
fn secret_env_takes_one_name_or_a_list() {
    let text = provider_keys(
        "[\"HS256\"]",
        "secret_env = [\"JWT_SECRET_KEY\", \"JWT_SECRET_KEY_PREVIOUS\"]",
    );
    let settings = load(&text);
    let secret = settings.providers[0]
        .secret
        .as_ref()
        .expect("secret is set");
    assert!(matches!(
        &secret.value,
        SecretSource::Env(names) if names == &["JWT_SECRET_KEY", "JWT_SECRET_KEY_PREVIOUS"]
    ));
    assert_eq!(secret.key, "providers[0].secret_env");
}

#[test]
fn secret_file_takes_one_path_or_a_list() {
    let text = provider_keys("[\"HS256\"]", "secret_file = [\"new.key\", \"old.key\"]");
    let settings = load(&text);
    let secret = settings.providers[0]
        .secret
        .as_ref()
        .expect("secret is set");
    let expected = [PathBuf::from("new.key"), PathBuf::from("old.key")];
    assert!(matches!(&secret.value, SecretSource::File(paths) if paths == &expected));
}

#[test]
fn a_secret_list_must_be_non_empty_without_repeats() {
    for keys in [
        "secret_env = []",
        "secret_env = [\"A\", \"A\"]",
        "secret_env = [\"A\", \"\"]",
        "secret_file = [\"a.key\", \"a.key\"]",
    ] {
        let text = provider_keys("[\"HS256\"]", keys);
        let key = keys.split(' ').next().expect("a key");
        invalid(&text, &format!("providers[0].{key}"), keys);
    }
}

#[test]
fn a_secret_list_of_other_things_is_a_parse_error() {
    let text = provider_keys("[\"HS256\"]", "secret_env = [\"A\", 7]");
    let (origin, message) = parse_error(&text);
    assert!(origin.starts_with("test.toml:"), "{origin}");
    assert!(message.contains("string"), "{message}");
}

// --- revoke ------------------------------------------------------------------

#[test]
fn revoke_is_off_unless_written() {
    let settings = load(MINIMAL);
    let revoke = &settings.providers[0].revoke;
    assert!(revoke.issued_before.is_none());
    assert!(revoke.denylist_file.is_none());
}

#[test]
fn revoke_reads_a_utc_cut_off_and_a_denylist_file() {
    let text = format!(
        "{MINIMAL}[providers.revoke]\nissued_before = \"2024-05-01T00:00:00Z\"\n\
         denylist_file = \"config/denylist.txt\"\n"
    );
    let settings = load(&text);
    let revoke = &settings.providers[0].revoke;
    let expected = UNIX_EPOCH + Duration::from_secs(1_714_521_600);
    assert_eq!(revoke.issued_before, Some(expected));
    let file = revoke.denylist_file.as_ref().expect("denylist_file is set");
    assert_eq!(file.value, PathBuf::from("config/denylist.txt"));
    assert_eq!(file.key, "providers[0].revoke.denylist_file");
}

#[test]
fn a_cut_off_that_is_not_rfc_3339_utc_is_refused() {
    for bad in ["yesterday", "2024-05-01", "2024-05-01T00:00:00+02:00"] {
        let text = format!("{MINIMAL}[providers.revoke]\nissued_before = \"{bad}\"\n");
        let message = invalid(&text, "providers[0].revoke.issued_before", "issued_before");
        assert!(message.contains("RFC 3339"), "{message}");
    }
}

#[test]
fn an_unknown_revoke_key_is_a_parse_error_naming_its_line() {
    let text = format!("{MINIMAL}[providers.revoke]\nissued_befor = \"2024-05-01T00:00:00Z\"\n");
    let (origin, message) = parse_error(&text);
    let line = text.lines().count();
    assert!(
        origin.starts_with(&format!("test.toml:{line}:")),
        "{origin}"
    );
    assert!(message.contains("issued_befor"), "{message}");
}

// --- mode --------------------------------------------------------------------

#[test]
fn mode_defaults_to_enforce_and_rules_follow_it() {
    let settings = load(&minimal_with("[[rules]]\npath_prefix = \"/api/\"\n"));
    assert_eq!(settings.mode, EnforceMode::Enforce);
    assert_eq!(settings.rules[0].mode, None);
}

#[test]
fn mode_is_set_at_the_top_and_per_rule() {
    let text = format!(
        "mode = \"report_only\"\n{MINIMAL}\n[[rules]]\npath_prefix = \"/api/\"\n\
         mode = \"enforce\"\n"
    );
    let settings = load(&text);
    assert_eq!(settings.mode, EnforceMode::ReportOnly);
    assert_eq!(settings.rules[0].mode, Some(EnforceMode::Enforce));
}

#[test]
fn an_unknown_mode_is_a_parse_error() {
    let text = format!("mode = \"audit\"\n{MINIMAL}");
    let (origin, message) = parse_error(&text);
    assert!(origin.starts_with("test.toml:1:"), "{origin}");
    assert!(message.contains("report_only"), "{message}");
}

#[test]
fn a_public_rule_cannot_have_a_mode() {
    let text = minimal_with(
        "[[rules]]\npath = \"/health\"\npublic = true\nmode = \"report_only\" # here\n",
    );
    invalid(&text, "rules[0].mode", "# here");
}
