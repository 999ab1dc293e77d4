//! A downstream HTTP/1 connection's own connection to the upstream.
//!
//! The pooled client runs each upstream connection in a task of its own:
//! every request crosses from the downstream connection's task to that
//! task and its response crosses back, two wake-ups that often land on the
//! other worker thread (a futex call each), behind the pool's lock and its
//! hashing. An HTTP/1 downstream connection carries one request at a time,
//! so it can own one upstream connection outright and drive it from its
//! own task: the wait for the response head and the response body poll the
//! upstream connection themselves, and nothing crosses tasks.
//!
//! The cost is one upstream socket per downstream HTTP/1 connection that
//! has sent a request, held until the downstream connection closes (at
//! most `limits.max_connections`, and no more than the pool would hold
//! under the same load). HTTP/2 downstream connections, upgrades and the
//! account store keep using the pool: they carry concurrent streams or are
//! rare.

use std::error::Error;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use bytes::Bytes;
use http::header::{HOST, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use tower_service::Service;

use super::{TargetConnector, WatchedBody};

/// The connection's transport: plain TCP, or TLS for an `https` upstream.
type Io = <TargetConnector as Service<Uri>>::Response;

/// Holds a downstream connection's upstream connection between requests.
///
/// Put in the extensions of each HTTP/1 request by the accept loop. The
/// lock is never contended: the connection's requests come one at a time.
#[derive(Default)]
pub struct Session {
    /// Boxed: the futures that hold it move as hyper polls them, and a
    /// connection's state runs to kilobytes.
    idle: Mutex<Option<Box<Link>>>,
}

/// Says why an exchange on a session failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum SessionError {
    /// No connection to the upstream could be made.
    #[error("cannot connect to the upstream")]
    Connect(#[source] Box<dyn Error + Send + Sync>),
    /// The connection failed during the exchange.
    #[error("the upstream connection failed")]
    Exchange(#[source] hyper::Error),
    /// The connection ended with the request unanswered.
    #[error("the upstream connection closed with the request unanswered")]
    Closed,
}

impl Session {
    /// Sends `request` on this session's upstream connection, opening one
    /// when there is none or the one kept has closed, and waits for the
    /// response head. The returned body keeps driving the connection.
    pub(super) async fn send(
        self: Arc<Self>,
        connector: &TargetConnector,
        mut request: Request<WatchedBody>,
    ) -> Result<Response<SessionBody>, SessionError> {
        let target = to_origin_form(&mut request);
        let kept = self.take(&target);
        let (mut link, reused) = match kept {
            Some(link) => match link.into_ready().await {
                Some(link) => (link, true),
                None => (Box::pin(Link::connect(connector, &target)).await?, false),
            },
            None => (Box::pin(Link::connect(connector, &target)).await?, false),
        };

        let response = match link.exchange(request).await {
            Ok(response) => response,
            // A kept connection the upstream closed just as the request
            // went out: it was never written, so a new connection may
            // carry it, as the pooled client would retry it.
            Err(Exchanged::Unsent(request)) if reused => {
                link = Box::pin(Link::connect(connector, &target)).await?;
                link.exchange(*request)
                    .await
                    .map_err(Exchanged::into_error)?
            }
            Err(failed) => return Err(failed.into_error()),
        };
        Ok(response.map(|body| SessionBody {
            inner: body,
            link: Some(link),
            session: self,
        }))
    }

    /// Takes the kept connection if it goes where `uri` points (a reload
    /// may have moved the upstream).
    fn take(&self, uri: &Uri) -> Option<Box<Link>> {
        let link = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        link.goes_to(uri).then_some(link)
    }

    /// Keeps a connection whose last exchange ended cleanly.
    fn put(&self, link: Box<Link>) {
        *self.idle.lock().unwrap_or_else(PoisonError::into_inner) = Some(link);
    }
}

/// Turns the request's absolute target URI into the origin form HTTP/1
/// sends (`/path?query`), giving the request a `Host` from it if it came
/// without one (an HTTP/1.0 caller's), as the pooled client does; returns
/// the absolute URI, which says where to connect.
fn to_origin_form(request: &mut Request<WatchedBody>) -> Uri {
    let origin = request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let target = std::mem::replace(request.uri_mut(), Uri::from(origin));
    if !request.headers().contains_key(HOST) {
        let host = target
            .authority()
            .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok());
        if let Some(host) = host {
            request.headers_mut().insert(HOST, host);
        }
    }
    target
}

// --- Link ---

/// One HTTP/1 connection to the upstream, with the half that sends
/// requests and the half that moves the bytes.
struct Link {
    scheme: Option<Scheme>,
    authority: Option<Authority>,
    sender: http1::SendRequest<WatchedBody>,
    connection: http1::Connection<Io, WatchedBody>,
    /// Set once `connection` has completed: it must not be polled again.
    ended: bool,
}

/// How an exchange failed, with the request when it was never sent.
enum Exchanged {
    /// Boxed: the request is large, and this is the rare path.
    Unsent(Box<Request<WatchedBody>>),
    Failed(SessionError),
}

impl Exchanged {
    fn into_error(self) -> SessionError {
        match self {
            Exchanged::Unsent(_) => SessionError::Closed,
            Exchanged::Failed(error) => error,
        }
    }
}

impl Link {
    /// Opens a connection to the authority of `uri`.
    ///
    /// Callers box the future: it holds the transport while the handshake
    /// runs, kilobytes with TLS, and an unboxed one would make every
    /// request's future that large, copied at each move.
    async fn connect(connector: &TargetConnector, uri: &Uri) -> Result<Box<Link>, SessionError> {
        let io = connector
            .clone()
            .call(uri.clone())
            .await
            .map_err(SessionError::Connect)?;
        let (sender, connection) = http1::handshake(io).await.map_err(SessionError::Exchange)?;
        Ok(Box::new(Link {
            scheme: uri.scheme().cloned(),
            authority: uri.authority().cloned(),
            sender,
            connection,
            ended: false,
        }))
    }

    fn goes_to(&self, uri: &Uri) -> bool {
        !self.ended
            && self.scheme.as_ref() == uri.scheme()
            && self.authority.as_ref() == uri.authority()
    }

    /// Polls the connection unless it has ended; returns whether it has.
    fn drive(&mut self, context: &mut Context<'_>) -> bool {
        if !self.ended && Pin::new(&mut self.connection).poll(context).is_ready() {
            self.ended = true;
        }
        self.ended
    }

    /// Says whether the connection could take another request at once:
    /// it has not ended and has written the whole of the last request.
    /// Polls it once first, without a waker, so that an exchange that has
    /// just ended is seen as idle.
    fn is_idle(&mut self) -> bool {
        let mut context = Context::from_waker(Waker::noop());
        !self.drive(&mut context) && self.sender.is_ready()
    }

    /// Waits until the connection takes a request; `None` when it closed
    /// while it was kept (the upstream's keep-alive timeout, a restart).
    async fn into_ready(mut self: Box<Self>) -> Option<Box<Link>> {
        let ready = poll_fn(|context| {
            if self.drive(context) {
                return Poll::Ready(false);
            }
            self.sender.poll_ready(context).map(|ready| ready.is_ok())
        })
        .await;
        ready.then_some(self)
    }

    /// Sends `request` and drives the connection until the response head
    /// arrives.
    async fn exchange(
        &mut self,
        request: Request<WatchedBody>,
    ) -> Result<Response<Incoming>, Exchanged> {
        let mut response = pin!(self.sender.try_send_request(request));
        let connection = &mut self.connection;
        let ended = &mut self.ended;
        let answered = poll_fn(|context| {
            // The connection first: it writes the request and reads the
            // response head, which the response future then finds ready
            // in this same poll.
            if !*ended && Pin::new(&mut *connection).poll(context).is_ready() {
                *ended = true;
            }
            match response.as_mut().poll(context) {
                Poll::Ready(answer) => Poll::Ready(Some(answer)),
                // hyper answers every request before its connection ends;
                // this is for the case it ever did not.
                Poll::Pending if *ended => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        match answered {
            Some(Ok(response)) => Ok(response),
            Some(Err(mut error)) => match error.take_message() {
                Some(request) => Err(Exchanged::Unsent(Box::new(request))),
                None => Err(Exchanged::Failed(SessionError::Exchange(
                    error.into_error(),
                ))),
            },
            None => Err(Exchanged::Failed(SessionError::Closed)),
        }
    }
}

// --- SessionBody ---

/// A response body that drives its upstream connection as it is read, and
/// gives the connection back to its session once the body has ended.
///
/// A body dropped before its end takes the connection with it: what is
/// left of the response would otherwise be read as the next one's start.
pub struct SessionBody {
    inner: Incoming,
    link: Option<Box<Link>>,
    session: Arc<Session>,
}

impl SessionBody {
    /// Gives the connection back to the session if it can take the next
    /// request now, else closes it.
    ///
    /// An upstream may answer before it has read the whole request body
    /// (RFC 9112 section 9.3). The rest of that body moves only while the
    /// connection is polled, and a kept connection is not polled between
    /// requests, so the downstream connection would wait for ever on a
    /// body nobody reads; closing the connection drops that body instead,
    /// and the downstream connection closes after its answer.
    fn release(&mut self) {
        let Some(mut link) = self.link.take() else {
            return;
        };
        if link.is_idle() {
            self.session.put(link);
        }
    }
}

impl Body for SessionBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Some(link) = self.link.as_mut() {
            link.drive(context);
        }
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(context));
        if frame.is_none() {
            self.release();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for SessionBody {
    fn drop(&mut self) {
        // A response with no body (HEAD, 204, 304) may never be polled.
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}
