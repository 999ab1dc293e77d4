//! Config text, through the parse and validation `tollgate check` runs
//! before it loads any key.
//!
//! Only the text is read: no file, no environment variable. A refused
//! config must give one line naming the file (`fuzz.toml:...`), since
//! that is the error format operators and reloads rely on. An accepted
//! one must compile into a rule set and keep the promises the rest of
//! tollgate builds on.

use std::borrow::Cow;
use std::time::Duration;

use tollgate::auth::path::normalize;
use tollgate::auth::rules::RuleSet;
use tollgate::config::{self, PathMatch, Settings};

/// Loads the text as a config and checks the outcome.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::from_str(text, "fuzz.toml") {
        Ok(settings) => assert_usable(&settings),
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.starts_with("fuzz.toml"),
                "the error does not name the file: {message:?}"
            );
            assert!(
                !message.contains('\n'),
                "the error is not one line: {message:?}"
            );
        }
    }
}

/// Checks what validation promises about accepted settings.
fn assert_usable(settings: &Settings) {
    assert!(!settings.providers.is_empty(), "no provider");
    for provider in &settings.providers {
        assert!(
            !provider.algorithms.is_empty(),
            "{}: no algorithm",
            provider.name
        );
        assert!(
            !provider.audiences.is_empty(),
            "{}: no audience",
            provider.name
        );
        assert!(
            provider.leeway <= Duration::from_secs(300),
            "{}: leeway over 5m",
            provider.name
        );
    }
    let limits = &settings.limits;
    assert!((64..=65536).contains(&limits.max_token_bytes));
    assert!((16..=8192).contains(&limits.max_identity_header_bytes));

    // Rules compile, and the paths they name are already normal: the
    // router compares them with normalised request paths, so one that
    // normalises to something else could never match what it says.
    let rules = RuleSet::new(&settings.rules, settings.account_store.as_ref());
    assert!(
        rules.rules().len() > settings.rules.len(),
        "no default rule"
    );
    for rule in &settings.rules {
        // A prefix's last segment is extended by the request, so it may
        // end in what no whole segment may (`/files/report.`): probe it
        // extended.
        let path: Cow<'_, str> = match &rule.path {
            PathMatch::Exact(path) => Cow::Borrowed(path),
            PathMatch::Prefix(path) if path.ends_with('.') => Cow::Owned(format!("{path}x")),
            PathMatch::Prefix(path) => Cow::Borrowed(path),
        };
        match normalize(&path) {
            Ok(Cow::Borrowed(_)) => {}
            Ok(Cow::Owned(other)) => panic!("rule path {path:?} normalises to {other:?}"),
            Err(error) => panic!("rule path {path:?} is refused as a request path: {error}"),
        }
    }
}
