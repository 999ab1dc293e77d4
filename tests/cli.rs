//! The `tollgate` command as an operator meets it: flags, `check`, `run`
//! and `demo`, each run as the real binary.

mod support;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use http::StatusCode;
use serde_json::json;

use support::binary::{self, Output, SECRET_ENV, Served, command, line_of, write_config};
use support::{Upstream, claims, hs256_with_key, keys};

/// A secret long enough for HS256 (the binary wants at least 32 bytes).
const SECRET: &str = "an-hs256-secret-of-more-than-thirty-two-bytes";

/// A config whose one provider takes RS256 keys from a file, for the JWKS
/// cases; `{jwks}` is replaced with the file's path.
const JWKS_PROVIDER: &str = r#"service = "cli-test"

[upstream]
url = "http://127.0.0.1:9"

[[providers]]
name = "accounts"
issuer = "https://accounts.chessmate.test"
audiences = ["chessmate-api"]
algorithms = ["RS256"]
jwks_file = "{jwks}"
"#;

fn check(config: &Path) -> Output {
    binary::run(
        command()
            .env(SECRET_ENV, SECRET)
            .arg("check")
            .arg("--config")
            .arg(config),
    )
}

/// A secret of `len` random-looking bytes, none of them UTF-8 on its own
/// (each is a continuation byte): what a secret generated as raw bytes and
/// handed over unencoded looks like.
fn raw_secret(len: usize) -> Vec<u8> {
    (0..len).map(|at| 0x80 | (at as u8 & 0x3f)).collect()
}

/// Runs `tollgate check` on the minimal config with the secret variable
/// set to `secret`, UTF-8 or not.
fn check_with_raw_secret(secret: &[u8]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = binary::config("cli-test", "http://127.0.0.1:9");
    let path = write_config(dir.path(), "raw.toml", &text);
    binary::run(
        command()
            .env(SECRET_ENV, OsStr::from_bytes(secret))
            .arg("check")
            .arg("--config")
            .arg(&path),
    )
}

fn example_config() -> String {
    std::fs::read_to_string(binary::repo_root().join("config/tollgate.toml"))
        .expect("read the example config")
}

fn assert_config_error(output: &Output, wanted: &[&str]) {
    assert_eq!(output.code(), Some(2), "stderr: {}", output.stderr);
    for text in wanted {
        assert!(
            output.stderr.contains(text),
            "stderr lacks {text:?}: {}",
            output.stderr
        );
    }
}

// --- flags ---

#[test]
fn version_prints_the_crate_version() {
    let output = binary::run(command().arg("--version"));

    assert!(output.status.success());
    assert_eq!(
        output.stdout_text().trim(),
        format!("tollgate {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_run_check_and_demo() {
    let output = binary::run(command().arg("--help"));

    assert!(output.status.success());
    let commands: Vec<&str> = output
        .stdout
        .iter()
        .filter_map(|line| line.strip_prefix("  ")?.split_whitespace().next())
        .collect();
    for wanted in ["run", "check", "demo"] {
        assert!(commands.contains(&wanted), "help: {}", output.stdout_text());
    }
}

// --- check ---

#[test]
fn check_accepts_the_example_config_and_lists_providers_keys_and_rules() {
    let output = binary::run(command().env("JWT_SECRET_KEY", SECRET).args([
        "check",
        "--config",
        "config/tollgate.toml",
    ]));

    assert!(output.status.success(), "stderr: {}", output.stderr);
    let text = output.stdout_text();
    for wanted in [
        "config/tollgate.toml: ok",
        "provider accounts (issuer https://accounts.chessmate.test",
        "HMAC secrets: 1",
        "rsa-2048",
        "ec-p256",
        "ed25519",
        "rules (first match wins):",
        "/admin/",
    ] {
        assert!(text.contains(wanted), "summary lacks {wanted:?}:\n{text}");
    }
}

#[test]
fn check_without_the_secret_variable_names_secret_env_and_its_line() {
    let output = binary::run(command().args(["check", "--config", "config/tollgate.toml"]));

    let line = line_of(&example_config(), "secret_env");
    assert_config_error(
        &output,
        &[
            &format!("config/tollgate.toml:{line}"),
            "providers[0].secret_env",
            "JWT_SECRET_KEY",
        ],
    );
    assert!(output.stdout.is_empty(), "stdout: {}", output.stdout_text());
}

#[test]
fn check_refuses_a_secret_shorter_than_32_bytes() {
    let output = binary::run(command().env("JWT_SECRET_KEY", "short").args([
        "check",
        "--config",
        "config/tollgate.toml",
    ]));

    assert_config_error(&output, &["providers[0].secret_env", "at least 32"]);
}

#[test]
fn check_accepts_a_secret_variable_that_is_not_utf8() {
    let output = check_with_raw_secret(&raw_secret(40));

    assert!(output.status.success(), "stderr: {}", output.stderr);
    let text = output.stdout_text();
    assert!(text.contains("HMAC secrets: 1"), "{text}");
}

#[test]
fn check_refuses_a_short_secret_variable_that_is_not_utf8_for_its_length() {
    let output = check_with_raw_secret(&raw_secret(20));

    assert_config_error(
        &output,
        &[
            "providers[0].secret_env",
            &format!("environment variable {SECRET_ENV} is 20 bytes"),
            "HS256 needs at least 32",
        ],
    );
    assert!(!output.stderr.contains("not set"), "{}", output.stderr);
}

#[test]
fn a_worker_count_that_is_not_utf8_is_refused_as_such() {
    let output = binary::run(
        command()
            .env(SECRET_ENV, SECRET)
            .env("TOKIO_WORKER_THREADS", OsStr::from_bytes(b"4\xff"))
            .args(["check", "--config", "config/tollgate.toml"]),
    );

    assert_config_error(
        &output,
        &["environment variable TOKIO_WORKER_THREADS is set but not valid UTF-8"],
    );
    assert!(!output.stderr.contains("not set"), "{}", output.stderr);
}

#[test]
fn check_names_the_line_and_key_of_an_unknown_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = binary::config("cli-test", "http://127.0.0.1:9")
        .replace("[upstream]\n", "[upstream]\nretries = 3\n");
    let path = write_config(dir.path(), "unknown.toml", &text);

    let output = check(&path);

    let line = line_of(&text, "retries");
    assert_config_error(&output, &[&format!("unknown.toml:{line}"), "retries"]);
}

#[test]
fn check_names_the_line_and_key_of_a_bad_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = binary::config("cli-test", "http://127.0.0.1:9").replace(
        "[providers.claim_to_headers]",
        "leeway = \"forever\"\n\n[providers.claim_to_headers]",
    );
    let path = write_config(dir.path(), "leeway.toml", &text);

    let output = check(&path);

    let line = line_of(&text, "leeway");
    assert_config_error(
        &output,
        &[
            &format!("leeway.toml:{line}"),
            "providers[0].leeway",
            "forever",
        ],
    );
}

#[test]
fn check_names_jwks_file_when_the_file_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("absent.json");
    let text = JWKS_PROVIDER.replace("{jwks}", &missing.display().to_string());
    let path = write_config(dir.path(), "nojwks.toml", &text);

    let output = check(&path);

    let line = line_of(&text, "jwks_file");
    assert_config_error(
        &output,
        &[
            &format!("nojwks.toml:{line}"),
            "providers[0].jwks_file",
            "absent.json",
        ],
    );
}

#[test]
fn check_refuses_a_jwks_with_no_usable_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A symmetric key has no place in a JWKS of public keys, so it is
    // skipped, and then nothing is left.
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#).expect("write jwks");
    let text = JWKS_PROVIDER.replace("{jwks}", &jwks.display().to_string());
    let path = write_config(dir.path(), "oct.toml", &text);

    let output = check(&path);

    assert_config_error(&output, &["providers[0].jwks_file", "no usable key"]);
}

#[test]
fn check_reads_the_file_named_by_tollgate_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        dir.path(),
        "from-env.toml",
        &binary::config("from-env", "http://127.0.0.1:9"),
    );

    // Run where the default path does not exist, so only the variable can
    // have pointed at the file.
    let output = binary::run(
        command()
            .current_dir(dir.path())
            .env("TOLLGATE_CONFIG", &path)
            .env(SECRET_ENV, SECRET)
            .arg("check"),
    );

    assert!(output.status.success(), "stderr: {}", output.stderr);
    let text = output.stdout_text();
    assert!(text.contains("from-env.toml: ok"), "{text}");
    assert!(text.contains("service from-env"), "{text}");
}

// --- run ---

#[test]
fn run_with_a_bad_config_exits_2_without_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = binary::config("cli-test", "http://127.0.0.1:9")
        .replace("drain_timeout = \"2s\"", "drain_timeout = \"soon\"");
    let path = write_config(dir.path(), "bad.toml", &text);

    let output = binary::run(
        command()
            .env(SECRET_ENV, SECRET)
            .arg("run")
            .arg("--config")
            .arg(&path),
    );

    let line = line_of(&text, "drain_timeout");
    assert_config_error(
        &output,
        &[&format!("bad.toml:{line}"), "listen.drain_timeout"],
    );
    assert!(
        !output.stdout_text().contains("tollgate serving"),
        "stdout: {}",
        output.stdout_text()
    );
}

#[test]
fn run_without_its_secret_exits_2_before_binding() {
    // Hold the port the config asks for: had tollgate tried to bind, it
    // would have failed with a bind error and exit code 1 instead.
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = held.local_addr().expect("local addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = binary::config("cli-test", "http://127.0.0.1:9").replacen(
        "address = \"127.0.0.1:0\"",
        &format!("address = \"{taken}\""),
        1,
    );
    let path = write_config(dir.path(), "nosecret.toml", &text);

    let output = binary::run(command().arg("run").arg("--config").arg(&path));

    assert_config_error(&output, &["providers[0].secret_env", SECRET_ENV]);
    assert!(
        !output.stderr.contains("cannot listen"),
        "{}",
        output.stderr
    );
    assert!(!output.stdout_text().contains("tollgate serving"));
}

#[test]
fn run_refuses_a_log_filter_that_is_not_utf8() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = binary::config("cli-test", "http://127.0.0.1:9");
    let path = write_config(dir.path(), "log.toml", &text);

    let output = binary::run(
        command()
            .env(SECRET_ENV, SECRET)
            .env("RUST_LOG", OsStr::from_bytes(b"debug\xff"))
            .arg("run")
            .arg("--config")
            .arg(&path),
    );

    assert_config_error(
        &output,
        &["environment variable RUST_LOG is set but not valid UTF-8"],
    );
    assert!(!output.stdout_text().contains("tollgate serving"));
}

/// Runs `tollgate check` on the minimal config with `RUST_LOG` set to
/// `filter`.
fn check_with_log_filter(filter: &OsStr) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = binary::config("cli-test", "http://127.0.0.1:9");
    let path = write_config(dir.path(), "log.toml", &text);
    binary::run(
        command()
            .env(SECRET_ENV, SECRET)
            .env("RUST_LOG", filter)
            .arg("check")
            .arg("--config")
            .arg(&path),
    )
}

#[test]
fn check_refuses_the_log_filters_that_run_refuses() {
    let not_utf8 = check_with_log_filter(OsStr::from_bytes(b"debug\xff"));
    assert_config_error(
        &not_utf8,
        &["environment variable RUST_LOG is set but not valid UTF-8"],
    );

    let bad_directive = check_with_log_filter(OsStr::new("tollgate=loud"));
    assert_config_error(&bad_directive, &["invalid log level \"tollgate=loud\""]);
}

#[test]
fn check_says_which_log_filter_is_in_force() {
    let from_env = check_with_log_filter(OsStr::new("tollgate=debug"));
    assert!(from_env.status.success(), "stderr: {}", from_env.stderr);
    assert!(
        from_env
            .stdout_text()
            .contains("log filter tollgate=debug (from RUST_LOG, over log.level)"),
        "{}",
        from_env.stdout_text()
    );

    // Blank counts as unset, as in `run`.
    let blank = check_with_log_filter(OsStr::new("  "));
    assert!(blank.status.success(), "stderr: {}", blank.stderr);
    assert!(
        blank.stdout_text().contains("(from log.level)"),
        "{}",
        blank.stdout_text()
    );
}

// Several worker threads: the test thread blocks on the child's output
// while the echo upstream keeps answering on the runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_checks_tokens_reports_and_stops_cleanly_on_sigterm() {
    let upstream = Upstream::start().await;
    let config = binary::config("cli-e2e", &format!("http://{}", upstream.addr()));
    let secret = keys().secret_text();
    let served = Served::start(&config, &[(SECRET_ENV, &secret)]);
    let token = keys().mint("HS256", &claims("alice"));

    let authorization = format!("Bearer {token}");
    let good = binary::get(
        &served.url("/api/games"),
        &[("authorization", &authorization)],
    )
    .await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.text());
    assert_eq!(good.upstream_saw("x-user-id"), ["alice"]);

    let missing = binary::get(&served.url("/api/games"), &[]).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(upstream.hits(), 1, "the refused request reached upstream");

    let health = binary::get(&served.admin_url("/health"), &[]).await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = binary::get(&served.admin_url("/ready"), &[]).await;
    assert_eq!(ready.status, StatusCode::OK);
    let metrics = binary::get(&served.admin_url("/metrics"), &[]).await;
    assert_eq!(metrics.status, StatusCode::OK);
    let metrics = metrics.text();
    assert!(metrics.contains("tollgate_requests_total"), "{metrics}");
    assert!(
        metrics.contains("tollgate_token_verdicts_total"),
        "{metrics}"
    );

    let output = served.terminate();

    assert_eq!(output.code(), Some(0), "stderr: {}", output.stderr);
    let messages: Vec<String> = output
        .json_lines()
        .iter()
        .filter_map(|line| line["message"].as_str().map(str::to_owned))
        .collect();
    for wanted in [
        "shutdown started; draining in-flight requests",
        "shutdown complete",
    ] {
        assert!(
            messages.iter().any(|message| message == wanted),
            "no {wanted:?} in {messages:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_verifies_tokens_signed_with_a_secret_variable_that_is_not_utf8() {
    let upstream = Upstream::start().await;
    let config = binary::config("cli-raw-secret", &format!("http://{}", upstream.addr()));
    let secret = raw_secret(40);
    let served = Served::start_os(&config, &[(SECRET_ENV, OsStr::from_bytes(&secret))]);
    let header = json!({ "alg": "HS256", "typ": "JWT" });

    let token = hs256_with_key(&secret, &header, &claims("alice"));
    let authorization = format!("Bearer {token}");
    let good = binary::get(
        &served.url("/api/games"),
        &[("authorization", &authorization)],
    )
    .await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.text());
    assert_eq!(good.upstream_saw("x-user-id"), ["alice"]);

    // The bytes are the key, not some text made of them: signed with the
    // lossy UTF-8 reading of the same variable, a token is refused.
    let lossy = String::from_utf8_lossy(&secret).into_owned();
    let token = hs256_with_key(lossy.as_bytes(), &header, &claims("alice"));
    let authorization = format!("Bearer {token}");
    let bad = binary::get(
        &served.url("/api/games"),
        &[("authorization", &authorization)],
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED, "{}", bad.text());
    assert_eq!(upstream.hits(), 1, "the refused request reached upstream");

    let output = served.terminate();
    assert_eq!(output.code(), Some(0), "stderr: {}", output.stderr);
}

/// Regression: the SIGTERM handler was installed only after "tollgate
/// serving", so a SIGTERM sent during start-up, or just after that line,
/// killed the process with the default action (no drain, no exit 0).
#[test]
fn sigterm_during_or_just_after_start_up_still_ends_in_a_clean_exit() {
    let config = binary::config("cli-early-term", "http://127.0.0.1:9");
    for moment in ["tollgate starting", "tollgate serving"] {
        let served = Served::start_until(&config, &[(SECRET_ENV, SECRET)], moment);

        let output = served.terminate();

        assert_eq!(
            output.code(),
            Some(0),
            "SIGTERM after {moment:?}: {:?}",
            output.status
        );
        assert!(
            output.stdout_text().contains("shutdown complete"),
            "SIGTERM after {moment:?}: {}",
            output.stdout_text()
        );
    }
}

// --- demo ---

#[test]
fn demo_no_wait_walks_through_every_step_and_exits_0() {
    let output = binary::run(command().args(["demo", "--no-wait"]));

    assert!(output.status.success(), "stderr: {}", output.stderr);
    let text = output.stdout_text();
    assert!(!text.contains("UNEXPECTED"), "{text}");
    let verdicts: Vec<&String> = output
        .stdout
        .iter()
        .filter(|line| line.contains("(expected "))
        .collect();
    // Steps 1 to 7 each check one answer; step 8 only reads the metrics.
    assert!(verdicts.len() >= 7, "{text}");
    assert!(
        verdicts.iter().all(|line| line.ends_with(": ok)")),
        "{text}"
    );
}

#[test]
fn demo_says_why_it_logs_nothing_under_a_bad_log_filter() {
    let output = binary::run(
        command()
            .env("RUST_LOG", OsStr::from_bytes(b"debug\xff"))
            .args(["demo", "--no-wait"]),
    );

    assert!(output.status.success(), "stderr: {}", output.stderr);
    assert!(
        output.stderr.contains(
            "demo: logging is off: environment variable RUST_LOG is set but not valid UTF-8"
        ),
        "stderr: {}",
        output.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_exits_zero_while_tollgate_serves_and_one_when_nothing_answers() {
    let upstream = Upstream::start().await;
    let config = binary::config("cli-health", &format!("http://{}", upstream.addr()));
    let served = Served::start(&config, &[(SECRET_ENV, SECRET)]);

    let url = served.admin_url("/health");
    let alive = binary::run(command().args(["health", "--url", &url]));
    assert_eq!(alive.code(), Some(0), "stderr: {}", alive.stderr);
    let output = served.terminate();
    assert_eq!(output.code(), Some(0));

    let closed = format!("http://{}/health", support::closed_port().await);
    let down = binary::run(command().args(["health", "--url", &closed]));
    assert_eq!(down.code(), Some(1));
    assert!(down.stderr.contains("no answer"), "stderr: {}", down.stderr);
}

#[test]
fn sigterm_ends_a_waiting_demo_and_removes_its_config_file() {
    let mut child = command()
        .arg("demo")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the demo");
    let file = std::env::temp_dir().join(format!("tollgate-demo-{}.toml", child.id()));
    let stdout = child.stdout.take().expect("stdout piped");
    let (serving, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("Serving until") {
                let _ = serving.send(());
            }
        }
    });
    // A debug build walks through the eight steps in a few seconds.
    let waited = lines.recv_timeout(std::time::Duration::from_secs(60));
    if waited.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the demo never said it was serving");
    }
    assert!(file.exists(), "{} is written while serving", file.display());

    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let deadline = std::time::Instant::now() + binary::DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the demo did not end on SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(!file.exists(), "{} is removed on SIGTERM", file.display());
}
