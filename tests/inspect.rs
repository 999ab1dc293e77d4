//! `tollgate inspect` as an operator runs it: the real binary judges a
//! token, and a real tollgate started from the same config must answer
//! the same token with the same status, challenge and verdict reason.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use serde_json::{Value, json};

use support::binary::{self, Output, command, write_config};
use support::jwks_server::{JwksServer, RemoteKey, jwks_of};
use support::{
    Answer, Harness, Upstream, VERDICTS, claims, closed_port, keys, metric_matching, now,
};
use tollgate::auth::Reason;

/// What one comparison gathered: the inspect run and the proxy's answer.
struct Compared {
    output: Output,
    answer: Answer,
}

impl Compared {
    fn text(&self) -> String {
        self.output.stdout_text()
    }
}

/// Where `inspect` reads the token from.
enum Input<'a> {
    /// The positional argument.
    Argument(&'a str),
    /// Stdin, as this text.
    Stdin(&'a str),
}

/// Runs `tollgate inspect` on a config file.
fn inspect(config: &Path, path: Option<&str>, input: Input<'_>) -> Output {
    let mut command = command();
    command
        .env("TEST_JWT_SECRET", keys().secret_text())
        .arg("inspect")
        .arg("--config")
        .arg(config);
    if let Some(path) = path {
        command.args(["--path", path]);
    }
    match input {
        Input::Argument(token) => {
            command.arg(token);
        }
        Input::Stdin(text) => {
            let file = config.with_file_name("token.txt");
            std::fs::write(&file, text).expect("write the token file");
            command.stdin(Stdio::from(std::fs::File::open(&file).expect("open token")));
        }
    }
    binary::run(&mut command)
}

/// Reads a field of the verdict block (`reason`, `status`, ...).
fn field(output: &Output, name: &str) -> Option<String> {
    output
        .stdout
        .iter()
        .skip_while(|line| !line.starts_with("verdict:"))
        .find_map(|line| {
            let rest = line.trim_start().strip_prefix(name)?;
            rest.starts_with("  ").then(|| rest.trim().to_owned())
        })
}

/// The reason the proxy counted for the one request it saw.
fn proxy_verdict(metrics: &str) -> String {
    let labels = Reason::ALL
        .iter()
        .map(|reason| reason.as_str())
        .chain(["ok"]);
    let counted: Vec<&str> = labels
        .filter(|label| metric_matching(metrics, VERDICTS, &[("reason", label)]) > 0.0)
        .collect();
    assert_eq!(counted.len(), 1, "one verdict expected: {counted:?}");
    counted[0].to_owned()
}

/// Judges `token` with `inspect` and sends it through a tollgate built
/// from the same config; asserts both give the same answer and that
/// neither the token nor its signature is printed.
async fn compare(
    make: impl Fn(SocketAddr) -> Harness,
    token: &str,
    path: Option<&str>,
    input: Input<'_>,
) -> Compared {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = make(upstream.addr()).render(dir.path());
    let config = write_config(dir.path(), "tollgate.toml", &text);
    let output = inspect(&config, path, input);

    let tollgate = make(upstream.addr()).start().await;
    let answer = tollgate
        .get(path.unwrap_or("/api/games"))
        .bearer(token)
        .send()
        .await;
    let metrics = tollgate.metrics().await;
    tollgate.shutdown().await;

    let shown = output.stdout_text();
    assert!(output.stderr.is_empty(), "stderr: {}", output.stderr);
    let (_, signature) = token.rsplit_once('.').unwrap_or(("", ""));
    if signature.len() > 8 {
        assert!(
            !shown.contains(signature),
            "the signature was printed:\n{shown}"
        );
    }
    assert!(!shown.contains(token), "the token was printed:\n{shown}");

    let reason = proxy_verdict(&metrics);
    assert_eq!(
        field(&output, "reason").as_deref(),
        Some(reason.as_str()),
        "{shown}"
    );
    let status = field(&output, "status").unwrap_or_default();
    if answer.status == StatusCode::OK {
        assert!(status.starts_with("forwarded"), "{shown}");
    } else {
        let code = answer.status.as_u16().to_string();
        assert!(
            status.starts_with(&code),
            "proxy {code}, inspect {status}:\n{shown}"
        );
    }
    // 0 only when let through without a refusal; a refusal report_only
    // forwards still exits 1.
    let exit = if reason == "ok" { 0 } else { 1 };
    assert_eq!(output.code(), Some(exit), "{shown}");
    for header in ["WWW-Authenticate", "Retry-After"] {
        let sent = answer.header(header).map(str::to_owned);
        assert_eq!(field(&output, header), sent, "{header}:\n{shown}");
    }
    Compared { output, answer }
}

/// The harness's default config: HS256 and every public key type.
fn default_harness(upstream: SocketAddr) -> Harness {
    Harness::new(upstream)
}

async fn compare_default(token: &str, path: Option<&str>) -> Compared {
    compare(default_harness, token, path, Input::Argument(token)).await
}

fn with_claim(name: &str, value: Value) -> Value {
    let mut claims = claims("alice");
    claims[name] = value;
    claims
}

fn hs256(claims: &Value) -> String {
    keys().mint("HS256", claims)
}

// --- one test per verdict reason ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_token_read_from_stdin_is_allowed_with_its_identity_headers() {
    let token = hs256(&claims("alice"));
    let pasted = format!("Bearer {token}\n");
    let compared = compare(default_harness, &token, None, Input::Stdin(&pasted)).await;

    assert_eq!(compared.answer.upstream_saw("x-user-id"), ["alice"]);
    let text = compared.text();
    assert!(text.contains("verdict: allowed"), "{text}");
    assert!(text.contains("x-user-id: alice"), "{text}");
    assert!(
        text.contains("x-user-email: alice@chessmate.test"),
        "{text}"
    );
    assert!(text.contains("\"sub\": \"alice\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_two_segments_is_malformed() {
    let compared = compare_default("eyJhbGciOiJIUzI1NiJ9.e30", None).await;

    assert!(
        compared.text().contains("2 segments"),
        "{}",
        compared.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_says_how_long_ago_with_the_leeway() {
    let token = hs256(&with_claim("exp", json!(now() - 192)));
    let compared = compare_default(&token, None).await;

    let text = compared.text();
    assert!(text.contains("expired 3m1"), "{text}");
    assert!(text.contains("ago"), "{text}");
    assert!(text.contains("leeway 5s"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_not_valid_yet_shows_the_clock_skew() {
    let token = hs256(&with_claim("nbf", json!(now() + 280)));
    let compared = compare_default(&token, None).await;

    let text = compared.text();
    assert!(text.contains("not valid for another 4m"), "{text}");
    assert!(text.contains("clock skew"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_signed_by_another_key_has_a_bad_signature() {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"});
    let token = keys().mint_signed_by("OTHER-RS256", &header, &claims("alice"));
    let compared = compare_default(&token, None).await;

    let text = compared.text();
    assert!(
        text.contains("kid \"rsa-1\" (RSA), matched by kid"),
        "{text}"
    );
    assert!(text.contains("does not verify"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_lists_the_known_ones() {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "retired-2023"});
    let token = keys().mint_with_header(&header, &claims("alice"));
    let compared = compare_default(&token, None).await;

    let text = compared.text();
    assert!(text.contains("no key has kid \"retired-2023\""), "{text}");
    assert!(text.contains("\"rsa-1\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_issuer_is_named_with_the_configured_ones() {
    let token = hs256(&with_claim("iss", json!("https://evil.test")));
    let compared = compare_default(&token, None).await;

    assert!(
        compared.text().contains("matches no provider"),
        "{}",
        compared.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_audience_is_shown_beside_the_accepted_ones() {
    let token = hs256(&with_claim("aud", json!(["billing-api"])));
    let compared = compare_default(&token, None).await;

    let text = compared.text();
    assert!(
        text.contains("aud = [\"billing-api\"] (accepted: \"chessmate-api\")"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alg_none_and_a_key_of_the_wrong_type_are_disallowed() {
    let unsigned = format!(
        "{}.",
        support::keys::signing_input(&json!({"alg": "none"}), &claims("alice"))
    );
    let compared = compare_default(&unsigned, None).await;
    assert!(
        compared.text().contains("never accepted"),
        "{}",
        compared.text()
    );

    let header = json!({"alg": "ES256", "kid": "rsa-1"});
    let token = keys().mint_signed_by("ES256", &header, &claims("alice"));
    let compared = compare_default(&token, None).await;
    assert!(
        compared.text().contains("(RSA) cannot check ES256"),
        "{}",
        compared.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsafe_identity_value_names_its_header() {
    let token = hs256(&with_claim("email", json!("a@b.test\r\nX-User-Id: root")));
    let compared = compare_default(&token, None).await;

    let text = compared.text();
    assert!(
        text.contains("x-user-email from email: holds a control character"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_on_an_admin_path_lacks_the_role() {
    let token = hs256(&claims("alice"));
    let compared = compare_default(&token, Some("/admin/x")).await;

    let text = compared.text();
    assert!(
        text.contains("holds \"player\"; the rule wants one of \"admin\""),
        "{text}"
    );
    assert!(text.contains("prefix /admin/"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_issued_before_the_cut_off_is_revoked() {
    let cut_off = SystemTime::now() - Duration::from_secs(60);
    let cut_off = humantime::format_rfc3339_seconds(cut_off).to_string();
    let make = move |upstream| {
        Harness::new(upstream)
            .with_provider_lines(&format!("revoke = {{ issued_before = \"{cut_off}\" }}"))
    };
    let token = hs256(&with_claim("iat", json!(now() - 600)));
    let compared = compare(make, &token, None, Input::Argument(&token)).await;

    let text = compared.text();
    assert!(text.contains("before the issued_before cut-off"), "{text}");
}

// --- remote keys ---

/// A provider whose ES256 keys come from `url` only.
fn remote_harness(upstream: SocketAddr, url: &str) -> Harness {
    Harness::new(upstream)
        .without_secret()
        .without_jwks_file()
        .with_algorithms(&["ES256"])
        .with_provider_lines(&format!(
            "jwks_uri = \"{url}\"\njwks_fetch_timeout = \"2s\"\njwks_refresh_interval = \"1h\""
        ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_a_jwks_uri_are_fetched_once_and_used() {
    let key = RemoteKey::generate("remote-1");
    let server = JwksServer::start(jwks_of(&[&key])).await;
    let url = server.url();
    let token = key.mint(&claims("alice"));
    let make = |upstream| remote_harness(upstream, &url);
    let compared = compare(make, &token, None, Input::Argument(&token)).await;

    let text = compared.text();
    assert!(text.contains(&format!("accounts {url}: 1 key")), "{text}");
    assert!(
        text.contains("kid \"remote-1\" (EC P-256), matched by kid"),
        "{text}"
    );
    // One fetch by inspect, one by the tollgate the test started after it.
    assert_eq!(server.fetches(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_uri_that_cannot_be_fetched_leaves_no_keys() {
    let url = format!("http://{}/jwks", closed_port().await);
    let token = RemoteKey::generate("remote-1").mint(&claims("alice"));
    let make = |upstream| remote_harness(upstream, &url);
    let compared = compare(make, &token, None, Input::Argument(&token)).await;

    assert_eq!(compared.answer.status, StatusCode::SERVICE_UNAVAILABLE);
    let text = compared.text();
    assert!(text.contains("no usable key"), "{text}");
    assert!(text.contains("no_keys"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_at_a_jwks_uri_notes_the_proxys_refetch() {
    let key = RemoteKey::generate("remote-1");
    let server = JwksServer::start(jwks_of(&[&key])).await;
    let url = server.url();
    let token = key.mint_as("remote-2", &claims("alice"));
    let make = |upstream| remote_harness(upstream, &url);
    let compared = compare(make, &token, None, Input::Argument(&token)).await;

    let text = compared.text();
    assert!(text.contains("no key has kid \"remote-2\""), "{text}");
    assert!(
        text.contains("the proxy fetches the jwks_uri once more"),
        "{text}"
    );
}

// --- beyond the reasons ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_only_forwards_and_inspect_says_so() {
    let make = |upstream| {
        Harness::new(upstream)
            .with_rules("[[rules]]\npath_prefix = \"/api/\"\nmode = \"report_only\"\n")
    };
    let token = hs256(&with_claim("exp", json!(now() - 600)));
    let path = Some("/api/games");
    let compared = compare(make, &token, path, Input::Argument(&token)).await;

    assert!(
        compared.text().contains("verdict: reported"),
        "{}",
        compared.text()
    );
}

#[test]
fn a_config_error_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = binary::config("inspect", "http://127.0.0.1:9");
    let config = write_config(dir.path(), "nosecret.toml", &text);

    // The config reads its secret from a variable the run leaves unset.
    let output = binary::run(
        command()
            .arg("inspect")
            .arg("--config")
            .arg(&config)
            .arg("a.b.c"),
    );

    assert_eq!(output.code(), Some(2), "{}", output.stderr);
    assert!(output.stderr.contains("secret_env"), "{}", output.stderr);
    assert!(output.stdout.is_empty());
}

#[test]
fn help_lists_inspect_and_its_flags() {
    let output = binary::run(command().arg("--help"));
    assert!(
        output.stdout_text().contains("inspect"),
        "{}",
        output.stdout_text()
    );

    let output = binary::run(command().args(["inspect", "--help"]));
    assert!(output.status.success(), "{}", output.stderr);
    let text = output.stdout_text();
    for flag in ["--config", "--path", "--method", "[TOKEN]"] {
        assert!(text.contains(flag), "no {flag}: {text}");
    }
}
