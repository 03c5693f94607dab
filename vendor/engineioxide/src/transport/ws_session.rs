//! A session opened over websocket, run by one task: it reads the client's frames, writes
//! the socket's queue to the websocket and keeps the heartbeat.
//!
//! Such a session used to run three tasks (reader, writer, heartbeat): about 6.4 KB of task
//! cells per idle socket, plus a lock shared by the websocket's two halves. The task's future
//! is its whole cost per idle socket, so it is written as one `poll_fn` over the event
//! sources, and the write side drives the websocket's `Sink` by hand ([`Writer`]) instead of
//! awaiting `feed`/`flush` futures: those and a `select!` around them kept about 1 KB more
//! per socket (the largest state of every branch, held all the time). Reads, writes and the
//! heartbeat go on concurrently, as with the three tasks. Sessions upgraded from polling keep
//! the separate tasks (their writer waits for the last polling request).

use std::{
    future::{Future, poll_fn},
    ops::ControlFlow,
    pin::{Pin, pin},
    sync::Arc,
    task::{Context, Poll, ready},
};

use futures_util::{Sink, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::Instant,
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{self, Message},
};

use engineioxide_core::{Packet, ProtocolVersion};

use super::ws::{end_session, on_message, packet_message};
use crate::{
    Socket, engine::EngineIo, errors::Error, handler::EngineIoHandler, heartbeat::Heartbeat,
    queue::QueueRx, queued::Queued, socket::InternalRx,
};

/// What woke the session.
enum Event {
    Cancelled,
    QueueClosed,
    Volatile(Queued),
    Frame(Option<Result<Message, tungstenite::Error>>),
    Deadline,
}

/// Runs the session until it ends, then closes it and the websocket.
///
/// Not an `async fn`: an `async fn`'s future keeps its arguments and the locals they are
/// moved into as two copies (rust-lang/rust#62958), so the 328-byte websocket was held
/// twice for the socket's life. An `async move` block uses what it captures in place: the
/// future is 872 bytes instead of 1,216.
pub(super) fn run<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    mut ws: WebSocketStream<S>,
    socket: Arc<Socket<H::Data>>,
) -> impl Future<Output = ()> + Send + 'static
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async move {
        let config = &engine.config;
        let (mut heartbeat, first) =
            Heartbeat::start(socket.protocol, config.ping_interval, config.ping_timeout);
        let mut deadline = pin!(tokio::time::sleep_until(first));

        // No polling request ever held this session's queue: the lock is free at once.
        let mut internal_rx = socket.internal_rx.lock().await;
        let InternalRx { buffered_rx, .. } = &mut *internal_rx;
        let mut writer = Writer::new(socket.protocol);
        // The websocket is read only when its read side woke the session (not at every
        // delivery's wake-up), or when its last read gave a frame (more may be buffered).
        let read_waker = buffered_rx.read_waker();
        let mut read_again = false;

        let outcome = loop {
            let event = {
                // In the order of the `biased` select it replaces; the writer first returns
                // `Pending` when the queue is drained or the client does not read.
                poll_fn(|cx| {
                    // The socket's cancellation, as a flag on the queue (`Socket::cancel`).
                    if buffered_rx.is_interrupted() {
                        return Poll::Ready(Event::Cancelled);
                    }
                    if writer.poll_write(cx, &mut ws, buffered_rx).is_ready() {
                        return Poll::Ready(Event::QueueClosed);
                    }
                    // This registers the waker the interrupt and the read waker wake: the flags
                    // set before it are seen below, those set after it wake the session again.
                    if let Poll::Ready(packets) = buffered_rx.poll_volatile(cx) {
                        return Poll::Ready(Event::Volatile(packets));
                    }
                    if buffered_rx.is_interrupted() {
                        return Poll::Ready(Event::Cancelled);
                    }
                    if std::mem::take(&mut read_again) || buffered_rx.take_read_wake() {
                        let mut read_cx = Context::from_waker(&read_waker);
                        if let Poll::Ready(msg) = ws.poll_next_unpin(&mut read_cx) {
                            read_again = true;
                            return Poll::Ready(Event::Frame(msg));
                        }
                    }
                    if deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Event::Deadline);
                    }
                    Poll::Pending
                })
                .await
            };
            let step = match event {
                Event::Cancelled | Event::QueueClosed => break None,
                Event::Volatile(packets) => {
                    writer.push(packets);
                    Ok(())
                }
                Event::Frame(None) => break Some(Ok(())),
                Event::Frame(Some(Err(e))) => Err(e.into()),
                Event::Frame(Some(Ok(msg))) => {
                    let on_heartbeat = || {
                        if let Some(next) = heartbeat.on_client_packet(&socket)? {
                            deadline.as_mut().reset(next);
                        }
                        Ok(())
                    };
                    match on_message(&engine, &socket, msg, on_heartbeat) {
                        Ok(ControlFlow::Break(())) => break Some(Ok(())),
                        Ok(ControlFlow::Continue(())) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
                Event::Deadline => heartbeat
                    .on_deadline(&socket)
                    .map(|next| deadline.as_mut().reset(next)),
            };
            if let Err(e) = step {
                if matches!(e, Error::HeartbeatTimeout) {
                    // As `Socket::close`: tell the client, if it still listens.
                    socket.send(Packet::Close).ok();
                }
                break Some(Err(e));
            }
        };
        end_session(&engine, &socket, outcome);

        // As the writer task did: what is still queued (a Close packet), then the close frame; a
        // client that reads nothing gets `ping_timeout` to take it.
        deadline
            .as_mut()
            .reset(Instant::now() + config.ping_timeout);
        poll_fn(|cx| {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            writer.poll_close(cx, &mut ws, buffered_rx)
        })
        .await;
    }
}

/// A batch being written (see [`Writer::batch`]).
type Batch = smallvec::SmallVec<[Packet; 1]>;

/// Bursts of messages after which a socket counts as busy and its writer keeps the queue's
/// slot while idle. A connect writes a few (the CONNECT answer, the first events).
const BUSY_AFTER_BURSTS: u8 = 16;

/// The write side of a session: the batch being written, drained in place (a packet is taken
/// out only once the websocket is ready for it), and whether the websocket needs a flush.
struct Writer {
    /// One packet inline, not a [`PacketBuf`]'s two: the batch lives in every idle
    /// session's future, and a socket is sent one packet at a time (a batch of two, an
    /// event with a binary attachment, spills here: one allocation until it is written).
    batch: Batch,
    next: usize,
    unflushed: bool,
    /// Whether a message (not only heartbeats) was written since the writer was last idle.
    carried_messages: bool,
    /// Bursts with messages written so far (saturating at [`BUSY_AFTER_BURSTS`]).
    message_bursts: u8,
    protocol: ProtocolVersion,
}

impl Writer {
    fn new(protocol: ProtocolVersion) -> Self {
        Self {
            batch: Batch::new(),
            next: 0,
            unflushed: false,
            carried_messages: false,
            message_bursts: 0,
            protocol,
        }
    }

    /// Writes what is queued, in order, and flushes once the queue is drained. `Pending` when
    /// drained or when the client does not read; `Ready` only when the queue is closed.
    fn poll_write<W>(
        &mut self,
        cx: &mut Context<'_>,
        ws: &mut W,
        rx: &mut QueueRx<Queued>,
    ) -> Poll<()>
    where
        W: Sink<Message, Error = tungstenite::Error> + Unpin,
    {
        loop {
            ready!(self.poll_batch(cx, ws));
            match rx.poll_recv(cx) {
                Poll::Ready(Some(batch)) => self.set(batch),
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => {
                    if self.batch.spilled() {
                        // A large batch's slots are not kept while idle.
                        self.batch = Batch::new();
                        self.next = 0;
                    }
                    // Nor the queue's slot, unless this socket receives messages all the time:
                    // an idle socket holds none (it wrote a few bursts at its connect), while
                    // a socket in a fan-out keeps it instead of allocating one per delivery
                    // (and gives it back after a burst of heartbeats only).
                    if std::mem::take(&mut self.carried_messages) {
                        self.message_bursts = self.message_bursts.saturating_add(1);
                        if self.message_bursts < BUSY_AFTER_BURSTS {
                            rx.release_idle();
                        }
                    } else {
                        rx.release_idle();
                    }
                    if self.unflushed {
                        if let Poll::Ready(_res) = Pin::new(&mut *ws).poll_flush(cx) {
                            #[cfg(feature = "tracing")]
                            if let Err(_e) = _res {
                                tracing::debug!("error flushing the websocket: {_e}");
                            }
                            self.unflushed = false;
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// What is still queued, then the close frame.
    fn poll_close<W>(
        &mut self,
        cx: &mut Context<'_>,
        ws: &mut W,
        rx: &mut QueueRx<Queued>,
    ) -> Poll<()>
    where
        W: Sink<Message, Error = tungstenite::Error> + Unpin,
    {
        loop {
            ready!(self.poll_batch(cx, ws));
            match rx.try_recv() {
                Ok(batch) => self.set(batch),
                Err(_) => break,
            }
        }
        ready!(Pin::new(&mut *ws).poll_flush(cx)).ok();
        ready!(Pin::new(&mut *ws).poll_close(cx)).ok();
        Poll::Ready(())
    }

    /// Volatile packets go after the batch being written.
    fn push(&mut self, item: Queued) {
        if self.next == self.batch.len() {
            self.set(item);
        } else {
            item.append_to(&mut self.batch);
        }
    }

    fn set(&mut self, item: Queued) {
        self.batch.clear();
        item.append_to(&mut self.batch);
        self.next = 0;
    }

    /// Feeds the rest of the batch to the websocket, without flushing: `Ready` once it is all
    /// handed over. A failed send is only logged (the reader sees the broken transport).
    fn poll_batch<W>(&mut self, cx: &mut Context<'_>, ws: &mut W) -> Poll<()>
    where
        W: Sink<Message, Error = tungstenite::Error> + Unpin,
    {
        while let Some(packet) = self.batch.get_mut(self.next) {
            // A Noop left from an upgrade is dropped without waiting for the websocket.
            if !matches!(packet, Packet::Noop) {
                let ready = ready!(Pin::new(&mut *ws).poll_ready(cx));
                let packet = std::mem::replace(packet, Packet::Noop);
                self.carried_messages |= matches!(
                    packet,
                    Packet::Message(_) | Packet::Binary(_) | Packet::BinaryV3(_)
                );
                let res = ready.and_then(|()| match packet_message(packet, self.protocol) {
                    Some(msg) => Pin::new(&mut *ws).start_send(msg),
                    None => Ok(()),
                });
                if let Err(_e) = res {
                    #[cfg(feature = "tracing")]
                    tracing::debug!("error sending packet: {_e}");
                }
                self.unflushed = true;
            }
            self.next += 1;
        }
        Poll::Ready(())
    }
}
