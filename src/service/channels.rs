//! Room channels: what must be ready before a socket joins a room locally.
//!
//! In cluster mode a room's emits travel on a sharded Redis channel of its own, which a
//! node subscribes to only while it holds sockets in the room (issue 17). A join counts as
//! done (the CONNECT answer, the `course:join` ack) only once that subscription is
//! confirmed, or an emit published in between would miss the socket. One node has no
//! channels: every emit is in process.

use async_trait::async_trait;

use crate::error::AppError;

/// Makes rooms' channels ready on this node.
#[async_trait]
pub trait RoomChannels: Send + Sync {
    /// Returns once every emit to `rooms` published from now on reaches this node.
    async fn ready(&self, rooms: &[String]) -> Result<(), AppError>;
}

/// One node: every emit is in process, nothing to subscribe.
pub struct InProcess;

#[async_trait]
impl RoomChannels for InProcess {
    async fn ready(&self, _: &[String]) -> Result<(), AppError> {
        Ok(())
    }
}
