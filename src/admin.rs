//! The admin listener: `/health`, `/ready` and `/metrics`.
//!
//! It is a separate listener so that probes and scrapes never share a port
//! with proxied traffic, and so that proxied clients can never reach it.

use std::sync::Arc;

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::proxy::Body;
use crate::proxy::respond::full;
use crate::state::State;

/// Answers one admin request.
pub fn handle(request: &Request<Incoming>, state: &Arc<State>) -> Response<Body> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match request.uri().path() {
        "/health" => text(StatusCode::OK, "ok\n"),
        "/ready" => {
            if state.load().is_ready() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: a provider has no keys\n",
                )
            }
        }
        "/metrics" => {
            state.metrics.cache_entries.set(state.cache.len() as f64);
            state.record_key_ages();
            let mut response = Response::new(full(state.metrics.render()));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// How long `tollgate health` waits for the admin listener.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Says why a health probe got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Connecting or talking to the admin listener failed.
    #[error("no answer: {0}")]
    Request(#[from] hyper_util::client::legacy::Error),
    /// It did not answer within the probe timeout.
    #[error("no answer within {PROBE_TIMEOUT:?}")]
    Timeout,
}

/// Asks an admin endpoint for its status, as `tollgate health` does for a
/// container health check.
pub async fn probe(url: &http::Uri) -> Result<StatusCode, ProbeError> {
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let answer = tokio::time::timeout(PROBE_TIMEOUT, client.get(url.clone()))
        .await
        .map_err(|_| ProbeError::Timeout)??;
    Ok(answer.status())
}
