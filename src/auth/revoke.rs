//! Revocation: refusing tokens whose signature and claims hold, because the
//! provider's operator said so.
//!
//! Two kinds of statement are supported, both per provider and both
//! reloadable: "every token issued before this instant" (after a key leak,
//! say) and "these token ids or subjects" (a stolen laptop, a fired user).
//! The check runs after the cache lookup in [`super::authenticate`], on
//! what [`Identity`] kept of the token, so a cached token is refused as
//! surely as a fresh one.

use std::collections::HashSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Identity;
use crate::config::{Located, RevokeSettings};
use crate::keys::KeyError;

/// Holds what a provider revokes; empty by default, which revokes nothing.
#[derive(Clone, Debug, Default)]
pub struct Revocation {
    /// Unix seconds: tokens with an earlier `iat`, or none, are revoked.
    issued_before: Option<f64>,
    denylist: Denylist,
}

impl Revocation {
    /// Builds a revocation from a cut-off and a parsed denylist.
    pub fn new(issued_before: Option<SystemTime>, denylist: Denylist) -> Self {
        Revocation {
            issued_before: issued_before.map(unix_seconds),
            denylist,
        }
    }

    /// Builds a provider's revocation from its settings, reading its
    /// denylist file if it names one.
    pub fn try_from_settings(settings: &RevokeSettings) -> Result<Self, KeyError> {
        let denylist = match &settings.denylist_file {
            Some(file) => read_denylist(file)?,
            None => Denylist::default(),
        };
        Ok(Revocation::new(settings.issued_before, denylist))
    }

    /// Says whether the token behind `identity` is revoked.
    ///
    /// A token without `iat` is revoked once a cut-off is set: nothing
    /// proves it was issued after the cut-off, and an issuer that omits
    /// `iat` would otherwise slip every token past it.
    pub fn is_revoked(&self, identity: &Identity) -> bool {
        if let Some(cut_off) = self.issued_before {
            if identity.issued_at.is_none_or(|iat| iat < cut_off) {
                return true;
            }
        }
        self.denylist.holds(identity)
    }

    /// Returns how many entries the denylist holds.
    pub fn denylist_len(&self) -> usize {
        self.denylist.len()
    }

    /// Returns the cut-off in Unix seconds, so `tollgate inspect` can say
    /// which side of it a token falls on.
    pub fn issued_before(&self) -> Option<f64> {
        self.issued_before
    }

    /// Returns the denylist, for the same reason.
    pub fn denylist(&self) -> &Denylist {
        &self.denylist
    }
}

// --- Denylist ---

/// Holds the token ids and subjects a provider refuses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Denylist {
    jti: HashSet<Box<str>>,
    sub: HashSet<Box<str>>,
}

/// Says why a denylist line is not an entry.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DenylistError {
    /// The 1-based line.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl Denylist {
    /// Parses a denylist: one `jti:<value>` or `sub:<value>` per line,
    /// blank lines and lines starting with `#` ignored.
    ///
    /// Spaces around a line, and around its kind and value, are dropped;
    /// those inside a value are kept. A `#` later in a line is part of the
    /// value, since token ids may hold one. Anything else is refused rather
    /// than skipped: a typo in a denylist would otherwise quietly leave a
    /// stolen token working.
    pub fn parse(text: &str) -> Result<Self, DenylistError> {
        let mut list = Denylist::default();
        for (at, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |message: String| DenylistError {
                line: at + 1,
                message,
            };
            let Some((kind, value)) = line.split_once(':') else {
                return Err(fail(format!("{line:?} is not jti:<value> or sub:<value>")));
            };
            // `jti: x` is written by hand often enough: read it as `x`
            // rather than keep a value with a space no token carries.
            let (kind, value) = (kind.trim(), value.trim());
            if value.is_empty() {
                return Err(fail(format!("{kind}: names no value")));
            }
            let set = match kind {
                "jti" => &mut list.jti,
                "sub" => &mut list.sub,
                other => {
                    return Err(fail(format!("{other:?} is not jti or sub")));
                }
            };
            set.insert(value.into());
        }
        Ok(list)
    }

    /// Returns how many entries it holds.
    pub fn len(&self) -> usize {
        self.jti.len() + self.sub.len()
    }

    /// Says whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Says whether a token id is listed.
    pub fn holds_jti(&self, jti: &str) -> bool {
        self.jti.contains(jti)
    }

    /// Says whether a subject is listed.
    pub fn holds_sub(&self, sub: &str) -> bool {
        self.sub.contains(sub)
    }

    /// Says whether the token's `jti` or `sub` is listed.
    fn holds(&self, identity: &Identity) -> bool {
        if self.is_empty() {
            return false;
        }
        let by_jti = identity
            .jti
            .as_deref()
            .is_some_and(|jti| self.jti.contains(jti));
        let by_sub = identity
            .subject
            .as_deref()
            .is_some_and(|sub| self.sub.contains(sub));
        by_jti || by_sub
    }
}

/// Reads and parses the denylist file a provider names.
fn read_denylist(file: &Located<std::path::PathBuf>) -> Result<Denylist, KeyError> {
    let path: &Path = &file.value;
    let text = crate::config::file::read_text(path).map_err(|source| KeyError::Read {
        origin: file.origin.clone(),
        key: file.key.clone(),
        path: path.to_owned(),
        source,
    })?;
    Denylist::parse(&text).map_err(|error| KeyError::Denylist {
        origin: file.origin.clone(),
        key: file.key.clone(),
        path: path.to_owned(),
        line: error.line,
        message: error.message,
    })
}

/// Converts an instant to Unix seconds, the unit of `iat`; instants
/// before 1970 count as 0, which no cut-off needs.
fn unix_seconds(instant: SystemTime) -> f64 {
    instant
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn identity(subject: &str, jti: Option<&str>, issued_at: Option<f64>) -> Identity {
        Identity {
            provider: 0,
            subject: Some(subject.into()),
            roles: Vec::new(),
            headers: Vec::new(),
            jti: jti.map(Box::from),
            issued_at,
        }
    }

    fn cut_off(unix: u64) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::from_secs(unix))
    }

    #[test]
    fn nothing_is_revoked_by_default() {
        let revocation = Revocation::default();
        assert!(!revocation.is_revoked(&identity("alice", None, None)));
    }

    #[test]
    fn a_token_issued_before_the_cut_off_is_revoked() {
        let revocation = Revocation::new(cut_off(1_000), Denylist::default());
        assert!(revocation.is_revoked(&identity("a", None, Some(999.5))));
        assert!(!revocation.is_revoked(&identity("a", None, Some(1_000.0))));
        assert!(!revocation.is_revoked(&identity("a", None, Some(2_000.0))));
    }

    #[test]
    fn a_token_without_iat_is_revoked_once_a_cut_off_is_set() {
        let revocation = Revocation::new(cut_off(1_000), Denylist::default());
        assert!(revocation.is_revoked(&identity("a", None, None)));
    }

    #[test]
    fn the_denylist_refuses_by_jti_and_by_sub() {
        let text = "# stolen laptop, ticket 42\n\njti:abc-123\n  sub:mallory  \njti:x#y\n";
        let list = Denylist::parse(text).expect("a valid denylist");
        assert_eq!(list.len(), 3);
        let revocation = Revocation::new(None, list);

        assert!(revocation.is_revoked(&identity("alice", Some("abc-123"), None)));
        assert!(revocation.is_revoked(&identity("alice", Some("x#y"), None)));
        assert!(revocation.is_revoked(&identity("mallory", None, None)));
        assert!(!revocation.is_revoked(&identity("alice", Some("abc-124"), None)));
        // A subject is not a token id, nor the other way round.
        assert!(!revocation.is_revoked(&identity("abc-123", Some("mallory"), None)));
    }

    #[test]
    fn a_bad_denylist_line_is_refused_with_its_number() {
        for (text, line) in [
            ("jti:a\nuser:bob\n", 2),
            ("# c\nbob\n", 2),
            ("sub:\n", 1),
            ("JTI:a\n", 1),
        ] {
            let error = Denylist::parse(text).expect_err(text);
            assert_eq!(error.line, line, "{text:?}: {error}");
        }
    }
}
