//! The one place a server event leaves the node: every emit is counted here
//! (`lms_events_emitted_total`), whoever sends it. Handlers reach it through
//! [`crate::Gateway`]; the ack runner, the expiry timers, the operator and the shutdown
//! notice call it directly.

use serde::Serialize;
use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::Socket;
use socketioxide::{BroadcastError, SendError};

use crate::error::{AppError, ErrorCode};
use crate::metrics;

/// Emits to whatever sockets `to` selects (rooms, every node, local only), counted.
pub async fn broadcast<A: Adapter, T: Serialize + ?Sized>(
    to: BroadcastOperators<A>,
    event: &'static str,
    data: &T,
) -> Result<(), BroadcastError> {
    metrics::emitted(event);
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

/// Counts and logs a failed broadcast. Sockets whose buffers were full or closed are
/// drops, not a failure; only a failure to publish at all is an error (`UNAVAILABLE`).
pub fn report_broadcast_error(event: &'static str, e: &BroadcastError) -> Result<(), AppError> {
    match e {
        BroadcastError::Socket(errors) => {
            for _ in errors {
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
