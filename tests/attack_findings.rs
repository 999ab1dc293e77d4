//! Attacks that got past tollgate, or made it misbehave, in an attack run
//! against the first complete build; each test asserts the fixed behaviour
//! and now guards against the finding coming back (the number in the test
//! name is the finding's number in that run's report).
//!
//! 1. a lowercase method skipped method-scoped rules (methods now match
//!    without case);
//! 2. connections that never sent a request head were held forever (the
//!    protocol detection now times out, and quiet HTTP/2 peers are pinged);
//! 3. duplicate members below the top level of the claims were accepted;
//! 4. roles that read back differently once joined were forwarded;
//! 5. two Host headers were forwarded (now 400, RFC 9112 section 3.2);
//! 6. a malformed request body was answered 502 and counted against the
//!    upstream (now 400, the caller's fault);
//! 7. CONNECT was forwarded to another target than the one matched (405);
//! 8. `path_prefix = "/admin/"` did not cover `/admin` itself;
//! 9. HEAD escaped a GET-only rule.
//!
//! Attacks that tollgate blocked from the start are in `attack_blocked.rs`.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::keys::b64;
use support::wire::request_head;
use support::{AUDIENCE, Harness, ISSUER, RawConnection, Upstream, keys, metric_matching};

/// Writes are for editors, reads are public: a common shape of rule set.
const EDITOR_RULES: &str = r#"
[[rules]]
name = "api-writes"
path_prefix = "/api/"
methods = ["POST", "PUT", "PATCH", "DELETE"]
roles = ["editor"]

[[rules]]
name = "api-reads"
path_prefix = "/api/"
public = true
"#;

/// How long tollgate gives a client to send a request head
/// (`HEADER_READ_TIMEOUT` in `src/proxy/server.rs`).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

fn player_token() -> String {
    keys().mint("HS256", &support::claims("alice"))
}

/// Signs claims given as raw JSON text (so that duplicate members and
/// escapes survive) with the provider's HMAC secret.
fn mint_raw_claims(claims: &str) -> String {
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.as_bytes())
    );
    let signature = keys().sign("HS256", input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

/// Reads until the peer closes (true) or stays quiet for 500 ms (false),
/// discarding whatever it sends (an HTTP/2 server's SETTINGS, say).
async fn closes_soon(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

// --- Finding 1: a lowercase method skips method-scoped rules ----------------

#[tokio::test]
async fn finding_1_a_lowercase_method_skips_a_method_scoped_rule_over_http1() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_rules(EDITOR_RULES)
        .start()
        .await;

    // The spelling the rule names is refused, as it should be.
    let answer = RawConnection::connect(tollgate.addr())
        .await
        .send(&request_head(
            "DELETE",
            "/api/posts/1",
            &["Content-Length: 0"],
        ))
        .await;
    assert_eq!(answer.status, 401, "{answer:?}");

    // Methods are case-sensitive on the wire, so `delete` matches no
    // method-scoped rule and falls to the public one; but Django, Flask
    // (werkzeug) and ASP.NET Core upper-case or compare methods without
    // case, and run their DELETE handler for it, with no token checked.
    for method in ["delete", "Delete", "post"] {
        let answer = RawConnection::connect(tollgate.addr())
            .await
            .send(&request_head(
                method,
                "/api/posts/1",
                &["Content-Length: 0"],
            ))
            .await;
        assert!(
            answer.status.is_client_error(),
            "{method} /api/posts/1 without a token was answered {} by the upstream: {}",
            answer.status,
            answer.text()
        );
    }
    assert_eq!(
        upstream.hits(),
        0,
        "unauthenticated writes reached the upstream"
    );
}

#[tokio::test]
async fn finding_1_a_lowercase_method_skips_a_role_rule_over_http2() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_rules(EDITOR_RULES)
        .start()
        .await;

    let request = http::Request::builder()
        .method("delete")
        .uri("http://tollgate.test/api/posts/1")
        .header("authorization", format!("Bearer {}", player_token()))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let answer = support::send_h2(tollgate.addr(), request).await;

    assert!(
        answer.status.is_client_error(),
        "a player's `delete` reached the upstream: {} {}",
        answer.status,
        answer.text()
    );
    assert_eq!(upstream.hits(), 0);
}

// --- Finding 2: connections that send nothing are held forever -------------

#[tokio::test]
async fn finding_2_connections_that_never_send_a_request_head_are_closed() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;

    let mut preface_and_settings = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface_and_settings.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let openers: [(&str, &[u8]); 3] = [
        ("a connection that sends nothing", b""),
        ("half an HTTP/2 preface", b"PRI * HTTP/2.0\r\n"),
        ("an idle HTTP/2 connection", &preface_and_settings),
    ];
    let mut streams = Vec::new();
    for (name, bytes) in openers {
        let mut stream = TcpStream::connect(tollgate.addr()).await.expect("connect");
        stream.write_all(bytes).await.expect("write");
        streams.push((name, stream));
    }

    // A partial HTTP/1 head is cut off at HEADER_READ_TIMEOUT (see
    // attack_blocked.rs); these never reach the HTTP/1 parser, so each one
    // holds a file descriptor until shutdown.
    tokio::time::sleep(HEADER_READ_TIMEOUT + Duration::from_secs(2)).await;
    let mut still_open = Vec::new();
    for (name, stream) in &mut streams {
        if !closes_soon(stream).await {
            still_open.push(*name);
        }
    }
    assert!(
        still_open.is_empty(),
        "still open after {:?}: {still_open:?}",
        HEADER_READ_TIMEOUT + Duration::from_secs(2)
    );
}

// --- Finding 3: duplicate members below the top level are accepted ---------

#[tokio::test]
async fn finding_3_duplicate_members_inside_a_nested_claim_are_refused() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_provider_lines("roles_claim = \"/realm_access/roles\"")
        .start()
        .await;

    // serde_json keeps the last `roles` (admin), a first-wins parser reads
    // player: exactly the disagreement the README says cannot happen.
    let claims = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"alice","exp":{},"realm_access":{{"roles":["player"],"roles":["admin"]}}}}"#,
        support::now() + 3600
    );
    let answer = tollgate
        .get("/admin/x")
        .bearer(&mint_raw_claims(&claims))
        .send()
        .await;

    assert_eq!(
        answer.status,
        401,
        "a token with duplicate nested members got {}: {}",
        answer.status,
        answer.text()
    );
    assert_eq!(upstream.hits(), 0);
}

// --- Finding 4: role lists the upstream reads differently ------------------

#[tokio::test]
async fn finding_4_role_values_that_split_differently_downstream_are_refused() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;

    // tollgate refuses ["a,b"] because the joined header would read as two
    // roles. These read as `player` and `admin` to any list parser (RFC 9110
    // section 5.6.1 trims the spaces around commas), while tollgate itself
    // holds neither `admin` nor a role that reads as one.
    for roles in [
        json!(["player", " admin"]),
        json!(["admin ", "player"]),
        json!("player,admin"),
    ] {
        let mut claims = support::claims("alice");
        claims["roles"] = roles.clone();
        let token = keys().mint("HS256", &claims);

        // Refused outright, on every route: tollgate will not hold (or
        // forward) roles that read back differently.
        for path in ["/admin/x", "/games/1"] {
            let answer = tollgate.get(path).bearer(&token).send().await;
            assert_eq!(
                answer.status,
                401,
                "{roles} on {path}: forwarded with X-User-Roles {:?}",
                answer.upstream_saw("x-user-roles")
            );
        }
    }
    assert_eq!(upstream.hits(), 0);
}

// --- Finding 5: two Host headers are forwarded ------------------------------

#[tokio::test]
async fn finding_5_a_request_with_two_host_headers_is_refused() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;

    // RFC 9112 section 3.2: a server MUST answer 400. tollgate forwards
    // both; X-Forwarded-Host names the first, a last-wins upstream or
    // virtual-host router picks the second.
    let answer = RawConnection::connect(tollgate.addr())
        .await
        .send(b"GET /public/x HTTP/1.1\r\nHost: game-api.test\r\nHost: admin.internal\r\n\r\n")
        .await;

    assert_eq!(
        answer.status,
        400,
        "upstream saw host {:?}, x-forwarded-host {:?}",
        answer.upstream_saw("host"),
        answer.upstream_saw("x-forwarded-host")
    );
    assert_eq!(upstream.hits(), 0);
}

// --- Finding 6: a client's broken body is blamed on the upstream -----------

#[tokio::test]
async fn finding_6_a_malformed_request_body_is_a_client_error_not_a_bad_gateway() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let other_errors = |text: &str| {
        metric_matching(
            text,
            "tollgate_upstream_errors_total",
            &[("target", "upstream"), ("kind", "other")],
        )
    };
    let before = other_errors(&tollgate.metrics().await);

    let mut connection = RawConnection::connect(tollgate.addr()).await;
    connection
        .write(&request_head(
            "POST",
            "/public/x",
            &["Transfer-Encoding: chunked"],
        ))
        .await;
    // A chunk size that is not hex.
    connection.write(b"4\r\nmove\r\nzz\r\n").await;
    let answer = connection.read_answer().await;

    let after = other_errors(&tollgate.metrics().await);
    assert_eq!(
        (answer.status.as_u16(), after - before),
        (400, 0.0),
        "answered {} and counted {} upstream failure(s) (and logged a WARN) for the client's bad body",
        answer.status,
        after - before
    );
}

// --- Finding 7: CONNECT is forwarded with another target --------------------

#[tokio::test]
async fn finding_7_connect_is_refused_not_forwarded_to_another_target() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;

    // The rule matched `/public/x`; the upstream is sent
    // `CONNECT 127.0.0.1:<port>` (hyper's client rewrites CONNECT to
    // authority form), so the path forwarded is not the path matched, and
    // a 2xx answer leaves the client's connection half switched.
    let text = support::raw(
        tollgate.addr(),
        b"CONNECT /public/x HTTP/1.1\r\nHost: tollgate.test\r\n\r\n",
    )
    .await;
    let status_line = text.lines().next().unwrap_or("").to_owned();

    assert_eq!(
        upstream.hits(),
        0,
        "CONNECT reached the upstream ({status_line:?})"
    );
    assert!(
        status_line.starts_with("HTTP/1.1 4"),
        "expected a 4xx, got {status_line:?}"
    );
}

// --- Finding 8 (design): a directory rule does not cover its own index -----

#[tokio::test]
async fn finding_8_the_example_admin_rule_covers_the_admin_index_too() {
    let upstream = Upstream::start().await;
    // The harness uses the example config's `path_prefix = "/admin/"`.
    let tollgate = Harness::new(upstream.addr()).start().await;

    let answer = tollgate.get("/admin").bearer(&player_token()).send().await;

    assert_eq!(
        answer.status,
        403,
        "a player reached the upstream's {:?}",
        answer.upstream_path()
    );
}

// --- Finding 9 (design): HEAD escapes a GET-only role rule ------------------

#[tokio::test]
async fn finding_9_head_is_held_to_the_roles_of_a_get_rule() {
    let upstream = Upstream::start().await;
    let rules = r#"
[[rules]]
path_prefix = "/reports/"
methods = ["GET"]
roles = ["admin"]
"#;
    let tollgate = Harness::new(upstream.addr())
        .with_rules(rules)
        .start()
        .await;

    // Flask, Django, Express and Go's ServeMux all run the GET handler for
    // HEAD; the body is dropped but the handler's side effects and headers
    // (length, ETag, Location) are not.
    let answer = tollgate
        .request(http::Method::HEAD, "/reports/salaries")
        .bearer(&player_token())
        .send()
        .await;

    assert_eq!(answer.status, 403, "HEAD by a player reached the upstream");
    assert_eq!(upstream.hits(), 0);
}
