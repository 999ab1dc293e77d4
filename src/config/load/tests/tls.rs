//! Tests for the TLS keys: `[listen.tls]` and the `https` keys of the
//! upstream and the account store.

use super::{MINIMAL, invalid, line_of, load, minimal_with, parse_error};

/// [`MINIMAL`] with an `https` upstream and `lines` in its table.
fn https_upstream(lines: &str) -> String {
    MINIMAL.replace(
        "url = \"http://127.0.0.1:8000\"",
        &format!("url = \"https://game.internal:8443\"\n{lines}"),
    )
}

#[test]
fn listen_tls_names_a_certificate_and_a_key() {
    let text = format!(
        "[listen]\naddress = \"127.0.0.1:8443\"\n[listen.tls]\ncert_file = \"tls/cert.pem\"\n\
         key_file = \"tls/key.pem\"\n{MINIMAL}"
    );
    let settings = load(&text);
    let tls = settings.listen.tls.as_ref().expect("listen.tls is set");
    assert_eq!(tls.cert_file.value.to_str(), Some("tls/cert.pem"));
    assert_eq!(tls.cert_file.key, "listen.tls.cert_file");
    let line = line_of(&text, "cert_file");
    assert_eq!(tls.cert_file.origin, format!("test.toml:{line}"));
    assert_eq!(tls.key_file.key, "listen.tls.key_file");
}

#[test]
fn listen_tls_is_off_by_default() {
    assert!(load(MINIMAL).listen.tls.is_none());
}

#[test]
fn listen_tls_needs_both_files_and_no_other_key() {
    let (_, message) = parse_error(&format!(
        "[listen.tls]\ncert_file = \"cert.pem\"\n{MINIMAL}"
    ));
    assert!(message.contains("missing field `key_file`"), "{message}");

    let (_, message) = parse_error(&format!(
        "[listen.tls]\ncert_file = \"c\"\nkey_file = \"k\"\nca_file = \"ca\"\n{MINIMAL}"
    ));
    assert!(message.contains("unknown field `ca_file`"), "{message}");

    let text = format!("[listen.tls]\ncert_file = \"\"\nkey_file = \"k\"\n{MINIMAL}");
    invalid(&text, "listen.tls.cert_file", "cert_file");
}

#[test]
fn an_https_upstream_reads_its_ca_file_and_client_certificate() {
    let text = https_upstream(
        "ca_file = \"ca.pem\"\nclient_cert_file = \"client.pem\"\nclient_key_file = \"client.key\"",
    );
    let settings = load(&text);
    let tls = &settings.upstream.tls;
    let ca = tls.ca_file.as_ref().expect("ca_file is set");
    assert_eq!(ca.key, "upstream.ca_file");
    assert_eq!(
        ca.origin,
        format!("test.toml:{}", line_of(&text, "ca_file"))
    );
    let client = tls.client_cert.as_ref().expect("client certificate is set");
    assert_eq!(client.cert_file.key, "upstream.client_cert_file");
    assert_eq!(client.key_file.value.to_str(), Some("client.key"));
    assert_eq!(tls.files().count(), 3);
}

#[test]
fn a_client_certificate_needs_its_key_and_the_key_its_certificate() {
    let text = https_upstream("client_cert_file = \"client.pem\"");
    let message = invalid(&text, "upstream.client_cert_file", "client_cert_file");
    assert_eq!(
        message,
        "client_cert_file is set but client_key_file is not"
    );

    let text = https_upstream("client_key_file = \"client.key\"");
    let message = invalid(&text, "upstream.client_key_file", "client_key_file");
    assert_eq!(
        message,
        "client_key_file is set but client_cert_file is not"
    );
}

#[test]
fn tls_keys_on_a_plain_http_service_are_refused() {
    let text = MINIMAL.replace(
        "url = \"http://127.0.0.1:8000\"",
        "url = \"http://127.0.0.1:8000\"\nca_file = \"ca.pem\"",
    );
    let message = invalid(&text, "upstream.ca_file", "ca_file");
    assert_eq!(message, "ca_file is set but upstream.url is plain http");

    let text = minimal_with(
        "[account_store]\nurl = \"http://127.0.0.1:8001\"\nclient_cert_file = \"c.pem\"\n",
    );
    invalid(&text, "account_store.client_cert_file", "client_cert_file");
}

#[test]
fn an_https_account_store_has_its_own_tls_keys() {
    let text = minimal_with(
        "[account_store]\nurl = \"https://accounts.internal\"\nca_file = \"accounts-ca.pem\"\n",
    );
    let settings = load(&text);
    let store = settings.account_store.as_ref().expect("account store");
    let ca = store.tls.ca_file.as_ref().expect("ca_file is set");
    assert_eq!(ca.key, "account_store.ca_file");
    assert!(settings.upstream.tls.ca_file.is_none());
}
