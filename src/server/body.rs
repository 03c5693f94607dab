//! The request body timeout: a whole body within `HTTP_BODY_TIMEOUT_MS` of its head.
//!
//! tower-http's `TimeoutBody` restarts its timer after every frame, so a client that drips
//! one byte at a time holds a request (and a buffer) forever; this deadline counts from the
//! request head and does not move. It wraps request bodies only: a response may take as
//! long as a long-polling GET needs, and an upgraded websocket has no request body.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Set when a body's deadline passed, so the server answers 408 whatever the handler did
/// with the read error.
#[derive(Debug, Default, Clone)]
pub struct TimedOut(Arc<AtomicBool>);

impl TimedOut {
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The error the body returns once its deadline has passed.
#[derive(Debug)]
pub struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body not received in time")
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that fails once `deadline` has passed.
pub struct DeadlineBody<B> {
    inner: B,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: TimedOut,
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, deadline: Instant) -> (Self, TimedOut) {
        let timed_out = TimedOut::default();
        let body = Self {
            inner,
            deadline,
            sleep: None,
            timed_out: timed_out.clone(),
        };
        (body, timed_out)
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.timed_out.get() {
            return Poll::Ready(Some(Err(BodyTimeout.into())));
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.timed_out.0.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(BodyTimeout.into())))
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
    use axum::body::{Body as AxumBody, to_bytes};
    use futures::SinkExt;
    use futures::channel::mpsc;
    use std::time::Duration;

    type Chunk = Result<Bytes, std::io::Error>;

    /// A body whose sender trickles bytes in, as a slow client does.
    fn channel() -> (mpsc::Sender<Chunk>, AxumBody) {
        let (tx, rx) = mpsc::channel(8);
        (tx, AxumBody::from_stream(rx))
    }

    #[tokio::test]
    async fn a_body_dripping_bytes_fails_at_the_deadline_counted_from_the_head() {
        let (mut tx, inner) = channel();
        let (body, timed_out) =
            DeadlineBody::new(inner, Instant::now() + Duration::from_millis(300));
        let drip = tokio::spawn(async move {
            for _ in 0..10 {
                if tx.send(Ok(Bytes::from_static(b"x"))).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let read = to_bytes(AxumBody::new(body), usize::MAX).await;
        assert!(read.is_err(), "the deadline passes before the body ends");
        assert!(timed_out.get());
        drip.abort();
    }

    #[tokio::test]
    async fn a_body_sent_in_time_is_read_whole() {
        let (mut tx, inner) = channel();
        let (body, timed_out) =
            DeadlineBody::new(inner, Instant::now() + Duration::from_millis(300));
        tx.send(Ok(Bytes::from_static(b"ab"))).await.unwrap();
        drop(tx);
        let bytes = to_bytes(AxumBody::new(body), usize::MAX).await.unwrap();
        assert_eq!(&bytes[..], b"ab");
        assert!(!timed_out.get());
    }
}
