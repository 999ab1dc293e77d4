//! The naive proxy of issue 4's table: hyper, hyper-util's pooled client
//! and jsonwebtoken, written the obvious way and nothing more.
//!
//! The load benchmark measures it beside tollgate to separate what the
//! HTTP libraries cost from what tollgate adds. It keeps no token cache,
//! writes no log, keeps no metrics and reads no config file; with a key it
//! verifies every token (algorithm, issuer, audience, expiry, signature)
//! and sets `X-User-Id` from `sub` in place of the client's, as the
//! HAProxy rows do. It is a measuring stick, not a product: never run it
//! in front of anything.
//!
//!     naive-proxy LISTEN_PORT UPSTREAM_PORT
//!     naive-proxy LISTEN_PORT UPSTREAM_PORT ALG KEY_FILE ISSUER AUDIENCE
//!
//! `ALG` is HS256, RS256 or ES256; `KEY_FILE` holds the key as one JWK
//! (the secret as an `oct` key for HS256). It listens on 127.0.0.1 only and
//! runs on tokio's default multi-threaded runtime
//! (`TOKIO_WORKER_THREADS` sets its size).

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::net::TcpListener;

type Body = Either<Incoming, Full<Bytes>>;

const USER_ID: HeaderName = HeaderName::from_static("x-user-id");

/// What every connection shares.
struct Proxy {
    upstream: String,
    client: Client<HttpConnector, Incoming>,
    check: Option<(DecodingKey, Validation)>,
}

/// The claims it reads: only the one it forwards.
#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (listen, upstream, check) = match args.as_slice() {
        [listen, upstream] => (listen, upstream, None),
        [listen, upstream, alg, key, issuer, audience] => {
            (listen, upstream, Some(checker(alg, key, issuer, audience)?))
        }
        _ => return Err("usage: naive-proxy LISTEN UPSTREAM [ALG KEY ISSUER AUDIENCE]".into()),
    };

    let proxy = Arc::new(Proxy {
        upstream: format!("http://127.0.0.1:{upstream}"),
        client: Client::builder(TokioExecutor::new()).build_http(),
        check,
    });
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, listen.parse::<u16>()?));
    let listener = TcpListener::bind(address).await?;

    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(proxy.handle(request).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Builds the key and the checks for `alg` from the command line.
fn checker(
    alg: &str,
    key: &str,
    issuer: &str,
    audience: &str,
) -> Result<(DecodingKey, Validation), Box<dyn std::error::Error>> {
    let alg: Algorithm = alg.parse()?;
    let jwk: Jwk = serde_json::from_slice(&std::fs::read(key)?)?;
    let key = DecodingKey::from_jwk(&jwk)?;
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    // jsonwebtoken checks `iss` and `aud` only when the token carries them:
    // without this, a token signed with the key but naming no issuer or no
    // audience would pass, and the row would check less than it claims.
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    Ok((key, validation))
}

impl Proxy {
    /// Checks the token if it has a key, then forwards.
    async fn handle(&self, mut request: Request<Incoming>) -> Response<Body> {
        if let Some((key, validation)) = &self.check {
            let Some(sub) = subject(&request, key, validation) else {
                return refused();
            };
            request.headers_mut().insert(USER_ID, sub);
        }

        let target = match request.uri().path_and_query() {
            Some(path) => format!("{}{path}", self.upstream),
            None => format!("{}/", self.upstream),
        };
        match target.parse::<Uri>() {
            Ok(uri) => *request.uri_mut() = uri,
            Err(_) => return status(StatusCode::BAD_REQUEST),
        }
        match self.client.request(request).await {
            Ok(response) => response.map(Either::Left),
            Err(_) => status(StatusCode::BAD_GATEWAY),
        }
    }
}

/// Returns the verified token's `sub` as a header value, or None.
fn subject(
    request: &Request<Incoming>,
    key: &DecodingKey,
    validation: &Validation,
) -> Option<HeaderValue> {
    let header = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let token = header.strip_prefix("Bearer ")?;
    let data = jsonwebtoken::decode::<Claims>(token, key, validation).ok()?;
    HeaderValue::from_str(&data.claims.sub).ok()
}

fn refused() -> Response<Body> {
    let mut response = status(StatusCode::UNAUTHORIZED);
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::new())));
    *response.status_mut() = code;
    response
}
