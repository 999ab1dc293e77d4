//! The demo's stand-in service: answers with what it received.

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use crate::proxy::Body;
use crate::proxy::respond::full;

/// Answers with the method, path and headers of the request, as JSON.
pub(super) async fn handle(request: Request<Incoming>) -> Response<Body> {
    let mut headers = Map::new();
    for (name, value) in request.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers.insert(name.as_str().to_owned(), Value::String(value));
    }
    let body = json!({
        "method": request.method().as_str(),
        "path": request.uri().path(),
        "headers": headers,
    });
    let mut response = Response::new(full(body.to_string()));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
