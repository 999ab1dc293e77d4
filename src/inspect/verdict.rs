//! The final verdict, reached with the functions the proxy uses.
//!
//! This follows `Proxy::pass` and `Proxy::decide` step by step: normalise
//! the path, pick the rule, extract the bearer token from an
//! `Authorization` header, authenticate it (with the cache off, so the
//! token is verified from scratch), check the rule's roles, apply the
//! rule's mode, and let `proxy::respond` turn a refusal into the status
//! and `WWW-Authenticate` the caller would see. Nothing here decides on
//! its own; `tests/inspect.rs` holds it to the running proxy for every
//! reason.

use std::sync::Arc;

use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::auth::path::{self, PathError};
use crate::auth::rules::{Rule, Target};
use crate::auth::{self, Identity, Reason, TokenCache};
use crate::proxy::{self, respond};
use crate::state::Snapshot;

/// The request a token is judged for: `--method` and `--path`.
#[derive(Clone, Debug)]
pub struct RequestLine {
    /// The method; it only matters to rules that name methods.
    pub method: Method,
    /// The path (a query is ignored, as the proxy ignores it); without
    /// one the token is judged under the default rule.
    pub path: Option<String>,
}

/// What tollgate answers itself when it does not forward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The status.
    pub(crate) status: StatusCode,
    /// The `WWW-Authenticate` value, when there is one.
    pub(crate) www_authenticate: Option<String>,
    /// The `Retry-After` value, when there is one.
    pub(crate) retry_after: Option<String>,
}

/// The proxy's verdict on one request.
#[derive(Debug)]
pub(crate) struct Decision {
    /// The normalised path, or why it was refused; `None` without `--path`.
    pub(crate) path: Option<Result<String, PathError>>,
    /// The rule picked, by position in the snapshot's rules.
    pub(crate) rule: Option<usize>,
    /// The token check: an identity, `None` when the rule needs no token,
    /// or the reason; `None` altogether when the request was refused
    /// before a rule was picked.
    pub(crate) token: Option<Result<Option<Arc<Identity>>, Reason>>,
    /// Whether a refusal is forwarded anyway, under `report_only`.
    pub(crate) reported: bool,
    /// The answer tollgate gives itself; `None` when it forwards.
    pub(crate) answer: Option<Answer>,
}

impl Decision {
    /// Returns the access log's `verdict`: `ok`, the reason, or `-` when no
    /// token was needed (or the request was refused before one was).
    pub(crate) fn verdict(&self) -> &'static str {
        match &self.token {
            Some(Ok(Some(_))) => "ok",
            Some(Err(reason)) => reason.as_str(),
            Some(Ok(None)) | None => "-",
        }
    }

    /// Says whether the request reaches its target without a refusal
    /// being counted: the `0` exit code.
    pub(crate) fn is_allowed(&self) -> bool {
        self.answer.is_none() && !self.reported
    }

    /// Returns the identity whose headers are forwarded.
    pub(crate) fn identity(&self) -> Option<&Identity> {
        match &self.token {
            Some(Ok(Some(identity))) if self.answer.is_none() => Some(identity),
            _ => None,
        }
    }
}

/// Decides on a request carrying `token`, as the proxy would at `now`.
pub(crate) fn decide(
    snapshot: &Snapshot,
    request: &RequestLine,
    token: &str,
    now: f64,
) -> Decision {
    let mut decision = Decision {
        path: None,
        rule: None,
        token: None,
        reported: false,
        answer: None,
    };
    if request.method == Method::CONNECT {
        let fault = respond::RequestFault::Connect;
        decision.answer = Some(answer(respond::Refusal::BadRequest(fault), snapshot));
        return decision;
    }

    let rules = snapshot.rules.rules();
    let at = match request.path.as_deref() {
        // The default rule is always last.
        None => rules.len() - 1,
        Some(raw) => {
            let raw = raw.split_once('?').map_or(raw, |(path, _)| path);
            match path::normalize(raw) {
                Ok(normalized) => {
                    let (at, _) = snapshot.rules.find_at(&request.method, &normalized);
                    decision.path = Some(Ok(normalized.into_owned()));
                    at
                }
                Err(error) => {
                    decision.path = Some(Err(error));
                    decision.answer = Some(answer(respond::Refusal::BadPath(error), snapshot));
                    return decision;
                }
            }
        }
    };
    decision.rule = Some(at);
    let rule = &rules[at];

    let checked = check_token(snapshot, rule, token, now);
    if let Err(reason) = checked {
        if proxy::is_reported(rule.mode_or(snapshot.settings.mode), reason) {
            decision.reported = true;
        } else {
            decision.answer = Some(answer(respond::Refusal::Token(reason), snapshot));
        }
    }
    decision.token = Some(checked);
    decision
}

/// Checks the token a protected rule needs, as `Proxy::decide` does.
fn check_token(
    snapshot: &Snapshot,
    rule: &Rule,
    token: &str,
    now: f64,
) -> Result<Option<Arc<Identity>>, Reason> {
    let Target::Protected { .. } = &rule.target else {
        return Ok(None);
    };
    // Through a real header, so the scheme, size and emptiness rules are
    // the proxy's own; a value no HTTP request can carry is malformed.
    let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| Reason::Malformed)?;
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    let token = auth::bearer_token(&headers, snapshot.settings.limits.max_token_bytes)?;

    // A cache that holds nothing: the token is verified from scratch, and
    // the answer cannot depend on what an earlier run saw.
    let cache = TokenCache::new(0, 0);
    let (verdict, _) =
        auth::authenticate(token, &snapshot.providers, &cache, snapshot.generation, now);
    let identity = verdict.map_err(|refusal| refusal.reason)?;
    if !rule.has_role(&identity.roles) {
        return Err(Reason::InsufficientRole);
    }
    Ok(Some(identity))
}

/// Reads status and challenge off the response the proxy would send.
fn answer(refusal: respond::Refusal, snapshot: &Snapshot) -> Answer {
    let response = respond::respond(refusal, snapshot);
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|value: &HeaderValue| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    Answer {
        status: response.status(),
        www_authenticate: header(WWW_AUTHENTICATE),
        retry_after: header(RETRY_AFTER),
    }
}
