//! A JWKS endpoint the tests control: a real hyper server on 127.0.0.1:0,
//! plain or TLS (with a test CA made by rcgen), that can rotate keys, fail
//! in the ways real endpoints fail, go down and come back, and counts the
//! fetches it saw.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair as CertKeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use super::keys::{b64, signing_input};

/// An ES256 key that only the JWKS server publishes.
pub struct RemoteKey {
    kid: String,
    pair: EcdsaKeyPair,
}

impl RemoteKey {
    /// Generates a P-256 key with this key id.
    pub fn generate(kid: &str) -> Self {
        let pair =
            EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("p256 key");
        RemoteKey {
            kid: kid.to_owned(),
            pair,
        }
    }

    /// The public half as a JWK.
    pub fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..]),
        })
    }

    /// Mints an ES256 token with this key's id.
    pub fn mint(&self, claims: &Value) -> String {
        self.mint_as(&self.kid, claims)
    }

    /// Mints an ES256 token signed by this key but naming another key id.
    pub fn mint_as(&self, kid: &str, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
        let input = signing_input(&header, claims);
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("sign");
        format!("{input}.{}", b64(signature.as_ref()))
    }
}

/// A JWKS document holding these keys.
pub fn jwks_of(keys: &[&RemoteKey]) -> Value {
    json!({ "keys": keys.iter().map(|key| key.jwk()).collect::<Vec<_>>() })
}

/// What the endpoint answers.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this JWKS.
    Jwks(Value),
    /// This status and a short text body.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
}

#[derive(Clone)]
struct Behaviour {
    reply: Reply,
    etag: Option<String>,
    cache_control: Option<String>,
    delay: Option<Duration>,
}

#[derive(Default)]
struct Counts {
    fetches: AtomicUsize,
    conditional: AtomicUsize,
    not_modified: AtomicUsize,
}

/// A certificate authority for the tests, and a server certificate it
/// signed for 127.0.0.1 and localhost.
pub struct TestCa {
    /// The CA certificate, PEM: what `ca_file` must hold.
    pub ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

impl TestCa {
    /// Makes a CA and a server certificate.
    pub fn generate() -> Self {
        let ca_key = CertKeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("ca certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let server_key = CertKeyPair::generate().expect("server key");
        let server = CertificateParams::new(names)
            .expect("server params")
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        TestCa {
            ca_pem: ca.pem(),
            chain: vec![server.der().clone(), ca.der().clone()],
            key: server_key.serialize_der(),
        }
    }

    fn acceptor(&self) -> TlsAcceptor {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("tls versions")
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .expect("server certificate and key");
        TlsAcceptor::from(Arc::new(config))
    }
}

/// A running JWKS endpoint at `/jwks`.
pub struct JwksServer {
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    behaviour: Arc<Mutex<Behaviour>>,
    counts: Arc<Counts>,
    accept: Option<JoinHandle<()>>,
}

impl JwksServer {
    /// Starts a plain HTTP endpoint serving `jwks`.
    pub async fn start(jwks: Value) -> Self {
        Self::launch(jwks, None).await
    }

    /// Starts an HTTPS endpoint serving `jwks` with a certificate from `ca`.
    pub async fn start_tls(jwks: Value, ca: &TestCa) -> Self {
        Self::launch(jwks, Some(ca.acceptor())).await
    }

    async fn launch(jwks: Value, tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut server = JwksServer {
            addr: listener.local_addr().expect("address"),
            tls,
            behaviour: Arc::new(Mutex::new(Behaviour {
                reply: Reply::Jwks(jwks),
                etag: None,
                cache_control: None,
                delay: None,
            })),
            counts: Arc::default(),
            accept: None,
        };
        server.serve(listener);
        server
    }

    /// The URL of the JWKS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/jwks", self.addr)
    }

    /// How many requests reached the endpoint.
    pub fn fetches(&self) -> usize {
        self.counts.fetches.load(Ordering::SeqCst)
    }

    /// How many requests carried `If-None-Match`.
    pub fn conditional_fetches(&self) -> usize {
        self.counts.conditional.load(Ordering::SeqCst)
    }

    /// How many requests were answered 304.
    pub fn not_modified(&self) -> usize {
        self.counts.not_modified.load(Ordering::SeqCst)
    }

    /// Sets what the endpoint answers from now on.
    pub fn reply(&self, reply: Reply) {
        self.change(|behaviour| behaviour.reply = reply);
    }

    /// Sends this `ETag` and answers 304 to a request that names it.
    pub fn with_etag(&self, etag: &str) {
        let etag = etag.to_owned();
        self.change(|behaviour| behaviour.etag = Some(etag));
    }

    /// Sends this `Cache-Control` with every answer.
    pub fn with_cache_control(&self, value: &str) {
        let value = value.to_owned();
        self.change(|behaviour| behaviour.cache_control = Some(value));
    }

    /// Waits this long before answering (`None`: answer at once).
    pub fn with_delay(&self, delay: Option<Duration>) {
        self.change(|behaviour| behaviour.delay = delay);
    }

    /// Closes the listener and every connection: fetches are refused.
    pub fn go_down(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
    }

    /// Listens again on the same address.
    pub async fn come_back(&mut self) {
        // Aborting the accept task drops the listener when the task is
        // next polled; give it a moment before binding the port again.
        for _ in 0..50 {
            let socket = TcpSocket::new_v4().expect("socket");
            socket.set_reuseaddr(true).expect("reuseaddr");
            if socket.bind(self.addr).is_ok() {
                let listener = socket.listen(64).expect("listen");
                self.serve(listener);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("could not listen on {} again", self.addr);
    }

    fn change(&self, edit: impl FnOnce(&mut Behaviour)) {
        edit(&mut self.behaviour.lock().expect("behaviour lock"));
    }

    fn serve(&mut self, listener: TcpListener) {
        let tls = self.tls.clone();
        let behaviour = self.behaviour.clone();
        let counts = self.counts.clone();
        self.accept = Some(tokio::spawn(async move {
            // Dropped with this task, which aborts every connection.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let tls = tls.clone();
                let behaviour = behaviour.clone();
                let counts = counts.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| {
                        answer(request, behaviour.clone(), counts.clone())
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(tls) => {
                            let Ok(stream) = tls.accept(stream).await else {
                                return;
                            };
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        }));
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.go_down();
    }
}

async fn answer(
    request: Request<Incoming>,
    behaviour: Arc<Mutex<Behaviour>>,
    counts: Arc<Counts>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    counts.fetches.fetch_add(1, Ordering::SeqCst);
    let conditional = request.headers().get(IF_NONE_MATCH).cloned();
    if conditional.is_some() {
        counts.conditional.fetch_add(1, Ordering::SeqCst);
    }
    let behaviour = behaviour.lock().expect("behaviour lock").clone();
    if let Some(delay) = behaviour.delay {
        tokio::time::sleep(delay).await;
    }

    let mut response = match (&behaviour.reply, &behaviour.etag, conditional) {
        (Reply::Jwks(_), Some(etag), Some(sent)) if sent.as_bytes() == etag.as_bytes() => {
            counts.not_modified.fetch_add(1, Ordering::SeqCst);
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            response
        }
        (Reply::Jwks(jwks), _, _) => {
            let mut response = Response::new(Full::new(Bytes::from(jwks.to_string())));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, "application/json".parse().expect("value"));
            response
        }
        (Reply::Status(status), _, _) => {
            let mut response = Response::new(Full::new(Bytes::from_static(b"failing\n")));
            *response.status_mut() = StatusCode::from_u16(*status).expect("status");
            response
        }
        (Reply::Garbage, _, _) => Response::new(Full::new(Bytes::from_static(b"<html>oops"))),
    };
    let headers = response.headers_mut();
    if let (Some(etag), Reply::Jwks(_)) = (&behaviour.etag, &behaviour.reply) {
        headers.insert(ETAG, etag.parse().expect("etag"));
    }
    if let Some(value) = &behaviour.cache_control {
        headers.insert(CACHE_CONTROL, value.parse().expect("cache-control"));
    }
    Ok(response)
}
