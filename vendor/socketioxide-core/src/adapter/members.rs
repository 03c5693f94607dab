//! The sockets of one room, as the local adapter's room index keeps them.
//!
//! Most rooms of a server hold a single socket: a room per user is the usual way to reach
//! someone, and each of their sockets is in it. A `HashSet` allocates four buckets (96 bytes
//! with their control bytes) at its first insert for that one id; a room of one socket
//! keeps its id inline instead, and a room back to one socket frees its set.

use std::collections::{HashSet, hash_set};
use std::iter;

use engineioxide_core::Sid;

#[derive(Debug)]
pub(super) enum Members {
    One(Sid),
    Many(HashSet<Sid>),
}

impl Members {
    /// Adds `sid` (once).
    pub(super) fn insert(&mut self, sid: Sid) {
        match self {
            Self::One(only) if *only == sid => {}
            Self::One(only) => *self = Self::Many(HashSet::from([*only, sid])),
            Self::Many(set) => {
                set.insert(sid);
            }
        }
    }

    /// Removes `sid`; `true` when the room has no socket left.
    pub(super) fn remove(&mut self, sid: &Sid) -> bool {
        match self {
            Self::One(only) => only == sid,
            Self::Many(set) => {
                set.remove(sid);
                let mut left = set.iter();
                match (left.next(), left.next()) {
                    (None, _) => true,
                    (Some(&last), None) => {
                        *self = Self::One(last);
                        false
                    }
                    _ => false,
                }
            }
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        match self {
            Self::One(_) => 1,
            Self::Many(set) => set.len(),
        }
    }

    #[cfg(test)]
    pub(super) fn contains(&self, sid: &Sid) -> bool {
        self.iter().any(|id| id == sid)
    }

    pub(super) fn iter(&self) -> Iter<'_> {
        match self {
            Self::One(only) => Iter::One(iter::once(only)),
            Self::Many(set) => Iter::Many(set.iter()),
        }
    }
}

/// The ids of a room's sockets.
pub(super) enum Iter<'a> {
    One(iter::Once<&'a Sid>),
    Many(hash_set::Iter<'a, Sid>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Sid;

    fn next(&mut self) -> Option<&'a Sid> {
        match self {
            Self::One(it) => it.next(),
            Self::Many(it) => it.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(m: &Members) -> Vec<Sid> {
        let mut ids: Vec<Sid> = m.iter().copied().collect();
        ids.sort();
        ids
    }

    #[test]
    fn a_room_of_one_socket_keeps_it_inline_and_grows_into_a_set() {
        let [a, b, c] = [Sid::new(), Sid::new(), Sid::new()];
        let mut m = Members::One(a);
        m.insert(a);
        assert!(matches!(m, Members::One(_)));
        assert_eq!(sorted(&m), vec![a]);
        m.insert(b);
        m.insert(c);
        m.insert(b);
        let mut all = vec![a, b, c];
        all.sort();
        assert_eq!(sorted(&m), all);
    }

    #[test]
    fn removing_shrinks_back_to_one_and_says_when_the_room_is_empty() {
        let [a, b, c] = [Sid::new(), Sid::new(), Sid::new()];
        let mut m = Members::One(a);
        m.insert(b);
        m.insert(c);
        assert!(!m.remove(&a));
        assert!(!m.remove(&a), "removing an absent id changes nothing");
        assert!(matches!(m, Members::Many(_)));
        assert!(!m.remove(&b));
        assert!(matches!(m, Members::One(id) if id == c));
        assert!(!m.remove(&a));
        assert!(m.remove(&c));
    }
}
