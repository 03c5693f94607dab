//! Token expiry for every socket of a node, kept by one timer task.
//!
//! At `exp` a socket gets `auth:expired` and is disconnected, unless `auth:refresh` moved
//! its expiry first. One task with a timer queue replaces a task and a watch channel per
//! socket: that was ~1 KiB of every idle socket's heap and one more task spawn per connect.

use std::collections::BTreeSet;
use std::pin::pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::socket::Sid;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::emit;
use crate::server_events as events;
use crate::types::AuthExpired;

/// The longest single wait; a later expiry is waited for again when it comes (the timer
/// wheel cannot hold more than about two years).
const MAX_WAIT: Duration = Duration::from_secs(30 * 24 * 3600);

/// Handle to the node's expiry task; cheap to share.
pub struct ExpiryTimers {
    commands: mpsc::UnboundedSender<Command>,
}

enum Command {
    /// Expire `Sid` at this many seconds since the epoch, in place of the time it was armed
    /// for, if any.
    Set(Sid, Option<u64>, u64),
    /// The socket, armed for this time, is gone.
    Cancel(Sid, u64),
}

impl ExpiryTimers {
    /// Starts the task; it ends when every handle is dropped.
    pub fn start<A: Adapter>(io: SocketIo<A>) -> Self {
        let (commands, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(io, rx));
        Self { commands }
    }

    /// Arms a socket's expiry, or moves it from `armed` (the time it was set for: the
    /// caller keeps it, so the timers need no map by socket).
    pub fn set(&self, sid: Sid, armed: Option<u64>, exp_secs: u64) {
        let _ = self.commands.send(Command::Set(sid, armed, exp_secs));
    }

    /// Forgets a socket, armed for `armed`, that disconnected.
    pub fn cancel(&self, sid: Sid, armed: u64) {
        let _ = self.commands.send(Command::Cancel(sid, armed));
    }
}

async fn run<A: Adapter>(io: SocketIo<A>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut armed = Armed::default();
    let mut wake = pin!(tokio::time::sleep(MAX_WAIT));
    loop {
        tokio::select! {
            cmd = commands.recv() => match cmd {
                None => return,
                Some(Command::Set(sid, old, exp)) => armed.set(sid, old, exp),
                Some(Command::Cancel(sid, exp)) => armed.cancel(sid, exp),
            },
            () = &mut wake => {
                for sid in armed.take_due() {
                    expire(&io, sid);
                }
            }
        }
        let wait = armed.next().map_or(MAX_WAIT, until);
        wake.as_mut().reset(Instant::now() + wait);
    }
}

/// Every armed expiry, by time: a set entry per socket (~40 bytes). Each socket's session
/// keeps the time it is armed for ([`Session::expires`](super::session::Session)), which is
/// how a refresh or a disconnect finds its entry; a map by socket here cost ~40 bytes more
/// per socket (a `DelayQueue` slot and a map entry for its key took 160).
#[derive(Default)]
struct Armed {
    by_time: BTreeSet<(u64, Sid)>,
}

impl Armed {
    /// Arms `sid` for `exp` (seconds since the epoch), in place of `old`.
    fn set(&mut self, sid: Sid, old: Option<u64>, exp: u64) {
        if let Some(old) = old {
            self.by_time.remove(&(old, sid));
        }
        self.by_time.insert((exp, sid));
    }

    fn cancel(&mut self, sid: Sid, exp: u64) {
        self.by_time.remove(&(exp, sid));
    }

    /// The earliest expiry armed.
    fn next(&self) -> Option<u64> {
        self.by_time.first().map(|(exp, _)| *exp)
    }

    /// Disarms and returns the sockets whose expiry has come.
    fn take_due(&mut self) -> Vec<Sid> {
        let mut due = Vec::new();
        while let Some(&(exp, sid)) = self.by_time.first() {
            if !until(exp).is_zero() {
                break;
            }
            self.by_time.pop_first();
            due.push(sid);
        }
        due
    }
}

fn expire<A: Adapter>(io: &SocketIo<A>, sid: Sid) {
    let Some(s) = io.get_socket(sid) else { return };
    let _ = emit::to_socket(&s, events::AUTH_EXPIRED, &AuthExpired {});
    tracing::info!(%sid, "token expired; disconnecting");
    let _ = s.disconnect();
}

/// Time left until `exp_secs` (seconds since the epoch), at most [`MAX_WAIT`].
fn until(exp_secs: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(exp_secs)
        .saturating_sub(now)
        .min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_capped_and_past_expiries_are_due_now() {
        assert_eq!(until(0), Duration::ZERO);
        assert_eq!(until(u64::MAX), MAX_WAIT);
        let in_a_minute = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 60;
        let wait = until(in_a_minute);
        assert!(wait > Duration::from_secs(58) && wait <= Duration::from_secs(60));
    }

    fn sid(n: u8) -> Sid {
        let mut bytes = [b'A'; 16];
        bytes[15] = b'A' + n;
        std::str::from_utf8(&bytes).unwrap().parse().unwrap()
    }

    #[test]
    fn only_due_sockets_are_taken_and_a_moved_expiry_counts_once() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut armed = Armed::default();
        armed.set(sid(1), None, now - 10);
        armed.set(sid(2), None, now + 3600);
        armed.set(sid(3), None, now - 5);
        // Refreshed: its earlier, past expiry no longer counts.
        armed.set(sid(3), Some(now - 5), now + 60);
        armed.set(sid(4), None, now - 1);
        armed.cancel(sid(4), now - 1);
        assert_eq!(armed.next(), Some(now - 10));
        assert_eq!(armed.take_due(), vec![sid(1)]);
        assert_eq!(armed.next(), Some(now + 60));
        assert!(armed.take_due().is_empty());
        armed.cancel(sid(3), now + 60);
        armed.cancel(sid(2), now + 3600);
        assert_eq!(armed.next(), None);
        assert!(armed.by_time.is_empty());
    }
}
