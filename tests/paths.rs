//! End-to-end path handling: rules match the normalised path, so no
//! spelling of a protected path may slip past its rule, and the upstream
//! is sent the very path the rules matched.

mod support;

use http::Method;
use serde_json::json;

use support::wire::request_head;
use support::{Answer, Harness, RawConnection, Tollgate, Upstream};

/// Spellings of `/admin/x` that normalise to it, so the `/admin/` rule
/// must cover them.
const ADMIN_SPELLINGS: [&str; 8] = [
    "/admin/x",
    "/public/../admin/x",
    "/public/%2e%2e/admin/x",
    "/public/%2E%2e/admin/x",
    "//admin/x",
    "/./admin/x",
    "/%61dmin/x",
    "/admin/./x",
];

/// Paths servers disagree about, which tollgate refuses rather than guess.
const AMBIGUOUS: [&str; 8] = [
    "/admin%2fx",
    "/public/..%2fadmin",
    "/public/..%5cadmin",
    "/a;b",
    "/..",
    "/public/../../admin/x",
    "/public/x%00",
    "/public\\..\\admin",
];

/// Sends a GET over raw TCP, so the path reaches tollgate byte for byte:
/// a client library may resolve dot segments or refuse a backslash.
async fn get_verbatim(tollgate: &Tollgate, path: &str, token: Option<&str>) -> Answer {
    let bearer = token.map(|token| format!("Authorization: Bearer {token}"));
    let lines: Vec<&str> = bearer.iter().map(String::as_str).collect();
    RawConnection::connect(tollgate.addr())
        .await
        .send(&request_head("GET", path, &lines))
        .await
}

fn player_token() -> String {
    support::keys().mint("HS256", &support::claims("alice"))
}

fn admin_token() -> String {
    let mut claims = support::claims("root");
    claims["roles"] = json!(["admin"]);
    support::keys().mint("HS256", &claims)
}

#[tokio::test]
async fn every_spelling_of_an_admin_path_needs_the_admin_role() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let token = player_token();

    for path in ADMIN_SPELLINGS {
        let answer = get_verbatim(&tollgate, path, Some(&token)).await;
        assert_eq!(answer.status, 403, "{path}: {answer:?}");
    }
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn ambiguous_paths_are_refused_with_400() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let token = admin_token();

    for path in AMBIGUOUS {
        let answer = get_verbatim(&tollgate, path, Some(&token)).await;
        assert_eq!(answer.status, 400, "{path}: {answer:?}");
        assert_eq!(answer.json()["error"], "invalid_request", "{path}");
    }
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn the_upstream_is_sent_the_normalised_path() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    let token = admin_token();

    for path in ADMIN_SPELLINGS {
        let answer = get_verbatim(&tollgate, path, Some(&token)).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        assert_eq!(answer.upstream_path(), "/admin/x", "{path}");
    }
    let public = [
        ("/public/./a//b/", "/public/a/b/"),
        ("/public/%7euser", "/public/~user"),
        ("/public/caf%c3%a9", "/public/caf%C3%A9"),
        ("/public/a/b/..", "/public/a/"),
    ];
    for (sent, forwarded) in public {
        let answer = get_verbatim(&tollgate, sent, None).await;
        assert_eq!(answer.status, 200, "{sent}: {answer:?}");
        assert_eq!(answer.upstream_path(), forwarded, "{sent}");
    }
}

#[tokio::test]
async fn the_query_is_forwarded_exactly_as_sent() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;

    let query = "a=/admin/&b=%2e%2e&c=%2F&d=..%5c&e";
    let answer = tollgate.get(&format!("/public/./x?{query}")).send().await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.upstream_path(), "/public/x");
    assert_eq!(answer.json()["query"], query);
}

#[tokio::test]
async fn the_query_never_takes_part_in_matching() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;

    let anonymous = tollgate.get("/admin/x?/public/").send().await;
    let player = tollgate
        .get("/admin/x?/public/")
        .bearer(&player_token())
        .send()
        .await;
    let public = tollgate.get("/public/x?a=/admin/").send().await;

    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert_eq!(player.status, 403, "{player:?}");
    assert_eq!(public.status, 200, "{public:?}");
    assert_eq!(upstream.hits(), 1);
}

#[tokio::test]
async fn a_public_rule_for_get_only_leaves_other_methods_protected() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_rules("[[rules]]\npath_prefix = \"/docs/\"\npublic = true\nmethods = [\"GET\"]\n")
        .start()
        .await;

    let read = tollgate.get("/docs/intro").send().await;
    let anonymous_write = tollgate
        .request(Method::POST, "/docs/intro")
        .body("edit")
        .send()
        .await;
    let signed_write = tollgate
        .request(Method::POST, "/docs/intro")
        .bearer(&player_token())
        .body("edit")
        .send()
        .await;

    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(anonymous_write.status, 401, "{anonymous_write:?}");
    assert_eq!(signed_write.status, 200, "{signed_write:?}");
    assert_eq!(signed_write.json()["method"], "POST");
}

#[tokio::test]
async fn a_preflight_needs_a_token_unless_a_rule_makes_it_public() {
    let preflight = |tollgate: &support::Tollgate| {
        tollgate
            .request(Method::OPTIONS, "/api/games")
            .header("origin", "https://chessmate.test")
            .header("access-control-request-method", "POST")
    };
    let upstream = Upstream::start().await;
    let strict = Harness::new(upstream.addr()).start().await;
    let open = Harness::new(upstream.addr())
        .with_rules("[[rules]]\npath_prefix = \"/api/\"\npublic = true\nmethods = [\"OPTIONS\"]\n")
        .start()
        .await;

    let refused = preflight(&strict).send().await;
    let allowed = preflight(&open).send().await;
    let other_method = open.get("/api/games").send().await;

    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(allowed.json()["method"], "OPTIONS");
    assert_eq!(other_method.status, 401, "{other_method:?}");
    assert_eq!(upstream.hits(), 1);
}
