//! The text `tollgate inspect` prints: the request, the token (never its
//! signature), each check on one line, and the verdict.

use std::fmt::{self, Formatter};

use super::Report;
use super::decode::{Decoded, Segment};
use super::explain::{Check, Mark};
use super::text::{escaped, pretty, quoted};
use crate::auth::rules::{self, Target};
use crate::config::EnforceMode;

/// Writes the whole report.
pub(super) fn render(report: &Report, f: &mut Formatter<'_>) -> fmt::Result {
    request(report, f)?;
    token(&report.explanation.decoded, f)?;
    remote_keys(report, f)?;
    checks(report, f)?;
    verdict(report, f)
}

fn request(report: &Report, f: &mut Formatter<'_>) -> fmt::Result {
    let decision = &report.decision;
    let Some(raw) = &report.request.path else {
        writeln!(
            f,
            "request: no --path given; judged under the default rule (a valid token, any role)"
        )?;
        return writeln!(f);
    };
    writeln!(f, "request: {} {}", report.request.method, quoted(raw))?;
    match &decision.path {
        Some(Ok(normalized)) if normalized == raw => line(f, "path", "ok", "already canonical")?,
        Some(Ok(normalized)) => line(
            f,
            "path",
            "ok",
            &format!("normalised to {}", quoted(normalized)),
        )?,
        Some(Err(error)) => line(f, "path", "FAIL", &format!("refused with 400: {error}"))?,
        None => line(f, "path", "-", "not reached: CONNECT is never served")?,
    }
    let rules = report.snapshot.rules.rules();
    if let Some(rule) = decision
        .rule
        .and_then(|at| rules.get(at).map(|rule| (at, rule)))
    {
        let (at, rule) = rule;
        let mode = rule.mode_or(report.snapshot.settings.mode);
        let mode = if mode == EnforceMode::ReportOnly {
            " [report_only]"
        } else {
            ""
        };
        let described = format!("{}. {}{mode}", at + 1, rules::describe(rule));
        line(f, "rule", "ok", &described)?;
    }
    writeln!(f)
}

fn token(decoded: &Decoded, f: &mut Formatter<'_>) -> fmt::Result {
    let signature = match decoded.signature_chars {
        Some(0) => "no signature".to_owned(),
        Some(chars) => format!("signature: {chars} characters, not shown"),
        None => format!("{} segments; no signature shown", decoded.segments),
    };
    writeln!(f, "token ({signature})")?;
    segment(f, "header", &decoded.header)?;
    segment(f, "claims", &decoded.claims)?;
    writeln!(f)
}

fn segment(f: &mut Formatter<'_>, name: &str, segment: &Segment) -> fmt::Result {
    match segment {
        Segment::Object(object) => {
            writeln!(f, "{name}:")?;
            writeln!(f, "{}", pretty(&serde_json::Value::Object(object.clone())))
        }
        Segment::Repeats(object) => {
            writeln!(f, "{name} (repeats a member; the last of each shown):")?;
            writeln!(f, "{}", pretty(&serde_json::Value::Object(object.clone())))
        }
        Segment::NotObject(value) => {
            writeln!(f, "{name} (JSON, not an object):")?;
            writeln!(f, "{}", pretty(value))
        }
        Segment::NotJson(text, _) => writeln!(f, "{name} (not JSON): {}", quoted(text)),
        Segment::NotBase64 => writeln!(f, "{name}: not base64url"),
        Segment::Absent => writeln!(f, "{name}: absent"),
    }
}

fn remote_keys(report: &Report, f: &mut Formatter<'_>) -> fmt::Result {
    if report.remote.is_empty() {
        return Ok(());
    }
    writeln!(
        f,
        "remote keys (each jwks_uri fetched once, as `run` does at start):"
    )?;
    for remote in &report.remote {
        let held = match remote.keys {
            0 => "no usable key (the fetch failed, or the set is empty)".to_owned(),
            1 => "1 key".to_owned(),
            count => format!("{count} keys"),
        };
        writeln!(f, "  {} {}: {held}", remote.provider, escaped(&remote.uri))?;
    }
    writeln!(f)
}

fn checks(report: &Report, f: &mut Formatter<'_>) -> fmt::Result {
    writeln!(f, "checks, in the order tollgate makes them:")?;
    let verdict = match &report.decision.token {
        Some(Err(reason)) => Some(*reason),
        _ => None,
    };
    let mut pointed = false;
    for check in &report.explanation.checks {
        let is_verdict = !pointed && verdict.is_some() && check_reason(check) == verdict;
        pointed |= is_verdict;
        let detail = if is_verdict {
            format!("{}  <- verdict", check.detail)
        } else {
            check.detail.clone()
        };
        line(f, check.name, mark(check.mark), &detail)?;
    }
    if !report.is_consistent() {
        writeln!(
            f,
            "note: the checks above do not account for the verdict below; the verdict is \
             what the proxy does. Please report this with the output."
        )?;
    }
    writeln!(f)
}

fn check_reason(check: &Check) -> Option<crate::auth::Reason> {
    match check.mark {
        Mark::Fail(reason) => Some(reason),
        _ => None,
    }
}

fn mark(mark: Mark) -> &'static str {
    match mark {
        Mark::Pass => "ok",
        Mark::Fail(_) => "FAIL",
        Mark::Skip => "-",
        Mark::Note => "note",
    }
}

fn verdict(report: &Report, f: &mut Formatter<'_>) -> fmt::Result {
    let decision = &report.decision;
    let result = match (&decision.answer, decision.reported) {
        (Some(_), _) => "refused",
        (None, true) => "reported (refused under enforce; report_only forwards it)",
        (None, false) => "allowed",
    };
    writeln!(f, "verdict: {result}")?;
    line(f, "reason", "", decision.verdict())?;
    match &decision.answer {
        Some(answer) => {
            let status = answer.status;
            let text = format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            );
            line(f, "status", "", text.trim_end())?;
            if let Some(challenge) = &answer.www_authenticate {
                line(f, "WWW-Authenticate", "", challenge)?;
            }
            if let Some(after) = &answer.retry_after {
                line(f, "Retry-After", "", after)?;
            }
        }
        None => line(f, "status", "", &forwarded_to(report))?,
    }
    identity_headers(report, f)?;
    if decision.verdict() == "unknown_kid" && has_remote_keys(report) {
        writeln!(
            f,
            "note: on an unknown kid the proxy fetches the jwks_uri once more; inspect \
             fetched it just now, so only a key published since would differ"
        )?;
    }
    Ok(())
}

/// Says whether the provider the token picked has a `jwks_uri`.
fn has_remote_keys(report: &Report) -> bool {
    let providers = report.snapshot.providers.list();
    let Some(picked) = report.explanation.provider.and_then(|at| providers.get(at)) else {
        return false;
    };
    report
        .remote
        .iter()
        .any(|remote| remote.provider == picked.name)
}

/// Says where a request that is not refused goes.
fn forwarded_to(report: &Report) -> String {
    let rule = report
        .decision
        .rule
        .and_then(|at| report.snapshot.rules.rules().get(at));
    let target = match rule.map(|rule| &rule.target) {
        Some(Target::AccountStore) => "the account store",
        _ => "the upstream",
    };
    format!("forwarded to {target}, whose answer the caller gets")
}

fn identity_headers(report: &Report, f: &mut Formatter<'_>) -> fmt::Result {
    let Some(identity) = report.decision.identity() else {
        return line(
            f,
            "identity headers",
            "",
            "none forwarded (and any the client sent are removed)",
        );
    };
    if identity.headers.is_empty() {
        return line(
            f,
            "identity headers",
            "",
            "none (no mapped claim is present)",
        );
    }
    for (at, (name, value)) in identity.headers.iter().enumerate() {
        let label = if at == 0 { "identity headers" } else { "" };
        let value = String::from_utf8_lossy(value.as_bytes());
        line(f, label, "", &format!("{name}: {}", escaped(&value)))?;
    }
    Ok(())
}

/// Writes one aligned line: a name, a mark (may be empty), the detail.
fn line(f: &mut Formatter<'_>, name: &str, mark: &str, detail: &str) -> fmt::Result {
    if mark.is_empty() {
        writeln!(f, "  {name:<18}{detail}")
    } else {
        writeln!(f, "  {name:<12}{mark:<6}{detail}")
    }
}
