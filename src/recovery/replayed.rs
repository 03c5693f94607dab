//! What a recovering socket was replayed, so that live copies of those events are left out.
//!
//! In a cluster an event is kept in its streams before it is published, so a replay can
//! read an event whose live copy is still on its way to this node, or arrived while the
//! replay ran (held, see `Socket::hold_broadcasts`). [`Replayed`] is the socket's broadcast
//! filter: it leaves out a broadcast whose offset was replayed, once.
//!
//! When is an origin (node process) done? Its offsets grow in the order it takes them, but
//! not in the order it publishes: two emits in flight at once each keep their event (one
//! Redis round trip) before they publish it, and the one with the lower offset can finish
//! later. So a live event above the highest offset replayed from an origin does not mean
//! the lower ones are all in: they can follow it for as long as an emit can take between
//! its offset and its publish. That is bounded: the keep and the publish each fail after
//! the command timeout ([`crate::cluster::COMMAND_TIMEOUT`], 1.5 s), and an event whose keep
//! failed was not kept, so not replayed. [`GRACE`] is that twice, plus 2 s for the pub/sub
//! hop and this node's adapter queue: an origin is forgotten [`GRACE`] after its first live
//! event above the highest replayed offset (or at once when every replayed offset of it
//! came back). A bound in live events instead ("after N more") would not do: a burst passes
//! any N in a few milliseconds, while the late copy is still in its Redis round trip.
//! When every origin is forgotten the filter removes itself. An origin that never sends
//! again (a node that died) is kept until the socket goes: at most the replay's offsets.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use socketioxide::socket::BroadcastVerdict;

use super::Offset;
use crate::cluster::COMMAND_TIMEOUT;

/// How long an origin's replayed offsets are kept after its first live event above them.
pub const GRACE: Duration = Duration::from_millis(2 * COMMAND_TIMEOUT.as_millis() as u64 + 2_000);

/// The offsets replayed to one socket, by origin.
#[derive(Debug, Default)]
pub struct Replayed {
    by_origin: HashMap<u32, Origin>,
}

#[derive(Debug, Default)]
struct Origin {
    offsets: HashSet<Offset>,
    highest: Option<Offset>,
    /// When the first live event above `highest` came: the origin is forgotten [`GRACE`]
    /// later.
    passed: Option<Instant>,
}

impl Replayed {
    pub fn new(offsets: impl IntoIterator<Item = Offset>) -> Self {
        let mut by_origin: HashMap<u32, Origin> = HashMap::new();
        for o in offsets {
            let origin = by_origin.entry(o.origin).or_default();
            origin.offsets.insert(o);
            origin.highest = origin.highest.max(Some(o));
        }
        Self { by_origin }
    }

    pub fn is_empty(&self) -> bool {
        self.by_origin.is_empty()
    }

    /// Adds offsets replayed later (after a Redis blip): an origin whose highest replayed
    /// offset grows waits again for a live event above it before its grace time starts.
    pub fn extend(&mut self, offsets: impl IntoIterator<Item = Offset>) {
        for o in offsets {
            let origin = self.by_origin.entry(o.origin).or_default();
            origin.offsets.insert(o);
            if origin.highest.is_none_or(|h| o > h) {
                origin.highest = Some(o);
                origin.passed = None;
            }
        }
    }

    /// The verdict on a live broadcast whose last argument is `trailing`.
    pub fn verdict(&mut self, trailing: Option<&str>) -> BroadcastVerdict {
        self.verdict_at(trailing, Instant::now())
    }

    /// [`Self::verdict`] at `now`.
    pub fn verdict_at(&mut self, trailing: Option<&str>, now: Instant) -> BroadcastVerdict {
        let mut repeat = false;
        if let Some(o) = trailing.and_then(Offset::parse)
            && let Some(origin) = self.by_origin.get_mut(&o.origin)
        {
            repeat = origin.offsets.remove(&o);
            if origin.passed.is_none() && origin.highest.is_some_and(|h| o > h) {
                origin.passed = Some(now);
            }
        }
        self.by_origin.retain(|_, origin| {
            !origin.offsets.is_empty()
                && origin
                    .passed
                    .is_none_or(|at| now.saturating_duration_since(at) < GRACE)
        });
        if repeat {
            BroadcastVerdict::Skip
        } else if self.by_origin.is_empty() {
            BroadcastVerdict::SendAndStop
        } else {
            BroadcastVerdict::Send
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::Clock;

    fn s(o: Offset) -> String {
        o.to_string()
    }

    #[test]
    fn a_replayed_offset_is_left_out_once_and_an_origin_ends_when_all_came_back() {
        let (a, b) = (Clock::new(), Clock::new());
        let (a1, a2, a3) = (a.next(), a.next(), a.next());
        let b1 = b.next();
        let mut r = Replayed::new([a1, a2, b1]);
        assert_eq!(r.verdict(Some(&s(a2))), BroadcastVerdict::Skip);
        assert_eq!(r.verdict(Some(&s(a2))), BroadcastVerdict::Send, "once");
        assert_eq!(r.verdict(None), BroadcastVerdict::Send);
        assert_eq!(r.verdict(Some("not an offset")), BroadcastVerdict::Send);
        assert_eq!(r.verdict(Some(&s(a3))), BroadcastVerdict::Send);
        assert_eq!(r.verdict(Some(&s(a1))), BroadcastVerdict::Skip);
        assert_eq!(r.verdict(Some(&s(b1))), BroadcastVerdict::Skip);
        assert!(r.is_empty());
        assert_eq!(r.verdict(None), BroadcastVerdict::SendAndStop);
    }

    #[test]
    fn offsets_added_later_are_left_out_too_and_restart_the_wait() {
        let a = Clock::new();
        let (a1, a2, a3) = (a.next(), a.next(), a.next());
        let t0 = Instant::now();
        let mut r = Replayed::new([a1]);
        assert_eq!(r.verdict_at(Some(&s(a2)), t0), BroadcastVerdict::Send);
        r.extend([a3]);
        let late = t0 + GRACE + Duration::from_millis(1);
        assert_eq!(
            r.verdict_at(Some(&s(a3)), late),
            BroadcastVerdict::Skip,
            "a3 raised the highest: the grace time had not started"
        );
        assert_eq!(r.verdict_at(Some(&s(a1)), late), BroadcastVerdict::Skip);
        assert_eq!(r.verdict_at(None, late), BroadcastVerdict::SendAndStop);
        let mut empty = Replayed::default();
        empty.extend([a1]);
        assert_eq!(empty.verdict(Some(&s(a1))), BroadcastVerdict::Skip);
    }

    /// One node's emits in flight at once publish out of offset order: a replayed offset's
    /// live copy can come after a later offset of the same node, and is still left out
    /// while the grace time runs; after it the origin is forgotten.
    #[test]
    fn a_replayed_offset_that_comes_after_a_later_one_of_its_origin_is_still_left_out() {
        let a = Clock::new();
        let (a1, a2, a3, a4) = (a.next(), a.next(), a.next(), a.next());
        let t0 = Instant::now();
        let mut r = Replayed::new([a1, a2]);
        // a3 published before a2 (a2's keep was slower), a4 too.
        assert_eq!(r.verdict_at(Some(&s(a3)), t0), BroadcastVerdict::Send);
        assert_eq!(r.verdict_at(Some(&s(a4)), t0), BroadcastVerdict::Send);
        let late = t0 + GRACE - Duration::from_millis(1);
        assert_eq!(
            r.verdict_at(Some(&s(a2)), late),
            BroadcastVerdict::Skip,
            "a2 came live after a3: a repeat"
        );
        assert_eq!(
            r.verdict_at(None, late),
            BroadcastVerdict::Send,
            "a1 may come"
        );
        assert_eq!(
            r.verdict_at(None, t0 + GRACE),
            BroadcastVerdict::SendAndStop,
            "forgotten after the grace time"
        );
        assert!(r.is_empty());
    }
}
