//! Loading a provider's keys from the places its settings name.

use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, DecodingKey};

use super::{KeyDocumentKind, KeySet, parse_key_document};
use crate::config::{Located, ProviderSettings, SecretSource};
use crate::env::{Env, NotUnicodeError};

/// The shortest HMAC secret accepted: RFC 7518 section 3.2 requires a key
/// at least as long as the hash output, and HS256's is 32 bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Returns the shortest secret a provider allowing `algorithms` accepts,
/// and the algorithm that sets it: the longest hash output of its HMAC
/// algorithms (RFC 7518 section 3.2), or HS256's when it allows none. A
/// secret that is long enough for HS256 but not for HS512 would otherwise
/// verify HS512 tokens with less strength than the algorithm promises.
fn min_secret_bytes(algorithms: &[Algorithm]) -> (usize, Algorithm) {
    let hash_bytes = |alg: &Algorithm| match alg {
        Algorithm::HS512 => Some(64),
        Algorithm::HS384 => Some(48),
        Algorithm::HS256 => Some(MIN_SECRET_BYTES),
        _ => None,
    };
    algorithms
        .iter()
        .filter_map(|alg| Some((hash_bytes(alg)?, *alg)))
        .max_by_key(|(bytes, _)| *bytes)
        .unwrap_or((MIN_SECRET_BYTES, Algorithm::HS256))
}

/// Says why a provider's keys could not be loaded, naming the config key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The secret's environment variable is not set.
    #[error("{origin}: {key}: environment variable {name} is not set")]
    EnvUnset {
        /// `file:line` of the config key.
        origin: String,
        /// The config key.
        key: String,
        /// The variable.
        name: String,
    },
    /// The secret's environment variable is set but cannot be read as
    /// bytes: never on Unix, where any value is (see [`Env::bytes`]).
    #[error("{origin}: {key}: {source}")]
    EnvNotUnicode {
        /// `file:line` of the config key.
        origin: String,
        /// The config key.
        key: String,
        /// Which variable.
        #[source]
        source: NotUnicodeError,
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
        "{origin}: {key}: the HMAC secret from {place} is {len} bytes; {alg:?} needs \
         at least {min} (RFC 7518 section 3.2)"
    )]
    ShortSecret {
        /// `file:line` of the config key.
        origin: String,
        /// The config key.
        key: String,
        /// Which one of the secrets: a variable, or a line of a file.
        place: String,
        /// Its length.
        len: usize,
        /// The shortest length accepted.
        min: usize,
        /// The allowed algorithm that asks for `min`.
        alg: Algorithm,
    },
    /// A secret file holds only blank lines.
    #[error("{origin}: {key}: {} holds no secret", path.display())]
    NoSecret {
        /// `file:line` of the config key.
        origin: String,
        /// The config key.
        key: String,
        /// The file.
        path: PathBuf,
    },
    /// A provider's denylist file has a line that is not an entry.
    #[error("{origin}: {key}: {}:{line}: {message}", path.display())]
    Denylist {
        /// `file:line` of the config key.
        origin: String,
        /// The config key.
        key: String,
        /// The denylist file.
        path: PathBuf,
        /// The 1-based line at fault.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A CA file (of a `jwks_uri`, the upstream or the account store), or a
    /// certificate or private key for TLS, could not be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The key file is neither a JWKS nor an x509 map, or holds no usable
    /// key.
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
pub fn load(provider: &ProviderSettings, env: &Env) -> Result<(KeySet, Vec<String>), KeyError> {
    let min = min_secret_bytes(&provider.algorithms);
    let secrets = match &provider.secret {
        Some(source) => read_secrets(source, min, env)?,
        None => Vec::new(),
    };

    let (public, skipped) = match &provider.jwks_file {
        Some(file) => read_jwks(file, provider.keys_format)?,
        None => (Vec::new(), Vec::new()),
    };

    Ok((KeySet::new(secrets, public), skipped))
}

/// Reads every secret a source names, in the order written: during a
/// rotation that puts the new secret wherever the operator put it.
fn read_secrets(
    source: &Located<SecretSource>,
    min: (usize, Algorithm),
    env: &Env,
) -> Result<Vec<DecodingKey>, KeyError> {
    let mut secrets = Vec::new();
    match &source.value {
        SecretSource::Env(names) => {
            for name in names {
                let value = read_env(source, name, env)?;
                let place = format!("environment variable {name}");
                secrets.push(secret(source, &value, place, min)?);
            }
        }
        SecretSource::File(paths) => {
            for path in paths {
                let bytes = read_file(source, path)?;
                let before = secrets.len();
                for (at, line) in secret_lines(&bytes) {
                    let place = format!("line {at} of {}", path.display());
                    secrets.push(secret(source, line, place, min)?);
                }
                if secrets.len() == before {
                    return Err(KeyError::NoSecret {
                        origin: source.origin.clone(),
                        key: source.key.clone(),
                        path: path.clone(),
                    });
                }
            }
        }
    }
    Ok(secrets)
}

/// Reads one secret variable byte for byte. A secret is bytes, as a line
/// of a secret file is: one that is not UTF-8 is as good as one that is,
/// and only the length rule applies.
fn read_env(source: &Located<SecretSource>, name: &str, env: &Env) -> Result<Vec<u8>, KeyError> {
    let value = env.bytes(name).map_err(|error| KeyError::EnvNotUnicode {
        origin: source.origin.clone(),
        key: source.key.clone(),
        source: error,
    })?;
    value.ok_or_else(|| KeyError::EnvUnset {
        origin: source.origin.clone(),
        key: source.key.clone(),
        name: name.to_owned(),
    })
}

/// Splits a secret file into its non-blank lines, numbered from 1, each
/// without its line ending. The rest of a line is the secret byte for byte:
/// trimming spaces could quietly turn two different secrets into one.
fn secret_lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    bytes
        .split(|&byte| byte == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .enumerate()
        .map(|(at, line)| (at + 1, line))
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
}

/// Checks one secret's length against `(min, alg)` from
/// [`min_secret_bytes`] and wraps it for the crypto backend.
fn secret(
    source: &Located<SecretSource>,
    bytes: &[u8],
    place: String,
    (min, alg): (usize, Algorithm),
) -> Result<DecodingKey, KeyError> {
    let short = || KeyError::ShortSecret {
        origin: source.origin.clone(),
        key: source.key.clone(),
        place: place.clone(),
        len: bytes.len(),
        min,
        alg,
    };
    if bytes.len() < min {
        return Err(short());
    }
    DecodingKey::from_secret(bytes).map_err(|_| short())
}

fn read_jwks(
    file: &Located<PathBuf>,
    format: Option<KeyDocumentKind>,
) -> Result<(Vec<super::PublicKey>, Vec<String>), KeyError> {
    let bytes = read_file(file, &file.value)?;
    let jwks_error = |message: String| KeyError::Jwks {
        origin: file.origin.clone(),
        key: file.key.clone(),
        path: file.value.clone(),
        message,
    };

    let parsed = parse_key_document(&bytes, format).map_err(|err| jwks_error(err.to_string()))?;
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
    crate::config::file::read_file(path).map_err(|source| KeyError::Read {
        origin: at.origin.clone(),
        key: at.key.clone(),
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(value: SecretSource) -> Located<SecretSource> {
        Located {
            value,
            key: "providers[0].secret_file".into(),
            origin: "test.toml:9".into(),
        }
    }

    /// What a provider that allows only HS256 asks of its secrets.
    const HS256: (usize, Algorithm) = (MIN_SECRET_BYTES, Algorithm::HS256);

    const OLD: &str = "old-secret-old-secret-old-secret-0001";
    const NEW: &str = "new-secret-new-secret-new-secret-0002";

    #[test]
    fn a_secret_file_holds_one_secret_per_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hmac.key");
        std::fs::write(&path, format!("\n{NEW}\r\n  \n{OLD}\n")).expect("write");

        let secrets = read_secrets(
            &source(SecretSource::File(vec![path])),
            HS256,
            &Env::empty(),
        );
        assert_eq!(secrets.expect("two secrets").len(), 2);
    }

    #[test]
    fn a_short_line_is_refused_naming_its_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hmac.key");
        std::fs::write(&path, format!("{NEW}\n\nshort\n")).expect("write");

        let Err(error) = read_secrets(
            &source(SecretSource::File(vec![path])),
            HS256,
            &Env::empty(),
        ) else {
            panic!("a short secret must be refused");
        };
        let text = error.to_string();
        assert!(
            matches!(error, KeyError::ShortSecret { len: 5, .. }),
            "{text}"
        );
        assert!(text.contains("line 3 of"), "{text}");
        assert!(
            text.starts_with("test.toml:9: providers[0].secret_file:"),
            "{text}"
        );
    }

    #[test]
    fn a_blank_secret_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hmac.key");
        std::fs::write(&path, "\n \n").expect("write");

        let error = read_secrets(
            &source(SecretSource::File(vec![path])),
            HS256,
            &Env::empty(),
        );
        assert!(matches!(error, Err(KeyError::NoSecret { .. })));
    }

    #[test]
    fn every_named_variable_must_be_set() {
        let names = vec!["NEW".to_owned(), "OLD".to_owned()];
        let env = Env::from_vars([("NEW", NEW), ("OLD", OLD)]);
        let secrets = read_secrets(&source(SecretSource::Env(names)), HS256, &env);
        assert_eq!(secrets.expect("both set").len(), 2);

        let names = vec!["NEW".to_owned(), "GONE".to_owned()];
        let error = read_secrets(&source(SecretSource::Env(names)), HS256, &env);
        assert!(matches!(error, Err(KeyError::EnvUnset { name, .. }) if name == "GONE"));
    }

    #[test]
    fn the_longest_hmac_hash_sets_the_shortest_secret() {
        use Algorithm::*;
        assert_eq!(min_secret_bytes(&[HS256]), (32, HS256));
        assert_eq!(min_secret_bytes(&[RS256, ES256]), (32, HS256));
        assert_eq!(min_secret_bytes(&[HS384, HS256]), (48, HS384));
        assert_eq!(min_secret_bytes(&[HS256, HS512, HS384]), (64, HS512));
    }

    #[test]
    fn a_secret_shorter_than_an_allowed_hash_is_refused_naming_the_algorithm() {
        // 37 bytes: enough for HS256, not for HS384 or HS512.
        let env = Env::from_vars([("NEW", NEW)]);
        let names = vec!["NEW".to_owned()];
        let min = min_secret_bytes(&[Algorithm::HS256, Algorithm::HS512]);
        let Err(error) = read_secrets(&source(SecretSource::Env(names.clone())), min, &env) else {
            panic!("a secret shorter than HS512's hash must be refused");
        };
        let text = error.to_string();
        assert!(
            matches!(
                error,
                KeyError::ShortSecret {
                    len: 37,
                    min: 64,
                    alg: Algorithm::HS512,
                    ..
                }
            ),
            "{text}"
        );
        assert!(text.contains("HS512 needs at least 64"), "{text}");

        let min = min_secret_bytes(&[Algorithm::HS384]);
        let error = read_secrets(&source(SecretSource::Env(names.clone())), min, &env);
        assert!(matches!(error, Err(KeyError::ShortSecret { min: 48, .. })));

        let env = Env::from_vars([("NEW", format!("{NEW}{NEW}"))]);
        let secrets = read_secrets(&source(SecretSource::Env(names)), min, &env);
        assert_eq!(secrets.expect("74 bytes are enough").len(), 1);
    }

    /// `len` bytes of which none is valid UTF-8 on its own (each is a
    /// continuation byte): a secret of random bytes passed on unencoded.
    #[cfg(unix)]
    fn not_utf8(len: usize) -> Vec<u8> {
        (0..len).map(|at| 0x80 | (at as u8 & 0x3f)).collect()
    }

    #[cfg(unix)]
    fn env_of_bytes(name: &str, bytes: &[u8]) -> Env {
        use std::os::unix::ffi::OsStrExt;

        Env::from_vars([(name, std::ffi::OsStr::from_bytes(bytes))])
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_variable_that_is_not_utf8_is_used_as_its_bytes() {
        use jsonwebtoken::{EncodingKey, Header, Validation};

        let bytes = not_utf8(40);
        assert!(std::str::from_utf8(&bytes).is_err());
        let names = vec!["RAW".to_owned()];
        let env = env_of_bytes("RAW", &bytes);

        let secrets = read_secrets(&source(SecretSource::Env(names)), HS256, &env)
            .expect("40 bytes are enough for HS256, UTF-8 or not");

        let claims = serde_json::json!({ "sub": "alice" });
        let signer = EncodingKey::from_secret(&bytes).expect("an HMAC key");
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &signer).expect("sign");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let decoded = jsonwebtoken::decode::<serde_json::Value>(&token, &secrets[0], &validation);
        assert_eq!(decoded.expect("the same bytes verify").claims, claims);
    }

    #[cfg(unix)]
    #[test]
    fn a_short_secret_variable_that_is_not_utf8_is_refused_for_its_length() {
        let names = vec!["RAW".to_owned()];
        let env = env_of_bytes("RAW", &not_utf8(20));

        let Err(error) = read_secrets(&source(SecretSource::Env(names)), HS256, &env) else {
            panic!("20 bytes are too few for HS256");
        };
        let text = error.to_string();
        assert!(
            matches!(
                error,
                KeyError::ShortSecret {
                    len: 20,
                    min: 32,
                    ..
                }
            ),
            "{text}"
        );
        assert!(
            text.contains("environment variable RAW is 20 bytes"),
            "{text}"
        );
        assert!(!text.contains("not set"), "{text}");
    }
}
