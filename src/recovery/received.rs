//! Cluster: the offsets of the broadcasts this node received from other nodes, so that the
//! replay after a Redis blip sends a connected socket only what never reached the node.
//!
//! The adapter calls [`Received::record`] with every broadcast relayed from another node
//! before it hands it to the local sockets (the vendored socketioxide-redis's remote
//! broadcast observer, docs/vendor.md §17). So an offset found here was either delivered
//! to the sockets of its rooms already or is queued (held) at them: the blip replay leaves
//! it out. An offset not found here never reached this node, or reaches it later: the
//! replay sends it, and its later live copy is left out by the socket's
//! [`super::replayed::Replayed`] filter.
//!
//! The ring is bounded by count. What it forgot is remembered per origin as the highest
//! offset it dropped (its floor): it answers for an origin's offsets above its floor only
//! ([`Received::unreceived`] says when it cannot answer, and the caller falls back to
//! replaying the blip's window, where an event can come twice). The floors themselves are
//! bounded by [`MAX_ORIGINS`] (node processes seen); past it the oldest floor is dropped and
//! folded into one bound in ms over every origin.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use socketioxide_core::packet::{Packet, PacketData};

use super::Offset;

/// The offset a broadcast carries as its last argument, if any: `["e",{..},"~1-0-a"]`.
pub fn offset_of(packet: &Packet) -> Option<Offset> {
    match &packet.inner {
        PacketData::Event(v, _) | PacketData::BinaryEvent(v, _) => trailing_offset(v.as_str()?),
        _ => None,
    }
}

/// The offset that is the last argument of an encoded event (a JSON array).
fn trailing_offset(data: &str) -> Option<Offset> {
    let body = data.strip_suffix("\"]")?;
    let start = body.rfind(",\"")?;
    Offset::parse(&body[start + 2..])
}

/// The ring's size for `RECOVERY_STREAM_MAX_LEN`: 16 streams' worth, at least 16,384
/// offsets (about 50 B each with the set: under 1 MB at the default). At 1,000 received
/// events a second that is 16 s, enough for a blip replay reading 6 s before an outage of
/// several seconds; a busier node falls back (`lms_recovery_blip_fallbacks_total`).
pub fn capacity(stream_max_len: usize) -> usize {
    stream_max_len.saturating_mul(16).max(16_384)
}

/// Origins (node processes) whose floor is remembered one by one.
pub const MAX_ORIGINS: usize = 1024;

/// The received offsets, by count, with what was forgotten.
pub struct Received {
    inner: Mutex<Ring>,
}

struct Ring {
    cap: usize,
    order: VecDeque<Offset>,
    set: HashSet<Offset>,
    /// Per origin, the highest offset dropped from the ring.
    floors: HashMap<u32, Offset>,
    /// Every origin's dropped offsets are at or below this ms once its floor was dropped.
    forgotten_ms: Option<u64>,
}

impl Received {
    /// A ring of at most `cap` offsets (at least 1).
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Mutex::new(Ring {
                cap: cap.max(1),
                order: VecDeque::new(),
                set: HashSet::new(),
                floors: HashMap::new(),
                forgotten_ms: None,
            }),
        }
    }

    /// Notes a broadcast received from another node, before it is delivered locally.
    pub fn record(&self, o: Offset) {
        let mut ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !ring.set.insert(o) {
            return;
        }
        ring.order.push_back(o);
        while ring.order.len() > ring.cap {
            let Some(old) = ring.order.pop_front() else {
                break;
            };
            ring.set.remove(&old);
            let floor = ring.floors.entry(old.origin).or_insert(old);
            *floor = (*floor).max(old);
        }
        if ring.floors.len() > MAX_ORIGINS
            && let Some((&origin, &floor)) = ring.floors.iter().min_by_key(|(_, f)| f.ms)
        {
            ring.floors.remove(&origin);
            ring.forgotten_ms = ring.forgotten_ms.max(Some(floor.ms));
        }
    }

    /// Whether `o` was received (and is still in the ring).
    pub fn contains(&self, o: &Offset) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set
            .contains(o)
    }

    /// Of `offsets` (all above `after`), the indexes of those this node never received;
    /// `None` when the ring dropped an offset above `after` of one of their origins, so that
    /// it cannot tell. One look under one lock: a floor cannot move between the checks.
    pub fn unreceived(&self, after: Offset, offsets: &[Offset]) -> Option<Vec<usize>> {
        let ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (i, o) in offsets.iter().enumerate() {
            if ring.set.contains(o) {
                continue;
            }
            let covered = ring.forgotten_ms.is_none_or(|f| after.ms > f)
                && ring.floors.get(&o.origin).is_none_or(|f| *f <= after);
            if !covered {
                return None;
            }
            out.push(i);
        }
        Some(out)
    }

    /// How many offsets the ring holds.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .order
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(ms: u64, seq: u32, origin: u32) -> Offset {
        Offset { ms, seq, origin }
    }

    #[test]
    fn a_broadcast_gives_its_trailing_offset() {
        let off = o(1_700_000_000_123, 4, 0xab);
        let data = format!(r#"["course:updated",{{"a":"x,\"y"}},"{off}"]"#);
        assert_eq!(trailing_offset(&data), Some(off));
        let packet = Packet::event("/", socketioxide_core::Value::Str(data.into(), None));
        assert_eq!(offset_of(&packet), Some(off));
        for none in [r#"["e",{"a":1}]"#, r#"["e","x"]"#, r#"["e","~1-2"]"#, ""] {
            assert_eq!(trailing_offset(none), None, "{none}");
        }
    }

    #[test]
    fn the_ring_keeps_the_last_offsets_and_tells_what_was_not_received() {
        let r = Received::new(3);
        assert!(r.is_empty());
        for ms in [10, 11, 12] {
            r.record(o(ms, 0, 1));
        }
        r.record(o(11, 0, 1));
        assert_eq!(r.len(), 3, "a repeat is recorded once");
        assert!(r.contains(&o(10, 0, 1)));
        assert!(!r.contains(&o(10, 1, 1)));
        // 10-1 (a gap) and 13-0 (not yet) were not received; the rest was.
        let asked = [o(10, 0, 1), o(10, 1, 1), o(12, 0, 1), o(13, 0, 1)];
        assert_eq!(r.unreceived(o(5, 0, 0), &asked), Some(vec![1, 3]));
    }

    #[test]
    fn past_its_bound_the_ring_cannot_answer_below_what_it_dropped() {
        let r = Received::new(2);
        r.record(o(10, 0, 1));
        r.record(o(20, 0, 2));
        r.record(o(30, 0, 1)); // drops 10-0-1: origin 1's floor is 10-0
        r.record(o(31, 0, 1)); // drops 20-0-2: origin 2's floor is 20-0
        assert_eq!(r.len(), 2);
        assert!(!r.contains(&o(10, 0, 1)));
        // Above origin 1's floor: known.
        assert_eq!(
            r.unreceived(o(10, 0, 1), &[o(15, 0, 1), o(30, 0, 1)]),
            Some(vec![0])
        );
        // Origin 1's 10-0 was dropped and lies above `after`: cannot tell.
        assert_eq!(r.unreceived(o(9, 0, 0), &[o(15, 0, 1)]), None);
        // Origin 3 never dropped anything: known, even from far back.
        assert_eq!(r.unreceived(o(0, 0, 0), &[o(5, 0, 3)]), Some(vec![0]));
        // What the ring still holds is known whatever the floors.
        assert_eq!(r.unreceived(o(0, 0, 0), &[o(31, 0, 1)]), Some(vec![]));
        // Origin 2's floor is 20-0.
        assert_eq!(r.unreceived(o(19, 9, 9), &[o(25, 0, 2)]), None);
        assert_eq!(r.unreceived(o(20, 0, 2), &[o(25, 0, 2)]), Some(vec![0]));
    }

    #[test]
    fn past_max_origins_the_oldest_floor_bounds_every_origin() {
        let r = Received::new(1);
        // Every origin records one offset, which the next drops: MAX_ORIGINS + 1 floors.
        for origin in 0..(MAX_ORIGINS as u32 + 2) {
            r.record(o(100 + origin as u64, 0, origin));
        }
        // Origin 0's floor (ms 100) was forgotten: nothing at or below ms 100 is answered,
        // for any origin, even one never seen.
        assert_eq!(r.unreceived(o(100, 5, 0), &[o(200, 0, 77_777)]), None);
        assert_eq!(
            r.unreceived(o(101, 0, 0), &[o(200, 0, 77_777)]),
            Some(vec![0])
        );
        // Origin 1's own floor (101-0-1) is still remembered.
        assert_eq!(r.unreceived(o(101, 0, 0), &[o(200, 0, 1)]), None);
    }

    #[test]
    fn the_capacity_follows_the_stream_length_with_a_floor() {
        assert_eq!(capacity(1_000), 16_384);
        assert_eq!(capacity(10_000), 160_000);
    }
}
