//! Checks for `[providers.revoke]`: the cut-off time and the denylist file.
//!
//! The denylist itself is read with the keys, when a snapshot is built, so
//! that a check here never depends on a file an operator edits at run time.

use std::time::SystemTime;

use toml::Spanned;

use super::Document;
use super::provider::file_path;
use crate::config::raw::RevokeConfig;
use crate::config::{ConfigError, RevokeSettings};

/// Checks one provider's revocation table.
pub(super) fn check(
    doc: Document<'_>,
    index: usize,
    raw: &RevokeConfig,
) -> Result<RevokeSettings, ConfigError> {
    let key = |name: &str| format!("providers[{index}].revoke.{name}");
    let issued_before = raw
        .issued_before
        .as_ref()
        .map(|value| instant(doc, value, &key("issued_before")))
        .transpose()?;
    let denylist_file = raw
        .denylist_file
        .as_ref()
        .map(|path| file_path(doc, path, key("denylist_file")))
        .transpose()?;
    Ok(RevokeSettings {
        issued_before,
        denylist_file,
    })
}

/// Parses an RFC 3339 time in UTC.
///
/// Only the `Z` form is taken: humantime, which parses it, knows no other
/// offset, and one spelling per instant keeps the file easy to compare by
/// eye. A time in the future is allowed: it refuses every token until then,
/// which is what an operator who wants a clean slate at a set hour asks for.
fn instant(
    doc: Document<'_>,
    value: &Spanned<String>,
    key: &str,
) -> Result<SystemTime, ConfigError> {
    let text = value.get_ref();
    humantime::parse_rfc3339(text).map_err(|error| {
        let message = format!(
            "{text:?} is not an RFC 3339 UTC time ({error}); write it like \
             \"2024-05-01T00:00:00Z\""
        );
        doc.invalid(value.span(), key, message)
    })
}
