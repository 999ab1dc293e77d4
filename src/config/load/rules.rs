//! Checks for `[[rules]]`: the path each rule matches, its methods, and
//! what it requires.

use std::sync::Arc;

use http::Method;
use toml::Spanned;

use super::Document;
use super::values::{self, PathKind};
use crate::config::raw::RuleConfig;
use crate::config::{AccessMode, ConfigError, EnforceMode, PathMatch, RuleSettings};

/// Checks every rule, keeping file order: the first match wins.
pub(super) fn check_all(
    doc: Document<'_>,
    rules: &[Spanned<RuleConfig>],
) -> Result<Vec<RuleSettings>, ConfigError> {
    rules
        .iter()
        .enumerate()
        .map(|(index, table)| check(doc, index, table))
        .collect()
}

/// Formats the key of one rule field, such as `rules[0].path`.
fn field(index: usize, name: &str) -> String {
    format!("rules[{index}].{name}")
}

/// Checks one rule.
fn check(
    doc: Document<'_>,
    index: usize,
    table: &Spanned<RuleConfig>,
) -> Result<RuleSettings, ConfigError> {
    let raw = table.get_ref();
    let (path, written) = path_match(doc, index, table)?;
    let name = match &raw.name {
        None => written,
        Some(name) if name.get_ref().is_empty() => {
            let message = "an empty name is not allowed; leave it out to use the path";
            return Err(doc.invalid(name.span(), &field(index, "name"), message));
        }
        Some(name) => name.get_ref().clone(),
    };
    let methods = raw
        .methods
        .as_ref()
        .map(|list| methods(doc, list, &field(index, "methods")))
        .transpose()?;
    let access = access(doc, index, raw)?;
    Ok(RuleSettings {
        name: Arc::from(name),
        path,
        methods,
        mode: mode(doc, index, raw, &access)?,
        access,
    })
}

/// Reads the rule's own mode. A public rule checks no token, so a mode
/// there could only mislead whoever reads the file; it is refused.
fn mode(
    doc: Document<'_>,
    index: usize,
    raw: &RuleConfig,
    access: &AccessMode,
) -> Result<Option<EnforceMode>, ConfigError> {
    match (&raw.mode, access) {
        (None, _) => Ok(None),
        (Some(mode), AccessMode::Public) => {
            let message = "mode cannot be combined with public = true: a public rule \
                           checks no token";
            Err(doc.invalid(mode.span(), &field(index, "mode"), message))
        }
        (Some(mode), AccessMode::Protected { .. }) => Ok(Some(*mode.get_ref())),
    }
}

/// Reads exactly one of `path` and `path_prefix`, returning the match and
/// the text written, which names the rule when it has no `name`.
fn path_match(
    doc: Document<'_>,
    index: usize,
    table: &Spanned<RuleConfig>,
) -> Result<(PathMatch, String), ConfigError> {
    let raw = table.get_ref();
    match (&raw.path, &raw.path_prefix) {
        (Some(path), None) => {
            let text = values::plain_path(doc, path, &field(index, "path"), PathKind::Exact)?;
            Ok((PathMatch::Exact(text.clone()), text))
        }
        (None, Some(prefix)) => {
            let key = field(index, "path_prefix");
            let text = values::plain_path(doc, prefix, &key, PathKind::Prefix)?;
            Ok((PathMatch::Prefix(text.clone()), text))
        }
        (Some(_), Some(_)) => {
            let message = "set path or path_prefix, not both";
            Err(doc.invalid(table.span(), &format!("rules[{index}]"), message))
        }
        (None, None) => {
            let message = "set one of path or path_prefix";
            Err(doc.invalid(table.span(), &format!("rules[{index}]"), message))
        }
    }
}

/// Parses a method list, which must not be empty: an empty list would make
/// a rule that matches nothing, which is never what was meant.
fn methods(
    doc: Document<'_>,
    list: &Spanned<Vec<Spanned<String>>>,
    key: &str,
) -> Result<Vec<Method>, ConfigError> {
    if list.get_ref().is_empty() {
        let message = "an empty list matches nothing; leave methods out to match every method";
        return Err(doc.invalid(list.span(), key, message));
    }
    let mut methods: Vec<Method> = Vec::with_capacity(list.get_ref().len());
    for item in list.get_ref() {
        let method = method(item.get_ref()).map_err(|m| doc.invalid(item.span(), key, m))?;
        if methods.contains(&method) {
            let message = format!("{:?} is listed twice", item.get_ref());
            return Err(doc.invalid(item.span(), key, message));
        }
        methods.push(method);
    }
    Ok(methods)
}

/// Parses one method. Methods are case-sensitive on the wire, so `get`
/// would never match a real `GET`; it is refused rather than folded.
fn method(text: &str) -> Result<Method, String> {
    if text.bytes().any(|b| b.is_ascii_lowercase()) {
        let upper = text.to_ascii_uppercase();
        return Err(format!(
            "{text:?} is not upper case; methods are case-sensitive, write {upper:?}"
        ));
    }
    Method::from_bytes(text.as_bytes()).map_err(|_| format!("{text:?} is not an HTTP method"))
}

/// Works out what the rule requires: nothing when public, else a valid token
/// and perhaps one of some roles.
fn access(doc: Document<'_>, index: usize, raw: &RuleConfig) -> Result<AccessMode, ConfigError> {
    let key = field(index, "roles");
    match (&raw.roles, raw.public) {
        (None, true) => Ok(AccessMode::Public),
        (None, false) => Ok(AccessMode::Protected { roles: Vec::new() }),
        (Some(list), true) => {
            let message = "roles cannot be combined with public = true: a public rule \
                           checks no token";
            Err(doc.invalid(list.span(), &key, message))
        }
        (Some(list), false) => {
            let roles = values::non_empty_strings(doc, list, &key, "role")?;
            Ok(AccessMode::Protected { roles })
        }
    }
}
