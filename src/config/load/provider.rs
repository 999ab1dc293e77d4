//! Checks for `[[providers]]`: names, algorithms, where the keys come from,
//! and the identity headers each provider's claims fill.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use toml::Spanned;

mod remote;

use super::{Document, revoke, shape, values};
use crate::config::raw::{ClaimHeaders, ProviderConfig, StringList};
use crate::config::{ClaimPath, ConfigError, Located, ProviderSettings, SecretSource};

/// The most clock skew a provider may allow. More than a few minutes would
/// keep expired tokens alive long enough to matter.
const MAX_LEEWAY: Duration = Duration::from_secs(5 * 60);

/// Headers a claim may never set: tollgate sets or strips them itself, or
/// they steer how HTTP frames and routes the message. Written in folded form
/// (see [`fold_header`]).
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "content-type",
    "content-encoding",
    "cookie",
    "set-cookie",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-request-id",
];

/// Checks every provider, then that names and issuers are unique: a token's
/// `iss` must pick exactly one provider.
pub(super) fn check_all(
    doc: Document<'_>,
    list: &Spanned<Vec<Spanned<ProviderConfig>>>,
) -> Result<Vec<ProviderSettings>, ConfigError> {
    if list.get_ref().is_empty() {
        let message = "at least one provider is required";
        return Err(doc.invalid(list.span(), "providers", message));
    }
    let mut providers: Vec<ProviderSettings> = Vec::with_capacity(list.get_ref().len());
    for (index, table) in list.get_ref().iter().enumerate() {
        let provider = check(doc, index, table)?;
        let raw = table.get_ref();
        if let Some(at) = providers.iter().position(|p| p.name == provider.name) {
            let message = format!(
                "{:?} is already the name of providers[{at}]",
                raw.name.get_ref()
            );
            return Err(doc.invalid(raw.name.span(), &field(index, "name"), message));
        }
        if let Some(at) = providers.iter().position(|p| p.issuer == provider.issuer) {
            let issuer = raw.issuer.get_ref();
            let message = format!("{issuer:?} is already the issuer of providers[{at}]");
            return Err(doc.invalid(raw.issuer.span(), &field(index, "issuer"), message));
        }
        providers.push(provider);
    }
    Ok(providers)
}

/// Formats the key of one provider field, such as `providers[0].leeway`.
pub(super) fn field(index: usize, name: &str) -> String {
    format!("providers[{index}].{name}")
}

/// Checks one provider, field by field, then how its fields fit together.
fn check(
    doc: Document<'_>,
    index: usize,
    table: &Spanned<ProviderConfig>,
) -> Result<ProviderSettings, ConfigError> {
    let raw = table.get_ref();
    let name = raw.name.get_ref();
    if !values::is_name(name) {
        let message = format!("{name:?} must be a non-empty name of A-Z, a-z, 0-9, '.', '_', '-'");
        return Err(doc.invalid(raw.name.span(), &field(index, "name"), message));
    }
    if raw.issuer.get_ref().is_empty() {
        let message = "an empty issuer is not allowed";
        return Err(doc.invalid(raw.issuer.span(), &field(index, "issuer"), message));
    }
    let audiences =
        values::non_empty_strings(doc, &raw.audiences, &field(index, "audiences"), "audience")?;
    let algorithms = algorithms(doc, &raw.algorithms, &field(index, "algorithms"))?;

    let secret = secret(doc, index, raw)?;
    let jwks_file = raw
        .jwks_file
        .as_ref()
        .map(|path| file_path(doc, path, field(index, "jwks_file")))
        .transpose()?;
    let remote_jwks = remote::remote_jwks(doc, index, raw)?;
    let public_source = match (&jwks_file, &remote_jwks) {
        (Some(_), Some(_)) => Some("jwks_file and jwks_uri are"),
        (Some(_), None) => Some("jwks_file is"),
        (None, Some(_)) => Some("jwks_uri is"),
        (None, None) => None,
    };
    let key = format!("providers[{index}]");
    check_key_sources(&algorithms, secret.as_ref(), public_source)
        .map_err(|message| doc.invalid(table.span(), &key, message))?;

    let claim_to_headers = claim_headers(doc, &raw.claim_to_headers, index)?;
    let shape = shape::check(doc, index, raw, jwks_file.is_some(), &claim_to_headers)?;

    Ok(ProviderSettings {
        name: Arc::from(name.as_str()),
        issuer: raw.issuer.get_ref().clone(),
        audiences,
        audience_claim: shape.audience_claim,
        algorithms,
        secret,
        jwks_file,
        keys_format: shape.keys_format,
        remote_jwks,
        leeway: leeway(doc, &raw.leeway, &field(index, "leeway"))?,
        roles_claim: shape.roles_claim,
        roles_header: shape.roles_header,
        require_sub: raw.require_sub,
        claim_to_headers,
        revoke: revoke::check(doc, index, &raw.revoke)?,
    })
}

// --- algorithms and keys ----------------------------------------------------

/// Parses the algorithm allowlist, refusing duplicates.
fn algorithms(
    doc: Document<'_>,
    list: &Spanned<Vec<Spanned<String>>>,
    key: &str,
) -> Result<Vec<Algorithm>, ConfigError> {
    if list.get_ref().is_empty() {
        return Err(doc.invalid(list.span(), key, "at least one algorithm is required"));
    }
    let mut algorithms = Vec::with_capacity(list.get_ref().len());
    for item in list.get_ref() {
        let algorithm = algorithm(item.get_ref()).map_err(|m| doc.invalid(item.span(), key, m))?;
        if algorithms.contains(&algorithm) {
            let message = format!("{:?} is listed twice", item.get_ref());
            return Err(doc.invalid(item.span(), key, message));
        }
        algorithms.push(algorithm);
    }
    Ok(algorithms)
}

/// Parses one algorithm name. `none` gets its own message, because it is
/// the one name an attacker hopes a verifier will take.
fn algorithm(name: &str) -> Result<Algorithm, String> {
    if name.eq_ignore_ascii_case("none") {
        return Err(format!(
            "{name:?} is refused: unsigned tokens are never accepted"
        ));
    }
    name.parse().map_err(|_| {
        format!(
            "{name:?} is not a supported algorithm; use HS256, HS384, HS512, RS256, RS384, \
             RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA"
        )
    })
}

/// Reads `secret_env` or `secret_file`, at most one of them, each a name or
/// a list of names. The secrets themselves are not read here: loading keys
/// is `keys`'s job, and a config check must not need them to be present.
fn secret(
    doc: Document<'_>,
    index: usize,
    raw: &ProviderConfig,
) -> Result<Option<Located<SecretSource>>, ConfigError> {
    match (&raw.secret_env, &raw.secret_file) {
        (None, None) => Ok(None),
        (Some(_), Some(file)) => {
            let message = "set secret_env or secret_file, not both";
            Err(doc.invalid(file.span(), &field(index, "secret_file"), message))
        }
        (Some(env), None) => {
            let key = field(index, "secret_env");
            let names = secret_names(env.get_ref(), "environment variable name", |name| {
                // The platform refuses these in variable names, so such a
                // variable could never be set.
                !name.is_empty() && !name.contains(['=', '\0'])
            })
            .map_err(|message| doc.invalid(env.span(), &key, message))?;
            Ok(Some(doc.locate(SecretSource::Env(names), &env.span(), key)))
        }
        (None, Some(file)) => {
            let key = field(index, "secret_file");
            let paths = secret_names(file.get_ref(), "path", |path| !path.is_empty())
                .map_err(|message| doc.invalid(file.span(), &key, message))?;
            let paths = paths.into_iter().map(PathBuf::from).collect();
            Ok(Some(doc.locate(
                SecretSource::File(paths),
                &file.span(),
                key,
            )))
        }
    }
}

/// Checks a list of secret places: not empty, each one usable, none twice
/// (a repeat is a sign that the rotation edit went wrong).
fn secret_names(
    list: &StringList,
    what: &str,
    is_usable: impl Fn(&str) -> bool,
) -> Result<Vec<String>, String> {
    if list.0.is_empty() {
        return Err(format!(
            "an empty list names no secret; give at least one {what}"
        ));
    }
    let mut names: Vec<String> = Vec::with_capacity(list.0.len());
    for name in &list.0 {
        if !is_usable(name) {
            return Err(format!("{name:?} is not a usable {what}"));
        }
        if names.contains(name) {
            return Err(format!("{name:?} is listed twice"));
        }
        names.push(name.clone());
    }
    Ok(names)
}

/// Keeps a file path as written; relative paths resolve against the
/// working directory when the file is read.
pub(super) fn file_path(
    doc: Document<'_>,
    value: &Spanned<String>,
    key: String,
) -> Result<Located<PathBuf>, ConfigError> {
    if value.get_ref().is_empty() {
        return Err(doc.invalid(value.span(), &key, "an empty path is not allowed"));
    }
    let path = PathBuf::from(value.get_ref());
    Ok(doc.locate(path, &value.span(), key))
}

/// Checks that the algorithms and the key sources fit: each algorithm needs
/// somewhere to find its key, and each key source must serve some allowed
/// algorithm, since a key nobody can use is a sign of a typo.
///
/// `public_source` names the public-key sources set, as the subject of a
/// sentence (`"jwks_uri is"`), or is `None` when there are none.
fn check_key_sources(
    algorithms: &[Algorithm],
    secret: Option<&Located<SecretSource>>,
    public_source: Option<&str>,
) -> Result<(), String> {
    let is_hmac = |a: &&Algorithm| a.family() == AlgorithmFamily::Hmac;
    let first_hmac = algorithms.iter().find(is_hmac);
    let first_public = algorithms.iter().find(|a| !is_hmac(a));
    if secret.is_none() && public_source.is_none() {
        return Err("no key source: set secret_env, secret_file, jwks_file or jwks_uri".to_owned());
    }
    if let (Some(algorithm), None) = (first_hmac, secret) {
        return Err(format!(
            "algorithms allows {algorithm:?} but neither secret_env nor secret_file is set"
        ));
    }
    if let (Some(algorithm), None) = (first_public, public_source) {
        return Err(format!(
            "algorithms allows {algorithm:?} but neither jwks_file nor jwks_uri is set"
        ));
    }
    if let (Some(secret), None) = (secret, first_hmac) {
        return Err(format!(
            "{} is set but algorithms allows no HMAC algorithm",
            secret_field(&secret.value)
        ));
    }
    if let (Some(source), None) = (public_source, first_public) {
        return Err(format!(
            "{source} set but algorithms allows no public-key algorithm"
        ));
    }
    Ok(())
}

/// Names the key a secret source was written under.
fn secret_field(source: &SecretSource) -> &'static str {
    match source {
        SecretSource::Env(_) => "secret_env",
        SecretSource::File(_) => "secret_file",
    }
}

/// Parses the leeway, capped at [`MAX_LEEWAY`].
fn leeway(doc: Document<'_>, value: &Spanned<String>, key: &str) -> Result<Duration, ConfigError> {
    let leeway = values::duration(doc, value, key)?;
    if leeway > MAX_LEEWAY {
        let message = format!("{:?} is more than the 5m allowed", value.get_ref());
        return Err(doc.invalid(value.span(), key, message));
    }
    Ok(leeway)
}

// --- claims and headers -----------------------------------------------------

/// Parses a claim name, which must not be empty.
pub(super) fn claim_path(
    doc: Document<'_>,
    value: &Spanned<String>,
    key: &str,
) -> Result<ClaimPath, ConfigError> {
    if value.get_ref().is_empty() {
        return Err(doc.invalid(value.span(), key, "an empty claim name is not allowed"));
    }
    Ok(ClaimPath::parse(value.get_ref()))
}

/// Checks the identity headers, in file order.
///
/// Names are compared folded (lower case, `_` as `-`): many servers and
/// CGI-style frameworks treat `X-User_Id` and `x-user-id` as one header, so
/// two such entries would let one claim shadow another.
fn claim_headers(
    doc: Document<'_>,
    headers: &ClaimHeaders,
    index: usize,
) -> Result<Vec<(HeaderName, ClaimPath)>, ConfigError> {
    let mut checked: Vec<(HeaderName, ClaimPath)> = Vec::with_capacity(headers.0.len());
    let mut folded: Vec<(String, &str)> = Vec::with_capacity(headers.0.len());
    for (name, claim) in &headers.0 {
        let written = name.get_ref();
        let key = format!("{}.{}", field(index, "claim_to_headers"), toml_key(written));
        let header = header_name(written).map_err(|m| doc.invalid(name.span(), &key, m))?;
        let fold = fold_header(written);
        if let Some((_, earlier)) = folded.iter().find(|(seen, _)| *seen == fold) {
            let message = format!(
                "{written:?} clashes with {earlier:?}: header names ignore case and \
                 '_' is often read as '-'"
            );
            return Err(doc.invalid(name.span(), &key, message));
        }
        let path = claim_path(doc, claim, &key)?;
        folded.push((fold, written));
        checked.push((header, path));
    }
    Ok(checked)
}

/// Parses a header name a claim may set.
pub(super) fn header_name(written: &str) -> Result<HeaderName, String> {
    let header = HeaderName::from_bytes(written.as_bytes())
        .map_err(|_| format!("{written:?} is not a valid header name"))?;
    if RESERVED_HEADERS.contains(&fold_header(written).as_str()) {
        return Err(format!(
            "{written:?} is reserved: tollgate or HTTP itself manages it"
        ));
    }
    Ok(header)
}

/// Folds a header name the way lenient servers compare them.
pub(super) fn fold_header(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// Writes a table key as TOML would need it in a dotted key: bare when it
/// can be, quoted otherwise.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}
