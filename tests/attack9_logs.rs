//! Attack 9 on the access line written without a tracing event: values a
//! client or a token issuer chooses (the path, the method, the request id,
//! the traceparent, and `sub`, which is logged as `user_id`) must leave
//! every stdout line one JSON object holding exactly what was sent, and
//! never a token or the secret.

mod support;

use std::net::SocketAddr;

use serde_json::Value;

use support::binary::{SECRET_ENV, Served, config, get};
use support::reload::eventually;
use support::wire::{RawConnection, request_head};
use support::{claims, keys, metric_matching, now};

/// A `sub` that JSON must escape in every way: quotes, backslashes,
/// control characters, the line separators JavaScript treats as newlines,
/// and text outside ASCII.
const SUB: &str = "al\"i\\ce\n\r\t\u{0}\u{1b}[31m\u{7f}\u{2028}\u{2029}é😀}{\"x\":1";

/// A valid W3C traceparent whose trace id must be logged.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// One request sent as raw bytes, and what its access line must say;
/// `None` for a path hyper refuses before tollgate sees the request.
struct Case {
    method: &'static str,
    path: Vec<u8>,
    headers: Vec<String>,
    line: Option<(&'static str, Value)>,
}

fn case(method: &'static str, path: &[u8], id: &str, token: Option<&str>) -> Case {
    let mut headers = vec![format!("X-Request-Id: {id}")];
    if let Some(token) = token {
        headers.push(format!("Authorization: Bearer {token}"));
    }
    Case {
        method,
        path: path.to_vec(),
        headers,
        line: None,
    }
}

fn head(case: &Case) -> Vec<u8> {
    let lines: Vec<&str> = case.headers.iter().map(String::as_str).collect();
    let marker = "\u{1}PATH\u{1}";
    let text = request_head(case.method, marker, &lines);
    let text = String::from_utf8(text).expect("an ASCII head");
    let (before, after) = text.split_once(marker).expect("the marker");
    [before.as_bytes(), &case.path, after.as_bytes()].concat()
}

/// The proxy's address, from the URL the harness gives.
fn proxy_addr(served: &Served) -> SocketAddr {
    let url = served.url("");
    url.trim_start_matches("http://")
        .parse()
        .expect("a socket address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chosen_values_leave_every_line_one_json_object() {
    let upstream = support::Upstream::start().await;
    // `sub` is logged but not sent as a header, so nothing refuses it.
    let text = config("attack9", &format!("http://{}", upstream.addr()))
        .replace(r#""X-User-Id" = "sub""#, r#""X-User-Id" = "email""#);
    let secret = keys().secret_text();
    let served = Served::start(&text, &[(SECRET_ENV, secret.as_str())]);
    let addr = proxy_addr(&served);

    let mut good_claims = claims("alice");
    good_claims["sub"] = SUB.into();
    let good = keys().mint("HS256", &good_claims);
    let mut old_claims = good_claims.clone();
    old_claims["exp"] = (now() - 3600).into();
    let expired = keys().mint("HS256", &old_claims);
    let long_path = format!("/api/{}", "a".repeat(7_000));

    let sub = Value::from(SUB);
    let mut cases = vec![
        case("GET", b"/api/a\"b", "r1", Some(&good)),
        case("GET", "/api/é\u{2028}x".as_bytes(), "r2", Some(&good)),
        case("GET", b"/api/a\\b", "r3", Some(&good)),
        case("GET", long_path.as_bytes(), "r4", Some(&good)),
        case("PURGE", b"/api/x", "r5", None),
        case("GET", b"/api/x", "r6", Some(&expired)),
        case("GET", b"/api/\xff\xfe", "r7", Some(&good)),
        case("GET", b"/api/x", "r8", Some(&good)),
    ];
    cases[0].line = Some(("/api/a\"b", sub.clone()));
    cases[1].line = Some(("/api/é\u{2028}x", sub.clone()));
    cases[2].line = Some(("/api/a\\b", Value::Null));
    cases[3].line = Some((long_path.leak(), sub.clone()));
    cases[4].line = Some(("/api/x", Value::Null));
    cases[5].line = Some(("/api/x", Value::Null));
    cases[7].line = Some(("/api/x", sub.clone()));
    cases[7].headers.push(format!("traceparent: {TRACEPARENT}"));
    // A request id and a traceparent that are not taken as sent.
    let mut odd = case("GET", b"/api/x", "r9\"}", Some(&good));
    odd.headers
        .push("traceparent: 00-\"},{\"x\":\"-00f067aa0ba902b7-01".into());
    cases.push(odd);

    let mut statuses = Vec::new();
    for case in &cases {
        let mut connection = RawConnection::connect(addr).await;
        statuses.push(connection.send(&head(case)).await.status);
    }
    let output = served.terminate();
    assert_eq!(output.code(), Some(0), "stderr: {}", output.stderr);

    // Every line one JSON object; no token, no secret anywhere.
    let lines = output.json_lines();
    for (raw, line) in output.stdout.iter().zip(&lines) {
        assert!(line.is_object(), "{raw}");
        for token in [&good, &expired] {
            assert!(!raw.contains(token.as_str()), "a token was logged: {raw}");
            let signature = token.rsplit('.').next().expect("a signature");
            assert!(!raw.contains(signature), "a signature was logged: {raw}");
        }
        assert!(!raw.contains(&secret), "the secret was logged: {raw}");
    }

    let access: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "request")
        .collect();
    for (case, status) in cases.iter().zip(&statuses) {
        let id = case.headers[0].trim_start_matches("X-Request-Id: ");
        let found = access.iter().find(|line| line["request_id"] == id);
        let Some((path, user_id)) = &case.line else {
            assert!(found.is_none(), "{id}: {found:?}");
            continue;
        };
        let line = found.unwrap_or_else(|| panic!("no access line for {id}: {lines:?}"));
        assert_eq!(line["http.method"], case.method, "{line}");
        assert_eq!(line["http.path"], *path, "{line}");
        assert_eq!(line["http.status"], status.as_u16(), "{line}");
        assert_eq!(line["user_id"], *user_id, "{line}");
        assert_eq!(line["target"], "tollgate::access", "{line}");
    }
    let traced = access.iter().find(|line| line["request_id"] == "r8");
    let traced = traced.expect("the traced request's line");
    assert_eq!(traced["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");

    // The request id and traceparent that were not taken: an access line
    // with a generated id and no trace id, and one line per request that
    // reached tollgate.
    let reached = cases.iter().filter(|case| case.line.is_some()).count();
    assert_eq!(access.len(), reached + 1, "{lines:?}");
    let odd = access
        .iter()
        .find(|line| !line["request_id"].as_str().unwrap_or("").starts_with('r'))
        .expect("the odd request's line");
    assert!(odd.get("trace_id").is_none(), "{odd}");
    assert_eq!(odd["user_id"], sub, "{odd}");
}

// --- The level filter and reloads ---

/// Replaces a file in one step, as config tools do.
fn replace_file(path: &std::path::Path, text: &str) {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, text).expect("write");
    std::fs::rename(&temp, path).expect("rename");
}

/// Waits (bounded) until the binary has published `count` reloads.
async fn wait_for_reloads(served: &Served, count: f64) {
    eventually("the reload", || async {
        let metrics = get(&served.admin_url("/metrics"), &[]).await.text();
        let labels = [("result", "ok")];
        metric_matching(&metrics, "tollgate_config_reloads_total", &labels) >= count
    })
    .await;
}

/// Starts the binary with `env`, then for each config in `steps` sends
/// one request with a good token (its request id the step's name) and
/// reloads the next. Returns the ids that got an access line, and every
/// stdout line.
async fn ids_logged(env: &[(&str, &str)], steps: &[(&str, &str)]) -> (Vec<String>, Vec<Value>) {
    let upstream = support::Upstream::start().await;
    let base = config("attack9", &format!("http://{}", upstream.addr()));
    let secret = keys().secret_text();
    let mut env = env.to_vec();
    env.push((SECRET_ENV, &secret));
    let served = Served::start(&base, &env);
    let token = keys().mint("HS256", &claims("alice"));
    let bearer = format!("Bearer {token}");

    let mut previous = base.clone();
    for (at, (id, change)) in steps.iter().enumerate() {
        let text = base.replace("level = \"info\"\naccess = true", change);
        assert!(at == 0 || text != previous, "{id}: the change applies");
        previous.clone_from(&text);
        if at > 0 {
            replace_file(&served.config_path(), &text);
            wait_for_reloads(&served, at as f64).await;
        }
        let headers = [("x-request-id", *id), ("authorization", bearer.as_str())];
        let answer = get(&served.url("/api/x"), &headers).await;
        assert_eq!(answer.status, 200, "{id}");
    }

    let output = served.terminate();
    assert_eq!(output.code(), Some(0), "stderr: {}", output.stderr);
    for raw in &output.stdout {
        assert!(!raw.contains(&token), "a token was logged: {raw}");
        assert!(!raw.contains(&secret), "the secret was logged: {raw}");
    }
    let lines = output.json_lines();
    let ids = lines
        .iter()
        .filter(|line| line["message"] == "request")
        .filter_map(|line| line["request_id"].as_str().map(str::to_owned))
        .collect();
    (ids, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_of_the_level_and_of_log_access_decide_each_line() {
    let steps = [
        ("info", "level = \"info\"\naccess = true"),
        ("access-off", "level = \"info\"\naccess = false"),
        (
            "target-off",
            "level = \"info,tollgate::access=off\"\naccess = true",
        ),
        (
            "warn-but-access",
            "level = \"warn,tollgate::access=info\"\naccess = true",
        ),
        ("debug", "level = \"debug\"\naccess = true"),
        ("error", "level = \"error\"\naccess = true"),
        ("info-again", "level = \"info\"\naccess = true"),
    ];
    let (ids, lines) = ids_logged(&[], &steps).await;
    assert_eq!(ids, ["info", "warn-but-access", "debug", "info-again"]);

    // At debug the request's own lines name it through the span.
    let debug = lines
        .iter()
        .filter(|line| line["level"] == "DEBUG" && line["request_id"] == "debug")
        .count();
    assert!(debug > 0, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_log_wins_over_every_reloaded_level() {
    let steps = [
        ("first", "level = \"info\"\naccess = true"),
        ("warn", "level = \"warn\"\naccess = true"),
        ("access-off", "level = \"debug\"\naccess = false"),
        ("last", "level = \"error\"\naccess = true"),
    ];
    let env = [("RUST_LOG", "info")];
    let (ids, _) = ids_logged(&env, &steps).await;
    assert_eq!(ids, ["first", "warn", "last"]);

    let env = [("RUST_LOG", "info,tollgate::access=off")];
    let (ids, _) = ids_logged(&env, &steps).await;
    assert!(ids.is_empty(), "{ids:?}");
}

/// Finding: the access line's filter check had no fields, so a directive
/// naming a field the access line lacks silenced it, where the tracing
/// event it replaced was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directives_that_name_fields_apply_as_they_did_to_the_event() {
    let steps = [("only", "level = \"info\"\naccess = true")];
    let cases = [
        ("info,tollgate::access[{nosuchfield}]=off", true),
        ("info,[{nosuchfield}]=off", true),
        ("info,tollgate::access[{verdict}]=off", false),
        ("info,tollgate::access[{http.path}]=off", false),
    ];
    for (filter, logged) in cases {
        let (ids, _) = ids_logged(&[("RUST_LOG", filter)], &steps).await;
        let expected: &[&str] = if logged { &["only"] } else { &[] };
        assert_eq!(ids, expected, "{filter}");
    }
}

/// Finding: with the request span at debug, a filter that turns debug on
/// for one module below `tollgate::proxy` (`tollgate::proxy::forward`,
/// whose lines carry the TLS and connect errors) left the span off, and
/// that module's lines lost their request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_lines_of_one_module_still_name_their_request() {
    // A port nothing listens on: forwarding fails with a debug line.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = closed.local_addr().expect("an address");
    drop(closed);
    let text = format!(
        "{}\n[[rules]]\npath_prefix = \"/public/\"\npublic = true\n",
        config("attack9", &format!("http://{dead}"))
    );
    for filter in [
        "info,tollgate::proxy::forward=debug",
        "warn,tollgate::proxy::forward=debug,tollgate=info",
        // The harness waits for the line that says tollgate is serving.
        "warn,tollgate::proxy::forward=debug,tollgate::app=info",
        "info,tollgate::proxy=debug",
        "debug",
    ] {
        let secret = keys().secret_text();
        let env = [("RUST_LOG", filter), (SECRET_ENV, secret.as_str())];
        let served = Served::start(&text, &env);
        let answer = get(&served.url("/public/x"), &[("x-request-id", "probe-1")]).await;
        assert_eq!(answer.status, 502, "{filter}");
        let output = served.terminate();
        let lines = output.json_lines();
        let refused = lines
            .iter()
            .find(|line| line["message"] == "target refused connection")
            .unwrap_or_else(|| panic!("{filter}: no connect line: {lines:?}"));
        assert_eq!(refused["request_id"], "probe-1", "{filter}: {refused}");
    }
}
