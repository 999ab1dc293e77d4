//! JSON-lines logging.
//!
//! Every line is one JSON object with `timestamp` (UTC, RFC 3339), `level`,
//! `service`, `user_id`, `request_id` and `message` first, then the event's
//! other fields and those of the spans it happened in. `user_id` and
//! `request_id` are always present (null when unknown) so that log queries
//! need no existence checks.

pub mod access;
mod clock;
mod json;
mod line;
mod sink;

use std::io::Write as _;
use std::sync::OnceLock;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use self::line::JsonLines;
pub use self::sink::{BatchedStdout, flush, stdout};
use crate::env::{Env, NotUnicodeError};

/// Says why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The level directive does not parse.
    #[error("invalid log level {directive:?}: {source}")]
    Filter {
        /// The directive.
        directive: String,
        /// Why.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// `RUST_LOG` is set, but not to text.
    #[error(transparent)]
    NotUnicode(#[from] NotUnicodeError),
}

/// Swaps the level filter of the subscriber [`init`] installed.
struct LevelHandle {
    filter: reload::Handle<EnvFilter, Registry>,
    /// Set when `RUST_LOG` chose the filter, which the config must not undo.
    pinned: bool,
}

/// The handle of the process's subscriber, set by the first [`init`].
static LEVEL: OnceLock<LevelHandle> = OnceLock::new();

/// Says what became of a new `log.level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LevelChange {
    /// The new level is in force.
    Applied,
    /// `RUST_LOG` is set and wins; the level is unchanged.
    Pinned,
    /// No subscriber of ours is installed (tests, the library alone).
    NotInstalled,
}

/// The level filter logging would use, and where it came from.
#[derive(Debug)]
pub struct LevelFilter {
    /// The filter.
    pub filter: EnvFilter,
    /// The text it was parsed from, blanks around directives dropped.
    pub text: String,
    /// `RUST_LOG` chose it, over the config's `log.level`.
    pub pinned: bool,
}

/// Splits a filter into its directives, each trimmed, blank ones dropped:
/// `EnvFilter` would read `" info"` as a log target named `" info"` and
/// turn every other line off.
fn directives(text: &str) -> impl Iterator<Item = &str> {
    text.split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
}

/// Says whether `filter` holds no directive at all: blanks and commas
/// only. `EnvFilter` reads such a text as a filter that turns every line
/// off, errors included, which nobody means to write.
pub fn has_no_directive(filter: &str) -> bool {
    directives(filter).next().is_none()
}

/// The file watcher's own messages are shown from `error` up unless the
/// filter names its target: it warns about its bookkeeping whenever a
/// watched directory is deleted, which is every ConfigMap update (the old
/// data directory goes), with a source path of the build machine in it.
const QUIET_WATCHER: &str = "notify=error";

/// Parses a level filter as `RUST_LOG` and `log.level` are read: the
/// [`directives`] of `text`, and [`QUIET_WATCHER`] unless one names the
/// watcher.
pub fn parse_filter(text: &str) -> Result<EnvFilter, LogError> {
    let mut parts: Vec<&str> = directives(text).collect();
    if !parts
        .iter()
        .any(|directive| directive.starts_with("notify"))
    {
        parts.push(QUIET_WATCHER);
    }
    EnvFilter::builder()
        .parse(parts.join(","))
        .map_err(|source| LogError::Filter {
            directive: text.to_owned(),
            source,
        })
}

/// Returns the first directive of `text` that names no level: a bare word
/// such as `warning` or `verbose`, or a target with nothing after its `=`
/// (`tollgate=`), which `EnvFilter` reads as a log target to show at
/// `trace`, leaving every other line off. Valid in `RUST_LOG`
/// (`RUST_LOG=tollgate` means "all of tollgate"), but in `log.level` it is
/// almost always a typo.
pub fn bare_target(text: &str) -> Option<&str> {
    directives(text).find(|directive| {
        let is_bare = !directive.contains('=')
            && directive
                .parse::<tracing::level_filters::LevelFilter>()
                .is_err();
        is_bare || directive.ends_with('=')
    })
}

/// Chooses the level filter: `RUST_LOG` in `env` when it holds a
/// directive, else `level`. `tollgate check` calls this too, so that it
/// refuses what `tollgate run` would.
pub fn level_filter(env: &Env, level: &str) -> Result<LevelFilter, LogError> {
    // An empty filter has no directive, so it would turn every line off,
    // errors included, and pin that against `log.level` on reload. A blank
    // `RUST_LOG` is what a template leaves when it has no value to give,
    // and a list template with no items leaves its commas: both mean "no
    // override", not "silence".
    let from_env = env
        .text("RUST_LOG")?
        .filter(|directive| !has_no_directive(directive));
    let pinned = from_env.is_some();
    let chosen = from_env.as_deref().unwrap_or(level);
    let filter = parse_filter(chosen)?;
    let text = directives(chosen).collect::<Vec<_>>().join(",");
    Ok(LevelFilter {
        filter,
        text,
        pinned,
    })
}

/// Installs the JSON-lines subscriber for the process.
///
/// `RUST_LOG`, when set, wins over `level`, so an operator can turn on debug
/// logs without editing the config; set to something that is not UTF-8, it
/// is refused rather than quietly ignored. Set to nothing but blanks and
/// commas, it counts as unset. A second call (as in tests that start
/// several tollgates) keeps the first subscriber.
pub fn init<W>(service: &str, level: &str, writer: W) -> Result<(), LogError>
where
    W: for<'w> MakeWriter<'w> + Clone + Send + Sync + 'static,
{
    let LevelFilter { filter, pinned, .. } = level_filter(&Env::process(), level)?;

    // Behind a reload layer so that a config reload can change the level
    // without a restart.
    let (filter, handle) = reload::Layer::new(filter);
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(JsonLines::new(service, writer.clone()))
        .try_init()
        .is_ok();
    if installed {
        access::install(service, move |line| writer.make_writer().write_all(line));
        let _ = LEVEL.set(LevelHandle {
            filter: handle,
            pinned,
        });
    }
    Ok(())
}

/// Puts a new level filter in force, unless `RUST_LOG` chose the filter.
pub fn set_level(level: &str) -> Result<LevelChange, LogError> {
    let Some(handle) = LEVEL.get() else {
        return Ok(LevelChange::NotInstalled);
    };
    if handle.pinned {
        return Ok(LevelChange::Pinned);
    }
    let filter = parse_filter(level)?;
    match handle.filter.reload(filter) {
        Ok(()) => Ok(LevelChange::Applied),
        // The subscriber is gone, which only happens as the process ends.
        Err(_) => Ok(LevelChange::NotInstalled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> String {
        parse_filter(text).expect("a valid filter").to_string()
    }

    #[test]
    fn the_file_watcher_is_quiet_below_error_unless_named() {
        assert!(parsed("info").contains(QUIET_WATCHER));
        assert!(parsed(" debug , tollgate=trace").contains(QUIET_WATCHER));

        let named = parsed("info,notify=debug");
        assert!(!named.contains(QUIET_WATCHER), "{named}");
        assert!(named.contains("notify=debug"), "{named}");
    }
}
