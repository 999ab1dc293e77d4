//! Attack 10 on the environment variables tollgate reads: HMAC secrets
//! taken as bytes, and `RUST_LOG` read as text. An empty or odd value must
//! be judged for what it is, a bad variable in a list must be named without
//! showing any value, and a reload must never trade the running secrets for
//! a list that cannot load.

mod support;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use http::StatusCode;
use serde_json::json;

use support::binary::{self, Output, SECRET_ENV, Served, command, write_config};
use support::reload::eventually;
use support::{Upstream, claims, hs256_with_key, metric_matching};

/// A secret long enough for HS256, easy to spot in any output.
const SECRET: &str = "attack10-secret-VALUE-that-must-never-be-shown";

/// The minimal config of `binary::config` with `secret_env` set to `names`
/// (a TOML string or list).
fn config_naming(upstream: &str, names: &str) -> String {
    binary::config("attack10", upstream).replace(
        &format!(r#"secret_env = "{SECRET_ENV}""#),
        &format!("secret_env = {names}"),
    )
}

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

/// Runs `tollgate inspect` on `token` with `text` as the config and `env`
/// added.
fn inspect(text: &str, env: &[(&str, &OsStr)], token: &str) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "inspect.toml", text);
    binary::run(
        command()
            .envs(env.iter().copied())
            .arg("inspect")
            .arg("--config")
            .arg(&path)
            .arg(token),
    )
}

fn hs256(key: &[u8], sub: &str) -> String {
    hs256_with_key(key, &json!({ "alg": "HS256", "typ": "JWT" }), &claims(sub))
}

/// Regression (attack 10): `RUST_LOG=` (set, but empty, as a template
/// leaves it when it has no value to give) made a filter with no directive,
/// which turned every line off, errors included, and pinned that against
/// `log.level`: a tollgate that served without a single log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_rust_log_leaves_the_configs_level_in_force() {
    let upstream = Upstream::start().await;
    let text = binary::config("attack10", &format!("http://{}", upstream.addr()));

    for blank in ["", "  "] {
        // Panics here, before the fix: "tollgate serving" is never logged.
        let served = Served::start(&text, &[(SECRET_ENV, SECRET), ("RUST_LOG", blank)]);
        let authorization = format!("Bearer {}", hs256(SECRET.as_bytes(), "alice"));
        let answer = binary::get(&served.url("/api/x"), &[("authorization", &authorization)]).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());

        let output = served.terminate();
        assert_eq!(output.code(), Some(0), "stderr: {}", output.stderr);
        let lines = output.json_lines();
        let logged = |message: &str| lines.iter().any(|line| line["message"] == message);
        assert!(logged("tollgate starting"), "RUST_LOG={blank:?}: {lines:?}");
        assert!(logged("request"), "no access line with RUST_LOG={blank:?}");
    }
}

/// One bad variable among several is named, with what is wrong with it,
/// and neither its value nor a good neighbour's ever shows.
#[test]
fn one_bad_variable_in_a_secret_env_list_is_named_and_no_value_shown() {
    let text = config_naming(
        "http://127.0.0.1:9",
        r#"["ATTACK10_A", "ATTACK10_B", "ATTACK10_C"]"#,
    );
    let short = b"short-\xe9\xff-secret-of-31-bytes-!!!";
    assert_eq!(short.len(), 31);
    let cases: [(Option<&[u8]>, &str); 3] = [
        (None, "environment variable ATTACK10_B is not set"),
        (Some(b""), "environment variable ATTACK10_B is 0 bytes"),
        (Some(short), "environment variable ATTACK10_B is 31 bytes"),
    ];

    for (value, wanted) in cases {
        let mut env = vec![
            ("ATTACK10_A", OsStr::new(SECRET)),
            ("ATTACK10_C", OsStr::new(SECRET)),
        ];
        if let Some(value) = value {
            env.push(("ATTACK10_B", OsStr::from_bytes(value)));
        }
        let output = check(&text, &env);

        assert_eq!(output.code(), Some(2), "stderr: {}", output.stderr);
        assert!(output.stderr.contains(wanted), "{}", output.stderr);
        assert!(
            output.stderr.contains("providers[0].secret_env"),
            "{}",
            output.stderr
        );
        let all = format!("{}\n{}", output.stdout_text(), output.stderr);
        assert!(!all.contains(SECRET), "a neighbour's value shown: {all}");
        assert!(!all.contains("short-"), "the bad value shown: {all}");
    }
}

/// A secret variable is the key byte for byte, so a trailing line break is
/// part of it (and counts toward the length), while a secret file line
/// drops it. The docs tell operators so; this holds the behaviour they
/// describe, so that a change to it is a decision, not an accident.
#[test]
fn a_secret_variable_keeps_a_trailing_line_break_that_a_file_line_drops() {
    let text = binary::config("attack10", "http://127.0.0.1:9");
    let bare = "s".repeat(31);

    for ending in ["\n", "\r", "\r\n"] {
        let value = format!("{bare}{ending}");
        let output = check(&text, &[(SECRET_ENV, OsStr::new(&value))]);
        assert!(
            output.status.success(),
            "31 bytes and {ending:?}: {}",
            output.stderr
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("secret.txt");
        std::fs::write(&file, &value).expect("write the secret file");
        let from_file = text.replace(
            &format!(r#"secret_env = "{SECRET_ENV}""#),
            &format!("secret_file = {:?}", file.display().to_string()),
        );
        let output = check(&from_file, &[]);
        assert_eq!(output.code(), Some(2), "stdout: {}", output.stdout_text());
        assert!(output.stderr.contains("is 31 bytes"), "{}", output.stderr);
    }

    let key = "k".repeat(40);
    let env_value = format!("{key}\n");
    let env = [(SECRET_ENV, OsStr::new(&env_value))];
    let without = inspect(&text, &env, &hs256(key.as_bytes(), "alice"));
    assert_eq!(without.code(), Some(1), "{}", without.stdout_text());
    assert!(without.stdout_text().contains("bad_signature"));
    let with = inspect(&text, &env, &hs256(env_value.as_bytes(), "alice"));
    assert_eq!(with.code(), Some(0), "{}", with.stdout_text());
}

/// A reload (file change, then SIGHUP) to a list naming a variable the
/// process does not have is refused each time; the running secret keeps
/// serving, and the warn line names the variable, never a value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_naming_an_unset_secret_variable_keeps_the_running_secret() {
    let upstream = Upstream::start().await;
    let url = format!("http://{}", upstream.addr());
    let served = Served::start(&binary::config("attack10", &url), &[(SECRET_ENV, SECRET)]);
    let authorization = format!("Bearer {}", hs256(SECRET.as_bytes(), "alice"));
    let headers = [("authorization", authorization.as_str())];
    assert_eq!(
        binary::get(&served.url("/api/x"), &headers).await.status,
        StatusCode::OK
    );

    let names = format!(r#"["{SECRET_ENV}", "ATTACK10_UNSET"]"#);
    std::fs::write(served.config_path(), config_naming(&url, &names)).expect("rewrite");
    wait_for_refused_reloads(&served, 1.0).await;
    served.signal("HUP");
    wait_for_refused_reloads(&served, 2.0).await;
    assert_eq!(
        binary::get(&served.url("/api/x"), &headers).await.status,
        StatusCode::OK
    );

    let output = served.terminate();
    assert_eq!(output.code(), Some(0), "stderr: {}", output.stderr);
    let text = output.stdout_text();
    let refusals = text
        .lines()
        .filter(|line| line.contains("config reload refused"))
        .collect::<Vec<_>>();
    assert_eq!(refusals.len(), 2, "{text}");
    for line in refusals {
        assert!(
            line.contains("environment variable ATTACK10_UNSET is not set"),
            "{line}"
        );
    }
    assert!(!text.contains(SECRET) && !output.stderr.contains(SECRET));
}

async fn wait_for_refused_reloads(served: &Served, count: f64) {
    let url = served.admin_url("/metrics");
    eventually("a refused reload", || {
        let url = url.clone();
        async move {
            let text = binary::get(&url, &[]).await.text();
            let refused = metric_matching(
                &text,
                "tollgate_config_reloads_total",
                &[("result", "error")],
            );
            refused >= count
        }
    })
    .await;
}
