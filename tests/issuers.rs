//! Tokens shaped like those of real issuers (tests/fixtures/issuers/README.md
//! names the source of each shape): each is forwarded with exactly the
//! identity headers its provider snippet maps. Then one group per feature
//! that those shapes need, with the refusals that keep each one safe:
//! `audience_claim`, merged `roles_claim` lists with `roles_header`,
//! `require_sub = false`, and x509 map key documents.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Value, json};
use tollgate::env::Env;

use support::{AUDIENCE, Answer, Harness, ISSUER, Tollgate, Upstream, claims, keys, verdicts};

/// Every issuer case: its folder and file stem under tests/fixtures/issuers.
const CASES: [(&str, &str); 15] = [
    ("auth0", "access"),
    ("okta", "access"),
    ("keycloak", "access"),
    ("google", "id"),
    ("firebase", "id"),
    ("entra-v1", "access"),
    ("entra-v2", "access"),
    ("cognito", "id"),
    ("cognito", "access"),
    ("github-actions", "id"),
    ("kubernetes", "serviceaccount"),
    ("dex", "id"),
    ("hydra", "access"),
    ("supabase", "access"),
    ("supabase", "anon"),
];

/// The identity headers the harness's own provider maps; they are scrubbed
/// too, so the upstream must never see a forged one.
const HARNESS_HEADERS: [&str; 3] = ["x-user-id", "x-user-email", "x-user-roles"];

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/issuers")
}

/// One `<case>.json` with its `<case>.toml` provider snippet.
#[derive(Debug, Deserialize)]
struct Case {
    issuer: String,
    token: String,
    forwarded: BTreeMap<String, String>,
    #[serde(skip)]
    provider: String,
}

fn case(folder: &str, name: &str) -> Case {
    let dir = fixtures_dir().join(folder);
    let json = std::fs::read(dir.join(format!("{name}.json"))).expect("read case json");
    let mut case: Case = serde_json::from_slice(&json).expect("case json is well formed");
    case.provider = std::fs::read_to_string(dir.join(format!("{name}.toml"))).expect("read toml");
    case
}

/// Reads a snippet's `[[providers]]` table.
fn provider_table(snippet: &str) -> toml::Table {
    let file: toml::Table = toml::from_str(snippet).expect("snippet is TOML");
    let providers = file["providers"].as_array().expect("a providers array");
    providers[0].as_table().expect("a table").clone()
}

/// Lists every identity header a snippet's provider may set, lowercase.
fn identity_headers(snippet: &str) -> Vec<String> {
    let table = provider_table(snippet);
    let mapped = table["claim_to_headers"]
        .as_table()
        .expect("claim_to_headers");
    let roles = table.get("roles_header").and_then(toml::Value::as_str);
    mapped
        .keys()
        .map(String::as_str)
        .chain(roles)
        .map(str::to_ascii_lowercase)
        .collect()
}

async fn start(provider: &str) -> (Tollgate, Upstream) {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_provider_table(provider)
        .start()
        .await;
    (tollgate, upstream)
}

/// Sends a case's token with a forged value for every identity header (in
/// both spellings) and checks that the upstream saw exactly the case's
/// identity headers, and nothing the caller forged.
async fn forwarded_as_documented(folder: &str, name: &str) {
    let case = case(folder, name);
    let (tollgate, _upstream) = start(&case.provider).await;
    let mut names = identity_headers(&case.provider);
    names.extend(HARNESS_HEADERS.iter().map(|h| (*h).to_owned()));

    let mut call = tollgate.get("/games/42").bearer(&case.token);
    for header in &names {
        call = call
            .header(header, "forged")
            .header(&header.replace('-', "_"), "forged");
    }
    let answer = call.send().await;

    let label = format!("{} ({folder}/{name})", case.issuer);
    assert_eq!(answer.status, 200, "{label}: {}", answer.text());
    let expected: BTreeMap<String, &str> = case
        .forwarded
        .iter()
        .map(|(header, value)| (header.to_ascii_lowercase(), value.as_str()))
        .collect();
    for header in &names {
        let want: Vec<&str> = expected.get(header).copied().into_iter().collect();
        assert_eq!(answer.upstream_saw(header), want, "{label}: {header}");
        let underscored = header.replace('-', "_");
        assert!(
            answer.upstream_saw(&underscored).is_empty(),
            "{label}: {underscored}"
        );
    }
    for header in expected.keys() {
        assert!(names.contains(header), "{label}: {header} is not mapped");
    }
}

// --- one test per issuer case --------------------------------------------------

#[test]
fn every_fixture_case_has_a_test() {
    let mut on_disk = Vec::new();
    for entry in std::fs::read_dir(fixtures_dir()).expect("read fixtures") {
        let dir = entry.expect("entry").path();
        if !dir.is_dir() || dir.ends_with("x509") {
            continue;
        }
        for file in std::fs::read_dir(&dir).expect("read issuer folder") {
            let file = file.expect("entry").path();
            if file.extension().is_some_and(|ext| ext == "toml") {
                let folder = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                let stem = file
                    .file_stem()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                on_disk.push((folder.to_owned(), stem.to_owned()));
            }
        }
    }
    on_disk.sort();
    let mut listed: Vec<(String, String)> = CASES
        .iter()
        .map(|(f, n)| ((*f).to_owned(), (*n).to_owned()))
        .collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[tokio::test]
async fn an_auth0_access_token_yields_namespaced_claims_and_merged_permissions() {
    forwarded_as_documented("auth0", "access").await;
}

#[tokio::test]
async fn an_okta_access_token_yields_uid_as_the_user_and_its_groups() {
    forwarded_as_documented("okta", "access").await;
}

#[tokio::test]
async fn a_keycloak_access_token_yields_realm_and_client_roles_once_each() {
    forwarded_as_documented("keycloak", "access").await;
}

#[tokio::test]
async fn a_google_id_token_yields_its_subject_and_hosted_domain() {
    forwarded_as_documented("google", "id").await;
}

#[tokio::test]
async fn a_firebase_id_token_verifies_against_an_x509_map() {
    forwarded_as_documented("firebase", "id").await;
}

#[tokio::test]
async fn an_entra_v1_access_token_yields_oid_and_tenant() {
    forwarded_as_documented("entra-v1", "access").await;
}

#[tokio::test]
async fn an_entra_v2_access_token_yields_oid_tenant_and_scopes() {
    forwarded_as_documented("entra-v2", "access").await;
}

#[tokio::test]
async fn a_cognito_id_token_yields_its_groups() {
    forwarded_as_documented("cognito", "id").await;
}

#[tokio::test]
async fn a_cognito_access_token_is_checked_on_client_id() {
    forwarded_as_documented("cognito", "access").await;
}

#[tokio::test]
async fn a_github_actions_token_yields_repository_and_workflow() {
    forwarded_as_documented("github-actions", "id").await;
}

#[tokio::test]
async fn a_kubernetes_service_account_token_yields_nested_claims() {
    forwarded_as_documented("kubernetes", "serviceaccount").await;
}

#[tokio::test]
async fn a_dex_id_token_yields_federated_claims_and_groups() {
    forwarded_as_documented("dex", "id").await;
}

#[tokio::test]
async fn an_ory_hydra_access_token_yields_roles_from_ext() {
    forwarded_as_documented("hydra", "access").await;
}

#[tokio::test]
async fn a_supabase_access_token_yields_role_and_app_metadata_roles() {
    forwarded_as_documented("supabase", "access").await;
}

#[tokio::test]
async fn a_supabase_anon_key_passes_without_sub_or_aud() {
    forwarded_as_documented("supabase", "anon").await;
}

// --- audience_claim ------------------------------------------------------------

/// Sends `token` and returns the answer with the count of `reason` verdicts
/// it added for `provider`.
async fn send_counting(
    tollgate: &Tollgate,
    path: &str,
    token: &str,
    provider: &str,
    reason: &str,
) -> (Answer, f64) {
    let before = verdicts(&tollgate.metrics().await, provider, reason);
    let answer = tollgate.get(path).bearer(token).send().await;
    let after = verdicts(&tollgate.metrics().await, provider, reason);
    (answer, after - before)
}

/// Asserts that `token` is refused with 401 for exactly `reason`.
async fn assert_refused(tollgate: &Tollgate, token: &str, provider: &str, reason: &str) {
    let (answer, counted) = send_counting(tollgate, "/games/42", token, provider, reason).await;
    assert_eq!(answer.status, 401, "{reason}: {}", answer.text());
    assert_eq!(counted, 1.0, "refused for {reason}");
}

/// Claims for the harness's provider without `aud`, naming `client` in
/// `client_id` the way a Cognito access token does.
fn client_claims(client: &str) -> Value {
    let mut claims = claims("ana");
    claims.as_object_mut().expect("object").remove("aud");
    claims["client_id"] = json!(client);
    claims
}

async fn start_reading_client_id() -> (Tollgate, Upstream) {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_provider_lines("audience_claim = \"client_id\"")
        .start()
        .await;
    (tollgate, upstream)
}

#[tokio::test]
async fn a_token_whose_audience_claim_names_another_client_is_wrong_audience() {
    let (tollgate, upstream) = start_reading_client_id().await;
    let good = keys().mint("RS256", &client_claims(AUDIENCE));
    let answer = tollgate.get("/games/42").bearer(&good).send().await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    let other = keys().mint("RS256", &client_claims("another-app-client"));
    assert_refused(&tollgate, &other, "accounts", "wrong_audience").await;
    assert_eq!(upstream.hits(), 1);
}

#[tokio::test]
async fn a_good_aud_does_not_stand_in_for_the_named_audience_claim() {
    let (tollgate, _upstream) = start_reading_client_id().await;
    let token = keys().mint("RS256", &claims("ana"));
    assert_refused(&tollgate, &token, "accounts", "invalid_claims").await;
}

#[tokio::test]
async fn an_aud_for_another_service_is_refused_even_with_the_right_client_id() {
    let (tollgate, _upstream) = start_reading_client_id().await;
    let mut claims = client_claims(AUDIENCE);
    claims["aud"] = json!("another-service");
    let token = keys().mint("RS256", &claims);
    assert_refused(&tollgate, &token, "accounts", "wrong_audience").await;
}

#[tokio::test]
async fn a_cognito_id_token_is_not_taken_where_access_tokens_are_expected() {
    // The ID token names the app client in `aud` and has no `client_id`.
    let id = case("cognito", "id");
    let access = case("cognito", "access");
    let (tollgate, _upstream) = start(&access.provider).await;
    assert_refused(&tollgate, &id.token, "cognito-access", "invalid_claims").await;
}

// --- roles_claim lists and roles_header ----------------------------------------

const MERGED_ROLES: &str = r#"roles_claim = ["/realm_access/roles", "/resource_access/chessmate-api/roles", "groups"]
roles_header = "X-Granted-Roles""#;

fn nested_roles(realm: Value, client: Value, groups: Value) -> Value {
    let mut claims = claims("ana");
    claims["realm_access"] = json!({ "roles": realm });
    claims["resource_access"] = json!({ "chessmate-api": { "roles": client } });
    claims["groups"] = groups;
    claims
}

async fn start_merging_roles() -> (Tollgate, Upstream) {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_provider_lines(MERGED_ROLES)
        .start()
        .await;
    (tollgate, upstream)
}

#[tokio::test]
async fn roles_from_several_claims_are_merged_in_order_without_duplicates() {
    let (tollgate, _upstream) = start_merging_roles().await;
    let claims = nested_roles(
        json!(["player", "offline_access"]),
        json!(["moderator", "player"]),
        json!("admin"),
    );
    let token = keys().mint("ES256", &claims);

    let answer = tollgate
        .get("/admin/games")
        .bearer(&token)
        .header("X-Granted-Roles", "superuser")
        .header("x_granted_roles", "superuser")
        .send()
        .await;
    assert_eq!(answer.status, 200, "admin comes from the third claim");
    assert_eq!(
        answer.upstream_saw("x-granted-roles"),
        ["player,offline_access,moderator,admin"]
    );
    assert!(answer.upstream_saw("x_granted_roles").is_empty());
}

#[tokio::test]
async fn a_caller_without_roles_gets_no_roles_header_and_no_admin_route() {
    let (tollgate, _upstream) = start_merging_roles().await;
    let token = keys().mint("ES256", &claims("ana"));
    let answer = tollgate
        .get("/games/42")
        .bearer(&token)
        .header("X-Granted-Roles", "admin")
        .send()
        .await;
    assert_eq!(answer.status, 200);
    assert!(answer.upstream_saw("x-granted-roles").is_empty());

    let answer = tollgate.get("/admin/games").bearer(&token).send().await;
    assert_eq!(answer.status, 403);
}

#[tokio::test]
async fn a_role_that_would_read_as_two_in_the_roles_header_refuses_the_token() {
    let (tollgate, upstream) = start_merging_roles().await;
    for bad in [
        json!(["player,admin"]),
        json!([" admin"]),
        json!({"admin": true}),
    ] {
        let claims = nested_roles(json!(["player"]), bad.clone(), json!(null));
        let token = keys().mint("ES256", &claims);
        assert_refused(&tollgate, &token, "accounts", "invalid_claims").await;
    }
    assert_eq!(upstream.hits(), 0);
}

// --- require_sub ---------------------------------------------------------------

fn without_sub() -> Value {
    let mut claims = claims("ana");
    claims.as_object_mut().expect("object").remove("sub");
    claims
}

#[tokio::test]
async fn without_require_sub_a_token_without_sub_passes_with_its_other_headers() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_provider_lines("require_sub = false")
        .start()
        .await;
    let token = keys().mint("EdDSA", &without_sub());
    let answer = tollgate
        .get("/games/42")
        .bearer(&token)
        .header("X-User-Id", "forged")
        .send()
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.upstream_saw("x-user-id").is_empty());
    assert_eq!(answer.upstream_saw("x-user-email"), ["ana@chessmate.test"]);

    let mut claims = without_sub();
    claims["sub"] = json!("");
    let token = keys().mint("EdDSA", &claims);
    assert_refused(&tollgate, &token, "accounts", "invalid_claims").await;
}

#[tokio::test]
async fn by_default_a_token_without_sub_is_invalid_claims() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let token = keys().mint("EdDSA", &without_sub());
    assert_refused(&tollgate, &token, "accounts", "invalid_claims").await;
}

#[tokio::test]
async fn the_supabase_anon_key_needs_require_sub_turned_off() {
    let anon = case("supabase", "anon");
    let strict = anon.provider.replace("require_sub = false\n", "");
    assert_ne!(strict, anon.provider, "the snippet turns require_sub off");
    let (tollgate, _upstream) = start(&strict).await;
    assert_refused(&tollgate, &anon.token, "supabase-anon", "invalid_claims").await;
}

// --- x509 maps -----------------------------------------------------------------

/// One entry of x509/tokens.json.
#[derive(Debug, Deserialize)]
struct X509Token {
    name: String,
    expect: String,
    sub: String,
    token: String,
}

fn x509_tokens() -> Vec<X509Token> {
    let text = std::fs::read(fixtures_dir().join("x509/tokens.json")).expect("read tokens");
    serde_json::from_slice(&text).expect("tokens.json is a list")
}

/// The provider for the x509 feature tokens; `format` is the
/// `keys_format` line, or empty to let the document's shape decide.
fn x509_provider(format: &str) -> String {
    format!(
        r#"[[providers]]
name = "x509"
issuer = "https://x509.chessmate.test"
audiences = ["{AUDIENCE}"]
algorithms = ["RS256", "PS256", "ES256", "ES384", "EdDSA"]
jwks_file = "tests/fixtures/issuers/x509/keys.json"
{format}
"#
    )
}

async fn check_x509_tokens(provider: &str) {
    let (tollgate, upstream) = start(provider).await;
    let tokens = x509_tokens();
    for token in &tokens {
        let name = &token.name;
        if token.expect == "ok" {
            let answer = tollgate.get("/games/42").bearer(&token.token).send().await;
            assert_eq!(answer.status, 200, "{name}: {}", answer.text());
            assert_eq!(
                answer.upstream_saw("x-user-id"),
                [token.sub.as_str()],
                "{name}"
            );
        } else {
            let reason = token.expect.as_str();
            let (answer, counted) =
                send_counting(&tollgate, "/games/42", &token.token, "x509", reason).await;
            assert_eq!(answer.status, 401, "{name}");
            assert_eq!(counted, 1.0, "{name}: refused for {reason}");
        }
    }
    let passing = tokens.iter().filter(|t| t.expect == "ok").count();
    assert_eq!(upstream.hits(), passing);
}

#[tokio::test]
async fn an_x509_map_serves_rsa_ec_and_ed25519_keys_bound_to_their_type() {
    check_x509_tokens(&x509_provider("keys_format = \"x509_map\"")).await;
}

#[tokio::test]
async fn an_x509_map_is_recognised_without_keys_format() {
    check_x509_tokens(&x509_provider("")).await;
}

#[test]
fn the_x509_fixtures_hold_every_key_type_and_both_refusals() {
    let tokens = x509_tokens();
    let names: Vec<&str> = tokens.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "rs256",
            "ps256",
            "es256",
            "es384",
            "eddsa",
            "wrong-type",
            "weak-rsa"
        ]
    );
    let wrong = tokens.iter().find(|t| t.name == "wrong-type");
    assert_eq!(wrong.map(|t| t.expect.as_str()), Some("disallowed_alg"));
}

#[test]
fn an_x509_map_read_as_a_jwks_is_refused_at_load() {
    let text = format!(
        "[upstream]\nurl = \"http://127.0.0.1:8000\"\n{}",
        x509_provider("keys_format = \"jwks\"")
    );
    let settings = tollgate::config::from_str(&text, "test.toml").expect("config is valid");
    let error = tollgate::keys::load(&settings.providers[0], &Env::empty())
        .expect_err("an x509 map is not a JWKS");
    let message = error.to_string();
    assert!(message.contains("providers[0].jwks_file"), "{message}");
    assert!(message.contains("not a JWKS"), "{message}");
}

#[test]
fn the_issuer_snippets_load_as_written() {
    for (folder, name) in CASES {
        let case = case(folder, name);
        let text = format!(
            "[upstream]\nurl = \"http://127.0.0.1:8000\"\n{}",
            case.provider
        );
        let settings = tollgate::config::from_str(&text, "snippet.toml")
            .unwrap_or_else(|error| panic!("{folder}/{name}: {error}"));
        let provider = &settings.providers[0];
        let (keys, _skipped) = tollgate::keys::load(provider, &Env::empty())
            .unwrap_or_else(|error| panic!("{folder}/{name}: {error}"));
        assert!(!keys.is_empty(), "{folder}/{name}");
    }
}

/// The harness's own issuer never picks an issuer fixture's provider.
#[test]
fn no_issuer_fixture_reuses_the_harness_issuer() {
    for (folder, name) in CASES {
        let table = provider_table(&case(folder, name).provider);
        assert_ne!(table["issuer"].as_str(), Some(ISSUER), "{folder}/{name}");
    }
}
