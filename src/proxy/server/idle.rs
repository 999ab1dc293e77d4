//! The idle timeout: how long a connection may stay open with no request
//! in flight.
//!
//! What hyper 1.x does between keep-alive requests: on HTTP/1.1 the header
//! read timer starts as soon as the connection waits for its next request
//! head (`Conn::poll_read_head` arms it whenever the read side is back at
//! its initial state), so an idle HTTP/1.1 connection is closed after
//! `header_read_timeout` already. On HTTP/2 nothing closes an idle
//! connection: the keep-alive pings only find peers that stopped
//! answering, and a client that answers pings may hold the connection,
//! and its socket, forever. So every connection counts the requests in
//! flight (from request head to the end of the response body), and once
//! none has been in flight for the idle timeout, the connection is asked
//! to close gracefully (a GOAWAY on HTTP/2).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::Instant;

use crate::proxy::Body;

/// Counts one connection's requests in flight and when the last one ended.
pub(super) struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `born` to the last time a request ended.
    last_ended: AtomicU64,
}

impl Activity {
    /// Starts counting now, with nothing in flight.
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Activity {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ended: AtomicU64::new(0),
        })
    }

    /// Marks a request as in flight until the returned guard is dropped.
    pub(super) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Resolves once no request has been in flight for `limit`.
    pub(super) async fn idle_for(&self, limit: Duration) {
        loop {
            let deadline = self.quiet_since() + limit;
            tokio::time::sleep_until(deadline).await;
            if self.in_flight.load(Ordering::Acquire) == 0
                && self.quiet_since() + limit <= Instant::now()
            {
                return;
            }
            if self.in_flight.load(Ordering::Acquire) > 0 {
                // Busy: look again a whole period later, since the end of
                // the requests in flight starts the count anew.
                tokio::time::sleep(limit).await;
            }
        }
    }

    fn quiet_since(&self) -> Instant {
        self.born + Duration::from_millis(self.last_ended.load(Ordering::Acquire))
    }
}

/// Keeps a request counted as in flight while it lives.
pub(super) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        let elapsed = activity.born.elapsed().as_millis();
        let elapsed = u64::try_from(elapsed).unwrap_or(u64::MAX);
        activity.last_ended.fetch_max(elapsed, Ordering::AcqRel);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in flight until the
/// body has been sent (or dropped), so a long download is not idle.
pub(super) struct InFlightBody {
    inner: Body,
    _in_flight: InFlight,
}

impl InFlightBody {
    /// Wraps `inner`, holding `in_flight` until the body is gone.
    pub(super) fn new(inner: Body, in_flight: InFlight) -> Self {
        InFlightBody {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl HttpBody for InFlightBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_after_its_last_request_ended() {
        let activity = Activity::new();
        let limit = Duration::from_secs(5);
        let request = activity.begin();
        tokio::time::sleep(Duration::from_secs(12)).await;
        drop(request);
        let started = Instant::now();
        activity.idle_for(limit).await;
        let waited = started.elapsed();
        assert!(waited >= limit, "idle after {waited:?}");
        assert!(waited < limit * 3, "idle only after {waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_never_had_a_request_is_idle_after_the_limit() {
        let activity = Activity::new();
        let started = Instant::now();
        activity.idle_for(Duration::from_secs(3)).await;
        assert_eq!(started.elapsed().as_secs(), 3);
    }
}
