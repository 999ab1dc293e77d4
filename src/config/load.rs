//! Loading: reads a config file, parses it into the [`raw`](super::raw)
//! structs, then checks every value on its way into [`Settings`].
//!
//! Parsing failures (bad TOML, an unknown key, a wrong type) come back as
//! [`ConfigError::Parse`] with the line and column toml reports. Values that
//! parse but cannot be used come back as [`ConfigError::Invalid`] with the
//! line they were written on and their key. Keys name tables in arrays by
//! index (`providers[1].leeway`) but not the items of a plain list: an error
//! about one algorithm is keyed `providers[0].algorithms` and points at the
//! line of that item.

mod provider;
mod revoke;
mod rules;
mod sections;
mod shape;
#[cfg(test)]
mod tests;
mod tls;
mod values;

use std::ops::Range;
use std::path::Path;

use super::raw::FileConfig;
use super::{ConfigError, Located, Settings};

/// Names the config file read when nothing else names one.
pub const DEFAULT_PATH: &str = "config/tollgate.toml";

/// Names the environment variable that overrides [`DEFAULT_PATH`].
pub const ENV_CONFIG: &str = "TOLLGATE_CONFIG";

/// Reads and checks the config file at `path`.
///
/// The path is used as written in error origins, so an operator sees the
/// same name they passed on the command line.
pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
    let text = super::file::read_text(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    from_str(&text, &path.display().to_string())
}

/// Parses and checks config text; `origin` names it in error messages.
pub fn from_str(text: &str, origin: &str) -> Result<Settings, ConfigError> {
    let doc = Document { name: origin, text };
    let file: FileConfig = toml::from_str(text).map_err(|error| doc.parse_error(&error))?;
    check(doc, file)
}

/// Turns the parsed file into settings, one section at a time, in the order
/// the sections are documented.
fn check(doc: Document<'_>, file: FileConfig) -> Result<Settings, ConfigError> {
    let service = sections::service(doc, &file.service)?;
    let listen = sections::listen(doc, &file.listen)?;
    let admin = sections::admin(doc, &file.admin, &file.listen, listen.address)?;
    let upstream = sections::upstream(doc, &file.upstream)?;
    let account_store = file
        .account_store
        .as_ref()
        .map(|table| sections::account_store(doc, table))
        .transpose()?;
    let providers = provider::check_all(doc, &file.providers)?;
    let rules = rules::check_all(doc, &file.rules)?;
    let limits = sections::limits(doc, &file.limits)?;
    let log = sections::log(doc, &file.log)?;
    Ok(Settings {
        service,
        listen,
        admin,
        upstream,
        account_store,
        providers,
        cache: sections::cache(doc, &file.cache)?,
        rules,
        limits,
        log,
        mode: file.mode,
    })
}

// --- Document ---------------------------------------------------------------

/// Names the text being loaded, so that any error can point into it.
#[derive(Clone, Copy)]
struct Document<'a> {
    /// The file name shown in origins.
    name: &'a str,
    /// The whole file.
    text: &'a str,
}

impl Document<'_> {
    /// Maps a toml error onto `file:line:column`, keeping only its one-line
    /// message: the snippet toml can draw would break our one-line errors.
    fn parse_error(&self, error: &toml::de::Error) -> ConfigError {
        let origin = match error.span() {
            Some(span) => format!(
                "{}:{}:{}",
                self.name,
                self.line(span.start),
                self.column(span.start)
            ),
            None => self.name.to_owned(),
        };
        let message = error.message().lines().collect::<Vec<_>>().join(" ");
        ConfigError::Parse { origin, message }
    }

    /// Builds an [`ConfigError::Invalid`] for the value written at `span`.
    fn invalid(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin(&span),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// Pairs a checked value with its key and origin for later errors.
    fn locate<T>(&self, value: T, span: &Range<usize>, key: String) -> Located<T> {
        Located {
            value,
            key,
            origin: self.origin(span),
        }
    }

    /// Formats `file:line` for the start of `span`.
    fn origin(&self, span: &Range<usize>) -> String {
        format!("{}:{}", self.name, self.line(span.start))
    }

    /// Counts the 1-based line holding byte `offset`.
    fn line(&self, offset: usize) -> usize {
        let before = self.before(offset);
        before.iter().filter(|&&byte| byte == b'\n').count() + 1
    }

    /// Counts the 1-based column, in characters, of byte `offset`.
    fn column(&self, offset: usize) -> usize {
        let before = self.before(offset);
        let line_start = before.iter().rposition(|&byte| byte == b'\n');
        let on_line = &before[line_start.map_or(0, |at| at + 1)..];
        // UTF-8 continuation bytes do not start a character.
        on_line.iter().filter(|&&byte| byte & 0xC0 != 0x80).count() + 1
    }

    /// Returns the bytes before `offset`, clamped so a bad span cannot panic.
    fn before(&self, offset: usize) -> &[u8] {
        let bytes = self.text.as_bytes();
        &bytes[..offset.min(bytes.len())]
    }
}

/// Says whether a value came from the file rather than from a default; the
/// defaults in [`raw`](super::raw) carry the empty span `0..0`.
fn is_written(span: &Range<usize>) -> bool {
    !span.is_empty()
}
