//! TLS on the listener: the handshake, bounded like a request head, and
//! the protocol ALPN picked.
//!
//! The deadline that bounds a plain connection's first bytes (see
//! `request_begins`) bounds two steps here: the handshake, and then the
//! first decrypted bytes. Without the second, a client could finish the
//! handshake and then hold the socket forever, since hyper's HTTP/2 side
//! waits for the connection preface without a timer of its own.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Gives each accepted connection the listener's TLS settings in force.
pub type ServerTls = Arc<dyn Fn() -> Arc<ServerConfig> + Send + Sync>;

/// A connection whose handshake completed.
pub(super) struct Accepted {
    /// The decrypted stream, still under the first-byte deadline.
    pub(super) stream: FirstByteDeadline<TlsStream<TcpStream>>,
    /// Whether ALPN picked HTTP/2.
    pub(super) is_h2: bool,
}

/// Runs the TLS handshake on `stream` with `config`, within `timeout`;
/// `None` when it failed or took too long (both logged at debug: edge
/// traffic includes scanners and broken clients).
pub(super) async fn accept(
    stream: TcpStream,
    config: Arc<ServerConfig>,
    timeout: Duration,
    client: SocketAddr,
) -> Option<Accepted> {
    let deadline = Instant::now() + timeout;
    let handshake = TlsAcceptor::from(config).accept(stream);
    let stream = match tokio::time::timeout_at(deadline, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(client.addr = %client, error = %error, "tls handshake failed");
            return None;
        }
        Err(_elapsed) => {
            tracing::debug!(client.addr = %client, "no tls handshake in time; closed");
            return None;
        }
    };
    let is_h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    Some(Accepted {
        stream: FirstByteDeadline::new(stream, deadline),
        is_h2,
    })
}

// --- FirstByteDeadline ---

/// Fails reads with `TimedOut` until the first byte arrives, once the
/// deadline has passed; after that byte it is a plain pass-through.
pub(super) struct FirstByteDeadline<S> {
    inner: S,
    /// `None` once a byte was read.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> FirstByteDeadline<S> {
    /// Wraps `inner`, whose first byte must arrive by `deadline`.
    pub(super) fn new(inner: S, deadline: Instant) -> Self {
        FirstByteDeadline {
            inner,
            deadline: Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FirstByteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(context, buf);
        let Some(deadline) = self.deadline.as_mut() else {
            return polled;
        };
        match polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                self.deadline = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending if deadline.as_mut().poll(context).is_ready() => Poll::Ready(Err(
                io::Error::new(io::ErrorKind::TimedOut, "no request began in time"),
            )),
            // End of stream, an error, or still waiting in time.
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstByteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(context, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(context, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out_at_the_deadline() {
        let (near, _far) = tokio::io::duplex(64);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut wrapped = FirstByteDeadline::new(near, deadline);

        let mut buffer = [0u8; 8];
        let error = wrapped.read(&mut buffer).await.expect_err("times out");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(Instant::now() >= deadline);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_first_byte_the_deadline_is_gone() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut wrapped = FirstByteDeadline::new(near, Instant::now() + Duration::from_secs(1));
        far.write_all(b"G").await.expect("write");

        let mut buffer = [0u8; 8];
        assert_eq!(wrapped.read(&mut buffer).await.expect("read"), 1);
        tokio::time::advance(Duration::from_secs(5)).await;
        far.write_all(b"ET").await.expect("write");
        assert_eq!(wrapped.read(&mut buffer).await.expect("read"), 2);
    }
}
