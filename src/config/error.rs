//! Errors from reading and checking a config file.

use std::path::PathBuf;

/// Says why a config file was refused, naming the file, line and key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// The file is not valid TOML, or a key is unknown or of the wrong type.
    #[error("{origin}: {message}")]
    Parse {
        /// `file:line:column`.
        origin: String,
        /// What the parser said.
        message: String,
    },

    /// A key has a value that parses but cannot be used.
    #[error("{origin}: {key}: {message}")]
    Invalid {
        /// `file:line`.
        origin: String,
        /// The dotted key, such as `providers[0].leeway`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}
