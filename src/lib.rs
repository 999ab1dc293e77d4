//! tollgate: an edge token-validation sidecar.
//!
//! One tollgate runs beside each service. Every request passes through it:
//! a request with a good `Authorization: Bearer` JWT reaches the service with
//! the caller's identity attached as headers; anything else is answered by
//! tollgate itself, per RFC 6750. Login, refresh and logout are passed to the
//! account store that checks passwords.
//!
//! The parts, in the order a request meets them:
//!
//! - [`proxy`]: accepts connections, scrubs headers, forwards, answers;
//! - [`state`]: the snapshot of settings, rules and keys a request reads;
//! - [`auth`]: token extraction, verification, the cache, rules and paths;
//! - [`keys`]: key sets and where they come from;
//! - [`tls`]: certificates and keys for the listener and for forwarding;
//! - [`config`]: the TOML file, parsed and checked once; [`env`](mod@env): the
//!   environment variables it names, and the few tollgate reads itself;
//! - [`admin`] and [`telemetry`]: health, readiness, metrics and logs;
//! - [`app`]: starts and stops the whole; [`demo`] shows it working;
//!   [`inspect`] explains the verdict on one token.

pub mod admin;
pub mod app;
pub mod auth;
pub mod config;
pub mod demo;
pub mod env;
pub mod inspect;
pub mod keys;
pub mod proxy;
pub mod state;
pub mod telemetry;
pub mod tls;

pub use self::app::{Running, StartError, start};
