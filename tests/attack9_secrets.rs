//! Attack 9 on the HMAC secret length: at least as many bytes as the
//! longest hash among the provider's HMAC algorithms (32, 48, 64 for
//! HS256, HS384, HS512), from the environment or a file, at start and on
//! hot reload, where a refused secret must leave the running one serving.

mod support;

use aws_lc_rs::hmac;
use serde_json::json;

use support::binary::{self, SECRET_ENV};
use support::keys::{b64, signing_input};
use support::reload::{CONFIG, Watched, config};
use support::{Upstream, claims};

/// A secret of exactly `len` bytes, different for each length.
fn secret_of(len: usize) -> String {
    (0..len)
        .map(|at| char::from(b'a' + ((at * 7 + len) % 26) as u8))
        .collect()
}

/// The config `tollgate check` reads: `binary::config` with its algorithm
/// list and secret source replaced.
fn check_config(algorithms: &str, source: &str) -> String {
    binary::config("attack9", "http://127.0.0.1:9")
        .replace(
            r#"algorithms = ["HS256"]"#,
            &format!("algorithms = {algorithms}"),
        )
        .replace(&format!(r#"secret_env = "{SECRET_ENV}""#), source)
}

/// Runs `tollgate check` on `text` with the secret in `SECRET_ENV`.
fn check(dir: &std::path::Path, text: &str, secret: &str) -> binary::Output {
    let path = binary::write_config(dir, "check.toml", text);
    binary::run(
        binary::command()
            .args(["check", "--config"])
            .arg(&path)
            .env(SECRET_ENV, secret),
    )
}

#[test]
fn check_takes_the_longest_allowed_hash_from_either_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lists = [
        (r#"["HS256"]"#, 32, "HS256"),
        (r#"["HS384", "HS256"]"#, 48, "HS384"),
        (r#"["HS256", "HS512", "HS384"]"#, 64, "HS512"),
        (r#"["HS512"]"#, 64, "HS512"),
    ];
    for (algorithms, min, alg) in lists {
        for len in [min - 1, min, min + 1, 31, 47, 48, 63, 64] {
            let secret = secret_of(len);
            let file = dir.path().join(format!("secret-{len}.txt"));
            std::fs::write(&file, format!("\n{secret}\r\n")).expect("write the secret");
            let sources = [
                (format!(r#"secret_env = "{SECRET_ENV}""#), "secret_env"),
                (
                    format!("secret_file = {:?}", file.display().to_string()),
                    "secret_file",
                ),
            ];
            for (source, key) in sources {
                let text = check_config(algorithms, &source);
                let output = check(dir.path(), &text, &secret);
                let what = format!("{algorithms}, {len} bytes, {key}");
                if len >= min {
                    assert_eq!(output.code(), Some(0), "{what}: {}", output.stderr);
                    continue;
                }
                assert_eq!(output.code(), Some(2), "{what}: {}", output.stderr);
                let line = binary::line_of(&text, key);
                let expected = format!(":{line}: providers[0].{key}: ");
                assert!(
                    output.stderr.contains(&expected),
                    "{what}: {}",
                    output.stderr
                );
                let needs = format!("{alg} needs at least {min}");
                assert!(output.stderr.contains(&needs), "{what}: {}", output.stderr);
                assert!(
                    !output.stderr.contains(&secret),
                    "{what}: the secret was printed"
                );
                assert!(!output.stdout_text().contains(&secret), "{what}");
            }
        }
    }
}

/// Mints a token for `sub` signed with `alg` and `secret`.
fn hs(alg: &str, secret: &str, sub: &str) -> String {
    let header = json!({"alg": alg, "typ": "JWT"});
    let input = signing_input(&header, &claims(sub));
    let algorithm = match alg {
        "HS256" => hmac::HMAC_SHA256,
        "HS384" => hmac::HMAC_SHA384,
        _ => hmac::HMAC_SHA512,
    };
    let tag = hmac::sign(
        &hmac::Key::new(algorithm, secret.as_bytes()),
        input.as_bytes(),
    );
    format!("{input}.{}", b64(tag.as_ref()))
}

/// Provider lines allowing `algorithms`, the secrets in `file`.
fn provider(site: &Watched, algorithms: &str, file: &str) -> String {
    format!(
        "algorithms = {algorithms}\nsecret_file = \"{}\"",
        site.file(file)
    )
}

#[tokio::test]
async fn a_reload_with_a_short_secret_keeps_the_running_one() {
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    let long = secret_of(64);
    site.write("hmac.key", &long);
    let both = r#"["HS256", "HS512"]"#;
    let text = config(upstream.addr(), "", &provider(&site, both, "hmac.key"), "");
    site.write(CONFIG, &text);
    site.start(CONFIG, &[]).await;
    let old = hs("HS512", &long, "alice");
    assert_eq!(site.get("/api/games", Some(&old)).await.status, 200);

    // 63 bytes: enough for HS256, not for HS512, which is still allowed.
    let short = secret_of(63);
    site.write("hmac.key", &format!("{short}\n"));
    site.wait_for_reloads("error", 1.0).await;
    assert_eq!(site.get("/api/games", Some(&old)).await.status, 200);
    let with_short = hs("HS256", &short, "mallory");
    assert_eq!(site.get("/api/games", Some(&with_short)).await.status, 401);

    // The same file under a config that allows HS256 only now loads.
    let hs256 = r#"["HS256"]"#;
    let text = config(upstream.addr(), "", &provider(&site, hs256, "hmac.key"), "");
    site.write(CONFIG, &text);
    site.wait_for_status("/api/games", Some(&with_short), 200)
        .await;
    assert_eq!(site.get("/api/games", Some(&old)).await.status, 401);

    // Allowing HS384 again with the 63-byte file is refused: 48 is enough
    // for HS384, but the config also lists HS512.
    let all = r#"["HS384", "HS256", "HS512"]"#;
    let text = config(upstream.addr(), "", &provider(&site, all, "hmac.key"), "");
    site.write(CONFIG, &text);
    site.wait_for_reloads("error", 2.0).await;
    assert_eq!(site.get("/api/games", Some(&with_short)).await.status, 200);
    site.shutdown().await;
}

/// Waits (bounded) until the binary has refused `count` reloads.
async fn wait_for_refusals(served: &binary::Served, count: f64) {
    support::reload::eventually("the refused reload", || async {
        let metrics = binary::get(&served.admin_url("/metrics"), &[]).await.text();
        let labels = [("result", "error")];
        support::metric_matching(&metrics, "tollgate_config_reloads_total", &labels) >= count
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reload_names_the_file_line_key_and_algorithm_not_the_secret() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hmac.key");
    let long = secret_of(64);
    std::fs::write(&file, &long).expect("write the secret");
    let source = format!("secret_file = {:?}", file.display().to_string());
    let text = check_config(r#"["HS512", "HS256"]"#, &source)
        .replace("http://127.0.0.1:9", &format!("http://{}", upstream.addr()));
    let served = binary::Served::start(&text, &[]);
    let old = hs("HS512", &long, "alice");
    let bearer = format!("Bearer {old}");
    let headers = [("authorization", bearer.as_str())];
    let url = served.url("/api/x");
    assert_eq!(binary::get(&url, &headers).await.status, 200);

    let short = secret_of(63);
    let temp = dir.path().join("hmac.key.tmp");
    std::fs::write(&temp, format!("{long}\n{short}\n")).expect("write");
    std::fs::rename(&temp, &file).expect("rename");
    wait_for_refusals(&served, 1.0).await;
    let answer = binary::get(&url, &headers).await;
    assert_eq!(answer.status, 200, "the running secret still serves");

    let output = served.terminate();
    let refused = output
        .json_lines()
        .into_iter()
        .find(|line| line["message"] == "config reload refused; running config kept")
        .expect("the refusal's warn line");
    let error = refused["error"].as_str().unwrap_or_default().to_owned();
    let line = binary::line_of(&text, "secret_file");
    assert!(
        error.contains(&format!(":{line}: providers[0].secret_file: ")),
        "{error}"
    );
    assert!(error.contains("line 2 of"), "{error}");
    assert!(error.contains("HS512 needs at least 64"), "{error}");
    let all = output.stdout_text() + &output.stderr;
    assert!(
        !all.contains(&short) && !all.contains(&long),
        "a secret was logged"
    );
}
