//! The environment variables tollgate reads, looked up in one place.
//!
//! An HMAC secret is bytes, so a variable that holds one is taken byte for
//! byte, as a line of a secret file is. Every other variable is text, and
//! one that is set but not UTF-8 is refused as such: treating it as unset
//! would tell the operator to look for a variable that is there.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::sync::Arc;

/// Looks up environment variables: the process's own in production, or a
/// fixed set, so that tests and the demo can supply secrets without
/// touching the process environment (which other threads may be reading).
///
/// Cheap to clone; the reload task keeps one.
#[derive(Clone)]
pub struct Env {
    source: Source,
}

#[derive(Clone)]
enum Source {
    Process,
    Fixed(Arc<HashMap<String, OsString>>),
}

/// Says that a variable is set but does not hold UTF-8 text.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name} is set but not valid UTF-8")]
pub struct NotUnicodeError {
    /// The variable.
    pub name: String,
}

impl Env {
    /// Reads the process environment.
    pub fn process() -> Self {
        Env {
            source: Source::Process,
        }
    }

    /// Holds exactly the variables given, and no others.
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<OsString>,
    {
        let vars = vars
            .into_iter()
            .map(|(name, value)| (name.into(), value.into()))
            .collect();
        Env {
            source: Source::Fixed(Arc::new(vars)),
        }
    }

    /// Holds no variables at all.
    pub fn empty() -> Self {
        Self::from_vars(std::iter::empty::<(String, OsString)>())
    }

    /// Returns the value of `name` byte for byte, or `None` when it is
    /// unset.
    ///
    /// Never fails on Unix, where a value is any bytes but NUL. Elsewhere a
    /// value is not bytes at all, and only one that is valid Unicode has an
    /// encoding another program would agree on (UTF-8).
    pub fn bytes(&self, name: &str) -> Result<Option<Vec<u8>>, NotUnicodeError> {
        let Some(value) = self.lookup(name) else {
            return Ok(None);
        };
        into_bytes(value).map(Some).map_err(|_| not_unicode(name))
    }

    /// Returns the value of `name` as text, or `None` when it is unset.
    pub fn text(&self, name: &str) -> Result<Option<String>, NotUnicodeError> {
        let Some(value) = self.lookup(name) else {
            return Ok(None);
        };
        value.into_string().map(Some).map_err(|_| not_unicode(name))
    }

    fn lookup(&self, name: &str) -> Option<OsString> {
        match &self.source {
            Source::Process => std::env::var_os(name),
            Source::Fixed(vars) => vars.get(name).cloned(),
        }
    }
}

/// Names the variables only: their values may be secrets.
impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Process => f.write_str("Env::process()"),
            Source::Fixed(vars) => {
                let mut names: Vec<&str> = vars.keys().map(String::as_str).collect();
                names.sort_unstable();
                f.debug_struct("Env").field("names", &names).finish()
            }
        }
    }
}

fn not_unicode(name: &str) -> NotUnicodeError {
    NotUnicodeError {
        name: name.to_owned(),
    }
}

#[cfg(unix)]
fn into_bytes(value: OsString) -> Result<Vec<u8>, OsString> {
    use std::os::unix::ffi::OsStringExt;

    Ok(value.into_vec())
}

#[cfg(not(unix))]
fn into_bytes(value: OsString) -> Result<Vec<u8>, OsString> {
    value.into_string().map(String::into_bytes)
}

#[cfg(all(test, unix))]
mod tests {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    /// Latin-1 "café": the é is one byte, 0xE9, which UTF-8 never allows
    /// on its own.
    const LATIN1: &[u8] = b"caf\xe9";

    fn env() -> Env {
        Env::from_vars([
            ("PLAIN", OsStr::new("text")),
            ("LATIN1", OsStr::from_bytes(LATIN1)),
        ])
    }

    #[test]
    fn a_variable_that_is_not_utf8_is_still_its_bytes() {
        assert_eq!(env().bytes("LATIN1").expect("bytes"), Some(LATIN1.to_vec()));
        assert_eq!(env().bytes("PLAIN").expect("bytes"), Some(b"text".to_vec()));
        assert_eq!(env().bytes("UNSET").expect("bytes"), None);
    }

    #[test]
    fn a_variable_that_is_not_utf8_is_refused_as_text_not_called_unset() {
        let error = env().text("LATIN1").expect_err("not UTF-8");
        assert_eq!(
            error.to_string(),
            "environment variable LATIN1 is set but not valid UTF-8"
        );
        assert_eq!(env().text("PLAIN").expect("text").as_deref(), Some("text"));
        assert_eq!(env().text("UNSET").expect("text"), None);
    }

    #[test]
    fn debug_names_the_variables_but_never_their_values() {
        let text = format!("{:?}", env());
        assert!(text.contains("LATIN1") && text.contains("PLAIN"), "{text}");
        assert!(!text.contains("text"), "{text}");
    }
}
