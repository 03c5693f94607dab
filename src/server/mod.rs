//! The HTTP server under the routes: an accept loop on hyper, because `axum::serve` has
//! no header, body or idle timeout, and without them a few hundred silent or slow
//! connections held descriptors until the node stopped answering (PROTOCOL.md §13,
//! docs/security.md).
//!
//! Every request gets the peer address (`ConnectInfo<SocketAddr>`) and the resolved
//! [`ClientIp`] in its extensions, the API's and Socket.IO's alike. On shutdown the loop
//! stops accepting, idle keep-alive connections close, and in-flight requests finish.

pub mod body;
pub mod phase;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::client_ip::{ClientIp, TrustedProxies};
use crate::error::ErrorCode;
use crate::http::error::ApiError;
use crate::metrics;
use crate::refusal_log::{LogVerdict, RefusalLog};
use body::DeadlineBody;
pub use phase::Timeouts;
use phase::{Expired, Phase, PhasedIo};

/// How long the loop pauses after a failed accept (out of descriptors, usually), so that
/// it neither spins nor logs a line per attempt; the connections it holds keep timing out.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What every connection of one listener shares.
pub struct HttpServer {
    router: Router,
    proxies: TrustedProxies,
    timeouts: Timeouts,
    refusals: RefusalLog<IpAddr>,
}

impl HttpServer {
    pub fn new(router: Router, proxies: TrustedProxies, timeouts: Timeouts) -> Arc<Self> {
        Arc::new(Self {
            router,
            proxies,
            timeouts,
            refusals: RefusalLog::default(),
        })
    }

    /// Accepts until `stop` completes, then drains: idle connections close at once, busy
    /// ones after their response, and this returns when none is left.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, stop: impl Future<Output = ()>) {
        let tracker = TaskTracker::new();
        let drain = CancellationToken::new();
        let mut stop = std::pin::pin!(stop);
        let mut failing = false;
        loop {
            let accepted = tokio::select! {
                () = &mut stop => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    failing = false;
                    tracker.spawn(self.clone().connection(stream, peer, drain.clone()));
                }
                Err(e) => {
                    metrics::http_accept_failed();
                    if !failing {
                        tracing::warn!(error = %e, "cannot accept connections; retrying");
                        failing = true;
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
        drop(listener);
        drain.cancel();
        tracker.close();
        tracker.wait().await;
    }

    async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        drain: CancellationToken,
    ) {
        // Small responses and websocket frames should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let phase = Phase::new(self.timeouts);
        let io = TokioIo::new(PhasedIo::new(stream, phase.clone()));
        let server = self.clone();
        let service =
            hyper::service::service_fn(move |req| server.clone().request(req, peer, phase.clone()));
        let conn = hyper::server::conn::http1::Builder::new()
            // The phase deadlines replace hyper's, which would also end keep-alive
            // connections after the header timeout.
            .header_read_timeout(None)
            .serve_connection(io, service)
            .with_upgrades();
        let mut conn = std::pin::pin!(conn);
        let result = tokio::select! {
            res = conn.as_mut() => res,
            () = drain.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        let Err(e) = result else { return };
        match phase::expired_of(&e) {
            Some(Expired::Idle) => metrics::http_timeout(Expired::Idle.as_str()),
            Some(Expired::Header) => {
                metrics::http_timeout(Expired::Header.as_str());
                let ip = self.proxies.resolve(peer, &Default::default());
                if let LogVerdict::Log { suppressed } = self.refusals.admit(&ip.0) {
                    tracing::info!(client_ip = %ip, suppressed, timeout_ms = self.timeouts.header.as_millis() as u64, "HTTP connection closed: request head not received in time");
                }
            }
            None => {
                tracing::debug!(peer = %peer, error = %e, "HTTP connection ended with an error")
            }
        }
    }

    async fn request(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
        phase: Arc<Phase>,
    ) -> Result<Response<Body>, Infallible> {
        phase.request_started();
        let (mut parts, body) = req.into_parts();
        let client = self.proxies.resolve(peer, &parts.headers);
        parts.extensions.insert(ConnectInfo(peer));
        parts.extensions.insert(client);
        let refusal = Refused::of(&parts, client);
        let (body, timed_out) = if http_body::Body::is_end_stream(&body) {
            (Body::new(body), None)
        } else {
            let deadline = tokio::time::Instant::now() + self.timeouts.body;
            let (body, flag) = DeadlineBody::new(body, deadline);
            (Body::new(body), Some(flag))
        };
        let mut res = match self
            .router
            .clone()
            .oneshot(Request::from_parts(parts, body))
            .await
        {
            Ok(res) => res,
            Err(never) => match never {},
        };
        if timed_out.is_some_and(|t| t.get()) {
            res = self.body_timed_out(refusal);
        }
        if res.status() == StatusCode::SWITCHING_PROTOCOLS {
            phase.upgraded();
        }
        Ok(res.map(|inner| Body::new(PhaseBody { inner, phase })))
    }

    /// 408 with the error envelope, and the connection closes: the rest of the body may
    /// still be on its way.
    fn body_timed_out(&self, refused: Refused) -> Response<Body> {
        metrics::http_timeout("body");
        if let LogVerdict::Log { suppressed } = self.refusals.admit(&refused.client.0) {
            tracing::info!(
                client_ip = %refused.client,
                user_agent = refused.user_agent.as_deref().unwrap_or("-"),
                path = refused.path,
                suppressed,
                timeout_ms = self.timeouts.body.as_millis() as u64,
                "request refused: body not received in time"
            );
        }
        let mut res = ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::InvalidPayload,
            "request body not received in time",
        )
        .into_unlogged_response();
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        res
    }
}

/// What a refusal's log line says about the request (never its query: it may hold a token).
struct Refused {
    client: ClientIp,
    user_agent: Option<String>,
    path: String,
}

impl Refused {
    fn of(parts: &axum::http::request::Parts, client: ClientIp) -> Self {
        Self {
            client,
            user_agent: crate::client_ip::user_agent(&parts.headers),
            path: parts.uri.path().to_owned(),
        }
    }
}

/// A response body that marks the connection idle once hyper is done with it.
struct PhaseBody {
    inner: Body,
    phase: Arc<Phase>,
}

impl Drop for PhaseBody {
    fn drop(&mut self) {
        self.phase.response_finished();
    }
}

impl http_body::Body for PhaseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
