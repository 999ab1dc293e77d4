//! The adversarial corpus: one test per attack, grouped by the class of bug
//! it guards against, each citing the advisory or RFC section it comes from.
//!
//! Every case starts its own tollgate in front of the byte-recording
//! upstream, sends one crafted request (or a short sequence), and asserts
//! the exact outcome: the status, the `WWW-Authenticate` error and
//! description for a refusal, and for anything forwarded, what the upstream
//! really received. `cargo test --test corpus` lists the cases as
//! `<class>::<case>`; `cargo test --test corpus alg_abuse::` runs one class.

mod support;

#[path = "corpus/common.rs"]
mod common;

#[path = "corpus/alg_abuse.rs"]
mod alg_abuse;
#[path = "corpus/cache.rs"]
mod cache;
#[path = "corpus/claims.rs"]
mod claims;
#[path = "corpus/framing.rs"]
mod framing;
#[path = "corpus/identity.rs"]
mod identity;
#[path = "corpus/paths.rs"]
mod paths;
#[path = "corpus/signatures.rs"]
mod signatures;
#[path = "corpus/syntax.rs"]
mod syntax;
