//! Finding the bearer token in a request's headers (RFC 6750 section 2.1).

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::Reason;

/// Returns the token from the one `Authorization: Bearer` header.
///
/// The scheme is matched case-insensitively, as RFC 7235 section 2.1 asks.
/// Two `Authorization` headers are refused rather than picking one: a proxy
/// and the service behind it could pick differently. Another scheme counts
/// as no credentials, so the 401 carries no error code (RFC 6750 section
/// 3.1). The token's own syntax is checked by the verifier.
pub fn bearer_token(headers: &HeaderMap, max_bytes: usize) -> Result<&str, Reason> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Reason::Missing);
    };
    if values.next().is_some() {
        return Err(Reason::Malformed);
    }

    let bytes = value.as_bytes();
    let Some(scheme) = bytes.get(..6) else {
        return Err(scheme_or_malformed(bytes));
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(Reason::Missing);
    }
    let rest = &bytes[6..];
    let token = trim_leading_spaces(rest);
    if token.len() == rest.len() || token.is_empty() || token.len() > max_bytes {
        return Err(Reason::Malformed);
    }
    std::str::from_utf8(token).map_err(|_| Reason::Malformed)
}

/// A too-short value is malformed only when it is a truncated `Bearer`.
fn scheme_or_malformed(bytes: &[u8]) -> Reason {
    let bearer = b"bearer";
    if !bytes.is_empty() && bearer[..bytes.len()].eq_ignore_ascii_case(bytes) {
        Reason::Malformed
    } else {
        Reason::Missing
    }
}

fn trim_leading_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().take_while(|b| **b == b' ').count();
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(AUTHORIZATION, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_bearer_token_is_found_whatever_the_scheme_case() {
        for value in ["Bearer a.b.c", "bearer a.b.c", "BEARER  a.b.c"] {
            assert_eq!(
                bearer_token(&headers(&[value]), 100),
                Ok("a.b.c"),
                "{value}"
            );
        }
    }

    #[test]
    fn no_header_or_another_scheme_is_missing() {
        assert_eq!(bearer_token(&headers(&[]), 100), Err(Reason::Missing));
        assert_eq!(
            bearer_token(&headers(&["Basic dXNlcg=="]), 100),
            Err(Reason::Missing)
        );
        assert_eq!(
            bearer_token(&headers(&["Bear"]), 100),
            Err(Reason::Malformed)
        );
        assert_eq!(
            bearer_token(&headers(&["Token"]), 100),
            Err(Reason::Missing)
        );
    }

    #[test]
    fn two_headers_an_empty_token_or_a_glued_scheme_are_malformed() {
        let two = headers(&["Bearer a.b.c", "Bearer d.e.f"]);
        assert_eq!(bearer_token(&two, 100), Err(Reason::Malformed));
        assert_eq!(
            bearer_token(&headers(&["Bearer"]), 100),
            Err(Reason::Malformed)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer "]), 100),
            Err(Reason::Malformed)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearera.b.c"]), 100),
            Err(Reason::Malformed)
        );
    }

    #[test]
    fn a_token_over_the_cap_is_malformed() {
        assert_eq!(
            bearer_token(&headers(&["Bearer a.b.c"]), 4),
            Err(Reason::Malformed)
        );
        assert_eq!(bearer_token(&headers(&["Bearer a.b.c"]), 5), Ok("a.b.c"));
    }
}
