//! Loading a provider's keys from the places its settings name.

use std::path::{Path, PathBuf};

use jsonwebtoken::DecodingKey;

use super::{KeySet, parse_jwks};
use crate::config::{Located, ProviderSettings, SecretSource};

/// The shortest HMAC secret accepted: RFC 7518 section 3.2 requires a key
/// at least as long as the hash output, and HS256's is 32 bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Says why a provider's keys could not be loaded, naming the config key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The secret's environment variable is unset or not UTF-8.
    #[error("{origin}: {key}: environment variable {name} is not set")]
    EnvUnset {
        /// `file:line` of the config key.
        origin: String,
        /// The config key.
        key: String,
        /// The variable.
        name: String,
    },
    /// A key file could not be read.
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
    /// The secret is too short to be safe.
    #[error(
        "{origin}: {key}: the HMAC secret is {len} bytes; at least {MIN_SECRET_BYTES} are required"
    )]
    ShortSecret {
        /// `file:line` of the config key.
        origin: String,
        /// The config key.
        key: String,
        /// Its length.
        len: usize,
    },
    /// The CA file of a `jwks_uri` holds no usable certificate.
    #[error("{origin}: {key}: {}: {message}", path.display())]
    CaFile {
        /// `file:line` of the config key.
        origin: String,
        /// The config key.
        key: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The JWKS file is not a JWKS, or holds no usable key.
    #[error("{origin}: {key}: {}: {message}", path.display())]
    Jwks {
        /// `file:line` of the config key.
        origin: String,
        /// The config key.
        key: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Loads the keys a provider's settings name.
///
/// `env` looks up environment variables; it is a parameter so that tests
/// and the demo can supply secrets without touching the process environment.
/// Returns the key set and one line per JWKS key that was skipped.
pub fn load(
    provider: &ProviderSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(KeySet, Vec<String>), KeyError> {
    let secrets = match &provider.secret {
        Some(source) => vec![read_secret(source, env)?],
        None => Vec::new(),
    };

    let (public, skipped) = match &provider.jwks_file {
        Some(file) => read_jwks(file)?,
        None => (Vec::new(), Vec::new()),
    };

    Ok((KeySet::new(secrets, public), skipped))
}

fn read_secret(
    source: &Located<SecretSource>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<DecodingKey, KeyError> {
    let bytes = match &source.value {
        SecretSource::Env(name) => env(name)
            .ok_or_else(|| KeyError::EnvUnset {
                origin: source.origin.clone(),
                key: source.key.clone(),
                name: name.clone(),
            })?
            .into_bytes(),
        SecretSource::File(path) => {
            let mut bytes = read_file(source, path)?;
            if bytes.last() == Some(&b'\n') {
                bytes.pop();
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
            }
            bytes
        }
    };

    if bytes.len() < MIN_SECRET_BYTES {
        return Err(KeyError::ShortSecret {
            origin: source.origin.clone(),
            key: source.key.clone(),
            len: bytes.len(),
        });
    }
    DecodingKey::from_secret(&bytes).map_err(|_| KeyError::ShortSecret {
        origin: source.origin.clone(),
        key: source.key.clone(),
        len: bytes.len(),
    })
}

fn read_jwks(file: &Located<PathBuf>) -> Result<(Vec<super::PublicKey>, Vec<String>), KeyError> {
    let bytes = read_file(file, &file.value)?;
    let jwks_error = |message: String| KeyError::Jwks {
        origin: file.origin.clone(),
        key: file.key.clone(),
        path: file.value.clone(),
        message,
    };

    let parsed = parse_jwks(&bytes).map_err(|err| jwks_error(err.to_string()))?;
    if parsed.keys.is_empty() {
        let why = match parsed.skipped.first() {
            Some(first) => format!("no usable key (first skipped: {first})"),
            None => "no keys".to_owned(),
        };
        return Err(jwks_error(why));
    }
    Ok((parsed.keys, parsed.skipped))
}

fn read_file<T>(at: &Located<T>, path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Read {
        origin: at.origin.clone(),
        key: at.key.clone(),
        path: path.to_owned(),
        source,
    })
}
