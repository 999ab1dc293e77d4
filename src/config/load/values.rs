//! Checks shared by several sections: durations, addresses, URLs, paths and
//! names. Each takes the value as written and the key to blame.

use std::net::SocketAddr;
use std::time::Duration;

use http::Uri;
use toml::Spanned;

use super::Document;
use crate::config::ConfigError;

/// Parses a duration such as `"30s"` or `"1m 30s"`.
pub(super) fn duration(
    doc: Document<'_>,
    value: &Spanned<String>,
    key: &str,
) -> Result<Duration, ConfigError> {
    let text = value.get_ref();
    let parsed = humantime::parse_duration(text).map_err(|error| {
        let message = format!("{text:?} is not a duration ({error}); write it like \"30s\"");
        doc.invalid(value.span(), key, message)
    })?;
    if parsed > MAX_DURATION {
        let message = format!("{text:?} is longer than the 366 days any setting allows");
        return Err(doc.invalid(value.span(), key, message));
    }
    Ok(parsed)
}

/// The longest duration any setting takes. No timeout, interval or
/// staleness bound is sensible beyond a year, and a bound keeps the
/// arithmetic on instants (now + interval) from overflowing.
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// Parses a duration that must be more than zero, such as a timeout: a zero
/// timeout would fail every request.
pub(super) fn positive_duration(
    doc: Document<'_>,
    value: &Spanned<String>,
    key: &str,
) -> Result<Duration, ConfigError> {
    let parsed = duration(doc, value, key)?;
    if parsed.is_zero() {
        let message = format!("{:?} must be more than zero", value.get_ref());
        return Err(doc.invalid(value.span(), key, message));
    }
    Ok(parsed)
}

/// Parses a socket address such as `"0.0.0.0:8080"`.
pub(super) fn socket_addr(
    doc: Document<'_>,
    value: &Spanned<String>,
    key: &str,
) -> Result<SocketAddr, ConfigError> {
    let text = value.get_ref();
    text.parse().map_err(|_| {
        let message = format!("{text:?} is not a socket address such as \"0.0.0.0:8080\"");
        doc.invalid(value.span(), key, message)
    })
}

/// Parses the URL of a service tollgate forwards to: `http` or `https`, a
/// host and an optional port, nothing else.
///
/// A path would have to be joined with the request path, and a query or a
/// fragment has no meaning here; refusing them now saves guessing later.
pub(super) fn http_url(
    doc: Document<'_>,
    value: &Spanned<String>,
    key: &str,
) -> Result<Uri, ConfigError> {
    let fail = |message: String| doc.invalid(value.span(), key, message);
    let text = value.get_ref();
    let uri: Uri = text
        .parse()
        .map_err(|error| fail(format!("{text:?} is not a URL: {error}")))?;
    check_scheme(text, &uri).map_err(fail)?;
    check_authority(text, &uri).map_err(fail)?;
    if uri.path() != "/" || uri.query().is_some() || text.contains('#') {
        let message = format!("{text:?} may not have a path, query or fragment");
        return Err(fail(message));
    }
    Ok(uri)
}

/// Accepts `http` and `https`.
fn check_scheme(text: &str, uri: &Uri) -> Result<(), String> {
    match uri.scheme_str() {
        Some("http" | "https") => Ok(()),
        Some(other) => Err(format!(
            "scheme {other:?} is not supported; use http or https"
        )),
        None => Err(format!(
            "{text:?} has no scheme; write it like \"http://127.0.0.1:8000\""
        )),
    }
}

/// Refuses user info, an empty host and a port that is not 1 to 65535.
pub(super) fn check_authority(text: &str, uri: &Uri) -> Result<(), String> {
    let Some(authority) = uri.authority() else {
        return Err(format!("{text:?} has no host"));
    };
    if authority.as_str().contains('@') {
        return Err(format!("{text:?} holds user info, which is not supported"));
    }
    if authority.host().is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    match port_text(authority.as_str()).map(str::parse::<u16>) {
        None | Some(Ok(1..)) => Ok(()),
        Some(_) => Err(format!("{text:?} has a port outside 1 to 65535")),
    }
}

/// Returns the text after the port colon, if the authority has one; the
/// colons inside a bracketed IPv6 host do not count.
fn port_text(authority: &str) -> Option<&str> {
    let (_, after) = authority.rsplit_once(':')?;
    (!after.contains(']')).then_some(after)
}

/// Says whether a configured path is matched whole or as a prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PathKind {
    /// The request path must equal it.
    Exact,
    /// The request path must start with it; it may end with `/`.
    Prefix,
}

/// Checks that a configured path is already in normal form.
///
/// Requests are normalised before matching, and ambiguous ones refused. A
/// configured path that is not itself normal could never match, or worse,
/// match something the operator did not mean; so it is refused here.
pub(super) fn plain_path(
    doc: Document<'_>,
    value: &Spanned<String>,
    key: &str,
    kind: PathKind,
) -> Result<String, ConfigError> {
    let text = value.get_ref();
    match path_fault(text, kind) {
        None => Ok(text.clone()),
        Some(fault) => {
            let message = format!("{text:?} is not a plain normalised path: {fault}");
            Err(doc.invalid(value.span(), key, message))
        }
    }
}

/// Says what makes `path` not normal, if anything.
fn path_fault(path: &str, kind: PathKind) -> Option<String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Some("it must start with \"/\"".to_owned());
    };
    // Anything outside visible ASCII arrives percent-encoded, and `%` is
    // refused below, so such a path could never match.
    if !path.chars().all(|c| c.is_ascii_graphic()) {
        return Some("it may hold only visible ASCII characters".to_owned());
    }
    if let Some(c) = path
        .chars()
        .find(|c| [';', '%', '\\', '?', '#'].contains(c))
    {
        return Some(format!("it may not contain {c:?}"));
    }
    if path.contains("//") {
        return Some("it may not contain \"//\"".to_owned());
    }
    if rest
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Some("it may not contain \".\" or \"..\" segments".to_owned());
    }
    if kind == PathKind::Exact && path != "/" && path.ends_with('/') {
        return Some("only a path_prefix may end with \"/\"".to_owned());
    }
    if has_closed_segment_ending_in_dot(rest, kind) {
        return Some(
            "it may not hold a segment ending in \".\": a request with one is refused, \
             so it could never match"
                .to_owned(),
        );
    }
    None
}

/// Says whether a segment that a request must match whole ends in `.`.
///
/// Requests with such a segment are refused (some servers strip the dot,
/// so `/admin.` would reach `/admin`), so a rule naming one could never
/// match. The last segment of a prefix is the exception: a request extends
/// it, and `/files/report.` covers `/files/report.pdf`.
fn has_closed_segment_ending_in_dot(rest: &str, kind: PathKind) -> bool {
    let closed = match kind {
        PathKind::Exact => rest,
        PathKind::Prefix => rest.rsplit_once('/').map_or("", |(closed, _)| closed),
    };
    closed.split('/').any(|segment| segment.ends_with('.'))
}

/// Says whether `text` is a non-empty name of `[A-Za-z0-9._-]`: safe in
/// logs, metric labels and a quoted `WWW-Authenticate` realm.
pub(super) fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// Checks a list of strings that must be non-empty and hold no empty item.
pub(super) fn non_empty_strings(
    doc: Document<'_>,
    list: &Spanned<Vec<Spanned<String>>>,
    key: &str,
    what: &str,
) -> Result<Vec<String>, ConfigError> {
    if list.get_ref().is_empty() {
        return Err(doc.invalid(list.span(), key, format!("at least one {what} is required")));
    }
    let mut out = Vec::with_capacity(list.get_ref().len());
    for item in list.get_ref() {
        if item.get_ref().is_empty() {
            return Err(doc.invalid(item.span(), key, format!("an empty {what} is not allowed")));
        }
        out.push(item.get_ref().clone());
    }
    Ok(out)
}
