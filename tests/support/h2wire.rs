//! Hand-built HTTP/2 frames over plain TCP (h2c with prior knowledge), for
//! floods no well-behaved client library would send: HEADERS followed at
//! once by RST_STREAM (rapid reset, CVE-2023-44487) and a header block
//! that never ends (a CONTINUATION flood, CVE-2024-27316 class).
//!
//! Frames follow RFC 9113 section 4.1; header blocks are HPACK (RFC 7541)
//! with static-table indexes and literals only, so no dynamic table state
//! is needed.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The client connection preface (RFC 9113 section 3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types used here.
pub const HEADERS: u8 = 0x1;
/// RST_STREAM.
pub const RST_STREAM: u8 = 0x3;
/// SETTINGS.
pub const SETTINGS: u8 = 0x4;
/// GOAWAY.
pub const GOAWAY: u8 = 0x7;
/// CONTINUATION.
pub const CONTINUATION: u8 = 0x9;

/// Flags.
pub const END_STREAM: u8 = 0x1;
/// END_HEADERS.
pub const END_HEADERS: u8 = 0x4;

/// The RST_STREAM error code CANCEL.
pub const CANCEL: u32 = 0x8;

/// Renders one frame.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).expect("payload fits a frame");
    let mut bytes = Vec::with_capacity(9 + payload.len());
    bytes.extend_from_slice(&length.to_be_bytes()[1..]);
    bytes.push(kind);
    bytes.push(flags);
    bytes.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// The preface and an empty SETTINGS frame: what opens every connection.
pub fn opening() -> Vec<u8> {
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(SETTINGS, 0, 0, &[]));
    bytes
}

/// An HPACK header block for `GET <path>` on `http://tollgate.test`.
pub fn get_block(path: &str) -> Vec<u8> {
    // :method GET (static index 2), :scheme http (6).
    let mut block = vec![0x82, 0x86];
    // :path, literal value without indexing, name from static index 4.
    literal(&mut block, 0x04, path.as_bytes());
    // :authority, static index 1.
    literal(&mut block, 0x01, b"tollgate.test");
    block
}

/// Appends a literal header field without indexing, with an indexed name
/// (index under 15) and a value under 127 bytes, not Huffman-coded.
pub fn literal(block: &mut Vec<u8>, name_index: u8, value: &[u8]) {
    assert!(name_index < 15 && value.len() < 127, "short forms only");
    block.push(name_index);
    block.push(value.len() as u8);
    block.extend_from_slice(value);
}

/// Says how a flooded connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// The server sent GOAWAY with this error code.
    GoAway(u32),
    /// The server closed (or reset) the connection without a GOAWAY seen.
    Closed,
    /// Still open at the deadline.
    StillOpen,
}

/// A raw HTTP/2 client connection.
pub struct H2Wire {
    stream: TcpStream,
    read: Vec<u8>,
}

impl H2Wire {
    /// Connects to `addr` and sends the preface and SETTINGS.
    pub async fn connect(addr: SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(&opening()).await.expect("write preface");
        H2Wire {
            stream,
            read: Vec::new(),
        }
    }

    /// Writes bytes; `false` once the server has closed the connection.
    pub async fn write(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// Reads frames until a GOAWAY, the end of the connection, or `within`.
    pub async fn ending(&mut self, within: Duration) -> Ending {
        let deadline = Instant::now() + within;
        loop {
            if let Some(code) = self.goaway() {
                return Ending::GoAway(code);
            }
            let mut chunk = [0u8; 16 * 1024];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_elapsed) => return Ending::StillOpen,
                Ok(Ok(0)) | Ok(Err(_)) => {
                    return self.goaway().map_or(Ending::Closed, Ending::GoAway);
                }
                Ok(Ok(read)) => self.read.extend_from_slice(&chunk[..read]),
            }
        }
    }

    /// Reads the server's first SETTINGS frame and returns its parameters
    /// as (identifier, value) pairs.
    pub async fn server_settings(&mut self) -> Vec<(u16, u32)> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(settings) = self.first_settings() {
                return settings;
            }
            let mut chunk = [0u8; 16 * 1024];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .expect("server SETTINGS within 5s")
                .expect("read");
            assert!(read > 0, "closed before SETTINGS");
            self.read.extend_from_slice(&chunk[..read]);
        }
    }

    fn first_settings(&self) -> Option<Vec<(u16, u32)>> {
        let head = self.read.get(..9)?;
        let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        assert_eq!(head[3], SETTINGS, "the server's first frame is SETTINGS");
        let payload = self.read.get(9..9 + length)?;
        let pairs = payload
            .chunks_exact(6)
            .map(|p| {
                let id = u16::from_be_bytes([p[0], p[1]]);
                (id, u32::from_be_bytes([p[2], p[3], p[4], p[5]]))
            })
            .collect();
        Some(pairs)
    }

    /// Finds a GOAWAY among the whole frames read so far.
    fn goaway(&self) -> Option<u32> {
        let mut at = 0;
        while self.read.len() >= at + 9 {
            let head = &self.read[at..at + 9];
            let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let end = at + 9 + length;
            if self.read.len() < end {
                return None;
            }
            if head[3] == GOAWAY && length >= 8 {
                let code = &self.read[at + 13..at + 17];
                return Some(u32::from_be_bytes([code[0], code[1], code[2], code[3]]));
            }
            at = end;
        }
        None
    }
}
