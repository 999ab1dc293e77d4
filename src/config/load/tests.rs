//! Tests for loading: the example file, defaults, and one test per rule,
//! each checking the error's variant, key and line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::Algorithm;

mod provider;
mod remote;
mod rotation;
mod shape;
mod tls;

use super::{DEFAULT_PATH, from_file, from_str};
use crate::config::{AccessMode, ClaimPath, ConfigError, PathMatch, SecretSource, Settings};

/// The smallest file that loads: an upstream and one HMAC provider.
const MINIMAL: &str = r#"
[upstream]
url = "http://127.0.0.1:8000"

[[providers]]
name = "accounts"
issuer = "https://accounts.test"
audiences = ["api"]
algorithms = ["HS256"]
secret_env = "JWT_SECRET_KEY"
"#;

/// The upstream table every provider test needs.
const UPSTREAM: &str = "[upstream]\nurl = \"http://127.0.0.1:8000\"\n";

// --- helpers -----------------------------------------------------------------

/// Loads `text`, panicking with the error if it is refused.
fn load(text: &str) -> Settings {
    match from_str(text, "test.toml") {
        Ok(settings) => settings,
        Err(error) => panic!("expected the config to load, got: {error}"),
    }
}

/// Returns the 1-based line of the one line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    let hits: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| line.contains(needle))
        .map(|(at, _)| at + 1)
        .collect();
    assert_eq!(hits.len(), 1, "{needle:?} must be on exactly one line");
    hits[0]
}

/// Asserts an `Invalid` error with `key`, on the line holding `needle`, and
/// returns its message.
fn invalid(text: &str, key: &str, needle: &str) -> String {
    match from_str(text, "test.toml") {
        Err(ConfigError::Invalid {
            origin,
            key: got_key,
            message,
        }) => {
            assert_eq!(got_key, key, "wrong key; message: {message}");
            let line = line_of(text, needle);
            assert_eq!(origin, format!("test.toml:{line}"), "wrong line; {message}");
            message
        }
        other => panic!("expected Invalid for {key}, got {other:?}"),
    }
}

/// Asserts a `Parse` error and returns its origin and message.
fn parse_error(text: &str) -> (String, String) {
    match from_str(text, "test.toml") {
        Err(ConfigError::Parse { origin, message }) => (origin, message),
        other => panic!("expected Parse, got {other:?}"),
    }
}

/// Builds a file with one provider whose table body is `body`.
fn provider(body: &str) -> String {
    format!("{UPSTREAM}\n[[providers]]\n{body}")
}

/// Builds a file with one HMAC provider and `rest` after it.
fn minimal_with(rest: &str) -> String {
    format!("{MINIMAL}\n{rest}")
}

/// Builds a file whose first provider lists `algorithms` with `keys`.
fn provider_keys(algorithms: &str, keys: &str) -> String {
    provider(&format!(
        "name = \"a\"\nissuer = \"i\"\naudiences = [\"api\"]\nalgorithms = {algorithms}\n{keys}"
    ))
}

// --- the example file and defaults -------------------------------------------

#[test]
fn the_example_file_loads_as_documented() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_PATH);
    let settings = match from_file(&path) {
        Ok(settings) => settings,
        Err(error) => panic!("example config refused: {error}"),
    };

    assert_eq!(&*settings.service, "game-api");
    assert_eq!(settings.listen.address, addr("0.0.0.0:8080"));
    assert_eq!(settings.listen.drain_timeout, Duration::from_secs(20));
    assert_eq!(settings.admin, addr("127.0.0.1:9901"));
    assert_eq!(settings.upstream.url, "http://127.0.0.1:8000/");
    assert_eq!(settings.upstream.timeout, Duration::from_secs(30));

    let store = settings
        .account_store
        .as_ref()
        .expect("account store is set");
    assert_eq!(store.url, "http://127.0.0.1:8001/");
    assert_eq!(
        store.routes,
        ["/auth/login", "/auth/refresh", "/auth/logout"]
    );
    assert_eq!(store.timeout, Duration::from_secs(5));

    assert_eq!(settings.providers.len(), 1);
    let accounts = &settings.providers[0];
    assert_eq!(&*accounts.name, "accounts");
    assert_eq!(accounts.issuer, "https://accounts.chessmate.test");
    assert_eq!(accounts.audiences, ["chessmate-api"]);
    assert_eq!(
        accounts.algorithms,
        [
            Algorithm::HS256,
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA
        ]
    );
    let secret = accounts.secret.as_ref().expect("secret is set");
    assert!(matches!(&secret.value, SecretSource::Env(names) if names == &["JWT_SECRET_KEY"]));
    let jwks = accounts.jwks_file.as_ref().expect("jwks_file is set");
    assert_eq!(jwks.value, PathBuf::from("config/jwks.json"));
    assert_eq!(jwks.key, "providers[0].jwks_file");
    assert_eq!(accounts.leeway, Duration::from_secs(30));
    assert_eq!(accounts.roles_claim, [ClaimPath::Name("roles".into())]);
    let headers: Vec<(&str, &ClaimPath)> = accounts
        .claim_to_headers
        .iter()
        .map(|(name, claim)| (name.as_str(), claim))
        .collect();
    assert_eq!(
        headers,
        [
            ("x-user-id", &ClaimPath::Name("sub".into())),
            ("x-user-email", &ClaimPath::Name("email".into())),
            ("x-user-roles", &ClaimPath::Name("roles".into())),
        ]
    );

    assert_eq!(settings.cache.capacity, 100_000);
    assert_eq!(settings.rules.len(), 3);
    let health = &settings.rules[0];
    assert_eq!(&*health.name, "health");
    assert_eq!(health.path, PathMatch::Exact("/health".into()));
    assert_eq!(
        health.methods,
        Some(vec![http::Method::GET, http::Method::HEAD])
    );
    assert_eq!(health.access, AccessMode::Public);
    let public = &settings.rules[1];
    assert_eq!(&*public.name, "/public/");
    assert_eq!(public.path, PathMatch::Prefix("/public/".into()));
    assert_eq!(public.methods, None);
    assert_eq!(public.access, AccessMode::Public);
    let admin = &settings.rules[2];
    assert_eq!(admin.path, PathMatch::Prefix("/admin/".into()));
    let roles = vec!["admin".to_owned()];
    assert_eq!(admin.access, AccessMode::Protected { roles });

    assert_eq!(settings.limits.max_token_bytes, 8192);
    assert_eq!(settings.limits.max_identity_header_bytes, 4096);
    assert_eq!(settings.log.level, "info");
    assert!(settings.log.access);
}

#[test]
fn the_example_file_locates_its_secret_and_key_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_PATH);
    let text = std::fs::read_to_string(&path).expect("example config is readable");
    let settings = load(&text);
    let accounts = &settings.providers[0];

    let secret = accounts.secret.as_ref().expect("secret is set");
    assert_eq!(secret.key, "providers[0].secret_env");
    let line = line_of(&text, "secret_env =");
    assert_eq!(secret.origin, format!("test.toml:{line}"));

    let jwks = accounts.jwks_file.as_ref().expect("jwks_file is set");
    let line = line_of(&text, "jwks_file =");
    assert_eq!(jwks.origin, format!("test.toml:{line}"));
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("test address parses")
}

#[test]
fn keys_left_out_take_their_defaults() {
    let settings = load(MINIMAL);

    assert_eq!(&*settings.service, "tollgate");
    assert_eq!(settings.listen.address, addr("0.0.0.0:8080"));
    assert_eq!(settings.listen.drain_timeout, Duration::from_secs(20));
    assert_eq!(settings.admin, addr("127.0.0.1:9901"));
    assert_eq!(settings.upstream.timeout, Duration::from_secs(30));
    assert!(settings.account_store.is_none());
    assert_eq!(settings.cache.capacity, 100_000);
    assert!(settings.rules.is_empty());
    assert_eq!(settings.limits.max_token_bytes, 8192);
    assert_eq!(settings.limits.max_identity_header_bytes, 4096);
    assert_eq!(settings.log.level, "info");
    assert!(settings.log.access);

    let provider = &settings.providers[0];
    assert_eq!(provider.leeway, Duration::from_secs(30));
    assert_eq!(provider.roles_claim, [ClaimPath::Name("roles".into())]);
    assert_eq!(provider.audience_claim, ClaimPath::Name("aud".into()));
    assert!(provider.roles_header.is_none());
    assert!(provider.require_sub);
    assert!(provider.keys_format.is_none());
    assert!(provider.jwks_file.is_none());
    assert_eq!(provider.claim_to_headers.len(), 1);
    assert_eq!(provider.claim_to_headers[0].0, "x-user-id");
    assert_eq!(
        provider.claim_to_headers[0].1,
        ClaimPath::Name("sub".into())
    );
}

#[test]
fn an_account_store_with_only_a_url_gets_default_routes_and_timeout() {
    let text = minimal_with("[account_store]\nurl = \"http://127.0.0.1:8001\"\n");
    let store = load(&text).account_store.expect("account store is set");
    assert_eq!(
        store.routes,
        ["/auth/login", "/auth/refresh", "/auth/logout"]
    );
    assert_eq!(store.timeout, Duration::from_secs(5));
}

#[test]
fn an_empty_claim_to_headers_table_sets_no_headers() {
    let text = format!("{MINIMAL}[providers.claim_to_headers]\n");
    assert!(load(&text).providers[0].claim_to_headers.is_empty());
}

// --- reading and parsing -----------------------------------------------------

#[test]
fn a_missing_file_is_a_read_error_naming_it() {
    let error = from_file(Path::new("no/such/tollgate.toml")).expect_err("file is missing");
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error.to_string().contains("no/such/tollgate.toml"));
}

#[test]
fn a_syntax_error_names_line_and_column_on_one_line() {
    let text = format!("{MINIMAL}leeway = \"30s\" oops\n");
    let (origin, message) = parse_error(&text);
    let line = line_of(&text, "oops");
    assert!(
        origin.starts_with(&format!("test.toml:{line}:")),
        "{origin}"
    );
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn a_wrong_type_names_the_column_of_the_value() {
    let (origin, message) = parse_error(&format!("service = 5\n{MINIMAL}"));
    assert_eq!(origin, "test.toml:1:11");
    assert!(message.contains("invalid type"), "{message}");
}

#[test]
fn an_unknown_nested_key_is_named_with_its_line() {
    let text = format!("{MINIMAL}leway = \"30s\"\n");
    let (origin, message) = parse_error(&text);
    let line = line_of(&text, "leway");
    assert_eq!(origin, format!("test.toml:{line}:1"));
    assert!(message.contains("unknown field `leway`"), "{message}");
}

#[test]
fn an_unknown_key_in_a_rule_is_named() {
    let text = minimal_with("[[rules]]\npath = \"/a\"\npublik = true\n");
    let (origin, message) = parse_error(&text);
    let line = line_of(&text, "publik");
    assert_eq!(origin, format!("test.toml:{line}:1"));
    assert!(message.contains("unknown field `publik`"), "{message}");
}

#[test]
fn a_missing_upstream_table_is_a_parse_error() {
    let text = MINIMAL.replace(UPSTREAM.trim_end(), "");
    let (_, message) = parse_error(&text);
    assert!(message.contains("missing field `upstream`"), "{message}");
}

#[test]
fn a_missing_provider_name_is_a_parse_error() {
    let (_, message) = parse_error(&MINIMAL.replace("name = \"accounts\"", ""));
    assert!(message.contains("missing field `name`"), "{message}");
}

#[test]
fn a_negative_cache_capacity_is_a_parse_error() {
    let (origin, _) = parse_error(&minimal_with("[cache]\ncapacity = -1\n"));
    assert!(origin.starts_with("test.toml:"), "{origin}");
}

#[test]
fn a_cache_max_bytes_below_one_mib_is_refused_but_zero_is_accepted() {
    let Err(error) = from_str(&minimal_with("[cache]\nmax_bytes = 4096\n"), "test.toml") else {
        panic!("a 4 KiB cache was accepted");
    };
    assert!(error.to_string().contains("cache.max_bytes"), "{error}");
    let settings = load(&minimal_with("[cache]\nmax_bytes = 0\n"));
    assert_eq!(settings.cache.max_bytes, 0);
    let settings = load(&minimal_with(""));
    assert_eq!(settings.cache.max_bytes, 64 * 1024 * 1024);
}

#[test]
fn a_zero_cache_capacity_is_accepted() {
    assert_eq!(
        load(&minimal_with("[cache]\ncapacity = 0\n"))
            .cache
            .capacity,
        0
    );
}

// --- service and listeners ---------------------------------------------------

#[test]
fn a_service_name_must_be_plain_and_short() {
    for bad in ["", "game api", "game\"api", &"a".repeat(65)] {
        let text = format!("service = {bad:?}\n{MINIMAL}");
        invalid(&text, "service", "service =");
    }
    let longest = "a".repeat(64);
    let text = format!("service = {longest:?}\n{MINIMAL}");
    assert_eq!(&*load(&text).service, longest);
}

#[test]
fn a_listen_address_must_be_a_socket_address() {
    let text = minimal_with("[listen]\naddress = \"localhost\"\n");
    let message = invalid(&text, "listen.address", "address =");
    assert!(message.contains("\"localhost\""), "{message}");
}

#[test]
fn a_drain_timeout_must_be_a_duration() {
    let text = minimal_with("[listen]\ndrain_timeout = \"soon\"\n");
    invalid(&text, "listen.drain_timeout", "drain_timeout");
}

#[test]
fn the_admin_listener_may_not_share_the_downstream_one() {
    let text = minimal_with("[admin]\naddress = \"0.0.0.0:8080\"\n");
    invalid(&text, "admin.address", "address =");

    let text = minimal_with("[listen]\naddress = \"0.0.0.0:9901\"\n");
    invalid(&text, "listen.address", "address =");

    let text = minimal_with(
        "[listen]\naddress = \"0.0.0.0:7000\"\n[admin]\naddress = \"127.0.0.1:7000\"\n",
    );
    invalid(&text, "admin.address", "127.0.0.1:7000");
}

#[test]
fn listeners_on_port_zero_never_collide() {
    let text =
        minimal_with("[listen]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n");
    assert_eq!(load(&text).admin, addr("127.0.0.1:0"));
}

// --- upstream and account store ----------------------------------------------

/// Replaces the upstream URL in [`MINIMAL`].
fn with_upstream_url(url: &str) -> String {
    MINIMAL.replace("http://127.0.0.1:8000", url)
}

#[test]
fn an_https_upstream_is_accepted() {
    let settings = load(&with_upstream_url("https://game.internal:8443"));
    assert_eq!(settings.upstream.url.scheme_str(), Some("https"));
    assert!(settings.upstream.tls.ca_file.is_none());
    assert!(settings.upstream.tls.client_cert.is_none());
}

#[test]
fn an_upstream_url_is_scheme_and_authority_only() {
    for bad in [
        "ftp://127.0.0.1",
        "127.0.0.1:8000",
        "/service",
        "http://127.0.0.1:8000/api",
        "http://127.0.0.1:8000/?debug=1",
        "http://127.0.0.1:8000/#top",
        "http://user:pass@127.0.0.1:8000",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:0",
        "not a url",
    ] {
        invalid(&with_upstream_url(bad), "upstream.url", "url =");
    }
}

#[test]
fn an_upstream_url_may_end_with_a_slash_or_name_an_ipv6_host() {
    for good in [
        "http://127.0.0.1:8000/",
        "http://[::1]:8000",
        "http://game:8000",
    ] {
        assert_eq!(
            load(&with_upstream_url(good)).upstream.url.scheme_str(),
            Some("http")
        );
    }
}

#[test]
fn an_upstream_timeout_must_be_more_than_zero() {
    let text = with_upstream_url("http://127.0.0.1:8000\"\ntimeout = \"0s");
    invalid(&text, "upstream.timeout", "timeout");
}

#[test]
fn an_account_store_follows_the_url_rules() {
    let text = minimal_with("[account_store]\nurl = \"ftp://127.0.0.1:8001\"\n");
    let message = invalid(&text, "account_store.url", "8001");
    assert_eq!(
        message,
        "scheme \"ftp\" is not supported; use http or https"
    );
}

#[test]
fn an_account_store_needs_a_url() {
    let (_, message) = parse_error(&minimal_with("[account_store]\ntimeout = \"5s\"\n"));
    assert!(message.contains("missing field `url`"), "{message}");
}

#[test]
fn an_account_store_timeout_must_be_more_than_zero() {
    let text =
        minimal_with("[account_store]\nurl = \"http://127.0.0.1:8001\"\ntimeout = \"0ms\"\n");
    invalid(&text, "account_store.timeout", "timeout");
}

/// Builds a file whose account store lists `routes`, one per line.
fn with_routes(routes: &[&str]) -> String {
    let lines: String = routes
        .iter()
        .map(|route| format!("  {route:?},\n"))
        .collect();
    minimal_with(&format!(
        "[account_store]\nurl = \"http://127.0.0.1:8001\"\nroutes = [\n{lines}]\n"
    ))
}

#[test]
fn account_store_routes_must_be_plain_normalised_paths() {
    for bad in [
        "auth/login",
        "/auth//login",
        "/auth/./login",
        "/auth/../login",
        "/auth/login;x",
        "/auth/%6Cogin",
        "/auth\\login",
        "/auth/login?x",
        "/auth/login#x",
        "/auth/login/",
        "/auth/log in",
        "/auth/lögin",
    ] {
        let text = with_routes(&["/ok", bad]);
        invalid(&text, "account_store.routes", &format!("{bad:?}"));
    }
}

#[test]
fn account_store_routes_may_not_repeat() {
    let text = minimal_with(
        "[account_store]\nurl = \"http://127.0.0.1:8001\"\nroutes = [\n  \"/auth/login\",\n  \
         \"/auth/logout\",\n  \"/auth/login\", # again\n]\n",
    );
    let message = invalid(&text, "account_store.routes", "# again");
    assert!(message.contains("twice"), "{message}");
}

#[test]
fn an_empty_route_list_is_refused() {
    let text = minimal_with("[account_store]\nurl = \"http://127.0.0.1:8001\"\nroutes = []\n");
    invalid(&text, "account_store.routes", "routes");
}

// --- rules -------------------------------------------------------------------

/// Builds a file with one rule whose body is `body`.
fn with_rule(body: &str) -> String {
    minimal_with(&format!("[[rules]]\n{body}"))
}

#[test]
fn a_rule_needs_exactly_one_path_kind() {
    let text = with_rule("path = \"/a\"\npath_prefix = \"/a/\"\n");
    invalid(&text, "rules[0]", "[[rules]]");
    let text = with_rule("public = true\n");
    invalid(&text, "rules[0]", "[[rules]]");
}

#[test]
fn rule_paths_must_be_plain_normalised_paths() {
    for bad in [
        "a", "/a//b", "/a/./b", "/a/../b", "/a;b", "/a%2Fb", "/a\\b", "/a?b", "/a#b",
    ] {
        let text = with_rule(&format!("path = {bad:?}\n"));
        invalid(&text, "rules[0].path", "path =");
        let text = with_rule(&format!("path_prefix = {bad:?}\n"));
        invalid(&text, "rules[0].path_prefix", "path_prefix =");
    }
}

#[test]
fn a_rule_path_may_not_hold_a_segment_no_request_can_have() {
    // Requests whose segment ends in `.` are refused, so these never match
    // (found by the config fuzzer: `/a'./b`).
    for bad in ["/a'./b", "/a./b", "/admin."] {
        let text = with_rule(&format!("path = {bad:?}\n"));
        let message = invalid(&text, "rules[0].path", "path =");
        assert!(message.contains("ending in"), "{message}");
        let text = with_routes(&["/ok", bad]);
        invalid(&text, "account_store.routes", &format!("{bad:?}"));
    }
    let text = with_rule("path_prefix = \"/a./b\"\n");
    invalid(&text, "rules[0].path_prefix", "path_prefix =");

    // A prefix's last segment is extended by the request.
    let text = with_rule("path_prefix = \"/files/report.\"\n");
    assert_eq!(
        load(&text).rules[0].path,
        PathMatch::Prefix("/files/report.".into())
    );
}

#[test]
fn only_a_prefix_may_end_with_a_slash() {
    let text = with_rule("path = \"/public/\"\n");
    invalid(&text, "rules[0].path", "path =");
    let text = with_rule("path_prefix = \"/public/\"\n");
    assert_eq!(
        load(&text).rules[0].path,
        PathMatch::Prefix("/public/".into())
    );
    let text = with_rule("path = \"/\"\n");
    assert_eq!(load(&text).rules[0].path, PathMatch::Exact("/".into()));
}

#[test]
fn a_rule_is_named_after_its_path_unless_named() {
    let settings = load(&with_rule("path_prefix = \"/games/\"\n"));
    assert_eq!(&*settings.rules[0].name, "/games/");
    assert_eq!(
        settings.rules[0].access,
        AccessMode::Protected { roles: Vec::new() }
    );
    let text = with_rule("name = \"\"\npath = \"/a\"\n");
    invalid(&text, "rules[0].name", "name = \"\"");
}

#[test]
fn rule_methods_are_upper_case_tokens_listed_once() {
    let settings = load(&with_rule(
        "path = \"/a\"\nmethods = [\"PURGE\", \"GET\"]\n",
    ));
    let methods = settings.rules[0].methods.clone().expect("methods are set");
    assert_eq!(methods[0].as_str(), "PURGE");

    let text = with_rule("path = \"/a\"\nmethods = []\n");
    invalid(&text, "rules[0].methods", "methods");
    let text = with_rule("path = \"/a\"\nmethods = [\"get\"]\n");
    let message = invalid(&text, "rules[0].methods", "methods");
    assert!(message.contains("\"GET\""), "{message}");
    let text = with_rule("path = \"/a\"\nmethods = [\"G T\"]\n");
    invalid(&text, "rules[0].methods", "methods");
    let text = with_rule("path = \"/a\"\nmethods = [\"GET\", \"GET\"]\n");
    invalid(&text, "rules[0].methods", "methods");
}

#[test]
fn roles_are_refused_on_a_public_rule() {
    let text = with_rule("path = \"/a\"\npublic = true\nroles = [\"admin\"]\n");
    let message = invalid(&text, "rules[0].roles", "roles");
    assert!(message.contains("public"), "{message}");
}

#[test]
fn roles_must_be_non_empty_strings() {
    let text = with_rule("path = \"/a\"\nroles = []\n");
    invalid(&text, "rules[0].roles", "roles");
    let text = with_rule("path = \"/a\"\nroles = [\n  \"admin\",\n  \"\",\n]\n");
    invalid(&text, "rules[0].roles", "  \"\",");
}

#[test]
fn the_second_rule_is_keyed_by_its_index() {
    let text = minimal_with("[[rules]]\npath = \"/a\"\n\n[[rules]]\npath = \"/b/\"\n");
    invalid(&text, "rules[1].path", "/b/");
}

// --- limits and log ----------------------------------------------------------

#[test]
fn limits_must_lie_in_their_ranges() {
    for (key, value) in [
        ("max_token_bytes", 63),
        ("max_token_bytes", 65537),
        ("max_identity_header_bytes", 15),
        ("max_identity_header_bytes", 8193),
    ] {
        let text = minimal_with(&format!("[limits]\n{key} = {value}\n"));
        invalid(&text, &format!("limits.{key}"), key);
    }
    let text = minimal_with("[limits]\nmax_token_bytes = 64\nmax_identity_header_bytes = 8192\n");
    let limits = load(&text).limits;
    assert_eq!(
        (limits.max_token_bytes, limits.max_identity_header_bytes),
        (64, 8192)
    );
}

#[test]
fn the_abuse_limits_refuse_nonsense_values_naming_their_line() {
    for (key, value) in [
        ("max_uri_bytes", "63"),
        ("max_body_bytes", "0"),
        ("max_header_bytes", "8191"),
        ("max_headers", "0"),
        ("max_headers", "1001"),
        ("header_read_timeout", "\"0s\""),
        ("idle_timeout", "\"soon\""),
        ("max_connections", "0"),
        ("h2_max_concurrent_streams", "0"),
        ("h2_max_header_list_bytes", "1023"),
        ("h2_max_pending_accept_reset_streams", "0"),
        ("h2_max_local_error_reset_streams", "0"),
        ("account_store_rate_per_minute", "60001"),
        ("account_store_burst", "0"),
        ("trusted_hops", "11"),
    ] {
        let text = minimal_with(&format!("[limits]\n{key} = {value}\n"));
        let message = invalid(&text, &format!("limits.{key}"), key);
        assert!(!message.is_empty(), "{key}");
    }
}

#[test]
fn the_abuse_limits_have_their_documented_defaults_and_take_written_values() {
    let limits = load(&minimal_with("")).limits;
    assert_eq!(limits.max_uri_bytes, 8192);
    assert_eq!(limits.max_body_bytes, 10 * 1024 * 1024);
    assert!(!limits.account_store_rate.is_on());
    assert_eq!(limits.trusted_hops, 0);
    let listener = limits.listener;
    assert_eq!(listener, crate::config::ListenerLimits::default());
    assert_eq!(listener.header_read_timeout, Duration::from_secs(10));
    assert_eq!(listener.idle_timeout, Duration::from_secs(60));
    assert_eq!(listener.max_connections, 10_000);

    let text = minimal_with(
        "[limits]\nmax_body_bytes = 1\nidle_timeout = \"2m\"\naccount_store_rate_per_minute = 30\n",
    );
    let limits = load(&text).limits;
    assert_eq!(limits.max_body_bytes, 1);
    assert_eq!(limits.listener.idle_timeout, Duration::from_secs(120));
    assert_eq!(limits.account_store_rate.per_minute, 30);
    assert_eq!(limits.account_store_rate.burst, 10);
}

#[test]
fn the_log_level_must_be_a_tracing_filter() {
    let text = minimal_with("[log]\nlevel = \"tollgate=debug,info\"\naccess = false\n");
    let log = load(&text).log;
    assert_eq!(log.level, "tollgate=debug,info");
    assert!(!log.access);

    let text = minimal_with("[log]\nlevel = \"tollgate=loud\"\n");
    invalid(&text, "log.level", "level");
    let text = minimal_with("[log]\nlevel = \"\"\n");
    invalid(&text, "log.level", "level");
}

#[test]
fn errors_from_a_file_name_it_as_given() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, MINIMAL.replace("[\"api\"]", "[]")).expect("write config");
    match from_file(&path) {
        Err(ConfigError::Invalid { origin, key, .. }) => {
            assert_eq!(key, "providers[0].audiences");
            assert_eq!(
                origin,
                format!("{}:{}", path.display(), line_of(MINIMAL, "audiences"))
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}
