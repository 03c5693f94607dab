//! Rooms whose servers the application knows: a broadcast to one of them is sent to those
//! servers' own request channels, not to every server and not on a channel of the room's.
//!
//! A room channel ([`rooms`](crate::rooms)) costs each server one subscription per room it
//! holds sockets in, and Redis one subscription per room and server. For a room of one user
//! (a socket or two, a few messages a day) that is a subscription per connection, the
//! largest per-connection cost in Redis. An application that already records, per user,
//! which servers hold its sockets (a connection ledger for per-user caps) can name those
//! servers instead: [`RedisAdapterConfig::with_room_servers`](crate::RedisAdapterConfig::with_room_servers).

use std::{fmt, future::Future, pin::Pin, sync::Arc};

use socketioxide_core::Uid;

/// The servers found for a room: `None` when they cannot be told (the broadcast then goes
/// to every server, on the request channel).
pub type ServersFuture = Pin<Box<dyn Future<Output = Option<Vec<Uid>>> + Send>>;

/// Names the servers that hold sockets in a room, for the rooms the application tracks.
///
/// The callback returns `None` for a room it does not track (the adapter then uses the
/// room's channel or the request channel, as without it), and otherwise a future of the
/// servers. For no broadcast to be lost, a server must be among those named from before its
/// first socket joins the room until after its last one left.
#[derive(Clone)]
pub struct RoomServers(Arc<dyn Fn(&str) -> Option<ServersFuture> + Send + Sync>);

impl RoomServers {
    /// Wraps the callback.
    pub fn new(f: impl Fn(&str) -> Option<ServersFuture> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// The servers of `room`: `None` when the room is not tracked or they cannot be told.
    pub(crate) async fn of(&self, room: &str) -> Option<Vec<Uid>> {
        (self.0)(room)?.await
    }
}

impl fmt::Debug for RoomServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoomServers")
    }
}
