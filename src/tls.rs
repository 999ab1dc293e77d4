//! TLS material read from PEM files: the listener's server settings, and
//! the client settings for the services tollgate forwards to and the JWKS
//! endpoints it fetches from.
//!
//! Everything here runs when a snapshot is built (at start and on every
//! reload), never on the request path. The snapshot carries the result as
//! [`TlsMaterial`]; each accepted connection and each new connection to a
//! service takes the settings of the snapshot in force. So a renewed
//! certificate is in use from the next connection on, and a file that does
//! not load refuses the reload and leaves the running settings in place.
//!
//! rustls runs on aws-lc-rs, the provider the token checks use too.

use std::path::PathBuf;
use std::sync::Arc;

use http::Uri;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::config::{CertificateFiles, ClientTlsSettings, Located, Settings};

/// The protocols the listener offers through ALPN, preferred first.
const SERVER_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The protocol offered to services: forwarding always speaks HTTP/1.1.
const CLIENT_ALPN: &[u8] = b"http/1.1";

/// Says why a certificate, private key or CA file could not be used,
/// naming the config key and line that named it.
///
/// Messages about private keys are fixed phrases: nothing read from a key
/// file ever reaches a log line.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("{origin}: {key}: cannot read {}: {source}", path.display())]
    Read {
        /// `file:line` of the config key.
        origin: String,
        /// The config key.
        key: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not PEM, or holds nothing of the kind the key needs.
    #[error("{origin}: {key}: {}: {message}", path.display())]
    Pem {
        /// `file:line` of the config key.
        origin: String,
        /// The config key.
        key: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the certificate chain and key together: the key does
    /// not belong to the certificate, or is of a type it cannot use.
    #[error("{origin}: {key}: {message}")]
    Refused {
        /// `file:line` of the config key.
        origin: String,
        /// The config key (the private key's).
        key: String,
        /// What rustls said, with both files named.
        message: String,
    },
}

impl TlsError {
    /// Returns the config key at fault.
    pub fn key(&self) -> &str {
        match self {
            TlsError::Read { key, .. }
            | TlsError::Pem { key, .. }
            | TlsError::Refused { key, .. } => key,
        }
    }
}

// --- TlsMaterial ---

/// Holds the TLS settings built from one snapshot's settings.
#[derive(Clone)]
pub struct TlsMaterial {
    /// The listener's server settings, when `[listen.tls]` is set.
    pub listener: Option<Arc<ServerConfig>>,
    /// The client settings for the upstream.
    pub upstream: Arc<ClientConfig>,
    /// The client settings for the account store.
    pub account_store: Arc<ClientConfig>,
}

impl TlsMaterial {
    /// Reads every certificate, key and CA file the settings name.
    ///
    /// A service with a plain `http` URL gets client settings that trust
    /// nothing: the connector needs some, and they are never used.
    pub fn try_from_settings(settings: &Settings) -> Result<Self, TlsError> {
        let listener = settings
            .listen
            .tls
            .as_ref()
            .map(server_config)
            .transpose()?;
        let upstream = &settings.upstream;
        let upstream = service_client_config(&upstream.url, &upstream.tls, "upstream.url")?;
        let account_store = match &settings.account_store {
            Some(store) => service_client_config(&store.url, &store.tls, "account_store.url")?,
            None => Arc::new(client_config_without_roots()),
        };
        Ok(TlsMaterial {
            listener,
            upstream,
            account_store,
        })
    }
}

/// Builds the listener's server settings from a certificate chain and its
/// key, offering HTTP/2 and HTTP/1.1 through ALPN.
pub fn server_config(files: &CertificateFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_certificates(&files.cert_file)?;
    let key = read_private_key(&files.key_file)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the aws-lc-rs provider supports the default TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| refused(files, &error))?;
    config.alpn_protocols = SERVER_ALPN.iter().map(|name| name.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Builds the client settings for a service tollgate forwards to.
fn service_client_config(
    url: &Uri,
    settings: &ClientTlsSettings,
    url_key: &str,
) -> Result<Arc<ClientConfig>, TlsError> {
    if url.scheme_str() != Some("https") {
        return Ok(Arc::new(client_config_without_roots()));
    }
    let ca_file = settings.ca_file.as_ref();
    let mut config = client_config(ca_file, settings.client_cert.as_ref(), url_key)?;
    config.alpn_protocols = vec![CLIENT_ALPN.to_vec()];
    Ok(Arc::new(config))
}

// --- client settings ---

/// Builds TLS client settings that trust the system roots plus `ca_file`,
/// and present `identity` when the server asks for a client certificate.
///
/// `url_key` names the URL these settings serve, for the warning logged
/// when there are no system roots and no `ca_file` either.
///
/// The system roots are read on every call, which happens at start and on
/// reload: a running sidecar sees CA bundle changes with its next reload.
pub fn client_config(
    ca_file: Option<&Located<PathBuf>>,
    identity: Option<&CertificateFiles>,
    url_key: &str,
) -> Result<ClientConfig, TlsError> {
    let roots = root_store(ca_file, url_key)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the aws-lc-rs provider supports the default TLS versions")
        .with_root_certificates(roots);
    let Some(files) = identity else {
        return Ok(builder.with_no_client_auth());
    };
    let chain = read_certificates(&files.cert_file)?;
    let key = read_private_key(&files.key_file)?;
    builder
        .with_client_auth_cert(chain, key)
        .map_err(|error| refused(files, &error))
}

/// Builds TLS client settings that trust nothing, for a plain `http` URL:
/// the connector wants some, and reading the system roots for a client
/// that never uses them would only cost time.
pub fn client_config_without_roots() -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the aws-lc-rs provider supports the default TLS versions")
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth()
}

/// Collects the system roots and the certificates of `ca_file`.
fn root_store(
    ca_file: Option<&Located<PathBuf>>,
    url_key: &str,
) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    for error in &system.errors {
        tracing::debug!(error = %error, "a system root certificate could not be read");
    }
    let (added, _ignored) = roots.add_parsable_certificates(system.certs);

    if let Some(file) = ca_file {
        for certificate in read_certificates(file)? {
            roots
                .add(certificate)
                .map_err(|error| pem_error(file, error.to_string()))?;
        }
    } else if added == 0 {
        tracing::warn!(
            config.key = url_key,
            "no system root certificates found; set a ca_file beside this https url"
        );
    }
    Ok(roots)
}

// --- reading PEM ---

/// Reads every certificate of a PEM file; a file with none is refused,
/// since it cannot be what the operator meant.
fn read_certificates(file: &Located<PathBuf>) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(file)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(file, error.to_string()))?;
    if certificates.is_empty() {
        return Err(pem_error(file, "holds no PEM certificate"));
    }
    Ok(certificates)
}

/// Reads the first private key of a PEM file, in any of the three usual
/// encodings.
fn read_private_key(file: &Located<PathBuf>) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(file)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| {
        // Fixed phrases only: the parser's own message may quote the file.
        let message = match error {
            pem::Error::NoItemsFound => "holds no PEM private key (PKCS#8, RSA or EC)",
            _ => "is not valid PEM",
        };
        pem_error(file, message)
    })
}

fn read(file: &Located<PathBuf>) -> Result<Vec<u8>, TlsError> {
    crate::config::file::read_file(&file.value).map_err(|source| TlsError::Read {
        origin: file.origin.clone(),
        key: file.key.clone(),
        path: file.value.clone(),
        source,
    })
}

fn pem_error(file: &Located<PathBuf>, message: impl Into<String>) -> TlsError {
    TlsError::Pem {
        origin: file.origin.clone(),
        key: file.key.clone(),
        path: file.value.clone(),
        message: message.into(),
    }
}

/// Blames the key file: a chain that parsed but does not fit its key is
/// most often an old key left beside a renewed certificate.
fn refused(files: &CertificateFiles, error: &rustls::Error) -> TlsError {
    let key = &files.key_file;
    TlsError::Refused {
        origin: key.origin.clone(),
        key: key.key.clone(),
        message: format!(
            "{} cannot be used with the certificate in {}: {error}",
            key.value.display(),
            files.cert_file.value.display()
        ),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

#[cfg(test)]
mod tests;
