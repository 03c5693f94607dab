//! Offsets: the position of an event in the streams, sent as the event's last argument.
//!
//! An offset is `~<ms>-<seq>-<origin>`: a hybrid clock of the node that emitted the event
//! (wall milliseconds, made monotonic, and a sequence within one millisecond) and a random
//! id of that node process. Offsets of one node are strictly increasing in emit order, and
//! offsets of all nodes are totally ordered by `(ms, seq, origin)`, so one offset says
//! where a socket stands in every one of its rooms at once, whichever rooms the events went
//! to. The leading `~` is what the vendored socketioxide strips for sockets that opted out.

use std::fmt;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the vendored socketioxide recognises as a trailing offset (`strip_trailing_offset`).
pub const PREFIX: &str = "~";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Offset {
    pub ms: u64,
    pub seq: u32,
    pub origin: u32,
}

impl Offset {
    /// Parses what a client sent back; `None` for anything this module did not write.
    pub fn parse(s: &str) -> Option<Offset> {
        let rest = s.strip_prefix(PREFIX)?;
        let mut parts = rest.splitn(3, '-');
        let ms = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let origin = u32::from_str_radix(parts.next()?, 16).ok()?;
        Some(Offset { ms, seq, origin })
    }

    /// The smallest offset of a millisecond (a lower bound for range reads).
    pub fn at_ms(ms: u64) -> Offset {
        Offset {
            ms,
            seq: 0,
            origin: 0,
        }
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}-{}-{:x}", self.ms, self.seq, self.origin)
    }
}

/// Wall time in ms since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The node's hybrid clock: never goes back, even when the wall clock does.
pub struct Clock {
    origin: u32,
    last: Mutex<(u64, u32)>,
}

impl Clock {
    pub fn new() -> Self {
        Self {
            origin: uuid::Uuid::new_v4().as_u128() as u32,
            last: Mutex::new((0, 0)),
        }
    }

    /// The random id of this node process in its offsets.
    pub fn origin(&self) -> u32 {
        self.origin
    }

    /// The next offset of this node, greater than every one it gave before.
    pub fn next(&self) -> Offset {
        let now = now_ms();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        *last = if now > last.0 {
            (now, 0)
        } else {
            (last.0, last.1 + 1)
        };
        Offset {
            ms: last.0,
            seq: last.1,
            origin: self.origin,
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_reads_back_what_it_wrote_and_nothing_else() {
        let o = Clock::new().next();
        assert_eq!(Offset::parse(&o.to_string()), Some(o));
        for bad in ["", "~", "1-2-3", "~a-1-2", "~1-2", "~1-2-zz", "~1-2-3\""] {
            assert_eq!(Offset::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_clock_never_repeats_or_goes_back() {
        let c = Clock::new();
        let mut prev = c.next();
        for _ in 0..10_000 {
            let o = c.next();
            assert!(o > prev);
            prev = o;
        }
    }
}
