//! TLS for the tests: a certificate authority made with rcgen that issues
//! server and client certificates, an HTTPS client that picks its protocol
//! through ALPN and reports the certificate it was shown, and an echo
//! upstream behind TLS that may require a client certificate.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::{BodyExt, Empty};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::Answer;
use super::upstream::{Behaviour, answer};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

// --- TestPki ---

/// A certificate authority for one test.
pub struct TestPki {
    ca: CertificateDer<'static>,
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate the test CA issued, with its key.
pub struct Leaf {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate, DER: what a peer is shown.
    pub der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl TestPki {
    /// Makes a CA.
    pub fn generate() -> Self {
        let key = KeyPair::generate().expect("ca key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "tollgate test ca");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = params.self_signed(&key).expect("ca certificate");
        TestPki {
            ca: ca.der().clone(),
            ca_pem: ca.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate, PEM: what a `ca_file` holds.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Issues a certificate named `common_name`, for 127.0.0.1 and
    /// localhost; usable by a server or a client.
    pub fn issue(&self, common_name: &str) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let certificate = params.signed_by(&key, &self.issuer).expect("leaf");
        Leaf {
            cert_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            der: certificate.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// A root store holding only this CA.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).expect("ca certificate");
        roots
    }
}

impl Leaf {
    /// Server settings presenting this certificate; with `client_ca`,
    /// clients must present a certificate that CA issued.
    pub fn server_config(&self, client_ca: Option<&TestPki>) -> ServerConfig {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("tls versions");
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()), provider())
                        .build()
                        .expect("client verifier");
                builder.with_client_cert_verifier(verifier)
            }
        };
        builder
            .with_single_cert(vec![self.der.clone()], key)
            .expect("certificate and key")
    }
}

// --- HTTPS client ---

/// What one HTTPS exchange showed.
pub struct Exchange {
    /// The response, fully read.
    pub answer: Answer,
    /// The HTTP version of the response.
    pub version: Version,
    /// The protocol ALPN picked.
    pub alpn: Option<Vec<u8>>,
    /// The certificate the server presented (its leaf).
    pub peer: CertificateDer<'static>,
}

/// Sends a GET for `path` to `addr` over a new TLS connection that trusts
/// `roots`, offering `alpn`, with an optional bearer token. HTTP/2 when
/// ALPN picks `h2`, HTTP/1.1 otherwise.
pub async fn https_get(
    addr: SocketAddr,
    roots: RootCertStore,
    alpn: &[&[u8]],
    path: &str,
    token: Option<&str>,
) -> Exchange {
    let exchange = async {
        let stream = connect(addr, roots, alpn).await.expect("tls handshake");
        let (_, session) = stream.get_ref();
        let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
        let peer = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .expect("the server shows a certificate")
            .clone()
            .into_owned();

        let is_h2 = alpn.as_deref() == Some(b"h2");
        let uri = if is_h2 {
            format!("https://localhost{path}")
        } else {
            path.to_owned()
        };
        let mut request = Request::get(uri).header("host", "localhost");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(Empty::<Bytes>::new()).expect("request");
        let io = TokioIo::new(stream);
        let response = if is_h2 {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .expect("h2 handshake");
            tokio::spawn(connection);
            sender.send_request(request).await.expect("h2 response")
        } else {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .expect("http1 handshake");
            tokio::spawn(connection);
            sender.send_request(request).await.expect("http1 response")
        };

        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body read").to_bytes();
        Exchange {
            answer: Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            },
            version: parts.version,
            alpn,
            peer,
        }
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("an answer within 10s")
}

/// Opens a TLS connection to `addr` as `localhost`, trusting `roots`.
pub async fn connect(
    addr: SocketAddr,
    roots: RootCertStore,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|name| name.to_vec()).collect();
    let stream = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("server name");
    TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
}

// --- TlsUpstream ---

/// The echo upstream (see `upstream.rs`) behind TLS. It remembers the
/// client certificate of each connection whose handshake completed.
pub struct TlsUpstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    client_certificates: Arc<Mutex<Vec<CertificateDer<'static>>>>,
}

impl TlsUpstream {
    /// Starts it with `config` (see [`Leaf::server_config`]).
    pub async fn start(config: ServerConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = TlsUpstream {
            addr: listener.local_addr().expect("address"),
            hits: Arc::default(),
            client_certificates: Arc::default(),
        };
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (hits, seen) = (upstream.hits.clone(), upstream.client_certificates.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, hits, seen) = (acceptor.clone(), hits.clone(), seen.clone());
                tokio::spawn(async move {
                    // A refused client certificate ends it here.
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    if let Some(leaf) = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                    {
                        seen.lock().expect("lock").push(leaf.clone().into_owned());
                    }
                    let service = service_fn(move |request| {
                        hits.fetch_add(1, Ordering::SeqCst);
                        answer(request, Behaviour::default())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        upstream
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests reached it.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The client certificates presented so far, one per connection.
    pub fn client_certificates(&self) -> Vec<CertificateDer<'static>> {
        self.client_certificates.lock().expect("lock").clone()
    }
}
