//! `tollgate inspect`: why a token is let through or refused, check by
//! check, for an operator with a token in hand.
//!
//! Two things are computed side by side from the same snapshot `run`
//! would build from the config. The verdict comes from the functions the
//! proxy itself calls (`verdict.rs`), so it cannot drift from what a
//! request would get. The explanation (`explain.rs`) walks the same checks
//! in the verifier's order and says what each one found: which provider
//! and key, how far `exp` and `nbf` are from now, which audience values
//! the token holds, which header value is unsafe. The signature is never
//! printed, nor the token itself.
//!
//! Keys load as `run` loads them: secrets from the environment or files,
//! and each `jwks_uri` fetched once, before the token is judged.

mod clock;
mod decode;
mod explain;
mod render;
mod text;
mod verdict;

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

use self::explain::{Check, Explanation};
use self::verdict::Decision;
pub use self::verdict::RequestLine;
use crate::auth::rules::Target;
use crate::config::ConfigError;
use crate::env::Env;
use crate::keys::KeyError;
use crate::state::{Snapshot, State};
use crate::telemetry::Metrics;

/// The most bytes read from stdin: far above the largest token the config
/// allows (`limits.max_token_bytes` is at most 64 KiB).
const MAX_INPUT_BYTES: u64 = 1 << 20;

/// Says why `tollgate inspect` could not judge a token.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The config file does not parse or validate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A provider's keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The token could not be read from stdin.
    #[error("cannot read the token from stdin: {0}")]
    Stdin(#[source] std::io::Error),
}

/// What one provider's `jwks_uri` held after the one fetch.
#[derive(Clone, Debug)]
pub(crate) struct RemoteKeys {
    provider: Arc<str>,
    uri: String,
    keys: usize,
}

/// The verdict on one token and request, with its explanation; its
/// `Display` is what `tollgate inspect` prints.
pub struct Report {
    request: RequestLine,
    snapshot: Arc<Snapshot>,
    explanation: Explanation,
    decision: Decision,
    remote: Vec<RemoteKeys>,
}

impl Report {
    /// Judges `token` for `request` under `snapshot` at `now` (Unix
    /// seconds): the verdict as the proxy reaches it, and the checks
    /// explained.
    pub(crate) fn new(
        snapshot: Arc<Snapshot>,
        request: RequestLine,
        token: &str,
        now: f64,
        remote: Vec<RemoteKeys>,
    ) -> Self {
        let decision = verdict::decide(&snapshot, &request, token, now);
        let mut explanation = explain::explain(&snapshot, token, now);
        if let Some(check) = role_check(&snapshot, &decision, &explanation) {
            explanation.checks.push(check);
        }
        Report {
            request,
            snapshot,
            explanation,
            decision,
            remote,
        }
    }

    /// Judges `token` for `request` under a snapshot the caller already
    /// built, at `now`, with no `jwks_uri` fetched: the report `inspect`
    /// makes once its keys are loaded. The fuzz targets use it to hold the
    /// explanation to the verdict on arbitrary tokens.
    pub fn offline(snapshot: Arc<Snapshot>, request: RequestLine, token: &str, now: f64) -> Self {
        Self::new(snapshot, request, token, now, Vec::new())
    }

    /// Says whether the proxy would let the request through without
    /// counting a refusal: exit code 0.
    pub fn is_allowed(&self) -> bool {
        self.decision.is_allowed()
    }

    /// Returns the verdict as the access log would write it: `ok`, a
    /// refusal reason, or `-` when no token was needed.
    pub fn verdict(&self) -> &'static str {
        self.decision.verdict()
    }

    /// Says whether the explanation's first failing check names the
    /// verdict's reason, as it always should.
    pub fn is_consistent(&self) -> bool {
        match &self.decision.token {
            Some(Err(reason)) => self.explanation.first_failure() == Some(*reason),
            Some(Ok(Some(_))) => self.explanation.first_failure().is_none(),
            Some(Ok(None)) | None => true,
        }
    }
}

impl fmt::Debug for Report {
    // By hand: the snapshot holds keys, and the verdict is what a reader
    // of a debug line needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report")
            .field("request", &self.request)
            .field("verdict", &self.verdict())
            .field("allowed", &self.is_allowed())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        render::render(self, f)
    }
}

/// Loads the config and keys as `run` does, fetches each `jwks_uri` once,
/// and judges `token` for `request` against the clock.
pub async fn inspect(
    path: &Path,
    request: RequestLine,
    token: &str,
    env: &Env,
) -> Result<Report, InspectError> {
    let settings = crate::config::from_file(path)?;
    let state = Arc::new(State::try_new(settings, env, Metrics::new())?);
    fetch_remote_keys(&state).await;

    let snapshot = state.load();
    let remote = snapshot
        .settings
        .providers
        .iter()
        .filter_map(|provider| {
            let uri = provider.remote_jwks.as_ref()?.uri.value.to_string();
            let keys = state.remote_key_count(&provider.name)?;
            let provider = Arc::clone(&provider.name);
            Some(RemoteKeys {
                provider,
                uri,
                keys,
            })
        })
        .collect();
    Ok(Report::new(
        snapshot,
        request,
        token,
        clock::unix_now(),
        remote,
    ))
}

/// Fetches every `jwks_uri` once, each bounded by its fetch timeout, and
/// stops the refresh tasks that starting them leaves behind.
async fn fetch_remote_keys(state: &Arc<State>) {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    state.start_key_refresh(stopped, &mut tasks).await;
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
}

/// Reads the token: the argument, or stdin when it is absent or `-`.
///
/// Surrounding whitespace and a leading `Bearer ` are dropped, so a token
/// can be pasted straight from an `Authorization` header.
pub fn read_token(argument: Option<&str>, stdin: impl Read) -> Result<String, InspectError> {
    let text = match argument {
        Some(token) if token != "-" => token.to_owned(),
        _ => {
            let mut text = String::new();
            stdin
                .take(MAX_INPUT_BYTES)
                .read_to_string(&mut text)
                .map_err(InspectError::Stdin)?;
            text
        }
    };
    Ok(strip_scheme(text.trim()).to_owned())
}

/// Drops a leading `Bearer` scheme (any case) and the spaces after it.
fn strip_scheme(text: &str) -> &str {
    match text.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => text[7..].trim_start(),
        _ => text,
    }
}

/// Explains the rule's role check, using the identity the explainer
/// built; `None` when the rule needs no token.
fn role_check(
    snapshot: &Snapshot,
    decision: &Decision,
    explanation: &Explanation,
) -> Option<Check> {
    let rule = snapshot.rules.rules().get(decision.rule?)?;
    let Target::Protected { roles } = &rule.target else {
        return None;
    };
    let wanted = if roles.is_empty() {
        "the rule needs no role".to_owned()
    } else {
        format!(
            "the rule wants one of {}",
            text::list(roles.iter().map(String::as_str))
        )
    };
    let Some(identity) = &explanation.identity else {
        return Some(Check::skip("role", format!("not reached; {wanted}")));
    };
    let held = text::list(identity.roles.iter().map(|role| &**role));
    let detail = format!("holds {held}; {wanted}");
    Some(if rule.has_role(&identity.roles) {
        Check::pass("role", detail)
    } else {
        Check::fail("role", crate::auth::Reason::InsufficientRole, detail)
    })
}

#[cfg(test)]
mod tests;
