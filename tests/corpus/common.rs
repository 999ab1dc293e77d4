//! What every corpus case shares: a gate (tollgate in front of the
//! byte-recording upstream), hand-made tokens, and the exact answers a case
//! may expect.
//!
//! The expected challenges are written out here as literal text rather than
//! read from the crate, so a change to what a caller is told shows up as a
//! failing case.

use serde_json::{Value, json};

use crate::support::keys::{b64, signing_input};
use crate::support::recorder::{Recorded, Recorder};
use crate::support::wire::request_head;
use crate::support::{
    AUDIENCE, Answer, Call, Harness, ISSUER, RawConnection, Tollgate, claims, keys, now,
};

/// Generates one `#[tokio::test]` per case, so `cargo test --test corpus`
/// lists every case by name; each case is an expression that yields a
/// future, and keeps its doc comment (the citation).
macro_rules! cases {
    ($($(#[$meta:meta])* $name:ident: $body:expr;)*) => {
        $(
            $(#[$meta])*
            #[tokio::test]
            async fn $name() {
                $body.await
            }
        )*
    };
}
pub(crate) use cases;

// --- Expected answers ----------------------------------------------------------

/// A refusal as the caller sees it: status, RFC 6750 error code and the
/// fixed `error_description`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Challenge {
    /// The status code.
    pub(crate) status: u16,
    /// The `error` of `WWW-Authenticate` and of the JSON body.
    pub(crate) error: &'static str,
    /// The `error_description`.
    pub(crate) description: &'static str,
}

const fn invalid_token(description: &'static str) -> Challenge {
    Challenge {
        status: 401,
        error: "invalid_token",
        description,
    }
}

/// Not a compact JWS, or an `Authorization` header that cannot be read.
pub(crate) const MALFORMED: Challenge = invalid_token("the token is not a well-formed JWT");
/// `none`, an unknown name, or an algorithm that does not fit the key.
pub(crate) const DISALLOWED_ALG: Challenge =
    invalid_token("the token signing algorithm is not allowed");
/// The signature does not verify.
pub(crate) const BAD_SIGNATURE: Challenge = invalid_token("the token signature is invalid");
/// No key of the provider has the token's `kid`.
pub(crate) const UNKNOWN_KID: Challenge = invalid_token("the token was signed with an unknown key");
/// A claim is missing, of the wrong type, or cannot become a header.
pub(crate) const INVALID_CLAIMS: Challenge = invalid_token("the token claims are invalid");
/// `exp` is past, beyond the leeway.
pub(crate) const EXPIRED: Challenge = invalid_token("the token has expired");
/// `nbf` is ahead, beyond the leeway.
pub(crate) const NOT_YET_VALID: Challenge = invalid_token("the token is not valid yet");
/// No provider for the `iss`.
pub(crate) const WRONG_ISSUER: Challenge = invalid_token("the token issuer is not trusted");
/// The audience names another service.
pub(crate) const WRONG_AUDIENCE: Challenge =
    invalid_token("the token is not meant for this service");
/// A good token without the role a rule requires.
pub(crate) const INSUFFICIENT_ROLE: Challenge = Challenge {
    status: 403,
    error: "insufficient_scope",
    description: "the token lacks a role this route requires",
};

/// The realm every challenge carries (the harness names the service so).
const REALM: &str = "Bearer realm=\"game-api\"";

/// Asserts a token refusal: status, the whole challenge and the JSON body.
pub(crate) fn assert_refused(answer: &Answer, expected: Challenge) {
    assert_eq!(answer.status, expected.status, "{answer:?}");
    let challenge = format!(
        "{REALM}, error=\"{}\", error_description=\"{}\"",
        expected.error, expected.description
    );
    assert_eq!(answer.header("www-authenticate"), Some(&*challenge));
    assert_eq!(answer.json()["error"], expected.error, "{answer:?}");
}

/// Asserts the answer to a request with no bearer credentials: 401 whose
/// challenge is the bare realm, with no error code (RFC 6750 section 3.1).
pub(crate) fn assert_missing(answer: &Answer) {
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.header("www-authenticate"), Some(REALM));
    assert_eq!(answer.json()["error"], "unauthorized");
}

/// Asserts a 400 for a request path tollgate will not match.
pub(crate) fn assert_bad_path(answer: &Answer) {
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.json()["error"], "invalid_request");
    assert_eq!(
        answer.json()["error_description"],
        "the request path is not acceptable"
    );
}

// --- The gate --------------------------------------------------------------------

/// A tollgate in front of a recorder that frames and keeps every byte it
/// receives, so a case can say exactly what reached the service.
pub(crate) struct Gate {
    /// The byte-recording upstream.
    pub(crate) recorder: Recorder,
    /// The tollgate under test.
    pub(crate) tollgate: Tollgate,
}

impl Gate {
    /// Starts a gate with the harness defaults (HMAC secret and a JWKS of
    /// every key type, leeway 5 s, the `/public/` and `/admin/` rules).
    pub(crate) async fn start() -> Self {
        Self::with(|harness| harness).await
    }

    /// Starts a gate whose harness `tune` adjusts.
    pub(crate) async fn with(tune: impl FnOnce(Harness) -> Harness) -> Self {
        let recorder = Recorder::start().await;
        let tollgate = tune(Harness::new(recorder.addr())).start().await;
        Gate { recorder, tollgate }
    }

    /// Starts a GET through the client library.
    pub(crate) fn get(&self, path: &str) -> Call {
        self.tollgate.get(path)
    }

    /// Sends raw bytes on a fresh connection and reads one answer.
    pub(crate) async fn raw(&self, bytes: &[u8]) -> Answer {
        RawConnection::connect(self.tollgate.addr())
            .await
            .send(bytes)
            .await
    }

    /// Sends a raw request head (`Host: tollgate.test` added first).
    pub(crate) async fn raw_head(&self, method: &str, target: &str, lines: &[&str]) -> Answer {
        self.raw(&request_head(method, target, lines)).await
    }

    /// Every request the upstream framed so far.
    pub(crate) fn forwarded(&self) -> Vec<Recorded> {
        self.recorder.requests()
    }

    /// Asserts nothing reached the upstream.
    pub(crate) fn assert_nothing_forwarded(&self) {
        let requests = self.forwarded();
        assert!(requests.is_empty(), "reached the upstream: {requests:?}");
    }

    /// Asserts the answer came from the upstream, which framed exactly one
    /// request, with no bytes left over; returns that request.
    pub(crate) fn assert_forwarded_once(&self, answer: &Answer) -> Recorded {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.text(), "ok", "answered by the recorder");
        let connections = self.recorder.connections();
        for connection in &connections {
            assert!(
                connection.leftover.is_empty(),
                "bytes the upstream could not frame: {:?}",
                String::from_utf8_lossy(&connection.leftover)
            );
        }
        let mut requests = self.forwarded();
        assert_eq!(requests.len(), 1, "{requests:?}");
        requests.remove(0)
    }
}

/// Sends `token` as a bearer to an authenticated route and asserts the
/// exact refusal, with nothing forwarded.
pub(crate) async fn token_refused(token: String, expected: Challenge) {
    refused_by(Gate::start().await, &token, expected).await;
}

/// As [`token_refused`], on a gate already started (a tuned one).
pub(crate) async fn refused_by(gate: Gate, token: &str, expected: Challenge) {
    let answer = gate.get("/games/1").bearer(token).send().await;
    assert_refused(&answer, expected);
    gate.assert_nothing_forwarded();
}

/// Sends `token` to an authenticated route and asserts it reached the
/// upstream once, as `sub`.
pub(crate) async fn token_passes(token: String, sub: &str) {
    passes_by(Gate::start().await, &token, sub).await;
}

/// As [`token_passes`], on a gate already started.
pub(crate) async fn passes_by(gate: Gate, token: &str, sub: &str) {
    let answer = gate.get("/games/1").bearer(token).send().await;
    let request = gate.assert_forwarded_once(&answer);
    assert_eq!(request.request_line(), "GET /games/1 HTTP/1.1");
    assert_eq!(request.header("x-user-id"), [sub]);
}

// --- Tokens ------------------------------------------------------------------------

/// Good claims for `alice` with `changes` applied: a member set to
/// `Value::Null` here is removed (use [`raw_hs256`] for a literal `null`).
pub(crate) fn claims_with(changes: &[(&str, Value)]) -> Value {
    let mut claims = claims("alice");
    for (name, value) in changes {
        match value {
            Value::Null => claims.as_object_mut().map(|map| map.remove(*name)),
            value => claims
                .as_object_mut()
                .map(|map| map.insert((*name).to_owned(), value.clone())),
        };
    }
    claims
}

/// An HS256 token with the provider's secret over these claims.
pub(crate) fn hs256(claims: &Value) -> String {
    keys().mint("HS256", claims)
}

/// Good claims as JSON text, with `extra` appended inside the object (so
/// duplicate members, escapes and odd numbers survive as written).
pub(crate) fn raw_claims(extra: &str) -> String {
    format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{}{extra}}}"#,
        now() + 3600
    )
}

/// Signs header and claims given as raw JSON text with the provider's
/// HMAC secret.
pub(crate) fn raw_hs256(header: &str, claims: &str) -> String {
    raw_signed("HS256", header, claims)
}

/// Signs raw header and claims text with the test key for `signer`.
pub(crate) fn raw_signed(signer: &str, header: &str, claims: &str) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let signature = keys().sign(signer, input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

/// A token whose header and claims are these, with this signature.
pub(crate) fn with_signature(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!("{}.{}", signing_input(header, claims), b64(signature))
}

/// The JOSE header the test keys would write for `alg`.
pub(crate) fn header_for(alg: &str) -> Value {
    let mut header = json!({"alg": alg, "typ": "JWT"});
    if let Some(kid) = crate::support::keys::TestKeys::kid_for(alg) {
        header["kid"] = json!(kid);
    }
    header
}

/// A good token for `alg`, then its signature bytes.
pub(crate) fn signature_of(alg: &str) -> (Value, Value, Vec<u8>) {
    let header = header_for(alg);
    let claims = claims("alice");
    let input = signing_input(&header, &claims);
    let signature = keys().sign(alg, input.as_bytes());
    (header, claims, signature)
}

/// A token for `alg` whose good signature `tamper` changes.
pub(crate) fn tampered_signature(alg: &str, tamper: impl FnOnce(Vec<u8>) -> Vec<u8>) -> String {
    let (header, claims, signature) = signature_of(alg);
    with_signature(&header, &claims, &tamper(signature))
}

/// `Authorization: Bearer <token>` as a raw header line, with a good
/// HS256 token for `alice` (role `player`).
pub(crate) fn player_bearer_line() -> String {
    format!("Authorization: Bearer {}", hs256(&claims("alice")))
}

/// Sets the lowest unused bit of the last base64url character, which
/// must be zero: the same bytes in a non-canonical spelling (RFC 4648
/// section 3.5). The text must end where a character has unused bits.
pub(crate) fn non_canonical_tail(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = *text.as_bytes().last().expect("base64url text");
    let index = ALPHABET
        .iter()
        .position(|c| *c == last)
        .expect("a base64url character");
    let twisted = char::from(ALPHABET[index | 1]);
    format!("{}{twisted}", &text[..text.len() - 1])
}

/// Replaces a token's header segment, keeping claims and signature.
pub(crate) fn swap_header(token: &str, header: &Value) -> String {
    let (_, rest) = token.split_once('.').expect("a header segment");
    format!("{}.{rest}", b64(header.to_string().as_bytes()))
}

// --- A trap for key URLs ------------------------------------------------------------

/// A loopback listener that only counts connections: a token naming it as
/// `jku` or `x5u` must never make tollgate connect.
pub(crate) struct Trap {
    addr: std::net::SocketAddr,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Trap {
    /// Starts it on 127.0.0.1:0.
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind trap");
        let addr = listener.local_addr().expect("trap addr");
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while listener.accept().await.is_ok() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        Trap { addr, hits }
    }

    /// A URL on the trap.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Asserts no one connected, after a moment for a stray fetch to land.
    pub(crate) async fn assert_untouched(&self) {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let hits = self.hits.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(hits, 0, "tollgate connected to a URL the token named");
    }
}

/// Wraps DER in PEM armour, 64 columns, with a final newline.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
