use std::sync::Arc;
use std::time::Duration;

use http::{Method, Uri};

use super::{Rule, RuleSet, Target};
use crate::config::{AccessMode, AccountStoreSettings, PathMatch, RuleSettings};

fn rule(
    name: &str,
    path: PathMatch,
    methods: Option<&[Method]>,
    access: AccessMode,
) -> RuleSettings {
    RuleSettings {
        name: Arc::from(name),
        path,
        methods: methods.map(<[Method]>::to_vec),
        access,
        mode: None,
    }
}

fn prefix(path: &str) -> PathMatch {
    PathMatch::Prefix(path.to_owned())
}

fn exact(path: &str) -> PathMatch {
    PathMatch::Exact(path.to_owned())
}

fn protected(roles: &[&str]) -> AccessMode {
    AccessMode::Protected {
        roles: roles.iter().map(|&role| role.to_owned()).collect(),
    }
}

fn account_store(routes: &[&str]) -> AccountStoreSettings {
    AccountStoreSettings {
        url: Uri::from_static("http://127.0.0.1:9000"),
        routes: routes.iter().map(|&route| route.to_owned()).collect(),
        timeout: Duration::from_secs(5),
        tls: Default::default(),
    }
}

fn name_of<'a>(set: &'a RuleSet, method: &Method, path: &str) -> &'a str {
    &set.find(method, path).name
}

#[test]
fn the_first_matching_rule_wins() {
    let set = RuleSet::new(
        &[
            rule("health", prefix("/api/health"), None, AccessMode::Public),
            rule("api", prefix("/api/"), None, protected(&[])),
        ],
        None,
    );
    assert_eq!(name_of(&set, &Method::GET, "/api/health"), "health");
    assert_eq!(name_of(&set, &Method::GET, "/api/users"), "api");
}

#[test]
fn a_broad_rule_listed_first_shadows_a_narrow_one() {
    let set = RuleSet::new(
        &[
            rule("api", prefix("/api/"), None, protected(&[])),
            rule("health", prefix("/api/health"), None, AccessMode::Public),
        ],
        None,
    );
    assert_eq!(name_of(&set, &Method::GET, "/api/health"), "api");
}

#[test]
fn an_exact_rule_covers_only_its_own_path() {
    let set = RuleSet::new(&[rule("home", exact("/"), None, AccessMode::Public)], None);
    assert_eq!(name_of(&set, &Method::GET, "/"), "home");
    assert_eq!(name_of(&set, &Method::GET, "/x"), "default");
}

#[test]
fn a_rule_with_roles_covers_its_path_in_any_case_and_with_a_trailing_slash() {
    let set = RuleSet::new(
        &[
            rule("secret", exact("/secret"), None, protected(&["admin"])),
            rule("admin", prefix("/admin/"), None, protected(&["admin"])),
            rule("public", prefix("/public/"), None, AccessMode::Public),
            rule("any", exact("/me"), None, protected(&[])),
        ],
        None,
    );
    for path in ["/secret", "/secret/", "/SECRET", "/Secret/"] {
        assert_eq!(name_of(&set, &Method::GET, path), "secret", "{path}");
    }
    for path in ["/Admin/x", "/ADMIN", "/admin"] {
        assert_eq!(name_of(&set, &Method::GET, path), "admin", "{path}");
    }
    // Rules that grant access match only as written.
    assert_eq!(name_of(&set, &Method::GET, "/PUBLIC/x"), "default");
    assert_eq!(name_of(&set, &Method::GET, "/me/"), "default");
    assert_eq!(name_of(&set, &Method::GET, "/secret//"), "default");
}

#[test]
fn an_exact_rule_does_not_cover_the_same_path_with_a_trailing_slash() {
    let set = RuleSet::new(
        &[rule("login", exact("/login"), None, AccessMode::Public)],
        None,
    );
    assert_eq!(name_of(&set, &Method::POST, "/login/"), "default");
}

#[test]
fn a_prefix_is_a_plain_string_prefix() {
    let set = RuleSet::new(
        &[rule("docs", prefix("/docs"), None, AccessMode::Public)],
        None,
    );
    assert_eq!(name_of(&set, &Method::GET, "/docs"), "docs");
    assert_eq!(name_of(&set, &Method::GET, "/docs/a"), "docs");
    assert_eq!(name_of(&set, &Method::GET, "/docsearch"), "docs");
    assert_eq!(name_of(&set, &Method::GET, "/doc"), "default");
}

#[test]
fn a_prefix_ending_in_slash_covers_the_bare_directory_too() {
    let set = RuleSet::new(
        &[rule("docs", prefix("/docs/"), None, AccessMode::Public)],
        None,
    );
    assert_eq!(name_of(&set, &Method::GET, "/docs"), "docs");
    assert_eq!(name_of(&set, &Method::GET, "/docs/"), "docs");
    assert_eq!(name_of(&set, &Method::GET, "/docsearch"), "default");
    let root = RuleSet::new(&[rule("all", prefix("/"), None, AccessMode::Public)], None);
    assert_eq!(name_of(&root, &Method::GET, ""), "default");
}

#[test]
fn methods_match_without_case_and_get_covers_head() {
    let writes = [Method::DELETE];
    let reads = [Method::GET];
    let set = RuleSet::new(
        &[
            rule("writes", prefix("/api/"), Some(&writes), AccessMode::Public),
            rule("reads", prefix("/api/"), Some(&reads), AccessMode::Public),
        ],
        None,
    );
    let lowercase = Method::from_bytes(b"delete").expect("valid method");
    assert_eq!(name_of(&set, &lowercase, "/api/x"), "writes");
    assert_eq!(name_of(&set, &Method::HEAD, "/api/x"), "reads");
    assert_eq!(name_of(&set, &Method::POST, "/api/x"), "default");
}

#[test]
fn a_rule_with_methods_covers_only_those_methods() {
    let set = RuleSet::new(
        &[rule(
            "read",
            prefix("/items"),
            Some(&[Method::GET, Method::HEAD]),
            AccessMode::Public,
        )],
        None,
    );
    assert_eq!(name_of(&set, &Method::GET, "/items"), "read");
    assert_eq!(name_of(&set, &Method::HEAD, "/items"), "read");
    assert_eq!(name_of(&set, &Method::POST, "/items"), "default");
}

#[test]
fn a_rule_without_methods_covers_every_method_including_extensions() {
    let set = RuleSet::new(&[rule("all", prefix("/"), None, AccessMode::Public)], None);
    let purge = Method::from_bytes(b"PURGE").expect("PURGE is a valid method token");
    for method in [Method::GET, Method::DELETE, Method::OPTIONS, purge] {
        assert_eq!(name_of(&set, &method, "/x"), "all", "{method}");
    }
}

#[test]
fn a_preflight_needs_a_token_unless_a_rule_makes_options_public() {
    let plain = RuleSet::new(&[rule("api", prefix("/api/"), None, protected(&[]))], None);
    assert!(matches!(
        plain.find(&Method::OPTIONS, "/api/x").target,
        Target::Protected { .. }
    ));

    let cors = RuleSet::new(
        &[
            rule(
                "preflight",
                prefix("/api/"),
                Some(&[Method::OPTIONS]),
                AccessMode::Public,
            ),
            rule("api", prefix("/api/"), None, protected(&[])),
        ],
        None,
    );
    assert_eq!(cors.find(&Method::OPTIONS, "/api/x").target, Target::Public);
    assert!(matches!(
        cors.find(&Method::GET, "/api/x").target,
        Target::Protected { .. }
    ));
}

#[test]
fn an_uncovered_request_gets_the_protected_default() {
    let set = RuleSet::new(&[], None);
    let found = set.find(&Method::GET, "/anything");
    assert_eq!(&*found.name, "default");
    assert_eq!(found.target, Target::Protected { roles: Vec::new() });
    assert_eq!(found.path, PathMatch::Prefix("/".to_owned()));
    assert!(found.methods.is_none());
}

#[test]
fn a_path_that_is_not_normalised_still_gets_the_default() {
    let set = RuleSet::new(&[rule("all", prefix("/"), None, AccessMode::Public)], None);
    assert_eq!(name_of(&set, &Method::GET, ""), "default");
    assert_eq!(name_of(&set, &Method::GET, "*"), "default");
}

#[test]
fn account_store_routes_come_before_the_configured_rules() {
    let store = account_store(&["/auth/login", "/auth/refresh"]);
    let set = RuleSet::new(
        &[rule("all", prefix("/"), None, AccessMode::Public)],
        Some(&store),
    );
    let found = set.find(&Method::POST, "/auth/login");
    assert_eq!(&*found.name, "account_store");
    assert_eq!(found.target, Target::AccountStore);
    assert_eq!(
        name_of(&set, &Method::POST, "/auth/refresh"),
        "account_store"
    );
}

#[test]
fn account_store_routes_match_exactly_and_for_every_method() {
    let store = account_store(&["/auth/login"]);
    let set = RuleSet::new(&[], Some(&store));
    assert_eq!(name_of(&set, &Method::GET, "/auth/login"), "account_store");
    assert_eq!(
        name_of(&set, &Method::OPTIONS, "/auth/login"),
        "account_store"
    );
    assert_eq!(name_of(&set, &Method::POST, "/auth/login/x"), "default");
    assert_eq!(name_of(&set, &Method::POST, "/auth/log"), "default");
}

#[test]
fn the_rule_list_is_store_routes_then_configured_then_default() {
    let store = account_store(&["/auth/login"]);
    let set = RuleSet::new(
        &[
            rule("b", prefix("/b"), None, AccessMode::Public),
            rule("a", prefix("/a"), None, protected(&["admin"])),
        ],
        Some(&store),
    );
    let names: Vec<&str> = set.rules().iter().map(|rule| &*rule.name).collect();
    assert_eq!(names, ["account_store", "b", "a", "default"]);
    assert_eq!(
        set.rules()[2].target,
        Target::Protected {
            roles: vec!["admin".to_owned()]
        }
    );
}

#[test]
fn a_rule_that_requires_no_role_accepts_any_caller() {
    let set = RuleSet::new(&[], None);
    let none: [&str; 0] = [];
    assert!(set.find(&Method::GET, "/").has_role(&none));
}

#[test]
fn a_rule_that_requires_roles_accepts_a_caller_holding_any_one() {
    let set = RuleSet::new(
        &[rule(
            "admin",
            prefix("/admin"),
            None,
            protected(&["ops", "admin"]),
        )],
        None,
    );
    let found = set.find(&Method::GET, "/admin");
    assert!(found.has_role(&["viewer", "admin"]));
    assert!(found.has_role(&[String::from("ops")]));
}

#[test]
fn a_rule_that_requires_roles_refuses_a_caller_holding_none_of_them() {
    let set = RuleSet::new(
        &[rule("admin", prefix("/admin"), None, protected(&["admin"]))],
        None,
    );
    let found = set.find(&Method::GET, "/admin");
    assert!(!found.has_role(&["viewer"]));
    assert!(!found.has_role(&["Admin", "admin "]));
    let none: [&str; 0] = [];
    assert!(!found.has_role(&none));
}

#[test]
fn public_and_account_store_rules_require_no_role() {
    let public = Rule {
        name: Arc::from("p"),
        path: prefix("/"),
        methods: None,
        target: Target::Public,
        mode: None,
    };
    let store = Rule {
        target: Target::AccountStore,
        ..public.clone()
    };
    let none: [&str; 0] = [];
    assert!(public.has_role(&none));
    assert!(store.has_role(&none));
}
