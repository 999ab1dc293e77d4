//! Checks for a provider's remote JWKS: `jwks_uri` and the keys that say
//! how often it is fetched, how long a stale copy may serve, and which CAs
//! are trusted for it.

use http::Uri;
use toml::Spanned;

use super::{field, file_path};
use crate::config::load::{Document, is_written, values};
use crate::config::raw::ProviderConfig;
use crate::config::{ConfigError, RemoteJwksSettings};

/// Reads `jwks_uri` and its companions; `None` when no `jwks_uri` is set.
///
/// A companion key written without `jwks_uri` is refused rather than
/// ignored: it most likely means the `jwks_uri` line was lost or misspelt.
pub(super) fn remote_jwks(
    doc: Document<'_>,
    index: usize,
    raw: &ProviderConfig,
) -> Result<Option<RemoteJwksSettings>, ConfigError> {
    let Some(written_uri) = &raw.jwks_uri else {
        refuse_companions(doc, index, raw)?;
        return Ok(None);
    };
    let uri_key = field(index, "jwks_uri");
    let uri = jwks_uri(doc, written_uri, &uri_key)?;

    let refresh_key = field(index, "jwks_refresh_interval");
    let refresh_interval =
        values::positive_duration(doc, &raw.jwks_refresh_interval, &refresh_key)?;
    let min_key = field(index, "min_refetch_interval");
    let min_refetch_interval = values::positive_duration(doc, &raw.min_refetch_interval, &min_key)?;
    if min_refetch_interval > refresh_interval {
        let message = format!(
            "{:?} is longer than jwks_refresh_interval ({:?})",
            raw.min_refetch_interval.get_ref(),
            raw.jwks_refresh_interval.get_ref()
        );
        return Err(doc.invalid(raw.min_refetch_interval.span(), &min_key, message));
    }
    let max_stale = values::positive_duration(doc, &raw.max_stale, &field(index, "max_stale"))?;
    let timeout_key = field(index, "jwks_fetch_timeout");
    let fetch_timeout = values::positive_duration(doc, &raw.jwks_fetch_timeout, &timeout_key)?;

    let ca_file = match &raw.ca_file {
        None => None,
        Some(path) if uri.scheme_str() != Some("https") => {
            let message = "ca_file is set but jwks_uri is plain http";
            return Err(doc.invalid(path.span(), &field(index, "ca_file"), message));
        }
        Some(path) => Some(file_path(doc, path, field(index, "ca_file"))?),
    };

    Ok(Some(RemoteJwksSettings {
        uri: doc.locate(uri, &written_uri.span(), uri_key),
        refresh_interval,
        min_refetch_interval,
        max_stale,
        fetch_timeout,
        ca_file,
    }))
}

/// Refuses the companion keys of `jwks_uri` when it is not set.
fn refuse_companions(
    doc: Document<'_>,
    index: usize,
    raw: &ProviderConfig,
) -> Result<(), ConfigError> {
    let written = [
        ("jwks_refresh_interval", Some(&raw.jwks_refresh_interval)),
        ("min_refetch_interval", Some(&raw.min_refetch_interval)),
        ("max_stale", Some(&raw.max_stale)),
        ("jwks_fetch_timeout", Some(&raw.jwks_fetch_timeout)),
        ("ca_file", raw.ca_file.as_ref()),
    ];
    for (name, value) in written {
        if let Some(value) = value.filter(|value| is_written(&value.span())) {
            let message = format!("{name} is set but jwks_uri is not");
            return Err(doc.invalid(value.span(), &field(index, name), message));
        }
    }
    Ok(())
}

/// Parses the JWKS URL: `http` or `https`, a host, any path and query.
///
/// A fragment is refused because it is never sent, so it can only be a
/// mistake; user info is refused because credentials do not belong in a
/// config file that is logged and shared.
fn jwks_uri(doc: Document<'_>, value: &Spanned<String>, key: &str) -> Result<Uri, ConfigError> {
    let fail = |message: String| doc.invalid(value.span(), key, message);
    let text = value.get_ref();
    let uri: Uri = text
        .parse()
        .map_err(|error| fail(format!("{text:?} is not a URL: {error}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            return Err(fail(format!(
                "scheme {other:?} is not supported; use https or http"
            )));
        }
        None => {
            return Err(fail(format!(
                "{text:?} has no scheme; write it like \"https://issuer.example/jwks.json\""
            )));
        }
    }
    values::check_authority(text, &uri).map_err(fail)?;
    if text.contains('#') {
        return Err(fail(format!("{text:?} may not have a fragment")));
    }
    Ok(uri)
}
