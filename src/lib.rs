//! tollgate: an edge token-validation sidecar.
//!
//! One tollgate runs beside each service. Every request passes through it:
//! a request with a good `Authorization: Bearer` JWT reaches the service with
//! the caller's identity attached as headers; anything else is answered by
//! tollgate itself, per RFC 6750.

pub mod config;
