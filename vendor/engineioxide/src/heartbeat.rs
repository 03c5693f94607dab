//! The heartbeat of a websocket session, run by the session's reader task.
//!
//! A session opened directly over websocket used to spawn a heartbeat task of its own (a
//! 1.2 KB task cell per idle socket, plus a channel to hand it the client's pongs). The reader
//! already wakes for every client packet, so it keeps the heartbeat's deadline in its select
//! and handles pings and pongs in place. Sessions upgraded from polling keep the spawned job,
//! which started before the upgrade.

use std::time::Duration;

use engineioxide_core::{Packet, ProtocolVersion};
use tokio::time::Instant;

use crate::{Socket, errors::Error, queued::Queued};

/// What the reader tracks between two heartbeat events.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    /// v3: the client pings and the server answers; v4: the other way round.
    client_pings: bool,
    /// v4: when the next ping is due, on the fixed schedule of `tokio::time::interval`.
    next_tick: Instant,
    awaiting_pong: bool,
}

impl Heartbeat {
    /// The heartbeat of a session starting now, and its first deadline.
    pub(crate) fn start(
        protocol: ProtocolVersion,
        interval: Duration,
        timeout: Duration,
    ) -> (Self, Instant) {
        let now = Instant::now();
        let client_pings = cfg!(feature = "v3") && protocol == ProtocolVersion::V3;
        let heartbeat = Self {
            interval,
            timeout,
            client_pings,
            next_tick: now,
            awaiting_pong: false,
        };
        let first = if client_pings {
            now + interval + timeout
        } else {
            // As the spawned job: the first ping goes out at once.
            now
        };
        (heartbeat, first)
    }

    /// The deadline passed: ping the client, or give up on it. Returns the next deadline.
    pub(crate) fn on_deadline<D>(&mut self, socket: &Socket<D>) -> Result<Instant, Error>
    where
        D: Default + Send + Sync + 'static,
    {
        if self.client_pings || self.awaiting_pong {
            return Err(Error::HeartbeatTimeout);
        }
        self.next_tick += self.interval;
        if socket.is_upgrading() {
            return Ok(self.next_tick);
        }
        socket
            .internal_tx
            .try_send(Queued::packet(Packet::Ping))
            .map_err(|_| Error::HeartbeatTimeout)?;
        self.awaiting_pong = true;
        Ok(Instant::now() + self.timeout)
    }

    /// The client sent a heartbeat packet. Returns the next deadline when it moves.
    pub(crate) fn on_client_packet<D>(
        &mut self,
        socket: &Socket<D>,
    ) -> Result<Option<Instant>, Error>
    where
        D: Default + Send + Sync + 'static,
    {
        if self.client_pings {
            socket
                .internal_tx
                .try_send(Queued::packet(Packet::Pong))
                .map_err(|_| Error::HeartbeatTimeout)?;
            return Ok(Some(Instant::now() + self.interval + self.timeout));
        }
        if !self.awaiting_pong {
            // A pong before any ping, or a second one: the client is known to be alive.
            return Ok(None);
        }
        self.awaiting_pong = false;
        Ok(Some(self.next_tick))
    }
}
