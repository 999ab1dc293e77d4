//! HTTP/1.1 framing: request smuggling through tollgate to the service.
//!
//! The recorder frames requests by hand, as a plain HTTP/1.1 server would
//! (chunked first, then Content-Length), so if tollgate and a server behind
//! it read a request's length differently, the hidden request shows up
//! there as a request of its own or as bytes left over. Each request hides
//! `GET /admin/x` where a confused parser would find it.

use crate::common::*;
use crate::support::wire::request_head;
use crate::support::{RawConnection, claims, keys};

/// A framing hyper accepts: forwarded as one well-framed request for the
/// path tollgate matched, with nothing left over and no identity.
async fn one_request(bytes: &[u8], line: &str) {
    let gate = Gate::start().await;
    let answer = gate.raw(bytes).await;
    let request = gate.assert_forwarded_once(&answer);
    assert_eq!(request.request_line(), line);
    assert!(request.header("x-user-id").is_empty(), "{request:?}");
    // Give a hidden second request time to arrive, if one was sent.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(gate.forwarded().len(), 1);
}

/// A framing refused outright: 400, nothing forwarded.
async fn bad_request(bytes: &[u8]) {
    let gate = Gate::start().await;
    let answer = gate.raw(bytes).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    gate.assert_nothing_forwarded();
}

const POST: &str = "POST /public/x HTTP/1.1";

/// An `Upgrade: h2c` request, then a request on the same connection: the
/// switch is never made, so the second request is checked on its own.
async fn h2c_upgrade(path: &str, token: Option<String>) {
    let gate = Gate::start().await;
    let bearer = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut lines = vec![
        "Connection: Upgrade, HTTP2-Settings",
        "Upgrade: h2c",
        "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
    ];
    lines.extend(bearer.as_deref());
    let mut connection = RawConnection::connect(gate.tollgate.addr()).await;
    let answer = connection.send(&request_head("GET", path, &lines)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let follow_up = connection.send(&request_head("GET", "/admin/x", &[])).await;
    assert_missing(&follow_up);

    let requests = gate.forwarded();
    assert_eq!(requests.len(), 1, "{requests:?}");
    for name in ["upgrade", "http2-settings", "connection"] {
        let values = requests[0].header(name);
        assert!(
            values
                .iter()
                .all(|v| !v.to_ascii_lowercase().contains("h2c")
                    && !v.to_ascii_lowercase().contains("http2-settings")),
            "{name} reached the upstream: {values:?}"
        );
    }
    assert!(requests[0].header("upgrade").is_empty());
}

cases! {
    /// RFC 9112 section 6.3 item 3: Content-Length and Transfer-Encoding
    /// together; chunked wins and the length is not forwarded.
    content_length_then_transfer_encoding: one_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\
            Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n",
        POST);
    /// RFC 9112 section 6.3 item 3: the same in the other order.
    transfer_encoding_then_content_length: one_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\
            Content-Length: 40\r\n\r\n0\r\n\r\nGET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n",
        POST);
    /// RFC 9112 section 6.1: a chunked GET whose body is a request.
    chunked_get: one_request(
        b"GET /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n22\r\n\
            GET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n\r\n0\r\n\r\n",
        "GET /public/x HTTP/1.1");
    /// RFC 9110 section 7.6.1: Content-Length nominated as hop-by-hop is
    /// kept, or the body would be read as the next request.
    content_length_named_in_connection: one_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nConnection: content-length\r\n\
            Content-Length: 34\r\n\r\nGET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n",
        POST);
    /// RFC 9110 section 7.6.1: Transfer-Encoding nominated as hop-by-hop.
    transfer_encoding_named_in_connection: one_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nConnection: transfer-encoding\r\n\
            Transfer-Encoding: chunked\r\n\r\n22\r\nGET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n\r\n\
            0\r\n\r\n",
        POST);
    /// RFC 9112 section 6.1: `gzip, chunked`, chunked last.
    gzip_then_chunked: one_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n22\r\n\
            GET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n\r\n0\r\n\r\n",
        POST);
    /// RFC 9112 section 2.2: bare LF line ends are tolerated in the head.
    bare_lf_line_ends: one_request(
        b"POST /public/x HTTP/1.1\nHost: a\nContent-Length: 34\n\nGET /admin/x HTTP/1.1\r\n\
            Host: a\r\n\r\n",
        POST);
    /// RFC 9112 section 6.1: coding names are case-insensitive; `CHUNKED`.
    chunked_uppercase: one_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n22\r\n\
            GET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n\r\n0\r\n\r\n",
        POST);
    /// RFC 9112 section 5.1: a tab is optional whitespace before a value.
    chunked_after_a_tab: one_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n22\r\n\
            GET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n\r\n0\r\n\r\n",
        POST);
    /// RFC 9110 section 8.6: two identical Content-Length values may be
    /// read as one.
    duplicate_equal_content_length: one_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 34\r\nContent-Length: 34\r\n\r\n\
            GET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n",
        POST);
    /// RFC 9112 section 6.3 item 6: a GET with a body carrying a request.
    get_with_a_length_body: one_request(
        b"GET /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 34\r\n\r\n\
            GET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /public/x HTTP/1.1");
    /// RFC 9112 section 5.1: whitespace between the name and the colon.
    space_before_the_colon: bad_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n");
    /// RFC 9112 section 6.1: an unknown coding (`xchunked`) beside a length.
    obfuscated_coding: bad_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\
            Content-Length: 3\r\n\r\nabc");
    /// RFC 9112 section 6.3 item 4: chunked not last (`identity` after it).
    chunked_then_identity: bad_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\
            Transfer-Encoding: identity\r\n\r\n0\r\n\r\n");
    /// RFC 9112 section 6.3 item 5: two different lengths.
    two_different_lengths: bad_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\n\
            abc");
    /// RFC 9110 section 8.6: `+3` is not `1*DIGIT`.
    signed_length: bad_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc");
    /// RFC 9110 section 8.6: a negative length.
    negative_length: bad_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\nabc");
    /// RFC 9110 section 8.6: a hex length.
    hex_length: bad_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc");
    /// RFC 9112 section 6.3 item 5: a length past u64.
    overflowing_length: bad_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n\
            abc");
    /// RFC 9110 section 8.6: an empty length.
    empty_length: bad_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\nabc");
    /// RFC 9110 section 8.6: a list of lengths in one header.
    length_list: bad_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc");
    /// RFC 9112 section 6.1: chunked in HTTP/1.0, which has no chunking.
    chunked_in_http_1_0: bad_request(
        b"POST /public/x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    /// RFC 9112 section 5.2: obs-fold hiding an identity header.
    obs_fold_hiding_an_identity_header: bad_request(
        b"GET /public/x HTTP/1.1\r\nHost: a\r\nX-Foo: a\r\n X-User-Id: admin\r\n\r\n");
    /// RFC 9112 section 5.2: obs-fold continuing Transfer-Encoding.
    obs_fold_in_transfer_encoding: bad_request(
        b"POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\
            Content-Length: 3\r\n\r\nabc");
    /// RFC 9112 section 5.1: an identity header with a space before the
    /// colon.
    identity_header_space_before_the_colon: bad_request(
        b"GET /public/x HTTP/1.1\r\nHost: a\r\nX-User-Id : admin\r\n\r\n");
    /// RFC 9112 section 2.2: a bare CR splitting a header line.
    bare_cr_in_the_head: bad_request(
        b"GET /public/x HTTP/1.1\r\nHost: a\rX-User-Id: admin\r\n\r\n");
    /// RFC 9110 section 5.5: a NUL in a header value.
    nul_in_a_header_value: bad_request(
        b"GET /public/x HTTP/1.1\r\nHost: a\r\nX-Foo: a\x00b\r\n\r\n");
    /// RFC 9110 section 5.1: a NUL in a header name.
    nul_in_a_header_name: bad_request(
        b"GET /public/x HTTP/1.1\r\nHost: a\r\nX-Us\x00er-Id: admin\r\n\r\n");
    /// RFC 9110 section 5.1: a space inside a header name.
    space_inside_a_header_name: bad_request(
        b"GET /public/x HTTP/1.1\r\nHost: a\r\nX User Id: admin\r\n\r\n");
    /// RFC 9112 section 3: a space in the request target.
    space_in_the_target: bad_request(b"GET /public/x /admin/x HTTP/1.1\r\nHost: a\r\n\r\n");
    /// RFC 9112 section 3.2: two Host headers.
    two_host_headers: bad_request(
        b"GET /public/x HTTP/1.1\r\nHost: a\r\nHost: admin.internal\r\n\r\n");
    /// RFC 9113 section 3.1 (h2c upgrade deprecated), RFC 9110 section 7.8:
    /// `Upgrade: h2c` on a public route is never honoured, and the
    /// connection stays behind the gate.
    h2c_upgrade_on_a_public_route: h2c_upgrade("/public/x", None);
    /// RFC 9113 section 3.1: the same with a good token on a checked route.
    h2c_upgrade_on_an_authenticated_route: h2c_upgrade(
        "/games/1", Some(keys().mint("HS256", &claims("alice"))));
}
