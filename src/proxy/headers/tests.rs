use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::header::{AUTHORIZATION, CONNECTION, CONTENT_LENGTH, HOST, TE, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::{
    IdentityHeaderNames, X_REQUEST_ID, remove_hop_by_hop, remove_target_overrides, request_id,
    scrub_identity, set_forwarding, tidy_content_length, trace_id, websocket_upgrade,
};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

/// Builds a map from `(name, value)` pairs, keeping repeats as separate
/// values, as a parsed request would.
fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for &(name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("test header names are valid");
        let value = HeaderValue::from_str(value).expect("test header values are valid");
        headers.append(name, value);
    }
    headers
}

fn identity() -> IdentityHeaderNames {
    IdentityHeaderNames::new([
        HeaderName::from_static("x-user-id"),
        HeaderName::from_static("x-user-roles"),
    ])
}

fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .map(|value| value.to_str().expect("test header values are ASCII"))
        .collect()
}

// --- Identity headers ----------------------------------------------------------

#[test]
fn identity_headers_are_scrubbed_in_every_spelling() {
    for spelling in [
        "X-User-Id",
        "x-user-id",
        "X_USER_ID",
        "x-user_id",
        "X_user-ID",
    ] {
        let mut headers = map(&[(spelling, "admin"), ("accept", "*/*")]);
        scrub_identity(&mut headers, &identity());
        assert_eq!(headers.len(), 1, "{spelling} survived");
        assert!(headers.contains_key("accept"));
    }
}

#[test]
fn every_value_of_a_repeated_identity_header_is_scrubbed() {
    let mut headers = map(&[
        ("x-user-id", "a"),
        ("x-user-id", "b"),
        ("x_user_id", "c"),
        ("x-user-roles", "admin"),
    ]);
    scrub_identity(&mut headers, &identity());
    assert!(headers.is_empty());
}

#[test]
fn headers_that_only_resemble_identity_headers_are_kept() {
    let mut headers = map(&[
        ("x-user-idx", "1"),
        ("x-user", "2"),
        ("xx-user-id", "3"),
        ("x-userid", "4"),
    ]);
    scrub_identity(&mut headers, &identity());
    assert_eq!(headers.len(), 4);
}

#[test]
fn identity_names_configured_with_underscores_still_match_every_spelling() {
    let names = IdentityHeaderNames::new([HeaderName::from_static("x_tenant")]);
    assert!(names.contains(&HeaderName::from_static("x-tenant")));
    assert!(names.contains(&HeaderName::from_static("x_tenant")));
    assert!(!names.contains(&HeaderName::from_static("x-tenants")));
}

#[test]
fn an_empty_identity_list_scrubs_nothing() {
    let mut headers = map(&[("x-user-id", "a")]);
    scrub_identity(&mut headers, &IdentityHeaderNames::new([]));
    assert_eq!(values(&headers, "x-user-id"), ["a"]);
}

// --- Hop-by-hop headers --------------------------------------------------------

#[test]
fn the_standard_hop_by_hop_headers_are_removed() {
    let mut headers = map(&[
        ("connection", "close"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("proxy-authenticate", "Basic"),
        ("proxy-authorization", "Basic abc"),
        ("te", "trailers"),
        ("trailer", "x-checksum"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("accept", "*/*"),
    ]);
    remove_hop_by_hop(&mut headers, None);
    assert_eq!(
        headers.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
        ["accept"]
    );
}

#[test]
fn names_listed_in_connection_are_removed_whatever_their_case_and_spacing() {
    let mut headers = map(&[
        ("connection", " X-Foo ,x-bar,, \tX-BAZ\t"),
        ("x-foo", "1"),
        ("x-bar", "2"),
        ("x-baz", "3"),
        ("x-kept", "4"),
    ]);
    remove_hop_by_hop(&mut headers, None);
    assert_eq!(
        headers.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
        ["x-kept"]
    );
}

#[test]
fn names_listed_in_every_connection_header_are_removed() {
    let mut headers = map(&[
        ("connection", "x-one"),
        ("connection", "x-two"),
        ("x-one", "1"),
        ("x-two", "2"),
    ]);
    remove_hop_by_hop(&mut headers, None);
    assert!(headers.is_empty());
}

#[test]
fn connection_cannot_remove_host_content_length_or_authorization() {
    let mut headers = map(&[
        (
            "connection",
            "x-user-id, Authorization, HOST, content-length",
        ),
        ("x-user-id", "forged"),
        ("authorization", "Bearer t"),
        ("host", "example.test"),
        ("content-length", "3"),
    ]);
    remove_hop_by_hop(&mut headers, None);
    assert!(!headers.contains_key("x-user-id"));
    assert_eq!(values(&headers, "authorization"), ["Bearer t"]);
    assert_eq!(values(&headers, "host"), ["example.test"]);
    assert_eq!(values(&headers, "content-length"), ["3"]);
    assert!(!headers.contains_key(CONNECTION));
}

#[test]
fn an_invalid_name_in_connection_is_ignored() {
    let mut headers = map(&[
        ("connection", "bad name, x-gone, (x)"),
        ("x-gone", "1"),
        ("x-kept", "2"),
    ]);
    remove_hop_by_hop(&mut headers, None);
    assert_eq!(
        headers.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
        ["x-kept"]
    );
}

#[test]
fn an_authorised_websocket_handshake_keeps_its_upgrade_headers() {
    let mut headers = map(&[
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
        ("keep-alive", "timeout=5"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]);
    let upgrade = websocket_upgrade(&headers);
    remove_hop_by_hop(&mut headers, upgrade);
    assert_eq!(values(&headers, "upgrade"), ["websocket"]);
    assert_eq!(values(&headers, "connection"), ["upgrade"]);
    assert!(!headers.contains_key("keep-alive"));
    assert!(headers.contains_key("sec-websocket-key"));
}

#[test]
fn an_upgrade_not_authorised_is_stripped() {
    let mut headers = map(&[("connection", "upgrade"), ("upgrade", "websocket")]);
    remove_hop_by_hop(&mut headers, None);
    assert!(!headers.contains_key(UPGRADE));
    assert!(!headers.contains_key(CONNECTION));
}

// --- WebSocket detection -------------------------------------------------------

#[test]
fn a_websocket_handshake_is_detected_case_insensitively() {
    let headers = map(&[
        ("connection", "keep-alive, UPGRADE"),
        ("upgrade", "WebSocket"),
    ]);
    assert_eq!(
        websocket_upgrade(&headers),
        Some(HeaderValue::from_static("websocket"))
    );
}

#[test]
fn an_h2c_upgrade_is_not_a_websocket_handshake() {
    let headers = map(&[
        ("connection", "Upgrade, HTTP2-Settings"),
        ("upgrade", "h2c"),
    ]);
    assert_eq!(websocket_upgrade(&headers), None);
}

#[test]
fn an_upgrade_without_connection_upgrade_is_not_a_handshake() {
    assert_eq!(websocket_upgrade(&map(&[("upgrade", "websocket")])), None);
    let keep_alive = map(&[("connection", "keep-alive"), ("upgrade", "websocket")]);
    assert_eq!(websocket_upgrade(&keep_alive), None);
}

#[test]
fn connection_upgrade_without_an_upgrade_header_is_not_a_handshake() {
    assert_eq!(websocket_upgrade(&map(&[("connection", "upgrade")])), None);
}

#[test]
fn an_upgrade_listing_several_protocols_is_not_a_handshake() {
    let listed = map(&[("connection", "upgrade"), ("upgrade", "websocket, h2c")]);
    assert_eq!(websocket_upgrade(&listed), None);
    let repeated = map(&[
        ("connection", "upgrade"),
        ("upgrade", "websocket"),
        ("upgrade", "h2c"),
    ]);
    assert_eq!(websocket_upgrade(&repeated), None);
}

#[test]
fn a_connection_token_containing_upgrade_is_not_upgrade() {
    let headers = map(&[("connection", "x-upgraded"), ("upgrade", "websocket")]);
    assert_eq!(websocket_upgrade(&headers), None);
}

// --- Forwarding headers --------------------------------------------------------

#[test]
fn a_client_forwarded_and_underscore_spellings_are_removed() {
    let mut headers = map(&[
        ("forwarded", "for=203.0.113.1;proto=https"),
        ("x_forwarded_proto", "https"),
        ("x-forwarded_for", "203.0.113.1"),
        ("x_forwarded_host", "admin.internal"),
        ("x-forwarder-note", "kept"),
    ]);
    set_forwarding(&mut headers, &CLIENT.into(), "http", None);
    for name in [
        "forwarded",
        "x_forwarded_proto",
        "x-forwarded_for",
        "x_forwarded_host",
    ] {
        assert!(values(&headers, name).is_empty(), "{name}");
    }
    assert_eq!(values(&headers, "x-forwarder-note"), ["kept"]);
    assert_eq!(values(&headers, "x-forwarded-for"), ["192.0.2.7"]);
    assert_eq!(values(&headers, "x-forwarded-proto"), ["http"]);
}

#[test]
fn every_other_x_forwarded_header_and_client_ip_claim_is_removed() {
    let mut headers = map(&[
        ("x-forwarded-user", "admin"),
        ("X-Forwarded-Prefix", "/admin"),
        ("x_forwarded_ssl", "on"),
        ("x-forwarded-port", "443"),
        ("x-real-ip", "10.0.0.1"),
        ("X_Real_IP", "10.0.0.1"),
        ("true-client-ip", "10.0.0.1"),
        ("x-original-uri", "/admin/x"),
        ("x-remote-user", "admin"),
        ("x-forwarded-", "kept: not a family member"),
        ("x-realip", "kept"),
    ]);
    set_forwarding(&mut headers, &CLIENT.into(), "http", None);
    let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
    left.sort_unstable();
    assert_eq!(
        left,
        [
            "x-forwarded-",
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-realip"
        ]
    );
}

#[test]
fn path_and_method_overrides_are_removed_in_every_spelling() {
    let mut headers = map(&[
        ("x-original-url", "/admin/x"),
        ("X_Rewrite_URL", "/admin/x"),
        ("x-http-method-override", "DELETE"),
        ("x_http_method", "DELETE"),
        ("x-method-override", "DELETE"),
        ("x-original-host", "kept"),
    ]);
    remove_target_overrides(&mut headers);
    let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
    assert_eq!(left, ["x-original-host"]);
}

#[test]
fn the_client_is_appended_to_a_single_forwarded_for() {
    let mut headers = map(&[("x-forwarded-for", "203.0.113.1")]);
    set_forwarding(&mut headers, &CLIENT.into(), "http", None);
    assert_eq!(
        values(&headers, "x-forwarded-for"),
        ["203.0.113.1, 192.0.2.7"]
    );
}

#[test]
fn several_forwarded_for_headers_are_joined_into_one() {
    let mut headers = map(&[
        ("x-forwarded-for", "203.0.113.1, 203.0.113.2"),
        ("x-forwarded-for", " "),
        ("x-forwarded-for", " 203.0.113.3 "),
    ]);
    set_forwarding(&mut headers, &CLIENT.into(), "http", None);
    assert_eq!(
        values(&headers, "x-forwarded-for"),
        ["203.0.113.1, 203.0.113.2, 203.0.113.3, 192.0.2.7"]
    );
}

#[test]
fn forwarded_for_is_the_client_alone_when_none_was_sent() {
    let mut headers = HeaderMap::new();
    let client = IpAddr::V6(Ipv6Addr::LOCALHOST);
    set_forwarding(&mut headers, &client.into(), "https", None);
    assert_eq!(values(&headers, "x-forwarded-for"), ["::1"]);
}

#[test]
fn forwarded_proto_and_host_replace_what_the_client_sent() {
    let mut headers = map(&[
        ("x-forwarded-proto", "https"),
        ("x-forwarded-proto", "ftp"),
        ("x-forwarded-host", "evil.test"),
        ("host", "api.example.test"),
    ]);
    let host = headers.get(HOST).cloned();
    set_forwarding(&mut headers, &CLIENT.into(), "http", host);
    assert_eq!(values(&headers, "x-forwarded-proto"), ["http"]);
    assert_eq!(values(&headers, "x-forwarded-host"), ["api.example.test"]);
}

#[test]
fn a_client_forwarded_host_is_removed_when_there_is_no_host() {
    let mut headers = map(&[("x-forwarded-host", "evil.test")]);
    set_forwarding(&mut headers, &CLIENT.into(), "https", None);
    assert!(!headers.contains_key("x-forwarded-host"));
    assert_eq!(values(&headers, "x-forwarded-proto"), ["https"]);
}

// --- Request id ----------------------------------------------------------------

fn is_uuid_v4(value: &HeaderValue) -> bool {
    value
        .to_str()
        .ok()
        .and_then(|text| uuid::Uuid::parse_str(text).ok())
        .is_some_and(|id| id.get_version_num() == 4)
}

#[test]
fn a_sane_request_id_is_kept() {
    for id in ["abc-123", "req:2024.01_x", "A", &"x".repeat(128)] {
        let headers = map(&[("x-request-id", id)]);
        assert_eq!(request_id(&headers), id, "{id}");
    }
}

#[test]
fn an_insane_request_id_is_replaced() {
    let too_long = "x".repeat(129);
    for id in [
        "",
        "has space",
        "semi;colon",
        "quote\"",
        "a/b",
        "{json}",
        too_long.as_str(),
    ] {
        let headers = map(&[("x-request-id", id)]);
        let chosen = request_id(&headers);
        assert!(is_uuid_v4(&chosen), "{id:?} gave {chosen:?}");
    }
}

#[test]
fn a_non_ascii_request_id_is_replaced() {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_bytes(b"id\xe9").expect("obs-text is a valid header value");
    headers.insert(X_REQUEST_ID, value);
    assert!(is_uuid_v4(&request_id(&headers)));
}

#[test]
fn a_repeated_request_id_is_replaced() {
    let headers = map(&[("x-request-id", "one"), ("x-request-id", "two")]);
    assert!(is_uuid_v4(&request_id(&headers)));
}

#[test]
fn a_missing_request_id_is_generated_fresh_each_time() {
    let headers = HeaderMap::new();
    let first = request_id(&headers);
    let second = request_id(&headers);
    assert!(is_uuid_v4(&first));
    assert_ne!(first, second);
}

#[test]
fn the_full_hygiene_sequence_leaves_no_forged_identity() {
    let mut headers = map(&[
        ("connection", "x-forwarded-for, te"),
        ("te", "trailers"),
        ("x_user_id", "root"),
        ("authorization", "Bearer t"),
        ("content-length", "0"),
    ]);
    scrub_identity(&mut headers, &identity());
    remove_hop_by_hop(&mut headers, None);
    set_forwarding(&mut headers, &CLIENT.into(), "http", None);
    assert!(!headers.contains_key("x_user_id"));
    assert!(!headers.contains_key(TE));
    assert!(headers.contains_key(AUTHORIZATION));
    assert!(headers.contains_key(CONTENT_LENGTH));
    assert_eq!(values(&headers, "x-forwarded-for"), ["192.0.2.7"]);
}

#[test]
fn a_well_formed_traceparent_yields_its_trace_id() {
    let mut headers = HeaderMap::new();
    let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    headers.insert("traceparent", HeaderValue::from_static(good));
    assert_eq!(
        trace_id(&headers).expect("a trace id"),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
}

#[test]
fn a_malformed_traceparent_yields_nothing() {
    for bad in [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "garbage",
    ] {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_static(bad));
        assert_eq!(trace_id(&headers), None, "{bad}");
    }
    assert_eq!(trace_id(&HeaderMap::new()), None);
}

#[test]
fn a_targets_repeated_content_length_is_written_once() {
    for pairs in [
        &[("content-length", "5")][..],
        &[("content-length", "5, 5")],
        &[("content-length", " 5 ,5")],
        &[("content-length", "5"), ("content-length", "5")],
    ] {
        let mut headers = map(pairs);
        tidy_content_length(&mut headers, StatusCode::OK);
        assert_eq!(values(&headers, "content-length"), ["5"], "{pairs:?}");
    }
    let mut unparsable = map(&[("content-length", "five")]);
    tidy_content_length(&mut unparsable, StatusCode::OK);
    assert!(!unparsable.contains_key(CONTENT_LENGTH));
}

#[test]
fn a_204_or_a_1xx_loses_its_content_length_and_a_304_keeps_it() {
    for status in [StatusCode::NO_CONTENT, StatusCode::SWITCHING_PROTOCOLS] {
        let mut headers = map(&[("content-length", "5")]);
        tidy_content_length(&mut headers, status);
        assert!(!headers.contains_key(CONTENT_LENGTH), "{status}");
    }
    let mut headers = map(&[("content-length", "5")]);
    tidy_content_length(&mut headers, StatusCode::NOT_MODIFIED);
    assert_eq!(values(&headers, "content-length"), ["5"]);
}
