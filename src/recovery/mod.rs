//! Connection state recovery (PROTOCOL.md §9): no live event lost to a short disconnect.
//!
//! Every event the gateway sends to rooms is first appended to one bounded stream per room
//! ([`RecoveryStore::append`]) under a fresh [`Offset`], then sent with that offset as its
//! last argument. A socket gets a private session id (`pid`) in its CONNECT answer; its
//! session (the rooms it joined itself) is kept under its user's key. A CONNECT that brings
//! the `pid` back with the last offset it saw, and a token of the same user, is a recovery:
//! the socket joins its rooms again (membership read afresh) and first receives what its
//! rooms' streams hold after that offset. Anything that cannot be recovered is a plain
//! connection. One engine per deployment, like the store: memory on one node
//! ([`memory`]), Redis in a cluster ([`redis`]).

pub mod conformance;
pub mod keys;
pub mod memory;
pub mod offset;
pub mod order;
pub mod received;
pub mod redis;
pub mod replayed;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::store::StoreResult;
pub use offset::{Clock, Offset};

/// One kept event.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub offset: Offset,
    pub event: String,
    /// The payload as JSON.
    pub data: String,
    /// The pid of the socket the event was not sent to (its own sender).
    pub except: Option<String>,
}

/// What a recovery reads.
#[derive(Debug, PartialEq)]
pub enum Missed {
    /// Every kept event after the offset, in offset order, each once.
    Events(Vec<Entry>),
    /// A stream dropped events that may come after the offset: not recoverable.
    TooOld,
}

/// How much each stream keeps.
#[derive(Debug, Clone, Copy)]
pub struct StreamBounds {
    pub max_len: usize,
    pub max_age: Duration,
}

/// What a session remembers between its sockets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedSession {
    /// The offset before the session's first socket joined its rooms: where a recovery
    /// starts when the client saw no event yet.
    pub start: String,
    /// Courses the socket joined with `course:join` (re-checked on recovery).
    #[serde(default)]
    pub joined: Vec<String>,
    /// The socket that holds the session now; only it may shorten the session's life.
    pub sid: String,
}

#[async_trait]
pub trait RecoveryStore: Send + Sync + 'static {
    /// Appends `entries`, in their order, to the stream of every room (rooms without a
    /// stream are skipped). Several events to the same rooms (a notification and its unread
    /// count) go in one call: one script and one round trip instead of one each.
    async fn append(&self, rooms: &[String], entries: &[Entry]) -> StoreResult<()>;

    /// The kept events of these rooms after `after`, in offset order, each once.
    async fn since(&self, rooms: &[String], after: Offset) -> StoreResult<Missed>;

    /// Stores a session for `ttl`.
    async fn put_session(&self, key: &str, s: &SavedSession, ttl: Duration) -> StoreResult<()>;

    async fn get_session(&self, key: &str) -> StoreResult<Option<SavedSession>>;

    /// Gives the session `ttl` more to live, if socket `sid` still holds it.
    async fn release_session(&self, key: &str, sid: &str, ttl: Duration) -> StoreResult<()>;
}

/// A private session id: 32 lowercase hex digits, checked before it names a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pid(String);

impl Pid {
    pub fn new() -> Pid {
        Pid(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn parse(s: &str) -> Option<Pid> {
        (s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Pid(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl Default for Pid {
    fn default() -> Self {
        Self::new()
    }
}

/// The node's recovery: the engine, the clock that gives offsets, and the settings.
pub struct Recovery {
    pub store: Arc<dyn RecoveryStore>,
    pub clock: Clock,
    /// How long a session outlives its socket.
    pub window: Duration,
    /// On one node, appending an event and handing it to the local sockets happen under
    /// this lock (its tenant's shard), and a recovery joins its rooms and replays under it
    /// too: every event is then either replayed or live, never both, and offsets follow
    /// delivery order in every socket's rooms.
    pub order: Option<order::EmitOrder>,
    /// Live broadcasts a recovering socket may have held back while its replay runs; past
    /// it the socket is cut off as a slow consumer (and recovers again).
    pub held_max: usize,
    /// The session store's failures, logged a few per kind and window: an outage or a
    /// mass disconnect fails every socket's session write at once (the end of the 102k
    /// hold logged 73,600 `not released` lines in one second over six nodes).
    pub failures: crate::refusal_log::RefusalLog<&'static str>,
}

impl Recovery {
    /// Logs a session store failure, a few lines per kind and window (`failures`).
    pub fn store_failure(
        &self,
        sid: &dyn std::fmt::Display,
        e: &crate::store::StoreError,
        what: &'static str,
    ) {
        use crate::refusal_log::LogVerdict;
        if let LogVerdict::Log { suppressed } = self.failures.admit(&what) {
            tracing::warn!(sid = %sid, error = %e, suppressed, "{what}");
        }
    }

    pub fn new(
        store: Arc<dyn RecoveryStore>,
        window: Duration,
        single_node: bool,
        held_max: usize,
    ) -> Self {
        Self {
            store,
            clock: Clock::new(),
            window,
            order: single_node.then(order::EmitOrder::new),
            held_max,
            failures: Default::default(),
        }
    }
}

/// Merges the entries of several streams: offset order, each offset once.
pub fn merge(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by_key(|e| e.offset);
    entries.dedup_by(|b, a| a.offset == b.offset);
    entries
}
