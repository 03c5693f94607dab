//! Header and keep-alive idle timeouts, enforced on the connection's reads.
//!
//! hyper's own `header_read_timeout` starts whenever it waits for a request head, so it
//! also ends every keep-alive connection after the header timeout, and there is no idle
//! timeout to set apart from it. Here a connection is in one [`Phase`] at a time: waiting
//! for the first request or reading a head (the header timeout), serving a request (no
//! deadline: a long-polling GET waits ~25 s for data, and body reads have a timeout of
//! their own), idle between requests (the idle timeout, until a byte arrives), or upgraded
//! to a websocket (never). A read that waits past its phase's deadline fails, and hyper
//! closes the connection.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The timeouts a connection lives by.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub body: Duration,
    pub idle: Duration,
}

/// Which deadline expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    Header,
    Idle,
}

impl Expired {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::Idle => "idle",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Head { deadline: Instant },
    Busy,
    Idle { deadline: Instant },
    Upgraded,
}

/// One connection's phase, shared by its reads and its request service.
#[derive(Debug)]
pub struct Phase {
    state: Mutex<State>,
    timeouts: Timeouts,
}

impl Phase {
    /// A fresh connection must send its first request head within the header timeout.
    pub fn new(timeouts: Timeouts) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::Head {
                deadline: Instant::now() + timeouts.header,
            }),
            timeouts,
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A request head was parsed: no connection deadline while it is served.
    pub fn request_started(&self) {
        self.with(|s| *s = State::Busy);
    }

    /// The response went out: idle until the next request's first byte.
    pub fn response_finished(&self) {
        let deadline = Instant::now() + self.timeouts.idle;
        self.with(|s| {
            if !matches!(s, State::Upgraded) {
                *s = State::Idle { deadline };
            }
        });
    }

    /// The connection became a websocket: its own pings keep it honest from now on.
    pub fn upgraded(&self) {
        self.with(|s| *s = State::Upgraded);
    }

    fn bytes_arrived(&self) {
        let deadline = Instant::now() + self.timeouts.header;
        self.with(|s| {
            if matches!(s, State::Idle { .. }) {
                *s = State::Head { deadline };
            }
        });
    }

    fn deadline(&self) -> Deadline {
        self.with(|s| match *s {
            State::Head { deadline } => Deadline::At(deadline, Expired::Header),
            State::Idle { deadline } => Deadline::At(deadline, Expired::Idle),
            State::Busy => Deadline::None,
            State::Upgraded => Deadline::Never,
        })
    }
}

/// What a waiting read is bound by.
enum Deadline {
    At(Instant, Expired),
    /// Not now (a request is being served).
    None,
    /// Never again: the connection is a websocket.
    Never,
}

/// A stream whose reads fail once the connection's phase deadline passes.
///
/// The timer exists only while a read waits under a deadline. A registered timer holds the
/// waker of the task that polled it: kept past the upgrade, it kept the finished HTTP
/// connection task's cell (1.1 KB) alive per websocket until the header deadline fired, and
/// the boxed timer itself for the socket's life (issue 15).
pub struct PhasedIo<T> {
    inner: T,
    /// `None` once the phase says upgraded: a websocket's reads skip the phase's lock, and
    /// the socket does not keep the phase (96 B) for its life (issue 15).
    phase: Option<Arc<Phase>>,
    sleep: Option<Pin<Box<Sleep>>>,
    expired: Option<Expired>,
}

impl<T> PhasedIo<T> {
    pub fn new(inner: T, phase: Arc<Phase>) -> Self {
        Self {
            inner,
            phase: Some(phase),
            sleep: None,
            expired: None,
        }
    }

    /// Whether a timer is held (registered or not).
    #[cfg(test)]
    fn holds_timer(&self) -> bool {
        self.sleep.is_some()
    }
}

/// The error a read returns when a deadline passed; [`expired_of`] recognises it.
#[derive(Debug)]
struct DeadlinePassed(Expired);

impl std::fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} timeout", self.0.as_str())
    }
}

impl std::error::Error for DeadlinePassed {}

/// Which deadline ended a connection, if its error came from one.
pub fn expired_of(err: &(dyn std::error::Error + 'static)) -> Option<Expired> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(DeadlinePassed(kind)) = e.downcast_ref::<DeadlinePassed>() {
            return Some(*kind);
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && let Some(DeadlinePassed(kind)) = io
                .get_ref()
                .and_then(|i| i.downcast_ref::<DeadlinePassed>())
        {
            return Some(*kind);
        }
        cur = e.source();
    }
    None
}

impl<T: AsyncRead + Unpin> AsyncRead for PhasedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(kind) = this.expired {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                DeadlinePassed(kind),
            )));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before
                    && let Some(phase) = &this.phase
                {
                    phase.bytes_arrived();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some(phase) = &this.phase else {
                    return Poll::Pending;
                };
                let (deadline, kind) = match phase.deadline() {
                    Deadline::At(deadline, kind) => (deadline, kind),
                    // Busy or upgraded: drop the timer, and the waker it holds.
                    Deadline::None => {
                        this.sleep = None;
                        return Poll::Pending;
                    }
                    Deadline::Never => {
                        this.sleep = None;
                        this.phase = None;
                        return Poll::Pending;
                    }
                };
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.expired = Some(kind);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    DeadlinePassed(kind),
                )))
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for PhasedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const T: Timeouts = Timeouts {
        header: Duration::from_millis(100),
        body: Duration::from_millis(100),
        idle: Duration::from_millis(300),
    };

    #[tokio::test]
    async fn a_silent_new_connection_fails_after_the_header_timeout() {
        let (a, _b) = tokio::io::duplex(64);
        let mut io = PhasedIo::new(a, Phase::new(T));
        let err = io.read(&mut [0; 8]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_request_in_flight_has_no_connection_deadline_and_idle_follows_it() {
        let (a, mut b) = tokio::io::duplex(64);
        let phase = Phase::new(T);
        let mut io = PhasedIo::new(a, phase.clone());
        phase.request_started();
        let waited = tokio::time::timeout(Duration::from_millis(500), io.read(&mut [0; 8])).await;
        assert!(waited.is_err(), "no deadline while busy");
        phase.response_finished();
        let started = Instant::now();
        let err = io.read(&mut [0; 8]).await.unwrap_err();
        assert_eq!(expired_of(&err), Some(Expired::Idle));
        assert!(started.elapsed() >= T.idle);
        b.write_all(b"x").await.unwrap();
    }

    #[tokio::test]
    async fn an_upgraded_connection_never_times_out() {
        let (a, _b) = tokio::io::duplex(64);
        let phase = Phase::new(T);
        let mut io = PhasedIo::new(a, phase.clone());
        phase.upgraded();
        phase.response_finished();
        let waited = tokio::time::timeout(Duration::from_millis(800), io.read(&mut [0; 8])).await;
        assert!(waited.is_err());
    }

    #[tokio::test]
    async fn the_timer_is_dropped_once_a_read_waits_without_a_deadline() {
        let (a, _b) = tokio::io::duplex(64);
        let long = Timeouts {
            header: Duration::from_secs(600),
            ..T
        };
        let phase = Phase::new(long);
        let mut io = PhasedIo::new(a, phase.clone());
        fn poll_once<T: AsyncRead + Unpin>(io: &mut PhasedIo<T>) -> bool {
            let mut buf = [0; 8];
            let mut buf = ReadBuf::new(&mut buf);
            let mut cx = Context::from_waker(std::task::Waker::noop());
            Pin::new(io).poll_read(&mut cx, &mut buf).is_pending()
        }
        assert!(!io.holds_timer(), "no timer before a read waits");
        // Waiting for the request head: the header deadline's timer is registered.
        assert!(poll_once(&mut io));
        assert!(io.holds_timer());
        // The upgrade: the next read waits with no deadline, and lets the timer go (with
        // the waker of the task that registered it).
        phase.upgraded();
        assert!(poll_once(&mut io));
        assert!(!io.holds_timer());
        // Nor does it keep the phase: the connection's other holder (its request service)
        // is gone after an upgrade, and the phase with it.
        assert_eq!(Arc::strong_count(&phase), 1);
    }
}
