//! Fuzzes tollgate's token handling; the checks live in the harness library,
//! where `tests/fuzz_regressions.rs` runs them on the committed inputs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tollgate_fuzz::token::check(data));
