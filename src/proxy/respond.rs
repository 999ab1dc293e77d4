//! The one place where a refusal or a failure becomes an HTTP response.
//!
//! Who is at fault decides the status: the caller (no token, a bad token, a
//! missing role, a path that cannot be matched safely) gets 4xx; a target
//! that is down or slow gets 502/503/504; a provider without keys is our
//! fault and gets 503, so clients do not throw away tokens that are good.
//! Bodies are short fixed JSON; details go to logs and metrics.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use super::{Body, Outcome};
use crate::auth::Reason;
use crate::auth::path::PathError;
use crate::state::Snapshot;

/// Names the target a forwarding failure happened on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The protected service.
    Upstream,
    /// The account store.
    AccountStore,
}

/// Names how forwarding failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardFailure {
    /// The connection could not be made.
    Connect,
    /// No response head within the timeout.
    Timeout,
    /// Reset, protocol error, or anything else after connecting.
    Other,
    /// The downstream's own request body broke (bad chunked framing, a
    /// reset mid-body): the caller's fault, not the target's.
    ClientBody,
    /// The downstream's body grew past `limits.max_body_bytes` while it
    /// was being sent, and was cut off there.
    BodyTooLarge,
    /// The timeout ran out while the downstream's own request body was
    /// still awaited: the caller's fault, not the target's.
    ClientTimeout,
}

impl ForwardFailure {
    /// Returns the label used in logs, matching the metric's `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardFailure::Connect => "connect",
            ForwardFailure::Timeout => "timeout",
            ForwardFailure::Other => "other",
            ForwardFailure::ClientBody => "client_body",
            ForwardFailure::BodyTooLarge => "body_too_large",
            ForwardFailure::ClientTimeout => "client_timeout",
        }
    }
}

/// Names a request refused before routing, whatever its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestFault {
    /// Two or more `Host` headers: RFC 9112 section 3.2 requires a 400,
    /// and tollgate and the upstream could each pick a different one.
    SeveralHosts,
    /// An HTTP/2 request whose `Host` names another authority than its
    /// `:authority` (RFC 9113 section 8.3.1): the rules and the service
    /// could each go by a different one.
    HostMismatch,
    /// CONNECT asks for a tunnel to an authority, not a path: a rule could
    /// never match what would be forwarded.
    Connect,
    /// The request target is longer than `limits.max_uri_bytes`.
    UriTooLong,
    /// The `Content-Length` is over `limits.max_body_bytes`: refused before
    /// a byte of the body is read or anything is forwarded.
    BodyTooLarge,
}

/// Lists every way tollgate answers a request itself.
#[derive(Clone, Copy, Debug)]
pub enum Refusal {
    /// The token check failed; `Reason::InsufficientRole` gives 403.
    Token(Reason),
    /// The path cannot be matched safely.
    BadPath(PathError),
    /// The request is one tollgate will not route, whatever its path.
    BadRequest(RequestFault),
    /// A forwarding target failed.
    Forward(Target, ForwardFailure),
    /// The client IP sent more account store requests than the rate
    /// allows; it may try again after this many seconds.
    RateLimited(u32),
}

impl Refusal {
    /// Returns the outcome label this refusal counts under.
    pub fn outcome(self) -> Outcome {
        match self {
            Refusal::Token(Reason::InsufficientRole) => Outcome::Forbidden,
            Refusal::Token(Reason::NoKeys) => Outcome::Unavailable,
            Refusal::Token(_) => Outcome::Unauthorized,
            Refusal::BadRequest(RequestFault::UriTooLong | RequestFault::BodyTooLarge) => {
                Outcome::TooLarge
            }
            Refusal::BadPath(_) | Refusal::BadRequest(_) => Outcome::BadRequest,
            Refusal::Forward(_, ForwardFailure::BodyTooLarge) => Outcome::TooLarge,
            Refusal::Forward(_, ForwardFailure::ClientBody | ForwardFailure::ClientTimeout) => {
                Outcome::BadRequest
            }
            Refusal::RateLimited(_) => Outcome::RateLimited,
            Refusal::Forward(_, ForwardFailure::Timeout) => Outcome::GatewayTimeout,
            Refusal::Forward(Target::AccountStore, ForwardFailure::Connect) => Outcome::Unavailable,
            Refusal::Forward(_, _) => Outcome::BadGateway,
        }
    }
}

/// Turns a refusal into the response the caller sees.
pub fn respond(refusal: Refusal, snapshot: &Snapshot) -> Response<Body> {
    if let Refusal::Token(reason) = refusal {
        return snapshot.token_answers.answer(reason);
    }

    let (status, error, description) = classify(refusal);
    let mut response = json_response(status, error, description);
    response.extensions_mut().insert(refusal.outcome());
    if let Refusal::RateLimited(seconds) = refusal {
        let headers = response.headers_mut();
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The answers to token refusals, one per [`Reason`], made once per
/// snapshot.
///
/// They differ only by reason and by the service's name, and they are what
/// a flood of bad tokens is answered with: built ahead, each answer is a
/// few reference counts rather than two formatted strings.
#[derive(Debug)]
pub struct TokenAnswers {
    /// By [`Reason::index`]: the status, the `WWW-Authenticate` challenge
    /// if the answer carries one, and the JSON body.
    answers: Vec<(StatusCode, Option<HeaderValue>, Bytes)>,
}

impl TokenAnswers {
    /// Builds the answers for the service named `service`, a plain token
    /// (the settings check it), so it needs no quoting in a challenge.
    pub fn new(service: &str) -> Self {
        let answers = Reason::ALL
            .iter()
            .map(|&reason| {
                let (status, error, description) = classify(Refusal::Token(reason));
                let body = Bytes::from(json_body(error, description));
                (status, challenge(service, reason, error), body)
            })
            .collect();
        TokenAnswers { answers }
    }

    /// Returns the answer to a token refused for `reason`.
    fn answer(&self, reason: Reason) -> Response<Body> {
        let refusal = Refusal::Token(reason);
        let (status, challenge, body) = &self.answers[reason.index()];

        let mut response = Response::new(full(body.clone()));
        *response.status_mut() = *status;
        response.extensions_mut().insert(refusal.outcome());
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(challenge) = challenge {
            headers.insert(WWW_AUTHENTICATE, challenge.clone());
        }
        if reason == Reason::NoKeys {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// Builds the `WWW-Authenticate` challenge for a token refusal (RFC 6750
/// section 3): none when the fault is ours (no keys), no error code when
/// no token was sent at all.
fn challenge(service: &str, reason: Reason, error: &str) -> Option<HeaderValue> {
    let text = match reason {
        Reason::NoKeys => return None,
        Reason::Missing => format!("Bearer realm=\"{service}\""),
        reason => format!(
            "Bearer realm=\"{service}\", error=\"{error}\", error_description=\"{}\"",
            reason.description()
        ),
    };
    HeaderValue::from_str(&text).ok()
}

/// Picks status, RFC 6750 error code and description.
fn classify(refusal: Refusal) -> (StatusCode, &'static str, &'static str) {
    match refusal {
        Refusal::Token(Reason::InsufficientRole) => (
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            Reason::InsufficientRole.description(),
        ),
        Refusal::Token(Reason::NoKeys) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            Reason::NoKeys.description(),
        ),
        // No credentials at all: RFC 6750 section 3.1 gives no error code,
        // so the body does not claim the (absent) token is invalid.
        Refusal::Token(Reason::Missing) => (
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            Reason::Missing.description(),
        ),
        Refusal::Token(reason) => (
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            reason.description(),
        ),
        Refusal::BadPath(_) => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request path is not acceptable",
        ),
        Refusal::BadRequest(RequestFault::SeveralHosts) => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request has more than one Host header",
        ),
        Refusal::BadRequest(RequestFault::HostMismatch) => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the Host header and the request authority differ",
        ),
        Refusal::BadRequest(RequestFault::Connect) => (
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "CONNECT is not served",
        ),
        Refusal::BadRequest(RequestFault::UriTooLong) => (
            StatusCode::URI_TOO_LONG,
            "invalid_request",
            "the request target is too long",
        ),
        Refusal::BadRequest(RequestFault::BodyTooLarge) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "the request body is too large",
        ),
        Refusal::RateLimited(_) => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests from this client; retry later",
        ),
        Refusal::Forward(target, failure) => forward_failure(target, failure),
    }
}

fn forward_failure(
    target: Target,
    failure: ForwardFailure,
) -> (StatusCode, &'static str, &'static str) {
    match (target, failure) {
        (_, ForwardFailure::BodyTooLarge) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "the request body is too large",
        ),
        (_, ForwardFailure::ClientBody) => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request body is malformed",
        ),
        (_, ForwardFailure::ClientTimeout) => (
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request",
            "the request body did not arrive in time",
        ),
        (Target::AccountStore, ForwardFailure::Connect) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "account_store_unavailable",
            "the account store cannot be reached",
        ),
        (Target::AccountStore, ForwardFailure::Timeout) => (
            StatusCode::GATEWAY_TIMEOUT,
            "account_store_timeout",
            "the account store did not answer in time",
        ),
        (Target::AccountStore, ForwardFailure::Other) => (
            StatusCode::BAD_GATEWAY,
            "account_store_error",
            "the account store failed to answer",
        ),
        (Target::Upstream, ForwardFailure::Timeout) => (
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            "the service did not answer in time",
        ),
        (Target::Upstream, _) => (
            StatusCode::BAD_GATEWAY,
            "upstream_unavailable",
            "the service cannot be reached",
        ),
    }
}

/// Builds a small JSON response; the strings are fixed phrases, so no
/// escaping is needed and nothing from the request can leak into it.
pub fn json_response(status: StatusCode, error: &str, description: &str) -> Response<Body> {
    let mut response = Response::new(full(json_body(error, description)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Writes the JSON body of a refusal from fixed phrases.
fn json_body(error: &str, description: &str) -> String {
    format!("{{\"error\":\"{error}\",\"error_description\":\"{description}\"}}")
}

/// Wraps bytes as a response body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn body_json(response: Response<Body>) -> serde_json::Value {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        serde_json::from_slice(&bytes).expect("a JSON body")
    }

    #[tokio::test]
    async fn every_token_refusal_has_its_status_challenge_and_body() {
        let answers = TokenAnswers::new("games");
        for reason in Reason::ALL {
            let response = answers.answer(reason);
            let headers = response.headers().clone();
            let challenge = headers
                .get(WWW_AUTHENTICATE)
                .map(|v| v.to_str().expect("ASCII").to_owned());
            let expected_outcome = Refusal::Token(reason).outcome();
            assert_eq!(response.extensions().get(), Some(&expected_outcome));
            assert_eq!(headers[CONTENT_TYPE], "application/json");
            let status = response.status();
            let body = body_json(response).await;
            assert_eq!(
                body["error_description"],
                reason.description(),
                "{reason:?}"
            );

            let (want_status, error) = match reason {
                Reason::Missing => (StatusCode::UNAUTHORIZED, "unauthorized"),
                Reason::NoKeys => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
                Reason::InsufficientRole => (StatusCode::FORBIDDEN, "insufficient_scope"),
                _ => (StatusCode::UNAUTHORIZED, "invalid_token"),
            };
            assert_eq!((status, body["error"].as_str()), (want_status, Some(error)));
            match reason {
                Reason::Missing => {
                    assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="games""#));
                }
                Reason::NoKeys => {
                    assert_eq!(challenge, None);
                    assert_eq!(headers[RETRY_AFTER], "5");
                }
                _ => {
                    let want = format!(
                        r#"Bearer realm="games", error="{error}", error_description="{}""#,
                        reason.description()
                    );
                    assert_eq!(challenge, Some(want), "{reason:?}");
                }
            }
        }
    }
}
