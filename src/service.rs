//! The service layer: every operation of the gateway as a method of one type.
//!
//! The HTTP routes and the socket handlers both call [`Gateway`], and a Rust program can
//! embed the gateway and call it directly. It is generic over the Socket.IO adapter, so the
//! same code delivers through the in-process adapter on one node and through Redis in a
//! cluster: `io.to(room)` reaches the room on every node.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use socketioxide::{SocketIo, adapter::Adapter};

use crate::auth::Role;
use crate::error::AppError;
use crate::fair::{FairShare, RecipientBudget, TenantLines};
use crate::ids::{CourseId, NotificationId, TenantId, UserId};
use crate::metrics;
use crate::rooms::{self, RoomKind};
use crate::store::{ListQuery, Page, StatusChange, Store};
use crate::types::*;

/// Server → client event names (§4), spelled once.
mod fanout;

pub mod events {
    pub const NOTIFICATION_NEW: &str = "notification:new";
    pub const NOTIFICATION_COUNT: &str = "notification:count";
    pub const NOTIFICATION_READ: &str = "notification:read";
    pub const NOTIFICATION_DISMISSED: &str = "notification:dismissed";
    pub const COURSE_UPDATED: &str = "course:updated";
    pub const COURSE_ENROLLMENT: &str = "course:enrollment";
    pub const PROGRESS_CONTENT: &str = "progress:content";
    pub const PROGRESS_VIDEO: &str = "progress:video";
    pub const SYSTEM_ALERT: &str = "system:alert";
    pub const AUTH_EXPIRED: &str = "auth:expired";
    pub const ERROR: &str = "error";
}

/// Now, as the RFC 3339 timestamp every payload carries.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Stats of the other nodes of a cluster; absent on a single node.
#[async_trait]
pub trait PeerStats: Send + Sync + 'static {
    /// Every live node's stats (this one's included), and whether the answer is partial.
    async fn collect(&self, local: NodeStats, timeout: Duration) -> (Vec<NodeStats>, bool);
}

struct Inner<A: Adapter> {
    io: SocketIo<A>,
    store: Arc<dyn Store>,
    /// Each tenant's share of concurrent inbox writes, and of stored recipients (`fair`).
    lines: TenantLines,
    recipients: RecipientBudget,
    node_id: String,
    peers: Option<Arc<dyn PeerStats>>,
    stats_timeout: Duration,
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

impl<A: Adapter> Gateway<A> {
    pub fn new(
        io: SocketIo<A>,
        store: Arc<dyn Store>,
        node_id: String,
        peers: Option<Arc<dyn PeerStats>>,
        stats_timeout: Duration,
        fair: FairShare,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                io,
                store,
                lines: TenantLines::new(fair.store_concurrency),
                recipients: RecipientBudget::new(fair.recipients_per_sec, fair.recipients_burst),
                node_id,
                peers,
                stats_timeout,
            }),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn io(&self) -> &SocketIo<A> {
        &self.inner.io
    }

    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Emits to rooms on every node, after a store write that already made the event
    /// durable (the inbox); a failed emit is logged and counted, never silent.
    pub async fn emit_to<T: Serialize + ?Sized>(
        &self,
        rooms: Vec<String>,
        event: &'static str,
        data: &T,
    ) {
        let _logged = self.emit_live(rooms, event, data).await;
    }

    /// Emits a live-only event to rooms on every node. `UNAVAILABLE` when it could not be
    /// published to the cluster (the Redis adapter gives up on the whole emit, local
    /// sockets included), so a caller is never told that a broadcast went out when it did
    /// not. Sockets whose buffers are full are counted as drops, not failures.
    pub async fn emit_live<T: Serialize + ?Sized>(
        &self,
        rooms: Vec<String>,
        event: &'static str,
        data: &T,
    ) -> Result<(), AppError> {
        metrics::emitted(event);
        let op = if rooms.is_empty() {
            self.inner.io.broadcast()
        } else {
            self.inner.io.to(rooms)
        };
        match op.emit(event, data).await {
            Ok(()) => Ok(()),
            Err(e) => report_broadcast_error(event, &e),
        }
    }

    // ------------------------------------------------------------ notifications

    pub async fn mark_read(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
    ) -> Result<StatusChange, AppError> {
        Ok(self.inner.store.mark_read(t, u, id).await?)
    }

    pub async fn mark_all_read(&self, t: &TenantId, u: &UserId) -> Result<u64, AppError> {
        Ok(self.inner.store.mark_all_read(t, u).await?)
    }

    pub async fn dismiss(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
    ) -> Result<StatusChange, AppError> {
        Ok(self.inner.store.dismiss(t, u, id).await?)
    }

    pub async fn unread_count(&self, t: &TenantId, u: &UserId) -> Result<u64, AppError> {
        Ok(self.inner.store.unread_count(t, u).await?)
    }

    pub async fn list_notifications(
        &self,
        t: &TenantId,
        u: &UserId,
        q: &ListQuery,
    ) -> Result<Page, AppError> {
        Ok(self.inner.store.list(t, u, q).await?)
    }

    // ------------------------------------------------------------ broadcasts

    /// `notification:new` to every socket of a tenant; live only, stored for nobody.
    pub async fn broadcast_to_tenant(
        &self,
        tenant: &TenantId,
        req: BroadcastRequest,
    ) -> Result<Notification, AppError> {
        validate_text("", &req.title, &req.message)?;
        let n = Notification {
            id: new_notification_id(),
            tenant_id: tenant.clone(),
            user_id: None,
            title: req.title.into(),
            message: req.message.into(),
            kind: req.kind.unwrap_or(NotificationType::Announcement),
            priority: req.priority.unwrap_or_default(),
            status: NotificationStatus::Unread,
            data: req.data.map(Arc::new),
            created_at: now_rfc3339(),
        };
        self.emit_live(vec![rooms::tenant(tenant)], events::NOTIFICATION_NEW, &n)
            .await?;
        Ok(n)
    }

    /// `system:alert` to every socket of every tenant, on every node.
    pub async fn send_system_alert(
        &self,
        req: SystemAlertRequest,
    ) -> Result<SystemAlert, AppError> {
        validate_text("", &req.title, &req.message)?;
        let alert = SystemAlert {
            title: req.title,
            message: req.message,
            priority: req.priority.unwrap_or(Priority::High),
            at: now_rfc3339(),
        };
        self.emit_live(vec![], events::SYSTEM_ALERT, &alert).await?;
        Ok(alert)
    }

    // ------------------------------------------------------------ courses

    /// Caches a membership and moves the user's live sockets, on every node, into the
    /// course room (and the instructors' room for an instructor).
    pub async fn set_course_member(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
        role: CourseRole,
    ) -> Result<(), AppError> {
        let previous = self.inner.store.set_member(t, c, u, role).await?;
        self.after_upsert(t, c, u, role, previous == Some(CourseRole::Instructor))
            .await;
        Ok(())
    }

    /// Moves a (re-)enrolled user's live sockets, on every node, into the course room (and
    /// the instructors' room, or out of it) and tells them.
    async fn after_upsert(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
        role: CourseRole,
        was_instructor: bool,
    ) {
        let user_room = rooms::user(t, u);
        let mut join = vec![rooms::course(t, c)];
        if role == CourseRole::Instructor {
            join.push(rooms::course_instructors(t, c));
        } else if was_instructor {
            self.leave_rooms(&user_room, vec![rooms::course_instructors(t, c)])
                .await;
        }
        if let Err(e) = self.inner.io.within(user_room.clone()).join(join).await {
            tracing::warn!(tenant = %t, error = %e, "could not move live sockets into a course room");
        }
        let event = CourseEnrollment {
            course_id: c.clone(),
            user_id: u.clone(),
            action: EnrollmentAction::Enrolled,
            role,
        };
        self.emit_to(vec![user_room], events::COURSE_ENROLLMENT, &event)
            .await;
    }

    /// Removes a membership and takes the user's live sockets out of the course rooms.
    pub async fn remove_course_member(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
    ) -> Result<(), AppError> {
        let role = self
            .inner
            .store
            .remove_member(t, c, u)
            .await?
            .ok_or_else(|| {
                AppError::not_found(format!("user {u} is not a member of course {c}"))
            })?;
        self.after_removal(t, c, u, role).await;
        Ok(())
    }

    async fn after_removal(&self, t: &TenantId, c: &CourseId, u: &UserId, role: CourseRole) {
        let user_room = rooms::user(t, u);
        self.leave_rooms(
            &user_room,
            vec![rooms::course(t, c), rooms::course_instructors(t, c)],
        )
        .await;
        let event = CourseEnrollment {
            course_id: c.clone(),
            user_id: u.clone(),
            action: EnrollmentAction::Unenrolled,
            role,
        };
        self.emit_to(vec![user_room], events::COURSE_ENROLLMENT, &event)
            .await;
    }

    async fn leave_rooms(&self, user_room: &str, rooms: Vec<String>) {
        if let Err(e) = self
            .inner
            .io
            .within(user_room.to_owned())
            .leave(rooms)
            .await
        {
            tracing::warn!(error = %e, "could not move live sockets out of a course room");
        }
    }

    /// Replaces the whole membership of a course and applies the difference live.
    pub async fn replace_course_members(
        &self,
        t: &TenantId,
        c: &CourseId,
        members: Vec<Member>,
    ) -> Result<MembersReplaced, AppError> {
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = members.iter().find(|m| !seen.insert(&m.user_id)) {
            return Err(AppError::invalid(format!(
                "members: user {} is listed twice",
                dup.user_id
            )));
        }
        let diff = self.inner.store.replace_members(t, c, &members).await?;
        for m in &diff.removed {
            self.after_removal(t, c, &m.user_id, m.role).await;
        }
        for m in &diff.upserted {
            // The diff does not say whether a student used to teach: leave the instructors'
            // room either way (a no-op when not in it).
            self.after_upsert(t, c, &m.user_id, m.role, true).await;
        }
        Ok(MembersReplaced {
            members: members.len() as u64,
            added: diff.upserted.len() as u64,
            removed: diff.removed.len() as u64,
        })
    }

    /// `course:updated` to the course room.
    pub async fn publish_course_update(
        &self,
        t: &TenantId,
        c: &CourseId,
        changes: serde_json::Map<String, serde_json::Value>,
        updated_by: String,
    ) -> Result<CourseUpdated, AppError> {
        let event = CourseUpdated {
            course_id: c.clone(),
            changes,
            updated_by,
        };
        self.emit_live(vec![rooms::course(t, c)], events::COURSE_UPDATED, &event)
            .await?;
        Ok(event)
    }

    /// The role a user has in a course, from the membership cache.
    pub async fn course_role(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
    ) -> Result<Option<CourseRole>, AppError> {
        Ok(self.inner.store.member_role(t, c, u).await?)
    }

    // ------------------------------------------------------------ stats

    /// This node's connection and room counts, from its local sockets.
    pub fn local_stats(&self) -> NodeStats {
        let sockets = self.inner.io.local().sockets();
        let mut per_kind: BTreeMap<&'static str, (std::collections::HashSet<String>, u64)> =
            BTreeMap::new();
        for s in &sockets {
            for room in s.rooms() {
                if let Some(kind) = RoomKind::of(&room) {
                    let entry = per_kind.entry(kind.as_str()).or_default();
                    entry.1 += 1;
                    if !entry.0.contains(room.as_ref()) {
                        entry.0.insert(room.into_owned());
                    }
                }
            }
        }
        let rooms = RoomKind::ALL
            .iter()
            .map(|k| {
                let (names, members) = per_kind.remove(k.as_str()).unwrap_or_default();
                (
                    k.as_str().to_owned(),
                    RoomStats {
                        rooms: names.len() as u64,
                        members,
                    },
                )
            })
            .collect();
        NodeStats {
            node: self.inner.node_id.clone(),
            connections: sockets.len() as u64,
            rooms,
        }
    }

    /// Connection and room counts summed over the cluster, with the nodes that answered.
    pub async fn stats(&self) -> ClusterStats {
        let local = self.local_stats();
        let (nodes, partial) = match &self.inner.peers {
            Some(peers) => peers.collect(local, self.inner.stats_timeout).await,
            None => (vec![local], false),
        };
        let mut rooms: BTreeMap<String, RoomStats> = BTreeMap::new();
        for n in &nodes {
            for (kind, r) in &n.rooms {
                let sum = rooms.entry(kind.clone()).or_default();
                sum.rooms += r.rooms;
                sum.members += r.members;
            }
        }
        ClusterStats {
            connections: nodes.iter().map(|n| n.connections).sum(),
            rooms,
            nodes,
            partial,
        }
    }

    /// Refreshes the per-kind room gauges from the local sockets.
    pub fn refresh_room_gauges(&self) {
        for (kind, r) in self.local_stats().rooms {
            let kind = RoomKind::ALL
                .iter()
                .find(|k| k.as_str() == kind)
                .map_or("other", |k| k.as_str());
            metrics::room_gauges(kind, r.rooms, r.members);
        }
    }
}

/// A server-generated notification id.
pub fn new_notification_id() -> NotificationId {
    NotificationId::parse(uuid::Uuid::new_v4().to_string()).expect("a UUID is a valid id")
}

/// Counts and logs a failed emit; only a failure to publish at all is an error.
fn report_broadcast_error(
    event: &'static str,
    e: &socketioxide::BroadcastError,
) -> Result<(), AppError> {
    match e {
        socketioxide::BroadcastError::Socket(errors) => {
            for _ in errors {
                metrics::emit_dropped(event);
            }
            tracing::warn!(
                event,
                dropped = errors.len(),
                "emit dropped for sockets whose buffer is full or closed"
            );
            Ok(())
        }
        other => {
            tracing::error!(event, error = %other, "broadcast failed");
            Err(AppError::new(
                crate::error::ErrorCode::Unavailable,
                "the event could not be published to the cluster; retry later",
            ))
        }
    }
}

/// Whether a role may act for other users of its tenant (admin actions).
pub fn is_admin(role: Role) -> bool {
    matches!(role, Role::Admin | Role::SuperAdmin)
}
