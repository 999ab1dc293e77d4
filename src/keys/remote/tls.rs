//! The TLS client settings for fetching a JWKS: rustls on aws-lc-rs,
//! trusting the system roots plus any CA file the provider names.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use crate::config::Located;
use crate::keys::KeyError;

/// Builds the TLS client settings for an `https` JWKS URL.
///
/// The system roots are read once per source, when it is created: a
/// running sidecar does not see CA bundle changes until a reload replaces
/// the source, which is the usual behaviour of long-lived clients.
pub(super) fn client_config(ca_file: Option<&Located<PathBuf>>) -> Result<ClientConfig, KeyError> {
    let mut roots = RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    for error in &system.errors {
        tracing::debug!(error = %error, "a system root certificate could not be read");
    }
    let (added, _ignored) = roots.add_parsable_certificates(system.certs);

    if let Some(file) = ca_file {
        for certificate in read_bundle(file)? {
            roots
                .add(certificate)
                .map_err(|error| ca_error(file, error))?;
        }
    } else if added == 0 {
        tracing::warn!("no system root certificates found; set ca_file for an https jwks_uri");
    }

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the aws-lc-rs provider supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Reads every certificate of a PEM bundle; a file with none is refused,
/// since it cannot be what the operator meant.
fn read_bundle(file: &Located<PathBuf>) -> Result<Vec<CertificateDer<'static>>, KeyError> {
    let bytes = crate::config::file::read_file(&file.value).map_err(|source| KeyError::Read {
        origin: file.origin.clone(),
        key: file.key.clone(),
        path: file.value.clone(),
        source,
    })?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| ca_error(file, error))?;
    if certificates.is_empty() {
        return Err(ca_error(file, "holds no PEM certificate"));
    }
    Ok(certificates)
}

fn ca_error(file: &Located<PathBuf>, message: impl ToString) -> KeyError {
    KeyError::CaFile {
        origin: file.origin.clone(),
        key: file.key.clone(),
        path: file.value.clone(),
        message: message.to_string(),
    }
}

/// Builds TLS client settings that trust nothing, for a plain `http` URL:
/// the connector wants some, and reading the system roots for a client
/// that will never use them would only cost start-up time.
pub(super) fn client_config_without_roots() -> ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the aws-lc-rs provider supports the default TLS versions")
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth()
}
