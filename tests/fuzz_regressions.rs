//! Replays the fuzzing inputs kept in the repository through the very
//! checks the fuzz targets run (`fuzz/src/`, compiled here by path), so
//! plain `cargo test` guards every crasher the fuzzers found and the edge
//! cases the seeds were written for.
//!
//! `fuzz/regressions/<target>/` holds the inputs worth keeping: crashers
//! once fixed, and hand-written edge cases; `fuzz/corpus/<target>/` holds
//! the seed corpora, replayed too since they are few and small. A file
//! that breaks an invariant fails the test with the file's name.

// Each target's checks are public for the fuzz crate, private here.
#[allow(dead_code, unreachable_pub)]
#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

use harness::keys::{FuzzKeys, SIGNERS, repo_root};
use tollgate::auth::Reason;

/// Lists the files of `fuzz/<kind>/<target>/`, sorted.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = repo_root().join("fuzz").join(kind).join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every kept input of `target`, naming each one that
/// panics; both folders must hold something, or there is nothing guarded.
fn replay(target: &str, check: fn(&[u8])) {
    let mut failed = Vec::new();
    for kind in ["regressions", "corpus"] {
        let files = inputs(kind, target);
        assert!(!files.is_empty(), "fuzz/{kind}/{target}/ is empty");
        for file in files {
            let data = std::fs::read(&file).expect("a readable input");
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                failed.push(name(&file));
            }
        }
    }
    assert!(failed.is_empty(), "{target}: inputs that break: {failed:?}");
}

fn name(file: &Path) -> String {
    let parent = file.parent().and_then(Path::file_name).unwrap_or_default();
    let name = file.file_name().unwrap_or_default();
    format!("{}/{}", parent.to_string_lossy(), name.to_string_lossy())
}

#[test]
fn kept_token_inputs_keep_every_token_invariant() {
    replay("token", harness::token::check);
}

#[test]
fn kept_key_documents_keep_every_key_invariant() {
    replay("jwks", harness::jwks::check);
}

#[test]
fn kept_paths_keep_every_path_and_rule_invariant() {
    replay("path", harness::path::check);
}

#[test]
fn kept_configs_keep_every_config_invariant() {
    replay("config", harness::config::check);
}

#[test]
fn the_committed_fuzz_jwks_is_the_public_half_of_the_fuzz_keys() {
    let path = repo_root().join("fuzz/keys/jwks.json");
    let text = std::fs::read_to_string(&path).expect("fuzz/keys/jwks.json");
    let committed: serde_json::Value = serde_json::from_str(&text).expect("json");
    let expected = FuzzKeys::get().public_jwks();
    assert_eq!(committed, expected, "regenerate it as:\n{expected:#}");
}

/// The harness must reach the claim checks, or the invariants on a
/// passing token would never run: a well-formed token signed by each
/// fuzzing key passes, and the key-confusion forgery does not.
#[test]
fn the_token_harness_lets_each_signed_seed_through_but_the_forgery() {
    let header = |alg: &str| format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
    let claims = r#"{"iss":"https://fuzz.test","aud":"api","sub":"alice","iat":1700000000,"exp":1800000600}"#;
    for (at, signer) in SIGNERS.iter().enumerate() {
        let selector = u8::try_from(at * 2 + 1).expect("a few signers");
        let alg = signer.trim_end_matches("-CONFUSED");
        let mut data = vec![selector];
        data.extend_from_slice(header(alg).as_bytes());
        data.push(0);
        data.extend_from_slice(claims.as_bytes());

        let verdict = harness::token::verdict(&data).expect("a token");
        if signer.ends_with("-CONFUSED") {
            let refusal = verdict.expect_err("the forgery passed");
            assert_eq!(refusal.reason, Reason::BadSignature, "{signer}");
        } else {
            let identity = verdict.unwrap_or_else(|r| panic!("{signer}: refused: {r:?}"));
            assert_eq!(identity.subject.as_deref(), Some("alice"));
        }
        harness::token::check(&data);
    }
}

/// The hand-written token edge cases are refused, each for the reason it
/// was written to provoke; a change of verdict here is a change of policy.
#[test]
fn the_token_edge_cases_are_refused_for_their_own_reason() {
    let expected = [
        ("alg-none", Reason::DisallowedAlg),
        ("key-confusion-hs256-with-the-jwks", Reason::BadSignature),
        ("alg-says-rs256-signed-hs256", Reason::BadSignature),
        ("kid-of-another-key-type", Reason::DisallowedAlg),
        ("crit-header", Reason::Malformed),
        ("exp-as-string", Reason::InvalidClaims),
        ("exp-just-past-leeway", Reason::Expired),
        ("duplicate-sub", Reason::Malformed),
        ("sub-with-crlf", Reason::InvalidClaims),
        ("role-with-comma", Reason::InvalidClaims),
        ("tenant-not-a-string", Reason::InvalidClaims),
        ("identity-over-the-limit", Reason::InvalidClaims),
        ("issued-before-the-cut-off", Reason::Revoked),
        ("no-iat-under-a-cut-off", Reason::Revoked),
        ("cognito-aud-for-someone-else", Reason::WrongAudience),
        ("padded-signature", Reason::Malformed),
        ("four-segments", Reason::Malformed),
    ];
    for (name, reason) in expected {
        let file = repo_root().join("fuzz/regressions/token").join(name);
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let verdict = harness::token::verdict(&data).unwrap_or_else(|| panic!("{name}: no token"));
        let refusal = verdict.expect_err(name);
        assert_eq!(refusal.reason, reason, "{name}");
    }
}

/// Found by the `token` target in its first CI-length run: `tollgate
/// inspect` panicked writing an `iat` after the year 9999 (1140000000000)
/// as RFC 3339, since humantime's Display fails past four-digit years.
#[test]
fn inspect_explains_a_token_dated_after_the_year_9999_without_a_panic() {
    let file = repo_root().join("fuzz/regressions/token/inspect-iat-after-the-year-9999");
    let data = std::fs::read(file).expect("the kept crasher");
    harness::token::check(&data);

    // `exp`, `nbf` and `iat` all far out (refused as not yet valid), so
    // each of inspect's time lines is written.
    let claims =
        r#"{"iss":"https://fuzz.test","aud":"api","sub":"a","iat":1e12,"nbf":1e11,"exp":1e13}"#;
    let mut data = vec![1];
    data.extend_from_slice(br#"{"alg":"HS256"}"#);
    data.push(0);
    data.extend_from_slice(claims.as_bytes());
    harness::token::check(&data);
}
