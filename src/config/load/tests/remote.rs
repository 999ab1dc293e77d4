//! Tests for a provider's remote JWKS: `jwks_uri` and its companions.

use std::path::Path;
use std::time::Duration;

use super::{invalid, line_of, load, provider_keys};

/// Builds a file with one RS256 provider whose keys come from `keys`.
fn remote(keys: &str) -> String {
    provider_keys("[\"RS256\"]", keys)
}

const URI: &str = "jwks_uri = \"https://login.test/tenant/keys?appid=7\"\n";

#[test]
fn a_jwks_uri_alone_serves_public_key_algorithms_with_defaults() {
    let settings = load(&remote(URI));
    let remote = settings.providers[0]
        .remote_jwks
        .as_ref()
        .expect("jwks_uri is set");
    assert_eq!(remote.uri.value, "https://login.test/tenant/keys?appid=7");
    assert_eq!(remote.uri.key, "providers[0].jwks_uri");
    assert_eq!(remote.refresh_interval, Duration::from_secs(300));
    assert_eq!(remote.min_refetch_interval, Duration::from_secs(10));
    assert_eq!(remote.max_stale, Duration::from_secs(24 * 3600));
    assert_eq!(remote.fetch_timeout, Duration::from_secs(5));
    assert!(remote.ca_file.is_none());
}

#[test]
fn a_jwks_uri_may_sit_beside_a_secret_and_a_jwks_file() {
    let keys = format!("secret_env = \"K\"\njwks_file = \"jwks.json\"\n{URI}");
    let text = provider_keys("[\"HS256\", \"ES256\"]", &keys);
    let provider = &load(&text).providers[0];
    assert!(provider.secret.is_some());
    assert!(provider.jwks_file.is_some());
    assert!(provider.remote_jwks.is_some());
}

#[test]
fn written_intervals_and_ca_file_are_read() {
    let keys = format!(
        "{URI}jwks_refresh_interval = \"1m\"\nmin_refetch_interval = \"500ms\"\n\
         max_stale = \"2h\"\njwks_fetch_timeout = \"2s\"\nca_file = \"certs/ca.pem\"\n"
    );
    let text = remote(&keys);
    let settings = load(&text);
    let remote = settings.providers[0].remote_jwks.as_ref().expect("set");
    assert_eq!(remote.refresh_interval, Duration::from_secs(60));
    assert_eq!(remote.min_refetch_interval, Duration::from_millis(500));
    assert_eq!(remote.max_stale, Duration::from_secs(7200));
    assert_eq!(remote.fetch_timeout, Duration::from_secs(2));
    let ca = remote.ca_file.as_ref().expect("ca_file is set");
    assert_eq!(ca.value, Path::new("certs/ca.pem"));
    assert_eq!(ca.key, "providers[0].ca_file");
    assert_eq!(
        ca.origin,
        format!("test.toml:{}", line_of(&text, "ca_file"))
    );
}

#[test]
fn a_jwks_uri_must_be_an_http_or_https_url_with_a_host() {
    for uri in [
        "ftp://login.test/keys",
        "login.test/keys",
        "https://user:pw@login.test/keys",
        "https://login.test/keys#frag",
        "https:///keys",
        "https://login.test:0/keys",
        "",
    ] {
        let text = remote(&format!("jwks_uri = {uri:?} # here\n"));
        invalid(&text, "providers[0].jwks_uri", "# here");
    }
}

#[test]
fn plain_http_is_allowed_when_the_url_says_so() {
    let text = remote("jwks_uri = \"http://127.0.0.1:9000/jwks\"\n");
    let remote = load(&text).providers[0].remote_jwks.clone().expect("set");
    assert_eq!(remote.uri.value.scheme_str(), Some("http"));
}

#[test]
fn companions_without_a_jwks_uri_are_refused() {
    for key in [
        "jwks_refresh_interval",
        "min_refetch_interval",
        "max_stale",
        "jwks_fetch_timeout",
    ] {
        let text = remote(&format!("jwks_file = \"j.json\"\n{key} = \"1m\"\n"));
        let message = invalid(&text, &format!("providers[0].{key}"), &format!("{key} ="));
        assert_eq!(message, format!("{key} is set but jwks_uri is not"));
    }
    let text = remote("jwks_file = \"j.json\"\nca_file = \"ca.pem\"\n");
    invalid(&text, "providers[0].ca_file", "ca_file");
}

#[test]
fn intervals_must_be_positive_durations() {
    for key in [
        "jwks_refresh_interval",
        "min_refetch_interval",
        "max_stale",
        "jwks_fetch_timeout",
    ] {
        let text = remote(&format!("{URI}{key} = \"0s\"\n"));
        invalid(&text, &format!("providers[0].{key}"), &format!("{key} ="));
        let text = remote(&format!("{URI}{key} = \"often\"\n"));
        invalid(&text, &format!("providers[0].{key}"), &format!("{key} ="));
    }
}

#[test]
fn the_minimum_refetch_interval_may_not_exceed_the_refresh_interval() {
    let text = remote(&format!(
        "{URI}jwks_refresh_interval = \"30s\"\nmin_refetch_interval = \"1m\"\n"
    ));
    let message = invalid(
        &text,
        "providers[0].min_refetch_interval",
        "min_refetch_interval",
    );
    assert!(
        message.contains("longer than jwks_refresh_interval"),
        "{message}"
    );
}

#[test]
fn a_ca_file_needs_an_https_jwks_uri() {
    let text = remote("jwks_uri = \"http://127.0.0.1:9000/jwks\"\nca_file = \"ca.pem\"\n");
    let message = invalid(&text, "providers[0].ca_file", "ca_file");
    assert!(message.contains("plain http"), "{message}");
    let text = remote(&format!("{URI}ca_file = \"\"\n"));
    invalid(&text, "providers[0].ca_file", "ca_file");
}

#[test]
fn a_jwks_uri_without_a_public_key_algorithm_is_refused() {
    let keys = format!("secret_env = \"K\"\n{URI}");
    let message = invalid(
        &provider_keys("[\"HS256\"]", &keys),
        "providers[0]",
        "[[providers]]",
    );
    assert_eq!(
        message,
        "jwks_uri is set but algorithms allows no public-key algorithm"
    );
}
