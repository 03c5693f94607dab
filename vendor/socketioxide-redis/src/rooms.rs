//! Sharded room channels: a node receives a room's broadcasts only while it holds sockets in
//! that room.
//!
//! Without them every broadcast goes through the namespace's request channel, which every
//! node subscribes to, so each node receives (and mostly discards) the whole cluster's
//! traffic. With [`RedisAdapterConfig::with_sharded_rooms`](crate::RedisAdapterConfig::with_sharded_rooms),
//! a broadcast to exactly one sharded room is published on that room's own channel, and a
//! node subscribes to it (`SSUBSCRIBE` with the stock drivers) before a local socket joins
//! the room: see [`RoomChannels::ready`]. The design follows the `dynamic` subscription
//! mode of Node's `@socket.io/redis-adapter` sharded adapter, with one difference: the
//! subscription is confirmed before the join, so no broadcast published after the join is
//! lost.
//!
//! A subscription is shared by every local socket of the room. It is released once the room
//! has had no local socket for the configured delay (a sweep checks the local adapter), so
//! sockets that leave and join again do not make the node subscribe and unsubscribe each
//! time. Every room channel of a node feeds one stream and one task
//! ([`Driver::subscribe_into`]): a room is a map entry, not a buffer and a task of its own,
//! since on a node where every user has a room the rooms are as many as the sockets.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::mpsc;

use crate::drivers::{ChanItem, Driver};

/// Picks the rooms that get a channel of their own, and the hash tag of that channel.
///
/// `None`: the room has no channel of its own; a broadcast to it goes through the shared
/// request channel, as without sharding (use it for rooms that rarely receive broadcasts
/// and would cost a subscription per join). `Some(tag)`: the room's channel is
/// `{prefix}-room#{ns}#{tag}#{room}#` with `tag` as the Redis Cluster hash tag, so rooms
/// of one tag share a hash slot; an empty tag hashes each room's channel on its own.
pub type RoomShard = fn(&str) -> Option<&str>;

/// The name of a room's sharded channel.
pub fn room_channel(prefix: &str, ns: &str, tag: &str, room: &str) -> String {
    if tag.is_empty() {
        format!("{prefix}-room#{ns}##{room}#")
    } else {
        format!("{prefix}-room#{ns}#{{{tag}}}#{room}#")
    }
}

/// What the room channels of a namespace need from its adapter.
pub(crate) trait RoomSink: Send + Sync + 'static {
    /// Whether a local socket is in the room.
    fn has_room(&self, room: &str) -> bool;
    /// Handles a request received on a room channel.
    fn recv(self: Arc<Self>, item: Vec<u8>);
}

/// The room channels of every namespace of a node, shared by its adapters. Cheap to clone.
pub struct RoomChannels<R> {
    inner: Arc<Inner<R>>,
}

impl<R> std::fmt::Debug for RoomChannels<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomChannels")
            .field("subscribed", &self.inner.subscribed.load(Ordering::Relaxed))
            .finish()
    }
}

impl<R> Clone for RoomChannels<R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<R> {
    driver: R,
    prefix: String,
    /// Where every room channel's messages go, to the one [`forward`] task.
    tx: mpsc::Sender<ChanItem>,
    /// Taken by the first namespace registered, which starts [`forward`].
    rx: Mutex<Option<mpsc::Receiver<ChanItem>>>,
    shard: Option<RoomShard>,
    release_after: Duration,
    namespaces: Mutex<HashMap<String, Arc<Namespace>>>,
    sweeping: std::sync::Once,
    subscribed: AtomicUsize,
    received: AtomicU64,
}

impl<R> Inner<R> {
    /// The channel of `room` in namespace `ns`, or `None` when the room has none.
    fn channel(&self, ns: &str, room: &str) -> Option<String> {
        let tag = (self.shard?)(room)?;
        Some(room_channel(&self.prefix, ns, tag, room))
    }
}

struct Namespace {
    name: String,
    sink: Weak<dyn RoomSink>,
    rooms: Mutex<HashMap<String, Arc<Slot>>>,
}

/// One room's subscription. `subscribed` is only changed with its lock held, so that a
/// subscribe and an unsubscribe of one channel never interleave. The channel's name is
/// made again when needed (at subscribe and release), not kept: a node holds a slot per
/// user with a socket on it.
struct Slot {
    subscribed: tokio::sync::Mutex<bool>,
    /// Since when the sweep has seen the room without local sockets.
    empty_since: Mutex<Option<Instant>>,
}

impl<R: Driver> RoomChannels<R> {
    pub(crate) fn new(
        driver: R,
        prefix: &str,
        stream_buffer: usize,
        shard: Option<RoomShard>,
        release_after: Duration,
    ) -> Self {
        // All rooms share it, as all broadcasts share the request channel's stream without
        // room channels: as many slots as the rooms' own streams would hold for 16 rooms.
        let (tx, rx) = mpsc::channel(stream_buffer.saturating_mul(16).max(1));
        Self {
            inner: Arc::new(Inner {
                driver,
                prefix: prefix.to_owned(),
                tx,
                rx: Mutex::new(Some(rx)),
                shard,
                release_after,
                namespaces: Mutex::new(HashMap::new()),
                sweeping: std::sync::Once::new(),
                subscribed: AtomicUsize::new(0),
                received: AtomicU64::new(0),
            }),
        }
    }

    /// Whether sharded room channels are on.
    pub fn enabled(&self) -> bool {
        self.inner.shard.is_some()
    }

    /// The channel of `room` in namespace `ns`, or `None` when the room has none.
    pub fn channel(&self, ns: &str, room: &str) -> Option<String> {
        self.inner.channel(ns, room)
    }

    /// How many room channels this node holds subscribed.
    pub fn subscribed(&self) -> usize {
        self.inner.subscribed.load(Ordering::Relaxed)
    }

    /// How many requests this node received on room channels since it started.
    pub fn received(&self) -> u64 {
        self.inner.received.load(Ordering::Relaxed)
    }

    /// Subscribes this node to the channels of `rooms` (those that have one) in namespace
    /// `ns`, and returns once every subscription is confirmed. Call it before a local
    /// socket joins the rooms: every broadcast published after it returns reaches the node.
    /// Rooms already subscribed cost a map lookup.
    pub async fn ready<S: AsRef<str>>(&self, ns: &str, rooms: &[S]) -> Result<(), R::Error> {
        let Some(namespace) = self.namespace(ns) else {
            return Ok(());
        };
        let slots: Vec<(&str, Arc<Slot>)> = rooms
            .iter()
            .filter_map(|room| {
                let room = room.as_ref();
                (self.inner.shard?)(room)?;
                let mut map = namespace.rooms.lock().unwrap();
                let slot = map.entry(room.to_owned()).or_insert_with(|| {
                    Arc::new(Slot {
                        subscribed: tokio::sync::Mutex::new(false),
                        empty_since: Mutex::new(None),
                    })
                });
                *slot.empty_since.lock().unwrap() = None;
                Some((room, slot.clone()))
            })
            .collect();
        let subscribing = slots
            .iter()
            .map(|(room, slot)| self.subscribe(ns, room, slot));
        for res in futures_util::future::join_all(subscribing).await {
            res?;
        }
        Ok(())
    }

    async fn subscribe(&self, ns: &str, room: &str, slot: &Slot) -> Result<(), R::Error> {
        let mut subscribed = slot.subscribed.lock().await;
        if *subscribed {
            return Ok(());
        }
        let Some(channel) = self.channel(ns, room) else {
            return Ok(());
        };
        self.inner
            .driver
            .subscribe_into(channel, self.inner.tx.clone())
            .await?;
        *subscribed = true;
        self.inner.subscribed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn namespace(&self, ns: &str) -> Option<Arc<Namespace>> {
        self.inner.namespaces.lock().unwrap().get(ns).cloned()
    }

    /// Registers a namespace's adapter and starts the sweep that releases unused channels.
    pub(crate) fn register(&self, ns: &str, sink: Weak<dyn RoomSink>) {
        if !self.enabled() {
            return;
        }
        self.inner.namespaces.lock().unwrap().insert(
            ns.to_owned(),
            Arc::new(Namespace {
                name: ns.to_owned(),
                sink,
                rooms: Mutex::new(HashMap::new()),
            }),
        );
        self.inner.sweeping.call_once(|| {
            tokio::spawn(sweep(Arc::downgrade(&self.inner)));
            if let Some(rx) = self.inner.rx.lock().unwrap().take() {
                tokio::spawn(forward(rx, Arc::downgrade(&self.inner)));
            }
        });
    }

    /// Unsubscribes every room channel of a closing namespace.
    pub(crate) async fn close(&self, ns: &str) -> Result<(), R::Error> {
        let Some(namespace) = self.inner.namespaces.lock().unwrap().remove(ns) else {
            return Ok(());
        };
        let slots: Vec<(String, Arc<Slot>)> = namespace.rooms.lock().unwrap().drain().collect();
        for (room, slot) in slots {
            let mut subscribed = slot.subscribed.lock().await;
            if *subscribed {
                *subscribed = false;
                self.inner.subscribed.fetch_sub(1, Ordering::Relaxed);
                if let Some(channel) = self.channel(ns, &room) {
                    self.inner.driver.unsubscribe(channel).await?;
                }
            }
        }
        Ok(())
    }
}

/// Hands every request received on a room channel to its namespace's adapter, in the order
/// received (so each channel's stays in order). Ends when every sender is gone (the room
/// channels and the driver's handlers), or at the first message after the room channels.
async fn forward<R>(mut rx: mpsc::Receiver<ChanItem>, inner: Weak<Inner<R>>) {
    while let Some((chan, item)) = rx.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        inner.received.fetch_add(1, Ordering::Relaxed);
        let Some(ns) = namespace_of(&inner.prefix, &chan) else {
            continue;
        };
        let sink = inner
            .namespaces
            .lock()
            .unwrap()
            .get(ns)
            .and_then(|n| n.sink.upgrade());
        if let Some(sink) = sink {
            sink.recv(item);
        }
    }
}

/// The namespace a room channel's name carries (see [`room_channel`]; a namespace is a path
/// and holds no `#`).
fn namespace_of<'a>(prefix: &str, chan: &'a str) -> Option<&'a str> {
    let rest = chan.strip_prefix(prefix)?.strip_prefix("-room#")?;
    rest.split_once('#').map(|(ns, _)| ns)
}

/// Every `release_after / 2` (at most a second), releases the channels of rooms that have
/// had no local socket since the previous sweeps for at least `release_after`.
async fn sweep<R: Driver>(inner: Weak<Inner<R>>) {
    let every = match inner.upgrade() {
        Some(i) => (i.release_after / 2).clamp(Duration::from_millis(10), Duration::from_secs(1)),
        None => return,
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let namespaces: Vec<Arc<Namespace>> =
            inner.namespaces.lock().unwrap().values().cloned().collect();
        for namespace in namespaces {
            let Some(sink) = namespace.sink.upgrade() else {
                continue;
            };
            for (room, slot) in expired(&namespace, &*sink, inner.release_after) {
                release(&inner, &namespace, &*sink, &room, slot).await;
            }
        }
    }
}

/// The rooms without local sockets for at least `after`, and not being joined right now.
fn expired(
    namespace: &Namespace,
    sink: &dyn RoomSink,
    after: Duration,
) -> Vec<(String, Arc<Slot>)> {
    let now = Instant::now();
    let rooms = namespace.rooms.lock().unwrap();
    rooms
        .iter()
        .filter(|(room, slot)| {
            let mut since = slot.empty_since.lock().unwrap();
            if sink.has_room(room) {
                *since = None;
                return false;
            }
            let since = *since.get_or_insert(now);
            // Only the map holds the slot: no `ready` is using it.
            now.duration_since(since) >= after && Arc::strong_count(slot) == 1
        })
        .map(|(room, slot)| (room.clone(), slot.clone()))
        .collect()
}

/// Unsubscribes one room's channel, then forgets the room unless a join came meanwhile.
async fn release<R: Driver>(
    inner: &Inner<R>,
    namespace: &Namespace,
    sink: &dyn RoomSink,
    room: &str,
    slot: Arc<Slot>,
) {
    let mut subscribed = slot.subscribed.lock().await;
    // A join between the sweep's check and this lock reset `empty_since`.
    if slot.empty_since.lock().unwrap().is_none() || sink.has_room(room) {
        return;
    }
    if *subscribed {
        *subscribed = false;
        inner.subscribed.fetch_sub(1, Ordering::Relaxed);
        if let Some(channel) = inner.channel(&namespace.name, room) {
            if let Err(e) = inner.driver.unsubscribe(channel.clone()).await {
                tracing::warn!(channel, "room channel not unsubscribed: {e}");
            }
        }
    }
    let mut rooms = namespace.rooms.lock().unwrap();
    // Two holders, the map and this function: no `ready` has the slot (one that has it
    // waits for the lock still held here, and subscribes again through it).
    if Arc::strong_count(&slot) == 2 && rooms.get(room).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
        rooms.remove(room);
    }
    drop(rooms);
    drop(subscribed);
}

#[cfg(test)]
mod tests {
    use super::{namespace_of, room_channel};

    #[test]
    fn a_channel_names_its_namespace_back() {
        let chan = room_channel("lms", "/admin", "t1", "tenant:t1:user:u1");
        assert_eq!(namespace_of("lms", &chan), Some("/admin"));
        assert_eq!(
            namespace_of("lms", &room_channel("lms", "/", "", "r")),
            Some("/")
        );
        assert_eq!(namespace_of("other", &chan), None);
    }

    #[test]
    fn a_tagged_channel_carries_its_hash_tag_and_the_room() {
        assert_eq!(
            room_channel("lms", "/", "t1", "tenant:t1:user:u1"),
            "lms-room#/#{t1}#tenant:t1:user:u1#"
        );
        assert_eq!(
            room_channel("lms", "/", "", "role:admin"),
            "lms-room#/##role:admin#"
        );
    }
}
