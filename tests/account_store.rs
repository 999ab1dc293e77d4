//! End-to-end account store routes: login, refresh and logout go to the
//! account store with no token check, and the store's failures are reported
//! as the store's, without touching protected upstream traffic.

mod support;

use std::time::Duration;

use http::Method;

use support::upstream::Behaviour;
use support::{Harness, Upstream};

fn token() -> String {
    support::keys().mint("HS256", &support::claims("alice"))
}

#[tokio::test]
async fn login_goes_to_the_account_store_without_a_token() {
    let upstream = Upstream::start().await;
    let store = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_account_store(&format!("http://{}", store.addr()), "2s")
        .start()
        .await;

    let answer = tollgate
        .request(Method::POST, "/auth/login")
        .header("content-type", "application/json")
        .header("x-user-id", "mallory")
        .header("x_user_roles", "admin")
        .body(r#"{"username":"alice","password":"hunter2"}"#)
        .send()
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!((store.hits(), upstream.hits()), (1, 0));
    assert_eq!(answer.upstream_path(), "/auth/login");
    assert_eq!(answer.json()["body_len"], 41);
    assert_eq!(answer.upstream_saw("x-user-id"), Vec::<String>::new());
    assert_eq!(answer.upstream_saw("x_user_roles"), Vec::<String>::new());
}

#[tokio::test]
async fn logout_reaches_the_store_with_its_token_unchecked() {
    let upstream = Upstream::start().await;
    let store = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_account_store(&format!("http://{}", store.addr()), "2s")
        .start()
        .await;

    // The store, not tollgate, judges the token a logout or refresh names,
    // so a token tollgate would refuse still gets through, untouched.
    let answer = tollgate
        .request(Method::POST, "/auth/logout")
        .bearer("not-a-jwt")
        .send()
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(store.hits(), 1);
    assert_eq!(answer.upstream_saw("authorization"), ["Bearer not-a-jwt"]);
    assert_eq!(answer.upstream_saw("x-user-id"), Vec::<String>::new());
}

#[tokio::test]
async fn an_account_store_that_is_down_gives_503() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_account_store(&format!("http://{}", support::closed_port().await), "2s")
        .start()
        .await;

    let answer = tollgate.request(Method::POST, "/auth/login").send().await;

    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.json()["error"], "account_store_unavailable");
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn an_account_store_slower_than_its_timeout_gives_504() {
    let upstream = Upstream::start().await;
    let store = Upstream::with(Behaviour {
        delay: Some(Duration::from_secs(2)),
        ..Behaviour::default()
    })
    .await;
    let tollgate = Harness::new(upstream.addr())
        .with_account_store(&format!("http://{}", store.addr()), "200ms")
        .start()
        .await;

    let answer = tollgate.request(Method::POST, "/auth/refresh").send().await;

    assert_eq!(answer.status, 504, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.json()["error"], "account_store_timeout");
}

#[tokio::test]
async fn protected_traffic_flows_while_the_account_store_is_down() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_account_store(&format!("http://{}", support::closed_port().await), "2s")
        .start()
        .await;

    let login = tollgate.request(Method::POST, "/auth/login").send().await;
    let protected = tollgate.get("/api/games").bearer(&token()).send().await;

    assert_eq!(login.status, 503, "{login:?}");
    assert_eq!(protected.status, 200, "{protected:?}");
    assert_eq!(protected.upstream_saw("x-user-id"), ["alice"]);
}
