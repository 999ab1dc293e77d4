//! Path normalisation and rule matching.
//!
//! Input: one byte picking the method, then the request path. The path is
//! normalised as the proxy does before routing, and the invariants of a
//! canonical path are checked: it is absolute, has no `.`, `..` or empty
//! segment, none of the refused bytes or escapes, and normalising it again
//! gives it back unchanged (and borrowed). The rule picked for it is then
//! compared with a plain first-match reading of the rules.

use std::borrow::Cow;
use std::sync::OnceLock;

use http::Method;
use tollgate::auth::path::normalize;
use tollgate::auth::rules::{RuleSet, Target};
use tollgate::config::{self, PathMatch, Settings};

/// Rules with every kind of match: exact, prefix with and without a
/// trailing `/`, methods, and the account store's exact routes.
const RULES: &str = r#"
[upstream]
url = "http://127.0.0.1:8000"

[account_store]
url = "http://127.0.0.1:8001"

[[providers]]
name = "accounts"
issuer = "https://accounts.test"
audiences = ["api"]
algorithms = ["HS256"]
secret_env = "JWT_SECRET_KEY"

[[rules]]
path = "/health"
public = true
methods = ["GET"]

[[rules]]
path_prefix = "/public/"
public = true

[[rules]]
path_prefix = "/admin/"
roles = ["admin"]

[[rules]]
path_prefix = "/api"
methods = ["DELETE", "PUT"]
roles = ["writer"]
"#;

/// Methods a request may carry, spelled as clients do, case and all.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "delete", "get", "OPTIONS",
];

fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| config::from_str(RULES, "rules.toml").expect("the rules load"))
}

fn rules() -> &'static RuleSet {
    static RULESET: OnceLock<RuleSet> = OnceLock::new();
    RULESET.get_or_init(|| {
        let settings = settings();
        RuleSet::new(&settings.rules, settings.account_store.as_ref())
    })
}

/// Normalises one path and routes it, checking both.
pub fn check(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(rest) else {
        return;
    };
    let method = Method::from_bytes(METHODS[usize::from(pick) % METHODS.len()].as_bytes())
        .expect("every listed method is a valid token");

    let Ok(normalized) = normalize(raw) else {
        return;
    };
    if let Cow::Borrowed(same) = &normalized {
        assert_eq!(*same, raw, "a borrowed result is the input itself");
    }
    assert_canonical(&normalized);
    assert_routed_like_a_plain_reading(&method, &normalized);
}

/// Asserts what makes a path canonical, and that it is a fixed point.
fn assert_canonical(path: &str) {
    assert!(path.starts_with('/'), "not absolute: {path:?}");
    let body = &path[1..];
    let segments: Vec<&str> = body.split('/').collect();
    for (at, segment) in segments.iter().enumerate() {
        let is_last = at + 1 == segments.len();
        assert!(
            !matches!(*segment, "." | ".."),
            "a dot segment survived: {path:?}"
        );
        assert!(
            !segment.is_empty() || is_last,
            "an empty segment survived: {path:?}"
        );
    }
    for forbidden in ['\\', '\0', ';'] {
        assert!(!path.contains(forbidden), "{forbidden:?} in {path:?}");
    }
    assert_escapes_canonical(path);

    match normalize(path) {
        Ok(Cow::Borrowed(again)) => assert_eq!(again, path),
        Ok(Cow::Owned(again)) => panic!("not a fixed point: {path:?} became {again:?}"),
        Err(error) => panic!("a normalised path is refused: {path:?}: {error}"),
    }
}

/// Every escape left is two uppercase hex digits for a byte that is
/// neither unreserved (it would have been decoded) nor refused.
fn assert_escapes_canonical(path: &str) {
    let bytes = path.as_bytes();
    for (at, _) in path.match_indices('%') {
        let digits = bytes.get(at + 1..at + 3).expect("an escape has two digits");
        let text = std::str::from_utf8(digits).expect("hex digits are ASCII");
        assert!(
            digits
                .iter()
                .all(|d| d.is_ascii_digit() || d.is_ascii_uppercase()),
            "escape not uppercase in {path:?}"
        );
        let value = u8::from_str_radix(text, 16).expect("an escape is hex");
        let unreserved = value.is_ascii_alphanumeric() || b"-._~".contains(&value);
        assert!(!unreserved, "an unreserved escape survived in {path:?}");
        assert!(
            !b"/\\;\0".contains(&value),
            "a refused escape survived in {path:?}"
        );
    }
}

/// Compares the rule picked with the first rule, in order, whose path and
/// method cover the request, as the README describes matching.
fn assert_routed_like_a_plain_reading(method: &Method, path: &str) {
    let rules = rules();
    let (at, rule) = rules.find_at(method, path);
    let expected = rules.rules()[..rules.rules().len() - 1]
        .iter()
        .position(|rule| {
            let lenient = matches!(&rule.target, Target::Protected { roles } if !roles.is_empty());
            covers(&rule.path, path, lenient) && covers_method(rule.methods.as_deref(), method)
        })
        .unwrap_or(rules.rules().len() - 1);
    assert_eq!(at, expected, "{method} {path:?} picked {}", rule.name);

    // A path under `/admin/`, however it was spelled, needs the admin role.
    let lower = path.to_ascii_lowercase();
    if lower.starts_with("/admin/") || lower == "/admin" {
        assert_eq!(
            rule.target,
            Target::Protected {
                roles: vec!["admin".to_owned()]
            },
            "{path:?} escaped the admin rule"
        );
    }
}

/// The README's reading: exact or prefix, and for a rule that requires a
/// role, any ASCII case and (exact paths) one trailing `/`.
fn covers(rule: &PathMatch, path: &str, lenient: bool) -> bool {
    let (rule_path, path) = if lenient {
        (
            rule_text(rule).to_ascii_lowercase(),
            path.to_ascii_lowercase(),
        )
    } else {
        (rule_text(rule).to_owned(), path.to_owned())
    };
    match rule {
        PathMatch::Exact(_) => {
            rule_path == path
                || (lenient && !rule_path.ends_with('/') && path == format!("{rule_path}/"))
        }
        PathMatch::Prefix(_) => {
            path.starts_with(rule_path.as_str())
                || (rule_path.len() > 1
                    && rule_path.ends_with('/')
                    && path == rule_path[..rule_path.len() - 1])
        }
    }
}

fn rule_text(rule: &PathMatch) -> &str {
    match rule {
        PathMatch::Exact(exact) | PathMatch::Prefix(exact) => exact,
    }
}

fn covers_method(methods: Option<&[Method]>, method: &Method) -> bool {
    let Some(methods) = methods else {
        return true;
    };
    let sent = method.as_str();
    methods.iter().any(|wanted| {
        let wanted = wanted.as_str();
        wanted.eq_ignore_ascii_case(sent)
            || (wanted.eq_ignore_ascii_case("GET") && sent.eq_ignore_ascii_case("HEAD"))
    })
}
