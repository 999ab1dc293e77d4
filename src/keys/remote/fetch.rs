//! One fetch of a JWKS over HTTP(S): the request, the answer, and what the
//! answer means.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, ETAG, IF_NONE_MATCH, USER_AGENT};
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::RemoteJwksSettings;
use crate::keys::{KeyDocumentError, KeyError, ParsedJwks, parse_key_document};

/// The largest JWKS accepted. Real ones are a few kilobytes; the cap keeps
/// a broken or hostile endpoint from filling memory.
const MAX_BODY_BYTES: usize = 1024 * 1024;

const USER_AGENT_VALUE: &str = concat!("tollgate/", env!("CARGO_PKG_VERSION"));

/// Says why a fetch gave no usable key set.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request could not be sent or answered: DNS, connection, TLS.
    #[error("request failed")]
    Request(#[source] hyper_util::client::legacy::Error),
    /// No complete answer within the fetch timeout.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// An answer other than 200 or 304.
    #[error("unexpected status {0}")]
    Status(StatusCode),
    /// The body could not be read to its end.
    #[error("reading the body failed")]
    Body(#[source] Box<dyn Error + Send + Sync>),
    /// The body is larger than any real JWKS.
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// The body is neither a JWKS nor an x509 map (the shape decides, as
    /// issuers serve either at a URL).
    #[error(transparent)]
    Document(#[from] KeyDocumentError),
    /// A JWKS, but without a single key tollgate can use.
    #[error("no usable key ({0})")]
    NoUsableKey(String),
    /// 304 although no key set is held that it could refer to.
    #[error("304 Not Modified, but no key set is held")]
    UnexpectedNotModified,
}

/// What a successful fetch brought.
pub(super) enum Fetched {
    /// 200 with a usable key set.
    Keys {
        /// The document as received, to tell a changed key set from the
        /// same one served again.
        body: Bytes,
        /// Its keys.
        parsed: ParsedJwks,
        /// The validator to send next time.
        etag: Option<HeaderValue>,
        /// The `Cache-Control` lifetime, if the endpoint gave one.
        max_age: Option<Duration>,
    },
    /// 304: the key set held is still current.
    NotModified {
        /// The `Cache-Control` lifetime, if the endpoint gave one.
        max_age: Option<Duration>,
    },
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Sends the requests of one JWKS URL.
pub(super) struct Fetcher {
    client: HttpsClient,
    uri: Uri,
    timeout: Duration,
}

impl Fetcher {
    /// Builds the client; `https` URLs get the system roots and the CA
    /// file, plain `http` ones need neither.
    pub(super) fn try_new(settings: &RemoteJwksSettings) -> Result<Self, KeyError> {
        let uri = settings.uri.value.clone();
        let tls = if uri.scheme_str() == Some("https") {
            crate::tls::client_config(settings.ca_file.as_ref(), None, &settings.uri.key)?
        } else {
            crate::tls::client_config_without_roots()
        };

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(settings.fetch_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);

        Ok(Fetcher {
            client,
            uri,
            timeout: settings.fetch_timeout,
        })
    }

    /// Fetches the JWKS, conditionally when `etag` is given.
    pub(super) async fn fetch(&self, etag: Option<&HeaderValue>) -> Result<Fetched, FetchError> {
        tokio::time::timeout(self.timeout, self.exchange(etag))
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))?
    }

    async fn exchange(&self, etag: Option<&HeaderValue>) -> Result<Fetched, FetchError> {
        let mut request = Request::get(self.uri.clone())
            .header(
                ACCEPT,
                HeaderValue::from_static("application/jwk-set+json, application/json"),
            )
            .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
            .body(Empty::new())
            .expect("a GET of a checked URI with static headers is a valid request");
        if let Some(etag) = etag {
            request.headers_mut().insert(IF_NONE_MATCH, etag.clone());
        }

        let response = self
            .client
            .request(request)
            .await
            .map_err(FetchError::Request)?;
        let (parts, body) = response.into_parts();
        let max_age = max_age(&parts.headers);
        match parts.status {
            StatusCode::OK => {}
            StatusCode::NOT_MODIFIED if etag.is_some() => {
                return Ok(Fetched::NotModified { max_age });
            }
            StatusCode::NOT_MODIFIED => return Err(FetchError::UnexpectedNotModified),
            status => return Err(FetchError::Status(status)),
        }

        let body = Limited::new(body, MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|error| {
                if error.is::<http_body_util::LengthLimitError>() {
                    FetchError::TooLarge
                } else {
                    FetchError::Body(error)
                }
            })?
            .to_bytes();
        let parsed = parse_key_document(&body, None)?;
        if parsed.keys.is_empty() {
            let why = match parsed.skipped.first() {
                Some(first) => format!("first skipped: {first}"),
                None => "the key set is empty".to_owned(),
            };
            return Err(FetchError::NoUsableKey(why));
        }
        Ok(Fetched::Keys {
            body,
            parsed,
            etag: parts.headers.get(ETAG).cloned(),
            max_age,
        })
    }
}

/// Reads how long the answer may be cached, from `Cache-Control`.
///
/// `no-cache` and `no-store` count as a lifetime of zero, which the
/// schedule then raises to `min_refetch_interval`. Directive names are
/// matched without regard to case, and a quoted value is accepted, as
/// RFC 9111 section 5.2 asks of a recipient.
pub(super) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found = None;
    let directives = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for directive in directives {
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            found = value
                .and_then(|seconds| seconds.parse::<u64>().ok())
                .map(Duration::from_secs);
        }
    }
    found
}

/// Writes an error and its sources on one line, for log fields.
///
/// A source whose text its parent already shows is skipped, so wrappers
/// that repeat their cause do not print it twice.
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut written = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !written.contains(&text) {
                written.push_str(": ");
                written.push_str(&text);
            }
            source = cause.source();
        }
        f.write_str(&written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CACHE_CONTROL, HeaderValue::from_str(value).expect("value"));
        }
        headers
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        let read = |values: &[&str]| max_age(&headers(values));
        assert_eq!(
            read(&["public, max-age=300"]),
            Some(Duration::from_secs(300))
        );
        assert_eq!(read(&["Max-Age=\"60\""]), Some(Duration::from_secs(60)));
        assert_eq!(read(&["public", "max-age=7"]), Some(Duration::from_secs(7)));
        assert_eq!(read(&["max-age=300, no-cache"]), Some(Duration::ZERO));
        assert_eq!(read(&["no-store"]), Some(Duration::ZERO));
        assert_eq!(read(&["max-age=soon"]), None);
        assert_eq!(read(&["public"]), None);
        assert_eq!(read(&[]), None);
    }

    #[test]
    fn an_error_chain_is_written_once_per_cause() {
        let json = serde_json::from_slice::<serde_json::Value>(b"nope").expect_err("not JSON");
        let error = FetchError::Document(KeyDocumentError::Json(json));
        let text = ErrorChain(&error).to_string();
        assert!(text.starts_with("not valid JSON: "), "{text}");
        assert_eq!(text.matches("expected").count(), 1, "{text}");
    }
}
