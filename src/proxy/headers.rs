//! Header hygiene: the first thing done to every request, before routing,
//! and the last thing before it is forwarded.
//!
//! The upstream trusts the identity headers because only tollgate sets them,
//! so [`scrub_identity`] removes every spelling of them a caller might send.
//! [`remove_hop_by_hop`] then drops the headers that describe one connection
//! rather than the request. Both must run before tollgate adds its own
//! headers: a caller may name any header in `Connection`, and removal after
//! that point would strip what tollgate vouches for. [`set_forwarding`] and
//! [`request_id`] prepare what the upstream learns about the caller.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CONNECTION, CONTENT_LENGTH, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE,
    TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use uuid::Uuid;

/// Names the header that carries the request id, to the upstream and back.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// RFC 7239's `Forwarded`, which tollgate does not write.
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
/// W3C Trace Context; read on every request, so named once rather than
/// parsed from a string at each lookup.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The hop-by-hop headers RFC 2616 section 13.5.1 named, which proxies still
/// drop though RFC 9110 no longer lists them, plus `proxy-connection`, which
/// old clients send in place of `Connection`.
const HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];

/// Headers a caller may not nominate in `Connection`: dropping `host` or
/// `content-length` would change how the upstream routes or frames the
/// request, and dropping `authorization` would hide the token the decision
/// was made on from an upstream that checks it again.
const END_TO_END: [HeaderName; 3] = [HOST, CONTENT_LENGTH, AUTHORIZATION];

/// Headers some frameworks read as the request's real path or method:
/// `X-Original-URL` and `X-Rewrite-URL` (IIS URL Rewrite, and Symfony
/// before CVE-2018-14773) and the method overrides. The rules matched the
/// request line, so the service must not route on anything else.
const TARGET_OVERRIDES: [HeaderName; 5] = [
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// The largest request id kept from a caller, in bytes.
const MAX_REQUEST_ID_BYTES: usize = 128;

// --- Identity headers ----------------------------------------------------------

/// Holds the identity header names tollgate may set, normalised (lowercase,
/// `_` read as `-`).
///
/// Many servers (and CGI-style frameworks) read `X_User_Id` and `x-user-id`
/// as the same header, so a caller must not be able to slip either past.
#[derive(Clone, Debug, Default)]
pub struct IdentityHeaderNames {
    names: Vec<Box<str>>,
}

impl IdentityHeaderNames {
    /// Collects the names, normalised and without duplicates.
    pub fn new(names: impl IntoIterator<Item = HeaderName>) -> Self {
        let mut names: Vec<Box<str>> = names
            .into_iter()
            .map(|name| name.as_str().bytes().map(|b| char::from(fold(b))).collect())
            .collect();
        names.sort_unstable();
        names.dedup();
        Self { names }
    }

    /// Checks whether `name`, read with `_` as `-`, is an identity header.
    ///
    /// Compares byte by byte, so the check allocates nothing.
    pub fn contains(&self, name: &HeaderName) -> bool {
        let name = name.as_str().as_bytes();
        self.names.iter().any(|known| {
            let known = known.as_bytes();
            known.len() == name.len() && known.iter().zip(name).all(|(&k, &n)| k == fold(n))
        })
    }
}

/// Maps a header name byte to its normalised form.
fn fold(byte: u8) -> u8 {
    match byte {
        b'_' => b'-',
        _ => byte.to_ascii_lowercase(),
    }
}

/// Removes every header whose name, lowercased and with `_` read as `-`, is
/// an identity header.
///
/// Allocates nothing when no header matches, which is the usual case.
pub fn scrub_identity(headers: &mut HeaderMap, names: &IdentityHeaderNames) {
    // Each pass removes one name with all its values, so the loop runs at
    // most once per distinct name in the map. Finding first and removing
    // after keeps the map borrow short without collecting into a Vec.
    while let Some(name) = headers.keys().find(|name| names.contains(name)).cloned() {
        headers.remove(&name);
    }
}

/// Removes every header whose name, read as [`fold`] does, is one of
/// `names`, and that `also` accepts.
fn remove_spellings(headers: &mut HeaderMap, names: &[HeaderName], also: fn(&[u8]) -> bool) {
    let matches = |name: &HeaderName| {
        let name = name.as_str().as_bytes();
        also(name)
            && names.iter().any(|known| {
                let known = known.as_str().as_bytes();
                known.len() == name.len() && known.iter().zip(name).all(|(&k, &n)| k == fold(n))
            })
    };
    while let Some(name) = headers.keys().find(|name| matches(name)).cloned() {
        headers.remove(&name);
    }
}

/// Removes the headers that would let the service route on another path
/// or method than the one the rules matched, in every spelling.
pub fn remove_target_overrides(headers: &mut HeaderMap) {
    remove_spellings(headers, &TARGET_OVERRIDES, |_| true);
}

// --- Hop-by-hop headers --------------------------------------------------------

/// Removes hop-by-hop headers: the standard ones (`connection`, `keep-alive`,
/// `proxy-connection`, `proxy-authenticate`, `proxy-authorization`, `te`,
/// `trailer`, `transfer-encoding`, `upgrade`) and every name listed in any
/// `Connection` header (comma-separated, case-insensitive, whitespace
/// tolerated), except `host`, `content-length` and `authorization`, which
/// stay.
///
/// When `upgrade` is `Some(value)` (an authorised WebSocket handshake),
/// `upgrade: <value>` and `connection: upgrade` are set after the removal.
///
/// Run it before adding any header of tollgate's own, so that a name the
/// caller lists in `Connection` can only remove what the caller sent.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, upgrade: Option<HeaderValue>) {
    let nominated: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|token| HeaderName::from_bytes(token).ok())
        .filter(|name| !END_TO_END.contains(name))
        .collect();
    for name in &nominated {
        headers.remove(name);
    }
    // Most requests carry none of them: one pass over the names is cheaper
    // than hashing all nine for removal.
    if headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        for name in &HOP_BY_HOP {
            headers.remove(name);
        }
    }

    if let Some(value) = upgrade {
        headers.insert(UPGRADE, value);
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Makes a target's `Content-Length` fit to pass on: removed from a 1xx
/// or 204, which may not carry one (RFC 9110 section 8.6; HTTP/2 callers
/// take it for a body that never came), and written once as a plain number
/// where the target repeated it (`5, 5`, or two lines) and hyper took the
/// one value as the length. A sender may not pass such a list on, and a
/// client or cache ahead of tollgate could read it its own way.
pub fn tidy_content_length(headers: &mut HeaderMap, status: StatusCode) {
    if status.is_informational() || status == StatusCode::NO_CONTENT {
        headers.remove(CONTENT_LENGTH);
        return;
    }
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let Some(first) = values.next() else {
        return;
    };
    let is_plain = first.as_bytes().iter().all(u8::is_ascii_digit);
    if is_plain && values.next().is_none() {
        return;
    }
    // hyper refused the answer unless every value was the same number.
    let length = first
        .as_bytes()
        .split(|&byte| byte == b',')
        .next()
        .and_then(|value| std::str::from_utf8(value.trim_ascii()).ok())
        .and_then(|value| value.parse::<u64>().ok());
    match length {
        Some(length) => headers.insert(CONTENT_LENGTH, HeaderValue::from(length)),
        None => headers.remove(CONTENT_LENGTH),
    };
}

/// Makes a target's trailers fit to pass on: the hop-by-hop fields, as in
/// the head, and those that only the head may carry: `Content-Length`
/// (framing, RFC 9110 section 6.5.1) and the request id tollgate answers
/// with. h2 refuses to send a connection-specific field and resets the
/// caller's stream instead, so one of them turned a whole answer into a
/// failed one; the others reached HTTP/2 callers beside the head's own.
pub fn tidy_trailers(trailers: &mut HeaderMap) {
    remove_hop_by_hop(trailers, None);
    trailers.remove(CONTENT_LENGTH);
    trailers.remove(X_REQUEST_ID);
}

/// Returns the WebSocket upgrade token when the request is an HTTP/1.1
/// `Upgrade: websocket` handshake: `Connection` lists `upgrade` and `Upgrade`
/// is `websocket`, both case-insensitively. Any other `Upgrade` value (`h2c`
/// included) gives `None`, so it is stripped as hop-by-hop.
///
/// Only headers are read: the caller checks that the request is HTTP/1.1
/// (HTTP/2 carries WebSockets over extended CONNECT instead). More than one
/// `Upgrade` header, or one listing several protocols, is not a handshake.
/// The token returned is always the lowercase `websocket`. Call this before
/// [`remove_hop_by_hop`], which removes the headers it reads.
pub fn websocket_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut upgrades = headers.get_all(UPGRADE).iter();
    let (Some(upgrade), None) = (upgrades.next(), upgrades.next()) else {
        return None;
    };
    let is_websocket = upgrade
        .as_bytes()
        .trim_ascii()
        .eq_ignore_ascii_case(b"websocket");
    let asks_upgrade =
        connection_tokens(headers).any(|token| token.eq_ignore_ascii_case(b"upgrade"));
    (is_websocket && asks_upgrade).then(|| HeaderValue::from_static("websocket"))
}

/// Yields each non-empty, trimmed token of every `Connection` header.
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|token| !token.is_empty())
}

// --- Forwarding headers --------------------------------------------------------

/// Appends the client IP to `X-Forwarded-For` (joining several existing
/// headers into one value), and sets `X-Forwarded-Proto` and
/// `X-Forwarded-Host`, replacing any the client sent; a client's
/// `Forwarded`, other `X-Forwarded-*` and `X-Real-IP`-like headers are
/// removed.
///
/// `host` is the request's `Host` header, or for HTTP/2 the URI authority;
/// the caller picks it.
///
/// The existing `X-Forwarded-For` entries are the caller's word, kept for
/// the upstream's information only; the last entry is the one tollgate saw.
/// With `host` absent, a client-sent `X-Forwarded-Host` is still removed.
///
/// Call it before adding identity headers: a provider may map a claim to a
/// name it removes, such as `X-Forwarded-User`.
///
/// # Panics
///
/// When `proto` is not a valid header value; callers pass a constant such
/// as `"http"` or `"https"`.
pub fn set_forwarding(
    headers: &mut HeaderMap,
    client: &ClientIp,
    proto: &'static str,
    host: Option<HeaderValue>,
) {
    remove_forwarding_lookalikes(headers);
    let forwarded_for = append_forwarded_for(headers, client);
    headers.insert(X_FORWARDED_FOR, forwarded_for);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    match host {
        Some(host) => headers.insert(X_FORWARDED_HOST, host),
        None => headers.remove(X_FORWARDED_HOST),
    };
}

/// Removes a caller's `Forwarded`, every `X-Forwarded-*` but the plain
/// `X-Forwarded-For` (which tollgate appends to), and the other headers a
/// proxy, never a client, asserts about the client.
///
/// An upstream that reads RFC 7239 `Forwarded`, `X-Forwarded-Prefix`,
/// `X-Forwarded-Ssl`, oauth2-proxy's `X-Forwarded-User`, or a CGI-style
/// server that reads `X_Forwarded_Proto` as `X-Forwarded-Proto` (RFC 3875
/// section 4.1.18), would otherwise take the caller's word for its address,
/// scheme, path prefix or even identity over what tollgate sets.
fn remove_forwarding_lookalikes(headers: &mut HeaderMap) {
    headers.remove(FORWARDED);
    while let Some(name) = headers.keys().find(|name| is_proxy_asserted(name)).cloned() {
        headers.remove(&name);
    }
}

/// Headers that only a proxy may set, read with `_` as `-`, beside the
/// `X-Forwarded-*` family.
const PROXY_ASSERTED: [&str; 7] = [
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "x-original-uri",
    "x-remote-user",
    "x-remote-addr",
];

/// Says whether a caller's header claims to come from a proxy: any
/// `X-Forwarded-*` spelling except the exact `x-forwarded-for`, or one of
/// [`PROXY_ASSERTED`].
fn is_proxy_asserted(name: &HeaderName) -> bool {
    const PREFIX: &[u8] = b"x-forwarded-";
    let name = name.as_str().as_bytes();
    let folds_to = |known: &[u8]| {
        known.len() == name.len() && known.iter().zip(name).all(|(&k, &n)| k == fold(n))
    };
    let forwarded_family = name.len() > PREFIX.len()
        && PREFIX.iter().zip(name).all(|(&k, &n)| k == fold(n))
        && name != X_FORWARDED_FOR.as_str().as_bytes();
    forwarded_family
        || PROXY_ASSERTED
            .iter()
            .any(|known| folds_to(known.as_bytes()))
}

/// Joins the existing `X-Forwarded-For` values and the client into one value.
fn append_forwarded_for(headers: &HeaderMap, client: &ClientIp) -> HeaderValue {
    if !headers.contains_key(X_FORWARDED_FOR) {
        return client.0.clone();
    }
    let mut joined = Vec::new();
    for value in &headers.get_all(X_FORWARDED_FOR) {
        let value = value.as_bytes().trim_ascii();
        if !value.is_empty() {
            joined.extend_from_slice(value);
            joined.extend_from_slice(b", ");
        }
    }
    joined.extend_from_slice(client.0.as_bytes());
    HeaderValue::from_bytes(&joined)
        .expect("valid header values joined by `, ` and ending in an IP address stay valid")
}

/// A downstream's IP address as `X-Forwarded-For` carries it.
///
/// Rendered once per connection, not once per request: formatting an
/// address is a thousand-odd instructions, and every request of a
/// connection comes from the same one.
#[derive(Clone, Debug)]
pub struct ClientIp(HeaderValue);

impl From<IpAddr> for ClientIp {
    fn from(ip: IpAddr) -> Self {
        let text = Bytes::from(ip.to_string());
        let value = HeaderValue::from_maybe_shared(text);
        ClientIp(value.expect("an IP address is a valid header value"))
    }
}

/// Reads the `Content-Length` a request announces, if any.
///
/// hyper has already refused a malformed or conflicting one on HTTP/1,
/// and h2 on HTTP/2, so the first value is the length.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

// --- Request id ----------------------------------------------------------------

/// Returns the request id to use: the client's `X-Request-Id` when there is
/// exactly one and it is 1 to 128 bytes of `[A-Za-z0-9._:-]`, otherwise a
/// new UUID v4.
///
/// The id ends up in logs and in the upstream's logs, so anything that could
/// forge a log field, bloat a line or be read two ways (a repeated header) is
/// replaced rather than trusted.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    let mut sent = headers.get_all(X_REQUEST_ID).iter();
    match (sent.next(), sent.next()) {
        (Some(id), None) if is_sane_request_id(id.as_bytes()) => id.clone(),
        _ => new_request_id(),
    }
}

fn is_sane_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_BYTES).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn new_request_id() -> HeaderValue {
    let mut buffer = Uuid::encode_buffer();
    let text = Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(text).expect("a hyphenated UUID is hex digits and dashes")
}

/// Returns the trace id of a well-formed W3C `traceparent` header
/// (`00-<32 hex>-<16 hex>-<2 hex>`, trace id not all zeros), for the logs.
///
/// The header itself is passed on untouched: tollgate joins the caller's
/// trace rather than starting one, and a malformed header is simply not
/// logged.
pub fn trace_id(headers: &HeaderMap) -> Option<HeaderValue> {
    let value = headers.get(TRACEPARENT)?.as_bytes();
    let is_hex = |bytes: &[u8]| bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if value.len() != 55 || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let (version, trace, parent, flags) =
        (&value[..2], &value[3..35], &value[36..52], &value[53..]);
    let well_formed = is_hex(version)
        && version != b"ff"
        && is_hex(trace)
        && trace.iter().any(|b| *b != b'0')
        && is_hex(parent)
        && is_hex(flags);
    well_formed
        .then(|| HeaderValue::from_bytes(trace).ok())
        .flatten()
}

#[cfg(test)]
mod tests;
