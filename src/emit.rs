//! The one place a server event leaves the node: every emit is counted here
//! (`lms_events_emitted_total`), whoever sends it. Handlers reach it through
//! [`crate::Gateway`]; the ack runner, the expiry timers, the operator and the shutdown
//! notice call it directly.

use serde::Serialize;
use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::Socket;
use socketioxide::{BroadcastError, SendError};
use tracing::Instrument;

use crate::error::{AppError, ErrorCode};
use crate::metrics;

/// Emits to whatever sockets `to` selects (rooms, every node, local only), counted, and
/// traced (a span in the trace of whatever caused it) when traces are on.
pub async fn broadcast<A: Adapter, T: Serialize + ?Sized>(
    to: BroadcastOperators<A>,
    event: &'static str,
    data: &T,
) -> Result<(), BroadcastError> {
    metrics::emitted(event);
    if crate::traces::enabled() {
        return to
            .emit(event, data)
            .instrument(crate::traces::emit_span(event))
            .await;
    }
    to.emit(event, data).await
}

/// Emits to one socket, counted.
pub fn to_socket<A: Adapter, T: Serialize + ?Sized>(
    socket: &Socket<A>,
    event: &'static str,
    data: &T,
) -> Result<(), SendError> {
    metrics::emitted(event);
    socket.emit(event, data)
}

/// Emits to one socket, counted once, waiting up to `within` while its send buffer is full
/// (a replay longer than the buffer, to a client that is reading it). False when it never
/// drained or the socket closed.
pub async fn to_socket_draining<A: Adapter, T: Serialize + ?Sized>(
    socket: &Socket<A>,
    event: &'static str,
    data: &T,
    within: std::time::Duration,
) -> bool {
    metrics::emitted(event);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match socket.emit(event, data) {
            Ok(()) => return true,
            Err(SendError::Socket(socketioxide::SocketError::InternalChannelFull))
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            Err(_) => return false,
        }
    }
}

/// Counts and logs a failed broadcast. Sockets whose buffers were full or closed are
/// drops, not a failure; only a failure to publish at all is an error (`UNAVAILABLE`).
/// A full buffer is counted by the socket itself (and closes it, whichever node the emit
/// came from: [`slow_consumer_closed`]), so only closed sockets are counted here.
pub fn report_broadcast_error(event: &'static str, e: &BroadcastError) -> Result<(), AppError> {
    match e {
        BroadcastError::Socket(errors) => {
            for _ in errors
                .iter()
                .filter(|e| matches!(e, socketioxide::SocketError::Closed))
            {
                metrics::emit_dropped(event);
            }
            tracing::warn!(
                event,
                dropped = errors.len(),
                "emit dropped for sockets whose buffer is full or closed"
            );
            Ok(())
        }
        other => {
            tracing::error!(event, error = %other, "broadcast failed");
            Err(AppError::new(
                ErrorCode::Unavailable,
                "the event could not be published to the cluster; retry later",
            ))
        }
    }
}

/// At disconnect: whether the socket was cut off as a slow consumer (a broadcast did not
/// fit its send buffer, from this node or relayed from another; the vendored socketioxide
/// closes the transport then). Its dropped broadcasts are counted here, under
/// `event="any"`: the socket counts packets, not their names.
pub fn slow_consumer_closed<A: Adapter>(socket: &Socket<A>) -> bool {
    let dropped = socket.dropped_broadcasts();
    if dropped > 0 {
        metrics::emit_dropped_n("any", dropped.into());
    }
    dropped > 0
}
