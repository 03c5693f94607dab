//! The service layer: every operation of the gateway as a method of one type.
//!
//! The HTTP routes and the socket handlers both call [`Gateway`], and a Rust program can
//! embed the gateway and call it directly. It is the only way from a handler to the store
//! and to emits. It is generic over the Socket.IO adapter, so the same code delivers
//! through the in-process adapter on one node and through Redis in a cluster: `io.to(room)`
//! reaches the room on every node. The operations are split by domain: notifications and
//! broadcasts, courses and progress, stats.

pub mod channels;
mod courses;
mod export;
mod notifications;
pub mod stats;
mod storage;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use socketioxide::extract::SocketRef;
use socketioxide::{SocketIo, adapter::Adapter};

use crate::emit;
use crate::error::AppError;
use crate::export::Export;
use crate::fair::{FairShare, TenantLines};
use crate::ids::NotificationId;
use crate::presence::relay::MembershipRelay;
use crate::recovery::{Entry, Recovery, keys::EVERYONE};
use crate::role::Role;
use crate::store::Store;
use crate::store::redis_buckets::RedisBuckets;
use crate::tenant_buckets::TenantBuckets;

pub use courses::ProgressKind;
pub use export::MAX_PAGE;
pub use stats::PeerStats;

/// Now, as the RFC 3339 timestamp every payload carries.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

struct Inner<A: Adapter> {
    io: SocketIo<A>,
    store: Arc<dyn Store>,
    /// Each tenant's share of concurrent inbox writes, and of stored recipients (`fair`).
    lines: TenantLines,
    recipients: TenantBuckets,
    /// `TENANT_STORAGE_QUOTA` (`storage`).
    storage_quota: Option<u64>,
    node_id: String,
    peers: Option<Arc<dyn PeerStats>>,
    stats_timeout: Duration,
    /// Carries membership changes to every node's presence (`presence::relay`).
    memberships: Arc<dyn MembershipRelay>,
    /// Connection state recovery: every room emit is kept and carries its offset.
    recovery: Option<Arc<Recovery>>,
    /// The export queue (§12) progress, reads, dismissals and presence go to.
    export: Arc<Export>,
    /// What a local join waits for (`channels`).
    room_channels: Arc<dyn channels::RoomChannels>,
}

/// The gateway's operations. Cheap to clone.
pub struct Gateway<A: Adapter> {
    inner: Arc<Inner<A>>,
}

impl<A: Adapter> Clone for Gateway<A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// What carries the gateway's changes past the emit itself: membership changes to every
/// node's presence, and the recovery streams every room emit is kept in.
pub struct Links {
    pub memberships: Arc<dyn MembershipRelay>,
    /// `None` when recovery is off (`RECOVERY_ENABLED=false`).
    pub recovery: Option<Arc<Recovery>>,
    /// Where exported events are appended (§12).
    pub export: Arc<Export>,
    /// The rooms' channels a local join waits for (cluster mode).
    pub room_channels: Arc<dyn channels::RoomChannels>,
    /// The cluster's quota buckets (cluster mode); `None`: this node's own.
    pub buckets: Option<Arc<RedisBuckets>>,
}

impl<A: Adapter> Gateway<A> {
    pub fn new(
        io: SocketIo<A>,
        store: Arc<dyn Store>,
        node_id: String,
        peers: Option<Arc<dyn PeerStats>>,
        stats_timeout: Duration,
        fair: FairShare,
        links: Links,
    ) -> Self {
        crate::metrics::storage_quota(fair.storage_quota);
        Self {
            inner: Arc::new(Inner {
                io,
                store,
                lines: TenantLines::new(fair.store_concurrency),
                recipients: {
                    let per_sec =
                        NonZeroU32::new(fair.recipients_per_sec).unwrap_or(NonZeroU32::MIN);
                    let burst =
                        NonZeroU32::new(fair.recipients_burst).map_or(per_sec, |b| b.max(per_sec));
                    TenantBuckets::new("recipients", per_sec, burst, links.buckets)
                },
                storage_quota: fair.storage_quota,
                node_id,
                peers,
                stats_timeout,
                memberships: links.memberships,
                recovery: links.recovery,
                export: links.export,
                room_channels: links.room_channels,
            }),
        }
    }

    /// The Socket.IO server, for the parts of the node that own sockets (expiry timers,
    /// shutdown), not for emits: those go through the methods below.
    pub fn io(&self) -> &SocketIo<A> {
        &self.inner.io
    }

    /// Returns once emits to `rooms` from now on reach this node: call it right before a
    /// socket joins them. `UNAVAILABLE` when the cluster's channels cannot be subscribed.
    pub async fn rooms_ready(&self, rooms: &[String]) -> Result<(), AppError> {
        self.inner.room_channels.ready(rooms).await
    }

    /// Connection state recovery, when it is on.
    pub fn recovery(&self) -> Option<&Arc<Recovery>> {
        self.inner.recovery.as_ref()
    }

    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Whether the store answers (readiness).
    pub async fn ping_store(&self) -> Result<(), AppError> {
        Ok(self.inner.store.ping().await?)
    }

    /// Emits to rooms on every node, after a store write that already made the event
    /// durable (the inbox): a failed emit is logged and counted, and not returned.
    pub async fn emit_or_log<T: Serialize + ?Sized>(
        &self,
        rooms: Vec<String>,
        event: &'static str,
        data: &T,
    ) {
        let _logged = self.emit_or_unavailable(rooms, event, data).await;
    }

    /// Emits a live-only event to rooms on every node (every socket when `rooms` is
    /// empty). `UNAVAILABLE` when it could not be published to the cluster (the Redis
    /// adapter gives up on the whole emit, local sockets included), so a caller is never
    /// told that a broadcast went out when it did not. Sockets whose buffers are full are
    /// counted as drops, not failures.
    pub async fn emit_or_unavailable<T: Serialize + ?Sized>(
        &self,
        rooms: Vec<String>,
        event: &'static str,
        data: &T,
    ) -> Result<(), AppError> {
        let to = if rooms.is_empty() {
            self.inner.io.broadcast()
        } else {
            self.inner.io.to(rooms.clone())
        };
        match self.emit_kept(rooms, to, event, data, None).await {
            Ok(()) => Ok(()),
            Err(e) => emit::report_broadcast_error(event, &e),
        }
    }

    /// Emits from a socket to rooms on every node, that socket left out (the user's other
    /// sockets kept in sync, progress forwarded): a failed emit is logged and counted, and
    /// not returned, since the store already took what the event reports.
    pub async fn emit_to_others_or_log<T: Serialize + ?Sized>(
        &self,
        from: &SocketRef<A>,
        rooms: Vec<String>,
        event: &'static str,
        data: &T,
    ) {
        let except = from.pid().map(str::to_owned);
        let to = from.to(rooms.clone());
        if let Err(e) = self.emit_kept(rooms, to, event, data, except).await {
            let _logged = emit::report_broadcast_error(event, &e);
        }
    }

    /// Emits to rooms; with recovery on, first keeps the event in every room's stream and
    /// sends its offset as the last argument. A failed keep is logged and the event still
    /// goes out live: recovery is then as good as it was without streams, and the caller's
    /// write (the inbox) is not undone by it.
    async fn emit_kept<T: Serialize + ?Sized>(
        &self,
        rooms: Vec<String>,
        to: socketioxide::operators::BroadcastOperators<A>,
        event: &'static str,
        data: &T,
        except: Option<String>,
    ) -> Result<(), socketioxide::BroadcastError> {
        let Some(r) = &self.inner.recovery else {
            return emit::broadcast(to, event, data).await;
        };
        let Some(json) = kept_json(event, data) else {
            return emit::broadcast(to, event, data).await;
        };
        // One node: keep and hand to the sockets in one step (see `Recovery::order`).
        let _order = match &r.order {
            Some(order) => Some(order.lock(&rooms).await),
            None => None,
        };
        let entry = Entry {
            offset: r.clock.next(),
            event: event.to_owned(),
            data: json,
            except,
        };
        keep(r, rooms, std::slice::from_ref(&entry)).await;
        emit::broadcast(to, event, &(data, entry.offset.to_string())).await
    }

    /// Two events to the same rooms on every node, in this order, kept for recovery in one
    /// store call (a notification and the unread count that follows it: one script and one
    /// round trip per recipient instead of two). A failed emit is logged and counted.
    pub async fn emit_pair_or_log<T: Serialize + ?Sized, U: Serialize + ?Sized>(
        &self,
        rooms: Vec<String>,
        first: (&'static str, &T),
        second: (&'static str, &U),
    ) {
        let jsons = self.inner.recovery.as_ref().and_then(|r| {
            Some((
                r,
                kept_json(first.0, first.1)?,
                kept_json(second.0, second.1)?,
            ))
        });
        let Some((r, first_json, second_json)) = jsons else {
            self.emit_or_log(rooms.clone(), first.0, first.1).await;
            self.emit_or_log(rooms, second.0, second.1).await;
            return;
        };
        let _order = match &r.order {
            Some(order) => Some(order.lock(&rooms).await),
            None => None,
        };
        let entry = |event: &'static str, data| Entry {
            offset: r.clock.next(),
            event: event.to_owned(),
            data,
            except: None,
        };
        let entries = [entry(first.0, first_json), entry(second.0, second_json)];
        keep(r, rooms.clone(), &entries).await;
        let to = || {
            if rooms.is_empty() {
                self.inner.io.broadcast()
            } else {
                self.inner.io.to(rooms.clone())
            }
        };
        let offsets = entries.map(|e| e.offset.to_string());
        if let Err(e) = emit::broadcast(to(), first.0, &(first.1, &offsets[0])).await {
            let _logged = emit::report_broadcast_error(first.0, &e);
        }
        if let Err(e) = emit::broadcast(to(), second.0, &(second.1, &offsets[1])).await {
            let _logged = emit::report_broadcast_error(second.0, &e);
        }
    }
}

/// An event's payload as the recovery streams keep it; `None` (logged) when it is not JSON,
/// and the event is then sent live only.
fn kept_json<T: Serialize + ?Sized>(event: &'static str, data: &T) -> Option<String> {
    serde_json::to_string(data)
        .inspect_err(
            |e| tracing::error!(event, error = %e, "event not kept for recovery: not JSON"),
        )
        .ok()
}

/// Appends events to the recovery streams of `rooms` (of everyone's when none are named).
/// A failure is counted and logged; the events still go out live.
async fn keep(r: &Recovery, rooms: Vec<String>, entries: &[Entry]) {
    let kept_in = if rooms.is_empty() {
        vec![EVERYONE.to_owned()]
    } else {
        rooms
    };
    if let Err(e) = r.store.append(&kept_in, entries).await {
        crate::metrics::recovery_keep_failed();
        let event = entries
            .first()
            .map(|e| e.event.as_str())
            .unwrap_or_default();
        tracing::warn!(event, error = %e, "event not kept for recovery; sent live only");
    }
}

/// A server-generated notification id.
pub fn new_notification_id() -> NotificationId {
    NotificationId::parse(uuid::Uuid::new_v4().to_string()).expect("a UUID is a valid id")
}

/// Whether a role may act for other users of its tenant (admin actions).
pub fn is_admin(role: Role) -> bool {
    matches!(role, Role::Admin | Role::SuperAdmin)
}
