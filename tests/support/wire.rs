//! A client that writes raw bytes and reads whole responses back, for
//! requests a client library would tidy up (mixed-case or `_` header names,
//! backslashes in the path, hop-by-hop headers) and for speaking on after a
//! protocol switch.
//!
//! Unlike [`super::raw`], which waits for the server to close, this parses
//! each response's framing, so a test can send several requests on one
//! connection without waiting out a timeout.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Answer;

/// How long any one read may wait, so a test that expects bytes that never
/// come fails instead of hanging.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One TCP connection, with the bytes read but not yet consumed.
pub struct RawConnection {
    stream: TcpStream,
    buffered: Vec<u8>,
}

impl RawConnection {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        RawConnection {
            stream,
            buffered: Vec::new(),
        }
    }

    /// Wraps a stream already connected (and maybe already used).
    pub fn from_stream(stream: TcpStream) -> Self {
        RawConnection {
            stream,
            buffered: Vec::new(),
        }
    }

    /// Writes `request` and reads one response.
    pub async fn send(&mut self, request: &[u8]) -> Answer {
        self.write(request).await;
        self.read_answer().await
    }

    /// Like [`RawConnection::send`], but `None` instead of a failure when
    /// the connection is closed or reset before a whole answer, as a server
    /// shutting down closes kept-alive connections between requests. Reads
    /// `Content-Length` bodies only.
    pub async fn try_send(&mut self, request: &[u8]) -> Option<StatusCode> {
        self.stream.write_all(request).await.ok()?;
        let head_end = loop {
            if let Some(at) = find(&self.buffered, b"\r\n\r\n") {
                break at + 4;
            }
            self.try_fill().await?;
        };
        let head: Vec<u8> = self.buffered.drain(..head_end).collect();
        let (status, headers) = parse_head(&head);
        let length = content_length(&headers).expect("try_send reads Content-Length bodies");
        while self.buffered.len() < length {
            self.try_fill().await?;
        }
        self.buffered.drain(..length);
        Some(status)
    }

    /// Writes bytes as they are.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads one response: the head, then a body framed by
    /// `content-length` or chunked encoding. A `101` ends at its head, so
    /// whatever follows stays for [`RawConnection::read_exact`].
    pub async fn read_answer(&mut self) -> Answer {
        let head_end = loop {
            if let Some(at) = find(&self.buffered, b"\r\n\r\n") {
                break at + 4;
            }
            self.fill()
                .await
                .expect("connection closed before a response head");
        };
        let head: Vec<u8> = self.buffered.drain(..head_end).collect();
        let (status, headers) = parse_head(&head);

        let body = if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Vec::new()
        } else if is_chunked(&headers) {
            self.read_chunked().await
        } else if let Some(length) = content_length(&headers) {
            self.read_exact(length).await
        } else {
            self.read_to_close().await
        };
        Answer {
            status,
            headers,
            body: Bytes::from(body),
        }
    }

    /// Reads exactly `length` bytes.
    pub async fn read_exact(&mut self, length: usize) -> Vec<u8> {
        while self.buffered.len() < length {
            self.fill()
                .await
                .expect("connection closed before the expected bytes");
        }
        self.buffered.drain(..length).collect()
    }

    async fn read_line(&mut self) -> Vec<u8> {
        loop {
            if let Some(at) = find(&self.buffered, b"\r\n") {
                let line: Vec<u8> = self.buffered.drain(..at + 2).collect();
                return line[..at].to_vec();
            }
            self.fill().await.expect("connection closed inside a line");
        }
    }

    async fn read_chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line().await;
            let size = String::from_utf8_lossy(&line);
            let size = size.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16).expect("chunk size in hex");
            if size == 0 {
                // Trailers, if any, end with an empty line.
                while !self.read_line().await.is_empty() {}
                return body;
            }
            body.extend(self.read_exact(size).await);
            self.read_exact(2).await;
        }
    }

    async fn read_to_close(&mut self) -> Vec<u8> {
        while self.fill().await.is_some() {}
        std::mem::take(&mut self.buffered)
    }

    /// Reads more bytes into the buffer; `None` once the peer has closed
    /// or reset the connection, or sent nothing within the read timeout.
    async fn try_fill(&mut self) -> Option<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let read = tokio::time::timeout(READ_TIMEOUT, self.stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if read == 0 {
            return None;
        }
        self.buffered.extend_from_slice(&chunk[..read]);
        Some(read)
    }

    /// Reads more bytes into the buffer; `None` once the peer has closed.
    async fn fill(&mut self) -> Option<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let read = tokio::time::timeout(READ_TIMEOUT, self.stream.read(&mut chunk))
            .await
            .expect("bytes within the read timeout")
            .expect("read");
        if read == 0 {
            return None;
        }
        self.buffered.extend_from_slice(&chunk[..read]);
        Some(read)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn parse_head(head: &[u8]) -> (StatusCode, HeaderMap) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let code = status_line.split(' ').nth(1).unwrap_or("");
    let status = StatusCode::from_bytes(code.as_bytes()).expect("a status code");

    let mut headers = HeaderMap::new();
    for line in lines.filter(|line| !line.is_empty()) {
        let (name, value) = line.split_once(':').expect("a header line");
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        let value = HeaderValue::from_str(value.trim()).expect("a header value");
        headers.append(name, value);
    }
    (status, headers)
}

fn is_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"chunked"))
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Renders an HTTP/1.1 request head with `Host: tollgate.test` and the
/// given header lines (`"Name: value"`, spelled exactly as given).
pub fn request_head(method: &str, path: &str, lines: &[&str]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: tollgate.test\r\n");
    for line in lines {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Renders a WebSocket handshake for `/api/live` (RFC 6455 section 4.1),
/// with the bearer token when one is given.
pub fn websocket_handshake(token: Option<&str>) -> Vec<u8> {
    let bearer = token.map(|token| format!("Authorization: Bearer {token}"));
    let mut lines = vec![
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ];
    lines.extend(bearer.as_deref());
    request_head("GET", "/api/live", &lines)
}
