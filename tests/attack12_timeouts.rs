//! Attack 12 on who is blamed when a request does not finish in time, for
//! HTTP/2 callers: attack 11 settled it over HTTP/1.1 (a body the caller
//! stops sending is its 408; a target slow with the whole body is its
//! 504), and HTTP/2 ends a body with a flag rather than a length.

mod support;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use hyper::body::Frame;
use tokio::net::TcpStream;

use support::upstream::Behaviour;
use support::{Harness, Tollgate, Upstream};

/// The targets' timeout in these tests; the stalls outlast it.
const TIMEOUT: &str = "1s";

/// The length every request here declares.
const DECLARED: usize = 16;

/// A request body that sends `sent` and then neither more data nor the
/// end of the stream, as a caller that stalls does.
struct Stalled(Option<Bytes>);

impl hyper::body::Body for Stalled {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.0.take() {
            Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
            None => Poll::Pending,
        }
    }
}

/// POSTs to `path` over HTTP/2 with a `Content-Length` of [`DECLARED`],
/// sending `sent` bytes and then stalling; returns tollgate's status.
async fn stalled_post(tollgate: &Tollgate, path: &str, sent: usize) -> StatusCode {
    let stream = TcpStream::connect(tollgate.addr()).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(connection);
    let request = Request::post(format!("http://tollgate.test{path}"))
        .header("content-length", DECLARED)
        .header("content-type", "application/json")
        .body(Stalled(Some(Bytes::from(vec![b' '; sent]))))
        .expect("valid request");
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
        .await
        .expect("an answer within 10 s")
        .expect("an answer");
    response.status()
}

fn metric(target: &str, kind: &str) -> String {
    format!(r#"tollgate_upstream_errors_total{{target="{target}",kind="{kind}"}}"#)
}

#[tokio::test]
async fn an_http2_body_the_caller_stops_sending_is_its_408_for_both_targets() {
    let upstream = Upstream::start().await;
    let store = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_upstream_timeout(TIMEOUT)
        .with_account_store(&format!("http://{}", store.addr()), TIMEOUT)
        .with_rules("[[rules]]\npath_prefix = \"/public/\"\npublic = true\n")
        .start()
        .await;

    assert_eq!(stalled_post(&tollgate, "/auth/login", 5).await, 408);
    assert_eq!(stalled_post(&tollgate, "/public/upload", 5).await, 408);
    assert_eq!(
        tollgate.metric(&metric("account_store", "timeout")).await,
        0.0
    );
    assert_eq!(tollgate.metric(&metric("upstream", "timeout")).await, 0.0);
    tollgate.shutdown().await;
}

/// Every declared byte sent but the stream never ended: the target has the
/// whole body (its length says so), so its slowness is its own 504.
#[tokio::test]
async fn an_http2_body_sent_whole_but_never_ended_to_a_slow_target_is_its_504() {
    let slow = || {
        Upstream::with(Behaviour {
            delay: Some(Duration::from_secs(3)),
            ..Behaviour::default()
        })
    };
    let (upstream, store) = (slow().await, slow().await);
    let tollgate = Harness::new(upstream.addr())
        .with_upstream_timeout(TIMEOUT)
        .with_account_store(&format!("http://{}", store.addr()), TIMEOUT)
        .with_rules("[[rules]]\npath_prefix = \"/public/\"\npublic = true\n")
        .start()
        .await;

    assert_eq!(stalled_post(&tollgate, "/auth/login", DECLARED).await, 504);
    assert_eq!(
        stalled_post(&tollgate, "/public/upload", DECLARED).await,
        504
    );
    assert_eq!(
        tollgate.metric(&metric("account_store", "timeout")).await,
        1.0
    );
    assert_eq!(tollgate.metric(&metric("upstream", "timeout")).await, 1.0);
    tollgate.shutdown().await;
}
