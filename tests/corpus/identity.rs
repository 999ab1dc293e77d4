//! Identity spoofing: identity headers the client sends itself, on every
//! kind of route, hidden behind `Connection`, or as `X-Forwarded-*` claims
//! about where the request came from.
//!
//! Requests go out as raw bytes, so each header is spelled exactly as the
//! case says, and the recorder shows exactly what the service received.

use crate::common::*;
use crate::support::recorder::{Recorded, Recorder};
use crate::support::{Answer, claims, keys};

/// Where a forged header is sent.
#[derive(Clone, Copy)]
enum Route {
    /// A route that needs a token; a good one for `alice` is sent.
    Authenticated,
    /// A public route, with no token.
    Public,
    /// An account-store route (login), with no token.
    AccountStore,
}

/// The values of every header whose name, lowercased and with `_` read as
/// `-`, is `name`: how a CGI-style service (RFC 3875 section 4.1.18) would
/// read them.
fn read_as(request: &Recorded, name: &str) -> Vec<String> {
    let fold = |text: &str| text.trim().to_ascii_lowercase().replace('_', "-");
    request
        .head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .filter(|(n, _)| fold(n) == name)
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// Sends `line` on `route` and returns what the service behind the route
/// received.
async fn forge(route: Route, line: &str) -> Recorded {
    let store = Recorder::start().await;
    let store_url = format!("http://{}", store.addr());
    let gate = Gate::with(|h| h.with_account_store(&store_url, "2s")).await;
    let token = player_bearer_line();
    let (target, lines): (&str, Vec<&str>) = match route {
        Route::Authenticated => ("/games/1", vec![line, &token]),
        Route::Public => ("/public/x", vec![line]),
        Route::AccountStore => ("/auth/login", vec![line]),
    };
    let answer = gate.raw_head("GET", target, &lines).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.text(), "ok", "answered by a recorder");
    let mut requests = match route {
        Route::AccountStore => {
            gate.assert_nothing_forwarded();
            store.requests()
        }
        _ => gate.forwarded(),
    };
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.remove(0)
}

/// A forged identity header on an authenticated route: the service sees
/// tollgate's value for `name` and nothing else, in any spelling.
async fn replaced(line: &str, name: &str, value: &str) {
    let request = forge(Route::Authenticated, line).await;
    assert_eq!(read_as(&request, name), [value], "{}", request.head);
}

/// A forged identity header on a route without a token: the service sees
/// no header that reads as `name`.
async fn stripped(route: Route, line: &str, name: &str) {
    let request = forge(route, line).await;
    assert!(read_as(&request, name).is_empty(), "{}", request.head);
}

/// Sends raw lines with a good token; returns the one forwarded request.
async fn with_token(lines: &[&str]) -> (Answer, Recorded) {
    let gate = Gate::start().await;
    let token = player_bearer_line();
    let mut all = lines.to_vec();
    all.push(&token);
    let answer = gate.raw_head("GET", "/games/1", &all).await;
    let request = gate.assert_forwarded_once(&answer);
    (answer, request)
}

cases! {
    /// RFC 9110 section 5.1: the canonical spelling `X-User-Id`.
    id_canonical_on_an_authenticated_route: replaced("X-User-Id: admin", "x-user-id", "alice");
    /// RFC 9110 section 5.1: field names are case-insensitive; lowercase.
    id_lowercase_on_an_authenticated_route: replaced("x-user-id: admin", "x-user-id", "alice");
    /// RFC 9110 section 5.1: uppercase.
    id_uppercase_on_an_authenticated_route: replaced("X-USER-ID: admin", "x-user-id", "alice");
    /// RFC 9110 section 5.1: mixed case.
    id_mixed_case_on_an_authenticated_route: replaced("x-UsEr-iD: admin", "x-user-id", "alice");
    /// RFC 3875 section 4.1.18: CGI reads `X_User_Id` as `X-User-Id`.
    id_underscores_on_an_authenticated_route: replaced("X_User_Id: admin", "x-user-id", "alice");
    /// RFC 3875 section 4.1.18: one underscore among dashes.
    id_one_underscore_on_an_authenticated_route: replaced(
        "X-User_Id: admin", "x-user-id", "alice");
    /// RFC 9110 section 5.3: the forged header sent twice.
    id_twice_on_an_authenticated_route: async {
        let (_, request) = with_token(&["X-User-Id: admin", "x-user-id: root"]).await;
        assert_eq!(read_as(&request, "x-user-id"), ["alice"]);
    };
    /// RFC 9110 section 5.5: an empty forged value.
    id_empty_on_an_authenticated_route: replaced("X-User-Id:", "x-user-id", "alice");
    /// RFC 9110 section 5.1: a forged `X-User-Email`.
    email_on_an_authenticated_route: replaced(
        "X-User-Email: admin@chessmate.test", "x-user-email", "alice@chessmate.test");
    /// RFC 9110 section 5.1: a forged `X-User-Roles`.
    roles_on_an_authenticated_route: replaced("X-User-Roles: admin", "x-user-roles", "player");
    /// RFC 3875 section 4.1.18: `x_user_roles`.
    roles_underscores_on_an_authenticated_route: replaced(
        "x_user_roles: admin", "x-user-roles", "player");
    /// RFC 9110 section 5.1: on a role route, an admin's forged roles and
    /// id are replaced by the token's own.
    roles_on_an_admin_route: async {
        let gate = Gate::start().await;
        let mut admin = claims("root");
        admin["roles"] = serde_json::json!(["admin"]);
        let token = format!("Authorization: Bearer {}", keys().mint("ES256", &admin));
        let lines = ["X-User-Roles: superuser", "X_User_Id: alice", &token];
        let answer = gate.raw_head("GET", "/admin/x", &lines).await;
        let request = gate.assert_forwarded_once(&answer);
        assert_eq!(read_as(&request, "x-user-roles"), ["admin"]);
        assert_eq!(read_as(&request, "x-user-id"), ["root"]);
    };
    /// RFC 9110 section 5.1: a forged id on a public route is removed.
    id_on_a_public_route: stripped(Route::Public, "X-User-Id: admin", "x-user-id");
    /// RFC 3875 section 4.1.18: `X_USER_ID` on a public route.
    id_underscores_on_a_public_route: stripped(Route::Public, "X_USER_ID: admin", "x-user-id");
    /// RFC 9110 section 5.1: forged roles on a public route.
    roles_on_a_public_route: stripped(Route::Public, "X-User-Roles: admin", "x-user-roles");
    /// RFC 9110 section 5.1: forged email on a public route.
    email_on_a_public_route: stripped(Route::Public, "x-user-email: a@b.test", "x-user-email");
    /// RFC 9110 section 5.1: a forged id on the login route never reaches
    /// the account store.
    id_on_an_account_store_route: stripped(Route::AccountStore, "X-User-Id: admin", "x-user-id");
    /// RFC 3875 section 4.1.18: `x_user_id` on the login route.
    id_underscores_on_an_account_store_route: stripped(
        Route::AccountStore, "x_user_id: admin", "x-user-id");
    /// RFC 9110 section 5.1: forged roles on the login route.
    roles_on_an_account_store_route: stripped(
        Route::AccountStore, "X-User-Roles: admin", "x-user-roles");
    /// RFC 6750 section 3.1: a forged id with no token still gets 401 and
    /// reaches nothing.
    id_without_a_token: async {
        let gate = Gate::start().await;
        let answer = gate.raw_head("GET", "/games/1", &["X-User-Id: alice"]).await;
        assert_missing(&answer);
        gate.assert_nothing_forwarded();
    };
    /// RFC 6750 section 3.1: forged roles do not open an admin route.
    roles_do_not_open_an_admin_route: async {
        let gate = Gate::start().await;
        let token = player_bearer_line();
        let answer = gate
            .raw_head("GET", "/admin/x", &["X-User-Roles: admin", &token])
            .await;
        assert_refused(&answer, INSUFFICIENT_ROLE);
        gate.assert_nothing_forwarded();
    };
    /// RFC 9113 section 8.2: over HTTP/2 (lowercase names only), a forged
    /// id is replaced too.
    id_over_http2: async {
        let gate = Gate::start().await;
        let token = keys().mint("HS256", &claims("alice"));
        let request = http::Request::builder()
            .uri(format!("http://{}/games/1", gate.tollgate.addr()))
            .header("authorization", format!("Bearer {token}"))
            .header("x-user-id", "admin")
            .header("x_user_id", "admin")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .expect("request");
        let answer = crate::support::send_h2(gate.tollgate.addr(), request).await;
        let request = gate.assert_forwarded_once(&answer);
        assert_eq!(read_as(&request, "x-user-id"), ["alice"]);
    };
    /// RFC 9110 section 7.6.1: naming `X-User-Id` in `Connection` cannot
    /// strip the identity tollgate sets.
    connection_nominates_the_identity_header: async {
        let (_, request) = with_token(&["Connection: X-User-Id, X-User-Roles"]).await;
        assert_eq!(read_as(&request, "x-user-id"), ["alice"]);
        assert_eq!(read_as(&request, "x-user-roles"), ["player"]);
    };
    /// RFC 9110 section 7.6.1: naming `Authorization` in `Connection` does
    /// not hide the token from a service that checks it again.
    connection_nominates_authorization: async {
        let (_, request) = with_token(&["Connection: Authorization"]).await;
        assert_eq!(read_as(&request, "authorization").len(), 1, "{}", request.head);
        assert!(read_as(&request, "connection").iter().all(|v| !v.contains("uthorization")));
    };
    /// RFC 9110 section 7.6.1: naming `Host` in `Connection` does not
    /// drop the Host the service routes on.
    connection_nominates_host: async {
        let (_, request) = with_token(&["Connection: Host"]).await;
        assert_eq!(read_as(&request, "host").len(), 1, "{}", request.head);
    };
    /// RFC 9110 section 7.6.1: naming `X-Forwarded-For` cannot remove the
    /// client address tollgate adds.
    connection_nominates_x_forwarded_for: async {
        let (_, request) = with_token(&["Connection: X-Forwarded-For"]).await;
        assert_eq!(read_as(&request, "x-forwarded-for"), ["127.0.0.1"]);
    };
    /// RFC 9110 section 7.6.1: a hop-by-hop header named in `Connection` is
    /// removed, so a caller cannot pass one through.
    connection_nominated_header_is_removed: async {
        let (_, request) = with_token(&["Connection: X-Debug", "X-Debug: 1"]).await;
        assert!(read_as(&request, "x-debug").is_empty(), "{}", request.head);
    };
    /// RFC 7239 section 5.2: a spoofed `X-Forwarded-For` is kept only as
    /// earlier entries; the last is the address tollgate saw.
    x_forwarded_for_spoofed: async {
        let (_, request) = with_token(&["X-Forwarded-For: 10.0.0.1"]).await;
        assert_eq!(read_as(&request, "x-forwarded-for"), ["10.0.0.1, 127.0.0.1"]);
    };
    /// RFC 7239 section 5.2: two spoofed `X-Forwarded-For` become one list.
    x_forwarded_for_twice: async {
        let (_, request) =
            with_token(&["X-Forwarded-For: 10.0.0.1", "X-Forwarded-For: 10.0.0.2"]).await;
        assert_eq!(read_as(&request, "x-forwarded-for"), ["10.0.0.1, 10.0.0.2, 127.0.0.1"]);
    };
    /// RFC 7239 section 5.4: a spoofed `X-Forwarded-Proto` is replaced.
    x_forwarded_proto_spoofed: async {
        let (_, request) =
            with_token(&["X-Forwarded-Proto: https", "X-Forwarded-Proto: https"]).await;
        assert_eq!(read_as(&request, "x-forwarded-proto"), ["http"]);
    };
    /// RFC 7239 section 5.3: a spoofed `X-Forwarded-Host` is replaced by
    /// the Host tollgate saw.
    x_forwarded_host_spoofed: async {
        let (_, request) = with_token(&["X-Forwarded-Host: admin.internal"]).await;
        assert_eq!(read_as(&request, "x-forwarded-host"), ["tollgate.test"]);
    };
    /// RFC 7239 section 4: a client's own `Forwarded` would tell the
    /// service another client address and scheme than the `X-Forwarded-*`
    /// tollgate vouches for; it is removed.
    forwarded_spoofed: async {
        let (_, request) =
            with_token(&["Forwarded: for=10.0.0.1;proto=https;host=admin.internal"]).await;
        assert!(read_as(&request, "forwarded").is_empty(), "{}", request.head);
    };
    /// RFC 9110 section 5.1: a spoofed `X-Forwarded-Proto` spelled with
    /// underscores, as CGI reads it.
    x_forwarded_proto_underscores: async {
        let (_, request) = with_token(&["X_Forwarded_Proto: https"]).await;
        assert_eq!(read_as(&request, "x-forwarded-proto"), ["http"]);
    };
    /// RFC 3875 section 4.1.18: `X_Forwarded_For` would reach a CGI
    /// service as the client address; it is removed.
    x_forwarded_for_underscores: async {
        let (_, request) = with_token(&["X_Forwarded_For: 10.0.0.1"]).await;
        assert_eq!(read_as(&request, "x-forwarded-for"), ["127.0.0.1"]);
    };
    /// RFC 3875 section 4.1.18: `x_forwarded_host` is removed.
    x_forwarded_host_underscores: async {
        let (_, request) = with_token(&["x_forwarded_host: admin.internal"]).await;
        assert_eq!(read_as(&request, "x-forwarded-host"), ["tollgate.test"]);
    };
}

/// Sends `line` with a good token and checks that no header of that name,
/// in any spelling, reached the service.
async fn proxy_header_removed(line: &str) {
    let name = line
        .split(':')
        .next()
        .unwrap_or(line)
        .to_ascii_lowercase()
        .replace('_', "-");
    let (_, request) = with_token(&[line]).await;
    assert!(read_as(&request, &name).is_empty(), "{}", request.head);
}

cases! {
    /// oauth2-proxy's convention: a service behind it trusts
    /// `X-Forwarded-User` as the caller; only a proxy may set it.
    x_forwarded_user_spoofed: proxy_header_removed("X-Forwarded-User: admin");
    /// oauth2-proxy's `X-Forwarded-Email`, likewise.
    x_forwarded_email_spoofed: proxy_header_removed("X-Forwarded-Email: admin@chessmate.test");
    /// oauth2-proxy's `X-Forwarded-Groups`, likewise.
    x_forwarded_groups_spoofed: proxy_header_removed("X-Forwarded-Groups: admins");
    /// Frameworks build URLs from `X-Forwarded-Prefix` (Spring's
    /// ForwardedHeaderFilter): a client must not pick the prefix.
    x_forwarded_prefix_spoofed: proxy_header_removed("X-Forwarded-Prefix: /admin");
    /// `X-Forwarded-Ssl: on` makes some frameworks believe the request came
    /// over TLS.
    x_forwarded_ssl_spoofed: proxy_header_removed("X-Forwarded-Ssl: on");
    /// `X-Forwarded-Port`, read beside `-Host` to build absolute URLs.
    x_forwarded_port_spoofed: proxy_header_removed("X-Forwarded-Port: 443");
    /// `X-Real-IP` (nginx's real-ip module) names the client to the service.
    x_real_ip_spoofed: proxy_header_removed("X-Real-IP: 10.0.0.1");
    /// `True-Client-IP` (CDNs) names the client too.
    true_client_ip_spoofed: proxy_header_removed("True-Client-IP: 10.0.0.1");
    /// `X-Original-URI` is read by some services as the path the proxy saw.
    x_original_uri_spoofed: proxy_header_removed("X-Original-URI: /admin/x");
    /// `X-Remote-User` (Apache-style proxy authentication) is an identity.
    x_remote_user_spoofed: proxy_header_removed("X-Remote-User: admin");
    /// RFC 3875 section 4.1.18: `X_Real_IP` spelled for CGI.
    x_real_ip_underscores: proxy_header_removed("X_Real_IP: 10.0.0.1");
}
