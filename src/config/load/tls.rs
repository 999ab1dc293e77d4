//! Checks for the TLS keys: `[listen.tls]`, and the CA file and client
//! certificate of an `https` upstream or account store.
//!
//! Only the shape is checked here: which keys go together, and that paths
//! are not empty. The files themselves are read when a snapshot is built
//! (see [`crate::tls`]), at start and on every reload, so that a renewed
//! certificate is picked up; their errors name the same file, line and key.

use http::Uri;
use toml::Spanned;

use super::Document;
use super::provider::file_path;
use crate::config::raw::ListenTlsConfig;
use crate::config::{CertificateFiles, ClientTlsSettings, ConfigError};

/// Checks the `[listen.tls]` table; serde has already required both keys.
pub(super) fn listen(
    doc: Document<'_>,
    table: &Spanned<ListenTlsConfig>,
) -> Result<CertificateFiles, ConfigError> {
    let raw = table.get_ref();
    Ok(CertificateFiles {
        cert_file: file_path(doc, &raw.cert_file, "listen.tls.cert_file".to_owned())?,
        key_file: file_path(doc, &raw.key_file, "listen.tls.key_file".to_owned())?,
    })
}

/// Holds the TLS keys of a service table as written, so that the upstream
/// and the account store share one check.
pub(super) struct ClientTlsKeys<'a> {
    /// The table's name, such as `upstream`, for error keys.
    pub(super) section: &'static str,
    /// `ca_file`, if written.
    pub(super) ca_file: Option<&'a Spanned<String>>,
    /// `client_cert_file`, if written.
    pub(super) client_cert_file: Option<&'a Spanned<String>>,
    /// `client_key_file`, if written.
    pub(super) client_key_file: Option<&'a Spanned<String>>,
}

/// Checks the TLS keys of a service whose URL is `url`.
///
/// They mean something only for `https`, so with a plain `http` URL any of
/// them is refused rather than ignored: most likely the URL was meant to
/// change too. A client certificate needs both of its files.
pub(super) fn client(
    doc: Document<'_>,
    url: &Uri,
    keys: ClientTlsKeys<'_>,
) -> Result<ClientTlsSettings, ConfigError> {
    let key = |name: &str| format!("{}.{name}", keys.section);
    let written = [
        ("ca_file", keys.ca_file),
        ("client_cert_file", keys.client_cert_file),
        ("client_key_file", keys.client_key_file),
    ];
    if url.scheme_str() != Some("https") {
        let first = written
            .iter()
            .find_map(|(name, value)| value.map(|v| (*name, v)));
        if let Some((name, value)) = first {
            let message = format!("{name} is set but {} is plain http", key("url"));
            return Err(doc.invalid(value.span(), &key(name), message));
        }
        return Ok(ClientTlsSettings::default());
    }

    let ca_file = keys
        .ca_file
        .map(|path| file_path(doc, path, key("ca_file")))
        .transpose()?;
    let client_cert = match (keys.client_cert_file, keys.client_key_file) {
        (None, None) => None,
        (Some(cert), None) => {
            let message = "client_cert_file is set but client_key_file is not";
            return Err(doc.invalid(cert.span(), &key("client_cert_file"), message));
        }
        (None, Some(private)) => {
            let message = "client_key_file is set but client_cert_file is not";
            return Err(doc.invalid(private.span(), &key("client_key_file"), message));
        }
        (Some(cert), Some(private)) => Some(CertificateFiles {
            cert_file: file_path(doc, cert, key("client_cert_file"))?,
            key_file: file_path(doc, private, key("client_key_file"))?,
        }),
    };
    Ok(ClientTlsSettings {
        ca_file,
        client_cert,
    })
}
