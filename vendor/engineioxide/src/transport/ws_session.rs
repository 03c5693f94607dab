//! A session opened over websocket, run by one task: it reads the client's frames, writes
//! the socket's queue to the websocket and keeps the heartbeat.
//!
//! Such a session used to run three tasks (reader, writer, heartbeat): about 6.4 KB of task
//! cells per idle socket, plus a lock shared by the websocket's two halves. One `select!`
//! over the four event sources does the same work. A write that waits for the client (full
//! TCP buffer) still watches the heartbeat, so a client that stopped reading is timed out as
//! before; it only delays reading that client's own frames. Sessions upgraded from polling
//! keep the separate tasks (their writer waits for the last polling request).

use std::{
    future::Future,
    ops::ControlFlow,
    pin::{Pin, pin},
    sync::Arc,
};

use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::{Instant, Sleep},
};
use tokio_tungstenite::WebSocketStream;

use engineioxide_core::Packet;

use super::ws::{end_session, feed_packets, on_message};
use crate::{
    Socket, engine::EngineIo, errors::Error, handler::EngineIoHandler, heartbeat::Heartbeat,
    socket::InternalRx,
};

/// Runs the session until it ends, then closes it and the websocket.
///
/// Spawned as the session's task: what it holds across its awaits is its whole cost per
/// socket, so batches are drained in place rather than moved from future to future.
pub(super) async fn run<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    mut ws: WebSocketStream<S>,
    socket: Arc<Socket<H::Data>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = &engine.config;
    let (mut heartbeat, first) =
        Heartbeat::start(socket.protocol, config.ping_interval, config.ping_timeout);
    let mut deadline = pin!(tokio::time::sleep_until(first));

    // No polling request ever held this session's queue: the lock is free at once.
    let mut internal_rx = socket.internal_rx.lock().await;
    let InternalRx {
        buffered_rx,
        volatile_rx,
        ..
    } = &mut *internal_rx;

    let outcome = loop {
        let step = tokio::select! {
            biased;
            packets = buffered_rx.recv() => match packets {
                Some(mut packets) => {
                    let write = pin!(async {
                        feed_packets(&mut ws, &mut packets, &socket).await;
                        while let Ok(next) = buffered_rx.try_recv() {
                            packets = next;
                            feed_packets(&mut ws, &mut packets, &socket).await;
                        }
                        ws.flush().await.ok();
                    });
                    keep_heartbeat(write, &mut heartbeat, deadline.as_mut(), &socket).await
                }
                None => break None,
            },
            _ = socket.cancellation_token.cancelled() => break None,
            Ok(()) = volatile_rx.changed() => {
                let mut packets = volatile_rx.borrow_and_update().clone();
                let write = pin!(async {
                    if let Some(packets) = packets.as_mut() {
                        feed_packets(&mut ws, packets, &socket).await;
                        ws.flush().await.ok();
                    }
                });
                keep_heartbeat(write, &mut heartbeat, deadline.as_mut(), &socket).await
            },
            msg = ws.next() => match msg {
                None => break Some(Ok(())),
                Some(Err(e)) => Err(e.into()),
                Some(Ok(msg)) => {
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
            },
            () = &mut deadline => heartbeat
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
    let close = async {
        while let Ok(mut packets) = buffered_rx.try_recv() {
            feed_packets(&mut ws, &mut packets, &socket).await;
        }
        ws.flush().await.ok();
        ws.close(None).await.ok();
    };
    tokio::time::timeout(config.ping_timeout, close).await.ok();
}

/// Waits for `write` while keeping the heartbeat: a ping falls due or the client times out
/// even when the write waits for a client that does not read.
async fn keep_heartbeat<D>(
    mut write: Pin<&mut impl Future<Output = ()>>,
    heartbeat: &mut Heartbeat,
    mut deadline: Pin<&mut Sleep>,
    socket: &Socket<D>,
) -> Result<(), Error>
where
    D: Default + Send + Sync + 'static,
{
    loop {
        tokio::select! {
            biased;
            () = write.as_mut() => return Ok(()),
            () = deadline.as_mut() => {
                let next: Instant = heartbeat.on_deadline(socket)?;
                deadline.as_mut().reset(next);
            }
        }
    }
}
