//! Path-rule bypass: spellings of `/admin/...` that try to match another
//! rule, and request targets in forms other than a plain path.
//!
//! The rules are the harness defaults: `/public/` is public, `/admin/`
//! needs the `admin` role, every other path needs a token. The caller holds
//! a good token with the `player` role only. Requests go out as raw bytes so
//! the target is exactly as written.

use crate::common::*;
use crate::support::{claims, keys};

/// `target` reaches the admin rule: 403 for a player, nothing forwarded.
async fn admin_rule(target: &str) {
    let gate = Gate::start().await;
    let answer = gate.raw_head("GET", target, &[&player_bearer_line()]).await;
    assert_refused(&answer, INSUFFICIENT_ROLE);
    gate.assert_nothing_forwarded();
}

/// `target` cannot be matched safely: 400, nothing forwarded.
async fn refused_path(target: &str) {
    let gate = Gate::start().await;
    let answer = gate.raw_head("GET", target, &[&player_bearer_line()]).await;
    assert_bad_path(&answer);
    gate.assert_nothing_forwarded();
}

/// `target`, sent with the player's token, is forwarded with exactly
/// `line` as its request line: the path the rules matched is the path the
/// service gets.
async fn forwarded_as(target: &str, line: &str) {
    let gate = Gate::start().await;
    let answer = gate.raw_head("GET", target, &[&player_bearer_line()]).await;
    let request = gate.assert_forwarded_once(&answer);
    assert_eq!(request.request_line(), line);
}

/// `target`, sent with no token, is forwarded as public with `line`.
async fn public_as(target: &str, line: &str) {
    let gate = Gate::start().await;
    let answer = gate.raw_head("GET", target, &[]).await;
    let request = gate.assert_forwarded_once(&answer);
    assert_eq!(request.request_line(), line);
    assert!(request.header("x-user-id").is_empty());
}

/// Rules with an exact path that requires the `admin` role, for the
/// trailing-slash cases.
const EXACT_SECRET_RULE: &str = r#"
[[rules]]
path = "/secret"
roles = ["admin"]
"#;

/// `target` reaches the exact `/secret` role rule: 403 for a player.
async fn exact_secret_rule(target: &str) {
    let gate = Gate::with(|h| h.with_rules(EXACT_SECRET_RULE)).await;
    let answer = gate.raw_head("GET", target, &[&player_bearer_line()]).await;
    assert_refused(&answer, INSUFFICIENT_ROLE);
    gate.assert_nothing_forwarded();
}

/// `target` with no token gets the 401 of an authenticated route.
async fn needs_a_token(target: &str) {
    let gate = Gate::start().await;
    let answer = gate.raw_head("GET", target, &[]).await;
    assert_missing(&answer);
    gate.assert_nothing_forwarded();
}

cases! {
    /// Control: `/admin/x` needs the admin role.
    admin_plain: admin_rule("/admin/x");
    /// RFC 3986 section 5.2.4: `..` climbing out of `/public/`.
    dot_dot_raw: admin_rule("/public/../admin/x");
    /// RFC 3986 section 2.3 and 5.2.4: `%2e%2e` is `..` once decoded.
    dot_dot_encoded_lowercase: admin_rule("/public/%2e%2e/admin/x");
    /// RFC 3986 section 2.1: hex digits in either case.
    dot_dot_encoded_uppercase: admin_rule("/public/%2E%2E/admin/x");
    /// RFC 3986 section 2.3: half-encoded `.%2e`.
    dot_dot_half_encoded: admin_rule("/public/.%2e/admin/x");
    /// RFC 3986 section 2.3: half-encoded `%2e.`.
    dot_dot_other_half_encoded: admin_rule("/public/%2e./admin/x");
    /// RFC 3986 section 5.2.4: `..` without a token is still the admin
    /// path, so no token is a 401, not a public pass.
    dot_dot_without_a_token: needs_a_token("/public/../admin/x");
    /// RFC 3986 section 5.2.4: a `.` segment.
    single_dot: admin_rule("/./admin/x");
    /// RFC 3986 section 5.2.4: an encoded `.` segment inside the path.
    single_dot_encoded: admin_rule("/admin/%2e/x");
    /// RFC 3986 section 5.2.4: `.` then `..`.
    dot_then_dot_dot: admin_rule("/public/./../admin/x");
    /// RFC 3986 section 5.2.4: an encoded `.` segment first.
    single_dot_encoded_first: admin_rule("/%2e/admin/x");
    /// RFC 3986 section 5.2.4: two encoded `..` in a row, mixed case.
    dot_dot_twice_encoded: admin_rule("/public/x/%2E%2E/%2e%2e/admin/x");
    /// RFC 3986 section 5.2.4: `..` inside the admin directory stays in it.
    dot_dot_inside_admin: admin_rule("/admin/x/../y");
    /// RFC 3986 section 5.2.4: `..` then `//`.
    dot_dot_then_double_slash: admin_rule("/public/..//admin/x");
    /// RFC 3986 section 2.1: hex digits of mixed case in one letter.
    encoded_letter_mixed_case: admin_rule("/ad%6Din/x");
    /// RFC 3986 section 7.3: `..` and `/` both encoded.
    encoded_dots_and_slash: refused_path("/public/%2e%2e%2fadmin/x");
    /// RFC 3986 section 7.3: `..` and `\` both encoded.
    encoded_dots_and_backslash: refused_path("/public/%2e%2e%5cadmin/x");
    /// RFC 9110 section 5.5: `..` followed by an encoded NUL.
    dot_dot_then_encoded_nul: refused_path("/public/..%00/admin/x");
    /// RFC 3986 section 2.1: `%u002e` (IIS-style) is not a percent-encoding.
    percent_u_escape: refused_path("/public/%u002e%u002e/admin/x");
    /// RFC 3986 section 5.2.4: climbing above the root is refused, not
    /// clamped (servers disagree).
    dot_dot_above_the_root: refused_path("/../admin/x");
    /// RFC 3986 section 5.2.4: climbing above the root from `/public/`.
    dot_dot_twice_above_the_root: refused_path("/public/../../admin/x");
    /// RFC 3986 section 3.3: `//` before `admin` collapses.
    double_slash_before: admin_rule("//admin/x");
    /// RFC 3986 section 3.3: `//` inside the admin path.
    double_slash_inside: admin_rule("/admin//x");
    /// RFC 3986 section 2.3: `%61` is `a`.
    encoded_letter: admin_rule("/%61dmin/x");
    /// RFC 3986 section 2.3: every letter encoded.
    every_letter_encoded: admin_rule("/%61%64%6d%69%6e/x");
    /// RFC 3986 section 7.3: an encoded `/` is split by some servers and
    /// not by others: refused.
    encoded_slash: refused_path("/public%2F..%2Fadmin/x");
    /// RFC 3986 section 7.3: lowercase `%2f`.
    encoded_slash_lowercase: refused_path("/public/..%2fadmin/x");
    /// RFC 3986 section 7.3: `%5c`, an encoded backslash.
    encoded_backslash: refused_path("/public/..%5cadmin/x");
    /// WHATWG URL (special schemes): `\` is a separator to browsers and
    /// some servers; a raw one is refused.
    raw_backslash: refused_path("/public\\..\\admin/x");
    /// RFC 3986 section 3.3: `;` parameters stripped by some servers
    /// before routing (Tomcat's `..;/`): refused.
    dot_dot_semicolon: refused_path("/public/..;/admin/x");
    /// RFC 3986 section 3.3: `;` right after the directory.
    semicolon_after_admin: refused_path("/admin;/x");
    /// RFC 3986 section 3.3: a session parameter on the last segment.
    semicolon_session_parameter: refused_path("/admin/x;jsessionid=1");
    /// RFC 3986 section 3.3: an encoded `;`.
    encoded_semicolon: refused_path("/admin%3b/x");
    /// RFC 9110 section 5.5: an encoded NUL, which truncates paths in C.
    encoded_nul: refused_path("/admin/x%00.png");
    /// RFC 3986 section 2.1: `%` without two hex digits.
    bad_escape: refused_path("/public/%zz/../admin/x");
    /// RFC 3986 section 2.1: a `%` at the end.
    truncated_escape: refused_path("/public/x%");
    /// RFC 3986 section 2.4: `%252e%252e` is decoded once, to the literal
    /// `%2e%2e`, which is public and forwarded exactly as written.
    double_encoded_dots: public_as(
        "/public/%252e%252e/admin/x", "GET /public/%252e%252e/admin/x HTTP/1.1");
    /// RFC 3986 section 2.4: a double-encoded `/` stays literal text.
    double_encoded_slash: public_as(
        "/public/..%252fadmin/x", "GET /public/..%252fadmin/x HTTP/1.1");
    /// RFC 3986 section 2.4: `%2561dmin` is not `admin`; it needs a token
    /// and is forwarded as written.
    double_encoded_letter: forwarded_as("/%2561dmin/x", "GET /%2561dmin/x HTTP/1.1");
    /// RFC 3986 section 6.2.2.1: overlong UTF-8 for `.` (`%c0%ae`) is not
    /// a dot; it is forwarded with its hex uppercased, never decoded.
    overlong_utf8_dots: public_as(
        "/public/%c0%ae%c0%ae/admin/x", "GET /public/%C0%AE%C0%AE/admin/x HTTP/1.1");
    /// RFC 3986 section 6.2.2.1 makes paths case-sensitive, but
    /// case-folding servers (IIS, some Spring setups) route `/ADMIN/x` to
    /// `/admin/x`: a rule that requires a role covers every case.
    uppercase_admin: admin_rule("/ADMIN/x");
    /// As above, one capital letter.
    capitalised_admin: admin_rule("/Admin/stats");
    /// RFC 3986 section 6.2.2.1: `%41DMIN` decodes to `ADMIN`, which the
    /// role rule covers too.
    encoded_uppercase_admin: admin_rule("/%41DMIN/x");
    /// A public rule grants access, so it matches only as written:
    /// `/PUBLIC/x` is not public and needs a token.
    uppercase_public_needs_a_token: needs_a_token("/PUBLIC/x");
    /// An encoded tab after the directory name: whitespace-trimming servers
    /// would read `/admin%09/x` as `/admin/x`; refused.
    encoded_tab_after_admin: refused_path("/admin%09/x");
    /// An encoded line feed at the end of a segment; refused.
    encoded_line_feed: refused_path("/admin%0a/x");
    /// An encoded DEL; refused.
    encoded_delete: refused_path("/admin%7F/x");
    /// RFC 9112 section 3.2.2: an absolute-form target to the admin path.
    absolute_form: admin_rule("http://tollgate.test/admin/x");
    /// RFC 9112 section 3.2.2: an absolute form naming another host and
    /// climbing out of `/public/`.
    absolute_form_other_host: admin_rule("http://evil.test/public/../admin/x");
    /// RFC 9112 section 3.2.2: the authority of an absolute form does not
    /// pick the target; only the path is forwarded.
    absolute_form_keeps_the_upstream: forwarded_as(
        "http://127.0.0.1:1/games/1", "GET /games/1 HTTP/1.1");
    /// RFC 9112 section 3.2.4: `OPTIONS *` has no path to match.
    asterisk_form: async {
        let gate = Gate::start().await;
        let answer = gate.raw_head("OPTIONS", "*", &[&player_bearer_line()]).await;
        assert_bad_path(&answer);
        gate.assert_nothing_forwarded();
    };
    /// RFC 9112 section 3.2.3: CONNECT asks for a tunnel; refused with 405.
    authority_form_connect: async {
        let gate = Gate::start().await;
        let answer = gate.raw_head("CONNECT", "127.0.0.1:1", &[&player_bearer_line()]).await;
        assert_eq!(answer.status, 405, "{answer:?}");
        gate.assert_nothing_forwarded();
    };
    /// RFC 3986 section 3.4: dots in the query do not move the path.
    query_with_dot_dot: public_as(
        "/public/x?/../../admin/x", "GET /public/x?/../../admin/x HTTP/1.1");
    /// RFC 3986 section 3.4: `public` in the query of an admin path.
    query_naming_public: admin_rule("/admin/x?/public/");
    /// RFC 3986 section 3.4: an encoded `?` is part of the path, and the
    /// `..` after it resolve.
    encoded_question_mark: admin_rule("/public/x%3F/../../admin/x");
    /// RFC 9112 section 3.2: a fragment is never sent; `#` in a target
    /// ends the path, so what follows it cannot pick the public rule.
    fragment_in_the_target: admin_rule("/admin/x#/public/");
    /// RFC 3986 section 3.5: an encoded `#` is a literal character.
    encoded_fragment: admin_rule("/admin/x%23/public/");
    /// RFC 9110 section 9.3.2: HEAD is held to the GET rules.
    head_on_admin: async {
        let gate = Gate::start().await;
        let token = keys().mint("HS256", &claims("alice"));
        let answer = gate
            .tollgate
            .request(http::Method::HEAD, "/admin/x")
            .bearer(&token)
            .send()
            .await;
        // A HEAD answer has no body, so only the status and challenge show.
        assert_eq!(answer.status, 403, "{answer:?}");
        let expected = format!(
            "Bearer realm=\"game-api\", error=\"{}\", error_description=\"{}\"",
            INSUFFICIENT_ROLE.error, INSUFFICIENT_ROLE.description
        );
        assert_eq!(answer.header("www-authenticate"), Some(&*expected));
        gate.assert_nothing_forwarded();
    };
    /// RFC 3986 section 6.2.3: the bare `/admin` is covered by `/admin/`.
    bare_admin_directory: admin_rule("/admin");
    /// RFC 3986 section 6.2.3: `/admin/` itself.
    admin_directory_slash: admin_rule("/admin/");
    /// RFC 3986 section 5.2.4: a sibling of `/public` climbing over.
    sibling_prefix_climbing: admin_rule("/publicity/../admin/x");
    /// RFC 3986 section 5.2.4: `..` as the last segment resolves to the
    /// directory above, with its trailing slash.
    dot_dot_last_segment: admin_rule("/admin/x/..");
    /// Windows path handling (IIS) strips trailing dots, so `/admin./x`
    /// would be `/admin/x` there. Debatable (a Linux service reads it as
    /// another name); the strict outcome is picked: refused with 400.
    trailing_dot: refused_path("/admin./x");
    /// As `trailing_dot`, with the dot encoded (`%2e`).
    trailing_encoded_dot: refused_path("/admin%2e/x");
    /// As `trailing_dot`, with three dots.
    trailing_dots: refused_path("/admin.../x");
    /// Windows path handling strips trailing spaces too: `/admin%20/x`.
    trailing_encoded_space: refused_path("/admin%20/x");
    /// RFC 3986 section 3.3: a dot inside a segment is plain text (control
    /// for the trailing-dot cases).
    dot_inside_a_segment: public_as("/public/v1.2/x", "GET /public/v1.2/x HTTP/1.1");
    /// CVE-2018-14773: `X-Original-URL` let Symfony route on another
    /// path than the request line; it never reaches the service.
    x_original_url: override_removed("X-Original-URL: /admin/x");
    /// CVE-2018-14773: `X-Rewrite-URL`, the IIS spelling.
    x_rewrite_url: override_removed("X-Rewrite-URL: /admin/x");
    /// CVE-2018-14773 with RFC 3875 section 4.1.18: `X_Original_URL`.
    x_original_url_underscores: override_removed("X_Original_URL: /admin/x");
    /// RFC 9110 section 9.1: a method override would make the service run
    /// DELETE on a route whose rule was matched for GET.
    method_override: async {
        let rules = r#"
[[rules]]
path_prefix = "/games/"
methods = ["GET"]
public = true

[[rules]]
path_prefix = "/games/"
roles = ["admin"]
"#;
        let gate = Gate::with(|h| h.with_rules(rules)).await;
        let lines = ["X-HTTP-Method-Override: DELETE", "X-HTTP-Method: DELETE",
            "X-Method-Override: DELETE"];
        let answer = gate.raw_head("GET", "/games/1", &lines).await;
        let request = gate.assert_forwarded_once(&answer);
        assert_eq!(request.request_line(), "GET /games/1 HTTP/1.1");
        for name in ["x-http-method-override", "x-http-method", "x-method-override"] {
            assert!(request.header(name).is_empty(), "{}", request.head);
        }
    };
}

/// A public request carrying a path override `line`: forwarded for the
/// public path, with the override removed in every spelling.
async fn override_removed(line: &str) {
    let gate = Gate::start().await;
    let answer = gate.raw_head("GET", "/public/x", &[line]).await;
    let request = gate.assert_forwarded_once(&answer);
    assert_eq!(request.request_line(), "GET /public/x HTTP/1.1");
    let name = line.split(':').next().unwrap_or_default();
    let lowered = name.to_ascii_lowercase();
    assert!(
        !request.head.to_ascii_lowercase().contains(&lowered),
        "{}",
        request.head
    );
}

cases! {
    /// Express (non-strict routing) and Spring Boot 2 route `/secret/` to
    /// `/secret`: an exact rule that requires a role covers the trailing `/`.
    exact_rule_trailing_slash: exact_secret_rule("/secret/");
    /// RFC 3986 section 5.2.4: `/secret/.` resolves to `/secret/`.
    exact_rule_trailing_dot_segment: exact_secret_rule("/secret/.");
    /// Case-folding servers: `/SECRET` is `/secret` there.
    exact_rule_uppercase: exact_secret_rule("/SECRET");
}
