//! Recovery on one node: a bounded ring per room and the sessions, in process memory.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::offset::now_ms;
use super::{Entry, Missed, Offset, RecoveryStore, SavedSession, StreamBounds, keys, merge};
use crate::store::StoreResult;

/// Appends, or saved sessions, between two sweeps of the streams of rooms that went quiet and
/// the sessions past their time. Both counts matter: a node whose sockets come and go with
/// few broadcasts kept every expired session until the next 4,096 appends (with none, for
/// ever: ~400 B per connection that ever closed).
const SWEEP_EVERY: u64 = 4_096;

#[derive(Default)]
struct Stream {
    entries: VecDeque<Entry>,
    /// The largest offset dropped for the count bound.
    dropped: Option<Offset>,
}

#[derive(Default)]
struct Inner {
    streams: HashMap<String, Stream>,
    sessions: HashMap<String, (SavedSession, Instant)>,
    appends: u64,
    puts: u64,
}

pub struct MemoryRecovery {
    bounds: StreamBounds,
    inner: Mutex<Inner>,
}

impl MemoryRecovery {
    pub fn new(bounds: StreamBounds) -> Self {
        Self {
            bounds,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Offsets at or below this are past the age bound.
    fn age_floor(&self) -> u64 {
        now_ms().saturating_sub(self.bounds.max_age.as_millis() as u64)
    }

    /// Drops the streams whose newest entry is past the age bound, and expired sessions.
    fn sweep(&self, inner: &mut Inner) {
        let floor = self.age_floor();
        inner
            .streams
            .retain(|_, s| s.entries.back().is_some_and(|e| e.offset.ms > floor));
        let now = Instant::now();
        inner.sessions.retain(|_, (_, until)| *until > now);
    }
}

#[async_trait]
impl RecoveryStore for MemoryRecovery {
    async fn append(&self, rooms: &[String], entries: &[Entry]) -> StoreResult<()> {
        let floor = self.age_floor();
        let max_len = self.bounds.max_len.max(1);
        let mut inner = self.lock();
        for room in rooms.iter().filter(|r| keys::stream(r).is_some()) {
            let s = inner.streams.entry(room.clone()).or_default();
            s.entries.extend(entries.iter().cloned());
            while s.entries.len() > max_len
                || s.entries.front().is_some_and(|e| e.offset.ms <= floor)
            {
                if let Some(e) = s.entries.pop_front() {
                    s.dropped = Some(s.dropped.map_or(e.offset, |d| d.max(e.offset)));
                }
            }
        }
        inner.appends += 1;
        if inner.appends.is_multiple_of(SWEEP_EVERY) {
            self.sweep(&mut inner);
        }
        Ok(())
    }

    async fn since(&self, rooms: &[String], after: Offset) -> StoreResult<Missed> {
        if after.ms <= self.age_floor() {
            return Ok(Missed::TooOld);
        }
        let inner = self.lock();
        let mut found = Vec::new();
        for room in rooms {
            let Some(s) = inner.streams.get(room) else {
                continue;
            };
            if s.dropped.is_some_and(|d| d > after) {
                return Ok(Missed::TooOld);
            }
            found.extend(s.entries.iter().filter(|e| e.offset > after).cloned());
        }
        Ok(Missed::Events(merge(found)))
    }

    async fn put_session(&self, key: &str, s: &SavedSession, ttl: Duration) -> StoreResult<()> {
        let mut inner = self.lock();
        inner
            .sessions
            .insert(key.to_owned(), (s.clone(), Instant::now() + ttl));
        inner.puts += 1;
        if inner.puts.is_multiple_of(SWEEP_EVERY) {
            self.sweep(&mut inner);
        }
        Ok(())
    }

    async fn get_session(&self, key: &str) -> StoreResult<Option<SavedSession>> {
        let inner = self.lock();
        Ok(inner
            .sessions
            .get(key)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(s, _)| s.clone()))
    }

    async fn release_session(&self, key: &str, sid: &str, ttl: Duration) -> StoreResult<()> {
        let mut inner = self.lock();
        if let Some((s, until)) = inner.sessions.get_mut(key)
            && s.sid == sid
        {
            *until = Instant::now() + ttl;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::conformance;
    use super::*;

    #[tokio::test]
    async fn the_memory_engine_passes_the_recovery_suite() {
        conformance::run_all(Arc::new(MemoryRecovery::new(conformance::BOUNDS))).await;
    }

    #[tokio::test]
    async fn sessions_past_their_time_are_swept_without_any_append() {
        let store = MemoryRecovery::new(conformance::BOUNDS);
        let session = SavedSession {
            start: "0-0".into(),
            joined: Vec::new(),
            sid: "s".into(),
        };
        for i in 0..SWEEP_EVERY - 1 {
            let key = format!("lms:{{t}}:rec:session:{i}");
            store
                .put_session(&key, &session, Duration::ZERO)
                .await
                .unwrap();
        }
        assert_eq!(store.lock().sessions.len() as u64, SWEEP_EVERY - 1);
        let live = "lms:{t}:rec:session:live";
        let hour = Duration::from_secs(3_600);
        store.put_session(live, &session, hour).await.unwrap();
        let inner = store.lock();
        assert_eq!(inner.sessions.len(), 1, "only the live session is kept");
        assert!(inner.sessions.contains_key(live));
    }

    #[tokio::test]
    async fn the_memory_engine_forgets_by_age() {
        let bounds = StreamBounds {
            max_len: 1_000,
            max_age: conformance::AGE,
        };
        conformance::run_age_bound(Arc::new(MemoryRecovery::new(bounds))).await;
    }
}
