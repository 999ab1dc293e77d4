//! What the real binary writes on stdout: one JSON object per line, one
//! access line per request, refusals kept at debug, and never a token or a
//! secret.

mod support;

use http::StatusCode;
use serde_json::Value;

use support::binary::{self, Output, SECRET_ENV, Served};
use support::keys::b64;
use support::{Answer, Upstream, claims, keys};

/// The service name the configs below use, to find it on every line.
const SERVICE: &str = "logs-test";

/// The tokens a run sends: one good, two that must be refused.
struct Tokens {
    good: String,
    /// The good token's signature on claims the caller rewrote.
    forged: String,
    /// The good token with its signature altered.
    bad_signature: String,
}

impl Tokens {
    fn new() -> Self {
        let good = keys().mint("HS256", &claims("alice"));
        let (signed, signature) = good.rsplit_once('.').expect("three segments");
        let header = signed.split('.').next().expect("a header segment");

        let mut rewritten = claims("mallory");
        rewritten["roles"] = serde_json::json!(["admin"]);
        let forged = format!(
            "{header}.{}.{signature}",
            b64(rewritten.to_string().as_bytes())
        );

        // Changing the first character changes the first decoded byte.
        let first = if signature.starts_with('A') { 'B' } else { 'A' };
        let bad_signature = format!("{signed}.{first}{}", &signature[1..]);

        Tokens {
            good,
            forged,
            bad_signature,
        }
    }

    fn all(&self) -> [&str; 3] {
        [&self.good, &self.forged, &self.bad_signature]
    }
}

/// Starts the binary (with `RUST_LOG` when given) in front of an echo
/// upstream, sends one GET to `path` per entry of `tokens` (None: no
/// Authorization header), then stops it and returns its output and the
/// answers, in order.
async fn serve_and_send(
    rust_log: Option<&str>,
    path: &str,
    tokens: &[Option<&str>],
) -> (Output, Vec<Answer>) {
    let upstream = Upstream::start().await;
    let config = binary::config(SERVICE, &format!("http://{}", upstream.addr()));
    let secret = keys().secret_text();
    let mut env = vec![(SECRET_ENV, secret.as_str())];
    if let Some(filter) = rust_log {
        env.push(("RUST_LOG", filter));
    }
    let served = Served::start(&config, &env);

    let mut answers = Vec::new();
    for token in tokens {
        let authorization = token.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|value| ("authorization", value.as_str()))
            .collect();
        answers.push(binary::get(&served.url(path), &headers).await);
    }

    let output = served.terminate();
    assert_eq!(output.code(), Some(0), "stderr: {}", output.stderr);
    (output, answers)
}

fn access_lines(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|line| line["message"] == "request")
        .collect()
}

fn is_warn_or_error(line: &Value) -> bool {
    matches!(line["level"].as_str(), Some("WARN" | "ERROR"))
}

// Several worker threads in every test: the test thread blocks on the
// child's output while the echo upstream keeps answering on the runtime.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stdout_line_is_a_json_object_with_the_common_keys() {
    let tokens = Tokens::new();
    let sent = [
        Some(tokens.good.as_str()),
        None,
        Some(&tokens.bad_signature),
    ];
    let (output, _) = serve_and_send(Some("debug"), "/api/games", &sent).await;

    let lines = output.json_lines();
    assert!(lines.len() >= 5, "too few lines: {}", output.stdout_text());
    for line in &lines {
        let Some(object) = line.as_object() else {
            panic!("not a JSON object: {line}");
        };
        for key in ["timestamp", "level", "service", "user_id", "request_id"] {
            assert!(object.contains_key(key), "no {key}: {line}");
        }
        let timestamp = line["timestamp"].as_str().expect("timestamp is text");
        assert!(timestamp.ends_with('Z'), "not UTC: {line}");
        assert!(
            humantime::parse_rfc3339(timestamp).is_ok(),
            "not RFC 3339: {line}"
        );
        assert!(
            matches!(
                line["level"].as_str(),
                Some("TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR")
            ),
            "odd level: {line}"
        );
        assert_eq!(line["service"], SERVICE, "{line}");
        assert!(line["message"].is_string(), "no message: {line}");
    }
}

/// Regression: the keys came out sorted (serde_json's map is ordered by
/// key), so `timestamp` sat mid-line behind fields such as `admin.addr`,
/// though the log module documents the common keys as coming first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stdout_line_starts_with_the_common_keys_in_order() {
    let tokens = Tokens::new();
    let sent = [Some(tokens.good.as_str()), None];
    let (output, _) = serve_and_send(Some("debug"), "/api/games", &sent).await;

    // A JSON value loses key order, so look at the text itself. Keys inside
    // string values are escaped (\"level\"), so they cannot match here.
    let keys = ["level", "service", "user_id", "request_id", "message"];
    for line in &output.stdout {
        assert!(line.starts_with(r#"{"timestamp":"#), "{line}");
        let mut last = 0;
        for key in keys {
            let at = line
                .find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("no {key}: {line}"));
            assert!(at > last, "{key} out of order: {line}");
            last = at;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_proxied_request_gets_one_access_line_with_its_fields() {
    let tokens = Tokens::new();
    let sent = [
        Some(tokens.good.as_str()),
        None,
        Some(&tokens.bad_signature),
    ];
    let (output, answers) = serve_and_send(None, "/api/games?colour=white&page=2", &sent).await;

    let lines = output.json_lines();
    let access = access_lines(&lines);
    assert_eq!(access.len(), sent.len(), "{}", output.stdout_text());
    let expected = [
        (StatusCode::OK, "ok", Value::from("alice")),
        (StatusCode::UNAUTHORIZED, "missing", Value::Null),
        (StatusCode::UNAUTHORIZED, "bad_signature", Value::Null),
    ];
    for (answer, (status, verdict, user_id)) in answers.iter().zip(expected) {
        assert_eq!(answer.status, status, "{}", answer.text());
        let id = answer.header("x-request-id").expect("a request id");
        let line = access
            .iter()
            .find(|line| line["request_id"] == id)
            .unwrap_or_else(|| panic!("no access line for {id}"));
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["http.method"], "GET", "{line}");
        assert_eq!(line["http.path"], "/api/games", "{line}");
        assert_eq!(line["http.status"], status.as_u16(), "{line}");
        assert_eq!(line["rule"], "default", "{line}");
        assert_eq!(line["verdict"], verdict, "{line}");
        assert_eq!(line["user_id"], user_id, "{line}");
        let duration = line["duration_ms"].as_f64().expect("duration_ms a number");
        assert!(duration >= 0.0, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_signatures_and_the_secret_never_appear_in_the_output() {
    let tokens = Tokens::new();
    let sent = tokens.all().map(Some);
    let (output, answers) = serve_and_send(Some("debug"), "/api/games", &sent).await;
    assert_eq!(answers[0].status, StatusCode::OK);

    let everything = format!("{}\n{}", output.stdout_text(), output.stderr);
    let secret = keys().secret_text();
    assert!(!everything.contains(&secret), "the HMAC secret was logged");
    for (at, token) in tokens.all().into_iter().enumerate() {
        let (_, signature) = token.rsplit_once('.').expect("three segments");
        assert!(!everything.contains(token), "token {at} was logged");
        assert!(
            !everything.contains(signature),
            "the signature of token {at} was logged"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_logged_at_debug_not_warn_or_error() {
    let tokens = Tokens::new();
    let sent = [Some(tokens.bad_signature.as_str()), Some(&tokens.forged)];
    let (output, answers) = serve_and_send(Some("debug"), "/api/games", &sent).await;
    assert!(answers.iter().all(|a| a.status == StatusCode::UNAUTHORIZED));

    let lines = output.json_lines();
    let refusals: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "token refused")
        .collect();
    assert_eq!(refusals.len(), sent.len(), "{}", output.stdout_text());
    let access_ids: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "request")
        .map(|line| &line["request_id"])
        .collect();
    for line in refusals {
        assert_eq!(line["level"], "DEBUG", "{line}");
        assert_eq!(line["reason"], "bad_signature", "{line}");
        // The request span ties the refusal to its access line.
        assert!(line["request_id"].is_string(), "{line}");
        assert!(access_ids.contains(&&line["request_id"]), "{line}");
    }
    let loud: Vec<&Value> = lines.iter().filter(|line| is_warn_or_error(line)).collect();
    assert!(loud.is_empty(), "warn or error lines: {loud:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_info_a_refused_token_leaves_only_its_access_line() {
    let tokens = Tokens::new();
    let sent = [Some(tokens.bad_signature.as_str())];
    let (output, answers) = serve_and_send(None, "/api/games", &sent).await;
    let id = answers[0].header("x-request-id").expect("a request id");

    let lines = output.json_lines();
    let about_it: Vec<&Value> = lines
        .iter()
        .filter(|line| {
            let text = line.to_string();
            text.contains(id) || text.contains("refused") || text.contains("bad_signature")
        })
        .collect();
    assert_eq!(about_it.len(), 1, "{about_it:?}");
    assert_eq!(about_it[0]["message"], "request");
    assert_eq!(about_it[0]["level"], "INFO");
    let loud: Vec<&Value> = lines.iter().filter(|line| is_warn_or_error(line)).collect();
    assert!(loud.is_empty(), "warn or error lines: {loud:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_info_a_forwarding_failure_carries_the_request_and_user_ids() {
    let down = format!("http://{}", support::closed_port().await);
    let config = binary::config(SERVICE, &down);
    let secret = keys().secret_text();
    let served = Served::start(&config, &[(SECRET_ENV, secret.as_str())]);
    let token = keys().mint("HS256", &support::claims("alice"));
    let authorization = format!("Bearer {token}");
    let answer = binary::get(
        &served.url("/api/games"),
        &[("authorization", &authorization)],
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    let output = served.terminate();

    let lines = output.json_lines();
    let warning = lines
        .iter()
        .find(|line| line["message"] == "forwarding failed")
        .expect("a forwarding failure line");
    assert_eq!(warning["level"], "WARN", "{warning}");
    assert_eq!(warning["failure"], "connect", "{warning}");
    assert_eq!(warning["user_id"], "alice", "{warning}");
    let returned = answer
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok());
    assert_eq!(warning["request_id"].as_str(), returned, "{warning}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_is_passed_on_and_its_trace_id_logged_with_the_request_id() {
    let upstream = Upstream::start().await;
    let config = binary::config(SERVICE, &format!("http://{}", upstream.addr()));
    let secret = keys().secret_text();
    let served = Served::start(&config, &[(SECRET_ENV, secret.as_str())]);
    let token = keys().mint("HS256", &support::claims("alice"));
    let authorization = format!("Bearer {token}");
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let headers = [
        ("authorization", authorization.as_str()),
        ("traceparent", traceparent),
    ];
    let answer = binary::get(&served.url("/api/games"), &headers).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.upstream_saw("traceparent"), [traceparent]);
    let output = served.terminate();

    let lines = output.json_lines();
    let access = access_lines(&lines);
    let id = answer.header("x-request-id").expect("a request id");
    let line = access
        .iter()
        .find(|line| line["request_id"] == id)
        .expect("the access line");
    assert_eq!(
        line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_level_filter_silences_access_lines_as_it_would_any_info_line() {
    let tokens = Tokens::new();
    let sent = [Some(tokens.good.as_str()), None];
    // The harness waits for the info line that says tollgate is serving,
    // so the filters keep info for the rest.
    for filter in ["info,tollgate::access=off", "info,tollgate::access=warn"] {
        let (output, answers) = serve_and_send(Some(filter), "/api/games", &sent).await;
        assert_eq!(answers[0].status, StatusCode::OK, "{filter}");
        assert_eq!(answers[1].status, StatusCode::UNAUTHORIZED, "{filter}");

        let lines = output.json_lines();
        assert!(access_lines(&lines).is_empty(), "{filter}: {lines:?}");
        let info = lines.iter().filter(|line| line["level"] == "INFO").count();
        assert!(info > 0, "{filter}: {lines:?}");
    }
}
