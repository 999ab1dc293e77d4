//! Logs and metrics: set up once, then only written to.
//!
//! [`log`] installs the JSON-lines subscriber; [`metrics`] owns every metric
//! name and builds the handles that the request path increments. Nothing
//! here knows what a request is.

pub mod log;
pub mod metrics;

pub use self::metrics::Metrics;
