//! Tests for reading TLS material: the three private key encodings, and an
//! error naming the key and line for each way a file can be wrong.

use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;

/// Writes `text` as `name` in `dir` and locates it under `key`, on line 7.
fn file(dir: &Path, name: &str, text: &str, key: &str) -> Located<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the test file");
    Located {
        value: path,
        key: key.to_owned(),
        origin: "test.toml:7".to_owned(),
    }
}

/// A self-signed certificate for `key`, as PEM.
fn certificate_for(key: &rcgen::KeyPair) -> String {
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params.self_signed(key).expect("self-signed").pem()
}

/// Wraps DER in PEM armour with `label`.
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// Writes a certificate and key pair to `dir` and names them as the
/// listener's.
fn listener_files(dir: &Path, cert: &str, key: &str) -> CertificateFiles {
    CertificateFiles {
        cert_file: file(dir, "cert.pem", cert, "listen.tls.cert_file"),
        key_file: file(dir, "key.pem", key, "listen.tls.key_file"),
    }
}

#[test]
fn a_pkcs8_key_makes_a_server_that_offers_h2_then_http1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = rcgen::KeyPair::generate().expect("key");
    let files = listener_files(dir.path(), &certificate_for(&key), &key.serialize_pem());

    let config = server_config(&files).expect("server settings");
    assert_eq!(
        config.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
}

#[test]
fn an_ec_sec1_key_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("p256");
    let pkcs8 = pair.to_pkcs8v1().expect("pkcs8");
    let key = rcgen::KeyPair::try_from(pkcs8.as_ref()).expect("rcgen key");
    let sec1 = pair.private_key().as_der().expect("sec1");
    let files = listener_files(
        dir.path(),
        &certificate_for(&key),
        &pem("EC PRIVATE KEY", sec1.as_ref()),
    );

    server_config(&files).expect("an EC PRIVATE KEY is usable");
}

#[test]
fn an_rsa_pkcs1_key_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa");
    let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).expect("pkcs8");
    let key = rcgen::KeyPair::try_from(pkcs8.as_ref()).expect("rcgen key");
    let pkcs1 = pkcs1_inside(pkcs8.as_ref());
    let files = listener_files(
        dir.path(),
        &certificate_for(&key),
        &pem("RSA PRIVATE KEY", pkcs1),
    );

    server_config(&files).expect("an RSA PRIVATE KEY is usable");
}

/// Returns the PKCS#1 key inside an RSA PKCS#8 document: the octet string
/// after the version and the algorithm identifier (RFC 5208 section 5).
fn pkcs1_inside(pkcs8: &[u8]) -> &[u8] {
    let (_, info, _) = der_item(pkcs8);
    let (_, _, rest) = der_item(info); // version
    let (_, _, rest) = der_item(rest); // algorithm
    let (tag, key, _) = der_item(rest);
    assert_eq!(tag, 0x04, "an octet string holds the key");
    key
}

/// Splits one DER item into its tag, its contents and what follows.
fn der_item(bytes: &[u8]) -> (u8, &[u8], &[u8]) {
    let (tag, first) = (bytes[0], bytes[1]);
    let (len, start) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7f);
        let len = bytes[2..2 + count]
            .iter()
            .fold(0, |len, &byte| (len << 8) | usize::from(byte));
        (len, 2 + count)
    };
    (tag, &bytes[start..start + len], &bytes[start + len..])
}

#[test]
fn a_key_of_another_certificate_is_refused_naming_the_key_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = rcgen::KeyPair::generate().expect("key");
    let other = rcgen::KeyPair::generate().expect("other key");
    let files = listener_files(dir.path(), &certificate_for(&key), &other.serialize_pem());

    let error = server_config(&files).expect_err("mismatched key");
    assert!(matches!(error, TlsError::Refused { .. }), "{error:?}");
    assert_eq!(error.key(), "listen.tls.key_file");
    let message = error.to_string();
    assert!(
        message.starts_with("test.toml:7: listen.tls.key_file: "),
        "{message}"
    );
    assert!(message.contains("cert.pem"), "{message}");
}

#[test]
fn a_missing_file_is_named_with_its_key_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut files = listener_files(dir.path(), &certificate_for(&key), &key.serialize_pem());
    files.cert_file.value = dir.path().join("gone.pem");

    let error = server_config(&files).expect_err("missing file");
    assert!(matches!(error, TlsError::Read { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with("test.toml:7: listen.tls.cert_file: cannot read "),
        "{message}"
    );
}

#[test]
fn files_without_the_pem_they_need_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = rcgen::KeyPair::generate().expect("key");
    let certificate = certificate_for(&key);

    // A key where the certificate belongs, and the other way round.
    let files = listener_files(dir.path(), &key.serialize_pem(), &key.serialize_pem());
    let error = server_config(&files).expect_err("no certificate");
    assert!(
        error.to_string().ends_with("holds no PEM certificate"),
        "{error}"
    );
    let files = listener_files(dir.path(), &certificate, &certificate);
    let error = server_config(&files).expect_err("no key");
    assert_eq!(error.key(), "listen.tls.key_file");
    assert!(
        error.to_string().contains("holds no PEM private key"),
        "{error}"
    );

    // Broken armour: the message is a fixed phrase, never the file's text.
    let broken = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n";
    let files = listener_files(dir.path(), &certificate, broken);
    let error = server_config(&files).expect_err("broken key");
    assert!(error.to_string().ends_with("is not valid PEM"), "{error}");
}

#[test]
fn client_settings_carry_the_ca_and_the_client_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let ca = file(
        dir.path(),
        "ca.pem",
        &certificate_for(&ca_key),
        "upstream.ca_file",
    );
    let key = rcgen::KeyPair::generate().expect("key");
    let identity = CertificateFiles {
        cert_file: file(
            dir.path(),
            "client.pem",
            &certificate_for(&key),
            "upstream.client_cert_file",
        ),
        key_file: file(
            dir.path(),
            "client.key",
            &key.serialize_pem(),
            "upstream.client_key_file",
        ),
    };
    let settings = ClientTlsSettings {
        ca_file: Some(ca),
        client_cert: Some(identity),
    };
    let url: Uri = "https://game.internal".parse().expect("url");

    let config = service_client_config(&url, &settings, "upstream.url").expect("client");
    assert!(config.client_auth_cert_resolver.has_certs());
    assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);

    // A plain http URL reads nothing, so a missing file does not matter.
    let mut missing = settings.clone();
    if let Some(ca) = missing.ca_file.as_mut() {
        ca.value = dir.path().join("gone.pem");
    }
    let plain: Uri = "http://game.internal".parse().expect("url");
    service_client_config(&plain, &missing, "upstream.url").expect("plain http");
    service_client_config(&url, &missing, "upstream.url").expect_err("https reads it");
}
