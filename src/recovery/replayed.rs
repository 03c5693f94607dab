//! What a recovering socket was replayed, so that live copies of those events are left out.
//!
//! In a cluster an event is kept in its streams before it is published, so a replay can
//! read an event whose live copy is still on its way to this node, or arrived while the
//! replay ran (held, see `Socket::hold_broadcasts`). [`Replayed`] is the socket's broadcast
//! filter: it leaves out a broadcast whose offset was replayed. An origin (node process)
//! publishes in the order it keeps, so once a live event of that origin comes after the
//! highest offset replayed from it, no more copies of it can come and the origin is
//! forgotten; when every origin is, the filter removes itself. An origin that never sends
//! again (a node that died) is kept until the socket goes: at most the replay's offsets.

use std::collections::{HashMap, HashSet};

use socketioxide::socket::BroadcastVerdict;

use super::Offset;

/// The offsets replayed to one socket, by origin.
#[derive(Debug, Default)]
pub struct Replayed {
    by_origin: HashMap<u32, Origin>,
}

#[derive(Debug, Default)]
struct Origin {
    offsets: HashSet<Offset>,
    highest: Option<Offset>,
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

    /// The verdict on a live broadcast whose last argument is `trailing`.
    pub fn verdict(&mut self, trailing: Option<&str>) -> BroadcastVerdict {
        if let Some(o) = trailing.and_then(Offset::parse)
            && let Some(origin) = self.by_origin.get_mut(&o.origin)
        {
            let repeat = origin.offsets.remove(&o);
            if origin.offsets.is_empty() || origin.highest.is_some_and(|h| o > h) {
                self.by_origin.remove(&o.origin);
            }
            if repeat {
                return BroadcastVerdict::Skip;
            }
        }
        if self.by_origin.is_empty() {
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

    #[test]
    fn a_replayed_offset_is_left_out_once_and_a_later_one_ends_its_origin() {
        let (a, b) = (Clock::new(), Clock::new());
        let (a1, a2, a3) = (a.next(), a.next(), a.next());
        let b1 = b.next();
        let mut r = Replayed::new([a1, a2, b1]);
        let s = |o: Offset| o.to_string();
        assert_eq!(r.verdict(Some(&s(a2))), BroadcastVerdict::Skip);
        assert_eq!(r.verdict(Some(&s(a2))), BroadcastVerdict::Send, "once");
        assert_eq!(r.verdict(None), BroadcastVerdict::Send);
        assert_eq!(r.verdict(Some("not an offset")), BroadcastVerdict::Send);
        // a3 comes after everything replayed from a: a1's copy came before it, or never.
        assert_eq!(r.verdict(Some(&s(a3))), BroadcastVerdict::Send);
        assert_eq!(r.verdict(Some(&s(a1))), BroadcastVerdict::Send);
        assert_eq!(r.verdict(Some(&s(b1))), BroadcastVerdict::Skip);
        assert!(r.is_empty());
        assert_eq!(r.verdict(None), BroadcastVerdict::SendAndStop);
    }
}
