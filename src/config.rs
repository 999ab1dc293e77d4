//! Configuration: the TOML file, parsed once and checked once, off the
//! request path.
//!
//! Loading happens in two stages. [`raw`] holds the serde structs exactly as
//! they appear in the file, with defaults and a doc comment on every key.
//! `load` turns them into [`Settings`]: durations parsed, addresses and URLs
//! checked, header names and claim paths compiled. Every error names the file,
//! the line and the key at fault, so an operator can fix it without guessing.
//!
//! Nothing here knows about HTTP serving; `state` builds a snapshot from the
//! settings, and that is what requests read. While serving, [`watch`] says
//! when to read the file again and [`diff`] what a reload may change.

pub mod diff;
mod error;
pub mod file;
mod load;
pub mod raw;
mod settings;
pub mod watch;

pub use self::error::ConfigError;
pub use self::load::{DEFAULT_PATH, ENV_CONFIG, from_file, from_str};
pub use self::settings::{
    AccessMode, AccountStoreSettings, CacheSettings, CertificateFiles, ClaimPath,
    ClientTlsSettings, EnforceMode, LimitSettings, ListenSettings, ListenerLimits, Located,
    LogSettings, PathMatch, ProviderSettings, RateSettings, RemoteJwksSettings, RevokeSettings,
    RuleSettings, SecretSource, Settings, UpstreamSettings,
};
