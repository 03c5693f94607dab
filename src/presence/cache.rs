//! Answers kept for a short time: a course list read from the store serves the lists that
//! follow it for `PRESENCE_LIST_CACHE_MS`, unless this node changes the course's presence
//! first.
//!
//! A 10,000-user course is a store read of ~10,000 entries and ~770 KB of JSON to encode;
//! an instructor's dashboard that polls, or several instructors of one course, would do
//! that on every list. [`super::flights`] shares a read between calls that overlap; this
//! shares it with the calls that come just after.
//!
//! Staleness: a change written through this node (a join, a leave, a role change, a dead
//! node's users purged by this node's upkeep) drops the course's answer as soon as the
//! store has it, so a list that starts after the change was written sees it, as without a
//! cache. A change written through another node is seen at most `ttl` after it was written
//! (the answer's age is counted from the start of its read). Every read carries the
//! course's epoch from its start, and its answer is kept only if no change came in between,
//! so a read that raced a change is never kept.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Slots not touched for this long (past the ttl) are dropped when an answer is stored.
const KEEP_IDLE: Duration = Duration::from_secs(10);

pub struct Cache<K, V> {
    ttl: Duration,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    slots: HashMap<K, Slot<V>>,
    /// Epochs are unique across slots, so a slot dropped and made again never matches a
    /// read that began on the old one.
    next_epoch: u64,
}

struct Slot<V> {
    epoch: u64,
    /// The answer and when its read began.
    answer: Option<(Instant, V)>,
    touched: Instant,
}

/// A read in progress: [`Cache::keep`] stores its answer if nothing changed meanwhile.
pub struct Read {
    epoch: u64,
    began: Instant,
}

impl<K: Hash + Eq, V: Clone> Cache<K, V> {
    /// `ttl` zero: nothing is kept.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            inner: Mutex::new(Inner {
                slots: HashMap::new(),
                next_epoch: 1,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer for `key` if one is fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        if self.ttl.is_zero() {
            return None;
        }
        let inner = self.lock();
        let (began, v) = inner.slots.get(key)?.answer.as_ref()?;
        (began.elapsed() < self.ttl).then(|| v.clone())
    }

    /// Called before the store is read for `key`.
    pub fn begin(&self, key: K) -> Option<Read> {
        if self.ttl.is_zero() {
            return None;
        }
        let now = Instant::now();
        let mut inner = self.lock();
        let fresh_epoch = inner.next_epoch;
        let slot = inner.slots.entry(key).or_insert(Slot {
            epoch: fresh_epoch,
            answer: None,
            touched: now,
        });
        slot.touched = now;
        let epoch = slot.epoch;
        if epoch == fresh_epoch {
            inner.next_epoch += 1;
        }
        Some(Read { epoch, began: now })
    }

    /// Keeps the answer of `read` unless `key` changed since it began.
    pub fn keep(&self, key: &K, read: Read, v: V) {
        let mut inner = self.lock();
        if let Some(slot) = inner.slots.get_mut(key)
            && slot.epoch == read.epoch
        {
            slot.answer = Some((read.began, v));
            slot.touched = Instant::now();
        }
        let idle = self.ttl + KEEP_IDLE;
        inner.slots.retain(|_, s| s.touched.elapsed() < idle);
    }

    /// `key` changed: its answer goes, and reads begun before now are not kept.
    pub fn invalidate(&self, key: &K) {
        let mut inner = self.lock();
        let epoch = inner.next_epoch;
        if let Some(slot) = inner.slots.get_mut(key) {
            slot.epoch = epoch;
            slot.answer = None;
            inner.next_epoch += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_serves_until_the_ttl_or_a_change() {
        let cache = Cache::<&str, u32>::new(Duration::from_secs(60));
        assert_eq!(cache.get(&"c1"), None);
        let read = cache.begin("c1").unwrap();
        cache.keep(&"c1", read, 1);
        assert_eq!(cache.get(&"c1"), Some(1));
        assert_eq!(cache.get(&"c2"), None);
        cache.invalidate(&"c1");
        assert_eq!(cache.get(&"c1"), None);
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let cache = Cache::<&str, u32>::new(Duration::from_secs(60));
        let read = cache.begin("c1").unwrap();
        cache.invalidate(&"c1");
        cache.keep(&"c1", read, 1);
        assert_eq!(cache.get(&"c1"), None, "the answer may predate the change");
        let read = cache.begin("c1").unwrap();
        cache.keep(&"c1", read, 2);
        assert_eq!(cache.get(&"c1"), Some(2));
    }

    #[test]
    fn an_answer_expires_and_a_zero_ttl_keeps_nothing() {
        let cache = Cache::<&str, u32>::new(Duration::from_millis(20));
        let read = cache.begin("c1").unwrap();
        cache.keep(&"c1", read, 1);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(cache.get(&"c1"), None);

        let off = Cache::<&str, u32>::new(Duration::ZERO);
        assert!(off.begin("c1").is_none());
        assert_eq!(off.get(&"c1"), None);
    }
}
