//! Token expiry for every socket of a node, kept by one timer task.
//!
//! At `exp` a socket gets `auth:expired` and is disconnected, unless `auth:refresh` moved
//! its expiry first. One task with a timer queue replaces a task and a watch channel per
//! socket: that was ~1 KiB of every idle socket's heap and one more task spawn per connect.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::socket::Sid;
use tokio::sync::mpsc;
use tokio_util::time::{DelayQueue, delay_queue};

use crate::emit;
use crate::server_events as events;
use crate::types::AuthExpired;

/// The longest single wait; a later expiry is re-armed when it comes (the timer wheel
/// cannot hold more than about two years).
const MAX_WAIT: Duration = Duration::from_secs(30 * 24 * 3600);

/// Handle to the node's expiry task; cheap to share.
pub struct ExpiryTimers {
    commands: mpsc::UnboundedSender<Command>,
}

enum Command {
    /// Expire `Sid` at this many seconds since the epoch (replaces an earlier time).
    Set(Sid, u64),
    /// The socket is gone.
    Cancel(Sid),
}

impl ExpiryTimers {
    /// Starts the task; it ends when every handle is dropped.
    pub fn start<A: Adapter>(io: SocketIo<A>) -> Self {
        let (commands, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(io, rx));
        Self { commands }
    }

    /// Arms (or moves) a socket's expiry.
    pub fn set(&self, sid: Sid, exp_secs: u64) {
        let _ = self.commands.send(Command::Set(sid, exp_secs));
    }

    /// Forgets a socket that disconnected.
    pub fn cancel(&self, sid: Sid) {
        let _ = self.commands.send(Command::Cancel(sid));
    }
}

async fn run<A: Adapter>(io: SocketIo<A>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut queue: DelayQueue<Sid> = DelayQueue::new();
    let mut armed: HashMap<Sid, (delay_queue::Key, u64)> = HashMap::new();
    loop {
        tokio::select! {
            cmd = commands.recv() => match cmd {
                None => return,
                Some(Command::Set(sid, exp)) => {
                    let wait = until(exp);
                    match armed.get_mut(&sid) {
                        Some((key, at)) => {
                            queue.reset(key, wait);
                            *at = exp;
                        }
                        None => {
                            let key = queue.insert(sid, wait);
                            armed.insert(sid, (key, exp));
                        }
                    }
                }
                Some(Command::Cancel(sid)) => {
                    if let Some((key, _)) = armed.remove(&sid) {
                        queue.remove(&key);
                    }
                }
            },
            Some(fired) = queue.next(), if !queue.is_empty() => {
                let sid = fired.into_inner();
                let Some((_, exp)) = armed.remove(&sid) else { continue };
                let left = until(exp);
                if !left.is_zero() {
                    // Beyond MAX_WAIT: wait again.
                    let key = queue.insert(sid, left);
                    armed.insert(sid, (key, exp));
                    continue;
                }
                expire(&io, sid);
            }
        }
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
}
