//! The demo's walkthrough: real requests through tollgate, each printed
//! with its answer and checked against what tollgate should do.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::DemoUser;

type DemoClient = Client<HttpConnector, Full<Bytes>>;

/// One answer, as the walkthrough prints it.
struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    body: Value,
}

/// What the closing commands need, when the demo keeps serving: the
/// demo's config as written to disk and its secret.
pub(super) struct TryIt<'a> {
    /// The demo's effective config file.
    pub(super) config: &'a std::path::Path,
    /// The generated HMAC secret.
    pub(super) secret: &'a str,
}

/// Runs every step; returns whether all gave the expected status. With
/// `try_it`, ends with commands to try while the demo serves.
pub(super) async fn run(
    proxy: SocketAddr,
    admin: SocketAddr,
    users: &[DemoUser],
    try_it: Option<TryIt<'_>>,
) -> Result<bool, Box<dyn std::error::Error>> {
    let client: DemoClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let base = format!("http://{proxy}");
    let mut passed = true;

    step("1. log in as alice through tollgate (delegated to the account store)");
    let (alice, bob) = (&users[0], &users[1]);
    let alice_login = login(&client, &base, alice).await?;
    passed &= expect(&alice_login, StatusCode::OK);
    let token = alice_login.body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    println!("   token issued: {}...", token.get(..24).unwrap_or(&token));

    step("2. call the service with alice's token: the echo shows the identity headers");
    let answer = send(
        &client,
        Method::GET,
        &format!("{base}/api/profile"),
        Some(&token),
        &[],
    )
    .await?;
    passed &= expect(&answer, StatusCode::OK);
    show_identity(&answer);

    step("3. same call, with forged X-User-Id and X_User_Roles headers added by the client");
    let spoof = [("x-user-id", "admin"), ("x_user_roles", "admin")];
    let answer = send(
        &client,
        Method::GET,
        &format!("{base}/api/profile"),
        Some(&token),
        &spoof,
    )
    .await?;
    passed &= expect(&answer, StatusCode::OK);
    show_identity(&answer);

    step("4. a forged token (alice's, with the signature altered)");
    let forged = forge(&token);
    let answer = send(
        &client,
        Method::GET,
        &format!("{base}/api/profile"),
        Some(&forged),
        &[],
    )
    .await?;
    passed &= expect(&answer, StatusCode::UNAUTHORIZED);

    step("5. no token at all");
    let answer = send(
        &client,
        Method::GET,
        &format!("{base}/api/profile"),
        None,
        &[],
    )
    .await?;
    passed &= expect(&answer, StatusCode::UNAUTHORIZED);

    step("6. a route that needs the admin role, as alice (player only)");
    let answer = send(
        &client,
        Method::GET,
        &format!("{base}/admin/stats"),
        Some(&token),
        &[],
    )
    .await?;
    passed &= expect(&answer, StatusCode::FORBIDDEN);

    step("7. the same route as bob (admin)");
    let bob_login = login(&client, &base, bob).await?;
    let bob_token = bob_login.body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let answer = send(
        &client,
        Method::GET,
        &format!("{base}/admin/stats"),
        Some(&bob_token),
        &[],
    )
    .await?;
    passed &= expect(&answer, StatusCode::OK);
    show_identity(&answer);

    step("8. the token cache, from the admin listener's /metrics");
    let metrics = fetch_text(&client, &format!("http://{admin}/metrics")).await?;
    show_cache(&metrics);

    let Some(try_it) = try_it else {
        return Ok(passed);
    };
    println!("\nTry it yourself:");
    println!(
        "  curl -s -X POST {base}/auth/login -d '{{\"username\":\"alice\",\"password\":\"{}\"}}'",
        alice.password
    );
    println!("  curl -si {base}/api/profile -H 'Authorization: Bearer {token}'");
    println!("  curl -si {base}/api/profile");
    println!("  curl -s http://{admin}/metrics | grep tollgate_");
    let config = try_it.config.display();
    // The binary running now, so the lines work as pasted: after `cargo
    // run` no `tollgate` is on the PATH.
    let tollgate = std::env::current_exe()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|_| "tollgate".to_owned());
    println!("  echo '{token}' | JWT_SECRET_KEY={} \\", try_it.secret);
    println!("    {tollgate} inspect --config {config} --path /admin/stats");
    println!("  {tollgate} health --url http://{admin}/health");
    Ok(passed)
}

fn step(title: &str) {
    println!("\n{title}");
}

fn expect(answer: &Answer, wanted: StatusCode) -> bool {
    let mark = if answer.status == wanted {
        "ok"
    } else {
        "UNEXPECTED"
    };
    println!(
        "   <- {} (expected {}: {mark})",
        answer.status,
        wanted.as_u16()
    );
    if let Some(challenge) = &answer.challenge {
        println!("   WWW-Authenticate: {challenge}");
    }
    if answer.status != StatusCode::OK {
        println!("   body: {}", answer.body);
    }
    answer.status == wanted
}

fn show_identity(answer: &Answer) {
    let headers = &answer.body["headers"];
    for name in [
        "x-user-id",
        "x-user-email",
        "x-user-roles",
        "x_user_roles",
        "x-request-id",
    ] {
        if let Some(value) = headers.get(name).and_then(Value::as_str) {
            println!("   upstream saw {name}: {value}");
        }
    }
}

fn show_cache(metrics: &str) {
    let read = |name: &str| {
        metrics
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let (hits, misses) = (
        read("tollgate_cache_hits_total"),
        read("tollgate_cache_misses_total"),
    );
    println!("   tollgate_cache_hits_total {hits}");
    println!("   tollgate_cache_misses_total {misses}");
    if hits + misses > 0.0 {
        println!("   cache hit rate {:.0}%", 100.0 * hits / (hits + misses));
    }
}

/// Flips one character in the middle of the signature.
fn forge(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let at = bytes.len() - 10;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap_or_default()
}

async fn login(
    client: &DemoClient,
    base: &str,
    user: &DemoUser,
) -> Result<Answer, Box<dyn std::error::Error>> {
    let body = serde_json::json!({"username": user.username, "password": user.password});
    println!(
        "   -> POST /auth/login {{\"username\":\"{}\", ...}}",
        user.username
    );
    let request = Request::post(format!("{base}/auth/login"))
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    read(client, request).await
}

async fn send(
    client: &DemoClient,
    method: Method,
    url: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> Result<Answer, Box<dyn std::error::Error>> {
    let mut builder = Request::builder().method(method.clone()).uri(url);
    let mut shown = format!(
        "   -> {method} {}",
        url.split_once("//").map_or(url, |(_, rest)| rest)
    );
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
        shown.push_str("  Authorization: Bearer ...");
    }
    for (name, value) in extra {
        builder = builder.header(*name, *value);
        shown.push_str(&format!("  {name}: {value}"));
    }
    println!("{shown}");
    read(client, builder.body(Full::new(Bytes::new()))?).await
}

async fn read(
    client: &DemoClient,
    request: Request<Full<Bytes>>,
) -> Result<Answer, Box<dyn std::error::Error>> {
    let response = client.request(request).await?;
    let status = response.status();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.into_body().collect().await?.to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(Answer {
        status,
        challenge,
        body,
    })
}

async fn fetch_text(client: &DemoClient, url: &str) -> Result<String, Box<dyn std::error::Error>> {
    let request = Request::get(url).body(Full::new(Bytes::new()))?;
    let response = client.request(request).await?;
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
