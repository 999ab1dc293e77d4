//! Attack 11 on the log filter `tollgate check` now prints: a filter made
//! of commas alone is as empty as a blank one, and must be judged so by
//! `run`, `check` and the config alike.

mod support;

use std::ffi::OsStr;

use http::StatusCode;
use serde_json::json;

use support::binary::{self, Output, SECRET_ENV, Served, command, write_config};
use support::{Upstream, claims, hs256_with_key};

/// A secret long enough for HS256.
const SECRET: &str = "attack11-secret-long-enough-for-hs256!!";

/// Filters with no directive in them, only separators and blanks.
const NO_DIRECTIVE: [&str; 3] = [",", " , ", ",,\t,"];

/// Runs `tollgate check` on `text` with `env` added.
fn check(text: &str, env: &[(&str, &OsStr)]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "check.toml", text);
    binary::run(
        command()
            .envs(env.iter().copied())
            .arg("check")
            .arg("--config")
            .arg(&path),
    )
}

/// Regression (attack 11): `RUST_LOG=,` parsed as a filter with no
/// directive, like the empty `RUST_LOG` of attack 10, and turned every
/// line off, errors included, pinned against `log.level`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_log_of_commas_alone_leaves_the_configs_level_in_force() {
    let upstream = Upstream::start().await;
    let text = binary::config("attack11", &format!("http://{}", upstream.addr()));

    for filter in NO_DIRECTIVE {
        // Panics here, before the fix: "tollgate serving" is never logged.
        let served = Served::start(&text, &[(SECRET_ENV, SECRET), ("RUST_LOG", filter)]);
        let token = hs256_with_key(
            SECRET.as_bytes(),
            &json!({ "alg": "HS256", "typ": "JWT" }),
            &claims("alice"),
        );
        let authorization = format!("Bearer {token}");
        let answer = binary::get(&served.url("/api/x"), &[("authorization", &authorization)]).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());

        let output = served.terminate();
        assert_eq!(output.code(), Some(0), "stderr: {}", output.stderr);
        let lines = output.json_lines();
        let logged = |message: &str| lines.iter().any(|line| line["message"] == message);
        assert!(logged("request"), "no access line with RUST_LOG={filter:?}");

        let checked = check(
            &text,
            &[
                (SECRET_ENV, OsStr::new(SECRET)),
                ("RUST_LOG", OsStr::new(filter)),
            ],
        );
        assert!(checked.status.success(), "stderr: {}", checked.stderr);
        assert!(
            checked
                .stdout_text()
                .contains("log filter info (from log.level)"),
            "RUST_LOG={filter:?}: {}",
            checked.stdout_text()
        );
    }
}

/// Regression (attack 11): `log.level = ","` passed the check that refuses
/// an empty level, and silenced every line from the config itself.
#[test]
fn a_log_level_of_commas_alone_is_refused_as_empty() {
    for filter in NO_DIRECTIVE {
        let text = binary::config("attack11", "http://127.0.0.1:9")
            .replace(r#"level = "info""#, &format!("level = {filter:?}"));
        let output = check(&text, &[(SECRET_ENV, OsStr::new(SECRET))]);

        assert_eq!(
            output.code(),
            Some(2),
            "log.level = {filter:?}: {}",
            output.stdout_text()
        );
        assert!(
            output
                .stderr
                .contains("log.level: an empty level is not allowed"),
            "log.level = {filter:?}: {}",
            output.stderr
        );
    }
}

/// Regression (attack 11): `log.level = "warning"` (or `verbose`, `10`)
/// was read as a log target named so, shown at trace, and every line of
/// tollgate's own was off; the config claims typos fail at load.
#[test]
fn a_log_level_that_names_no_level_is_refused_with_its_line() {
    for typo in ["warning", "verbose", "10", "info,tollgate"] {
        let text = binary::config("attack11", "http://127.0.0.1:9")
            .replace(r#"level = "info""#, &format!("level = {typo:?}"));
        let output = check(&text, &[(SECRET_ENV, OsStr::new(SECRET))]);

        assert_eq!(
            output.code(),
            Some(2),
            "log.level = {typo:?}: {}",
            output.stdout_text()
        );
        let line = support::binary::line_of(&text, "level = ");
        assert!(
            output.stderr.contains(&format!(":{line}: log.level: ")),
            "log.level = {typo:?}: {}",
            output.stderr
        );
        assert!(
            output.stderr.contains("names no level"),
            "{}",
            output.stderr
        );
    }
}

/// Regression (attack 11): a directive with a blank before it (`" info"`)
/// was read as a log target named `" info"`, in `log.level` and in
/// `RUST_LOG` alike, and every line was off. Blanks around a directive
/// are now dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blanks_around_a_directive_are_dropped() {
    let upstream = Upstream::start().await;
    let text = binary::config("attack11", &format!("http://{}", upstream.addr()))
        .replace(r#"level = "info""#, r#"level = " info ""#);

    let checked = check(&text, &[(SECRET_ENV, OsStr::new(SECRET))]);
    assert!(checked.status.success(), "stderr: {}", checked.stderr);
    assert!(
        checked
            .stdout_text()
            .contains("log filter info (from log.level)"),
        "{}",
        checked.stdout_text()
    );

    let served = Served::start(&text, &[(SECRET_ENV, SECRET), ("RUST_LOG", " info ,")]);
    let answer = binary::get(&served.url("/api/x"), &[]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let output = served.terminate();
    let lines = output.json_lines();
    assert!(
        lines.iter().any(|line| line["message"] == "request"),
        "no access line with RUST_LOG=\" info ,\": {}",
        output.stdout_text()
    );
}
