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
