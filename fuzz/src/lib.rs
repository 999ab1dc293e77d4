//! The checks behind tollgate's fuzz targets, one module per target.
//!
//! Each module has one `check(data)` that feeds the bytes to tollgate the
//! way the proxy (or `tollgate check`) would and panics when an invariant
//! breaks; a panic is what the fuzzer reports as a crash. The targets in
//! `fuzz_targets/` are one line each, and `tests/fuzz_regressions.rs` in
//! the main crate compiles this same library (by path) to replay the
//! committed inputs under plain `cargo test`, so a crasher kept there runs
//! the very code the fuzzer ran.

pub mod config;
pub mod jwks;
pub mod keys;
pub mod path;
pub mod token;
