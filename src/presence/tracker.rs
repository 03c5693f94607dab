//! This node's side of presence: it counts its own sockets per user and scope, and tells
//! the [`PresenceStore`] only about a user's first and last socket here.
//!
//! Store calls run off the connect and disconnect paths, in a few sequential queues
//! (sharded by scope and user, so that one user's join and leave in a scope are applied
//! in order). A suppressed announcement is asked about again when its debounce window
//! closes; the periodic upkeep keeps this node's entries alive, purges dead nodes' and
//! refreshes the online-users gauge.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Change, PresenceStore, Rules, Scope, Verdict, now_ms};
use crate::ids::{CourseId, TenantId, UserId};
use crate::metrics::{self, TenantGauge};
use crate::store::StoreResult;

/// A `presence:join` or `presence:leave` to send to a course's instructors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub tenant: TenantId,
    pub course: CourseId,
    pub user: UserId,
    pub role: String,
    pub joined: bool,
}

/// Sends announcements (the socket layer implements it over the adapter).
pub trait Announcer: Send + Sync + 'static {
    fn announce(&self, a: Announcement) -> BoxFuture<'static, ()>;
}

/// Store call queues per node: enough to overlap round trips, few enough to stay cheap.
const SHARDS: usize = 8;
/// Attempts of a store call before it is given up (logged and counted).
const ATTEMPTS: u32 = 3;
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How often the online-users gauge is read from the store.
const GAUGE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Join,
    Leave,
    Settle,
    /// The user's role in the scope changed while it stayed present.
    Role,
}

#[derive(Debug, Clone)]
struct Op {
    kind: Kind,
    scope: Scope,
    user: UserId,
    role: String,
}

struct Local {
    sockets: usize,
    /// A role's name is one of a few: borrowed, not a string per present user.
    role: Cow<'static, str>,
}

/// `role` as a static name when it is one of the roles' (it always is for the gateway's
/// own callers), else an owned copy.
fn role_name(role: &str) -> Cow<'static, str> {
    match crate::role::Role::parse(role) {
        Some(r) => Cow::Borrowed(r.as_str()),
        None => Cow::Owned(role.to_owned()),
    }
}

/// Presence settings from configuration.
#[derive(Debug, Clone, Copy)]
pub struct PresenceSettings {
    pub enabled: bool,
    pub debounce: Duration,
    /// How often this node refreshes its entries and looks for dead nodes.
    pub upkeep_every: Duration,
    pub tenant_metric_cap: usize,
    /// How long a course list serves the lists after it (`PRESENCE_LIST_CACHE_MS`; zero:
    /// every list reads the store).
    pub list_cache: Duration,
}

/// This node's presence; shared as `Arc<Presence>`.
pub struct Presence {
    store: Arc<dyn PresenceStore>,
    local: Mutex<HashMap<(Scope, UserId), Local>>,
    shards: Vec<mpsc::UnboundedSender<Op>>,
    hasher: RandomState,
    debounce_ms: u64,
    pending: Mutex<HashSet<(Scope, UserId)>>,
    /// This presence itself, for the settle timers (which must not keep it alive).
    me: std::sync::Weak<Presence>,
    enabled: bool,
    /// Course lists in flight, shared by overlapping callers (`query`).
    pub(super) lists: super::query::CourseLists,
    /// Course lists read lately, shared by the callers that follow (`query`).
    pub(super) list_cache: Arc<super::query::CourseListCache>,
}

impl Presence {
    /// Starts the queues and the upkeep; both end when `stop` fires (after this node's
    /// entries are withdrawn).
    pub fn start(
        store: Arc<dyn PresenceStore>,
        announcer: Arc<dyn Announcer>,
        settings: PresenceSettings,
        stop: CancellationToken,
    ) -> Arc<Self> {
        let mut shards = Vec::with_capacity(SHARDS);
        let mut receivers = Vec::with_capacity(SHARDS);
        for _ in 0..SHARDS {
            let (tx, rx) = mpsc::unbounded_channel();
            shards.push(tx);
            receivers.push(rx);
        }
        let presence = Arc::new_cyclic(|me| Self {
            store,
            local: Mutex::default(),
            shards,
            hasher: RandomState::new(),
            debounce_ms: settings.debounce.as_millis() as u64,
            pending: Mutex::default(),
            me: me.clone(),
            enabled: settings.enabled,
            lists: Default::default(),
            list_cache: Arc::new(super::cache::Cache::new(settings.list_cache)),
        });
        for rx in receivers {
            let worker = Worker {
                presence: Arc::downgrade(&presence),
                store: presence.store.clone(),
                announcer: announcer.clone(),
            };
            tokio::spawn(worker.run(rx));
        }
        tokio::spawn(upkeep(presence.clone(), announcer, settings, stop));
        presence
    }

    pub fn store(&self) -> &Arc<dyn PresenceStore> {
        &self.store
    }

    /// Whether this node tracks presence (`PRESENCE_ENABLED`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn rules(&self) -> Rules {
        Rules {
            now_ms: now_ms(),
            debounce_ms: self.debounce_ms,
        }
    }

    /// Queues an op on its shard. Called under the `local` lock, so ops of one user and
    /// scope are queued in the order their transitions happened.
    fn queue(&self, op: Op) {
        let shard = self.hasher.hash_one((&op.scope, &op.user)) as usize % self.shards.len();
        if self.shards[shard].send(op).is_err() {
            tracing::debug!("presence queue closed (node stopping)");
        }
    }

    /// One more socket of `user` in `scope` on this node.
    pub fn enter(&self, scope: Scope, user: &UserId, role: &str) {
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let entry = local
            .entry((scope.clone(), user.clone()))
            .or_insert_with(|| Local {
                sockets: 0,
                role: role_name(role),
            });
        entry.sockets += 1;
        if entry.sockets == 1 {
            self.queue(Op {
                kind: Kind::Join,
                scope,
                user: user.clone(),
                role: role.to_owned(),
            });
        }
    }

    /// `user`, present in `scope` on this node, holds `role` there now (its membership
    /// changed while online). Written once per user, however many of its sockets are here.
    pub fn change_role(&self, scope: Scope, user: &UserId, role: &str) {
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = local.get_mut(&(scope.clone(), user.clone())) else {
            return;
        };
        if entry.role == role {
            return;
        }
        entry.role = role_name(role);
        self.queue(Op {
            kind: Kind::Role,
            scope,
            user: user.clone(),
            role: role.to_owned(),
        });
    }

    /// One socket fewer of `user` in `scope` on this node.
    pub fn exit(&self, scope: Scope, user: &UserId) {
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let key = (scope, user.clone());
        let Some(entry) = local.get_mut(&key) else {
            return;
        };
        entry.sockets -= 1;
        if entry.sockets == 0
            && let Some(gone) = local.remove(&key)
        {
            let (scope, user) = key;
            self.queue(Op {
                kind: Kind::Leave,
                scope,
                user,
                role: gone.role.into_owned(),
            });
        }
    }

    /// Writes every entry of this node again (after its entries were purged).
    fn resync(&self) {
        let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        tracing::warn!(
            entries = local.len(),
            "presence: this node's entries were purged by another node; writing them again"
        );
        for ((scope, user), l) in local.iter() {
            self.queue(Op {
                kind: Kind::Join,
                scope: scope.clone(),
                user: user.clone(),
                role: l.role.to_string(),
            });
        }
    }

    /// The tenants with a user on this node.
    fn local_tenants(&self) -> HashSet<TenantId> {
        let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        local
            .keys()
            .filter_map(|(scope, _)| match scope {
                Scope::Tenant(t) => Some(t.clone()),
                Scope::Course(..) => None,
            })
            .collect()
    }
}

/// One queue's consumer.
struct Worker {
    presence: std::sync::Weak<Presence>,
    store: Arc<dyn PresenceStore>,
    announcer: Arc<dyn Announcer>,
}

impl Worker {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Op>) {
        while let Some(op) = rx.recv().await {
            let Some(presence) = self.presence.upgrade() else {
                return;
            };
            presence.apply(&self.store, &self.announcer, op).await;
        }
    }
}

impl Presence {
    async fn apply(&self, store: &Arc<dyn PresenceStore>, announcer: &Arc<dyn Announcer>, op: Op) {
        let mut attempt = 1;
        loop {
            match self.call(store, announcer, &op).await {
                Ok(()) => return,
                Err(e) if attempt >= ATTEMPTS => {
                    metrics::presence_store_failed();
                    tracing::warn!(error = %e, user = %op.user, tenant = %op.scope.tenant(), op = ?op.kind, "presence update not written; corrected when this node's entries are purged or written again");
                    return;
                }
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    async fn call(
        &self,
        store: &Arc<dyn PresenceStore>,
        announcer: &Arc<dyn Announcer>,
        op: &Op,
    ) -> StoreResult<()> {
        let rules = self.rules();
        let (joined, verdict) = match op.kind {
            Kind::Join => {
                let c = store.join(&op.scope, &op.user, &op.role, rules).await?;
                self.changed(&op.scope);
                (true, flipped(c))
            }
            Kind::Leave => {
                let c = store.leave(&op.scope, &op.user, rules).await?;
                self.changed(&op.scope);
                (false, flipped(c))
            }
            Kind::Role => {
                store.set_role(&op.scope, &op.user, &op.role).await?;
                self.changed(&op.scope);
                return Ok(());
            }
            Kind::Settle => {
                self.pending_settles()
                    .remove(&(op.scope.clone(), op.user.clone()));
                let s = store.settle(&op.scope, &op.user, rules).await?;
                (s.online, Some(s.verdict))
            }
        };
        if let Some(v) = verdict {
            self.act(announcer, op, joined, v).await;
        }
        Ok(())
    }

    fn pending_settles(&self) -> std::sync::MutexGuard<'_, HashSet<(Scope, UserId)>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Announces, or schedules the settle of, one decided change.
    async fn act(&self, announcer: &Arc<dyn Announcer>, op: &Op, joined: bool, verdict: Verdict) {
        let Scope::Course(t, c) = &op.scope else {
            return;
        };
        let event = if joined { "join" } else { "leave" };
        let first_decision = op.kind != Kind::Settle;
        match verdict {
            Verdict::Announce => {
                metrics::presence_event(event, "announced");
                announcer
                    .announce(Announcement {
                        tenant: t.clone(),
                        course: c.clone(),
                        user: op.user.clone(),
                        role: op.role.clone(),
                        joined,
                    })
                    .await;
            }
            Verdict::Quiet => {
                if first_decision {
                    metrics::presence_event(event, "debounced");
                }
            }
            Verdict::Suppressed { recheck_at_ms } => {
                if first_decision {
                    metrics::presence_event(event, "debounced");
                }
                self.settle_later(op, recheck_at_ms);
            }
        }
    }

    /// Queues a settle of `op`'s user and scope for when the debounce window closes; one
    /// per user and scope at a time, so a flapping user has one timer, not one per flap.
    fn settle_later(&self, op: &Op, at_ms: u64) {
        if !self
            .pending_settles()
            .insert((op.scope.clone(), op.user.clone()))
        {
            return;
        }
        let wait = Duration::from_millis(at_ms.saturating_sub(now_ms()) + 1);
        let settle = Op {
            kind: Kind::Settle,
            ..op.clone()
        };
        let presence = self.me.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if let Some(p) = presence.upgrade() {
                p.queue(settle);
            }
        });
    }

    /// Announces (or debounces) a user that went away with a dead node.
    async fn departed(&self, announcer: &Arc<dyn Announcer>, d: super::Departed) {
        self.changed(&d.scope);
        let op = Op {
            kind: Kind::Leave,
            scope: d.scope,
            user: d.user,
            role: d.role,
        };
        self.act(announcer, &op, false, d.verdict).await;
    }
}

/// Only a flip (first or last socket cluster-wide) has anything to announce.
fn flipped(c: Change) -> Option<Verdict> {
    c.flipped.then_some(c.verdict)
}

/// The periodic upkeep, then withdrawal at stop.
async fn upkeep(
    presence: Arc<Presence>,
    announcer: Arc<dyn Announcer>,
    settings: PresenceSettings,
    stop: CancellationToken,
) {
    let gauge = TenantGauge::online_users(settings.tenant_metric_cap);
    let mut tick = tokio::time::interval(settings.upkeep_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_gauge = tokio::time::Instant::now() - GAUGE_EVERY;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        match presence.store.upkeep(presence.rules()).await {
            Ok(found) => {
                if found.resync {
                    presence.resync();
                }
                for d in found.departed {
                    presence.departed(&announcer, d).await;
                }
            }
            Err(e) => tracing::debug!(error = %e, "presence upkeep failed; retrying next tick"),
        }
        if last_gauge.elapsed() >= GAUGE_EVERY {
            last_gauge = tokio::time::Instant::now();
            refresh_gauge(&presence, &gauge).await;
        }
    }
    // Let the sockets' leaves (queued as they close) reach the store, then remove
    // whatever is left so that nothing waits for this node's entries to expire.
    tokio::time::sleep(Duration::from_millis(500)).await;
    match presence.store.withdraw(presence.rules()).await {
        Ok(departed) => {
            for d in departed {
                presence.departed(&announcer, d).await;
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "presence entries not withdrawn; they expire with this node's heartbeat")
        }
    }
}

/// Sets `lms_presence_online_users` to the cluster-wide count of each tenant this node
/// has users of (every node reports the same figure: dashboards take the max).
async fn refresh_gauge(presence: &Presence, gauge: &TenantGauge) {
    let mut per_label: HashMap<&'static str, f64> = HashMap::new();
    for t in presence.local_tenants() {
        match presence.store.count(&Scope::Tenant(t.clone())).await {
            Ok(n) => *per_label.entry(gauge.label(&t)).or_default() += n as f64,
            Err(e) => {
                tracing::debug!(error = %e, "online users not read; gauge kept");
                return;
            }
        }
    }
    gauge.set_all(per_label);
}

/// The presence of one socket: the scopes it is in, left all at once when it closes.
pub struct SocketPresence {
    presence: Arc<Presence>,
    tenant: TenantId,
    user: UserId,
    /// Course → the role the user is present with; `None` once closed.
    courses: Mutex<Option<HashMap<CourseId, String>>>,
}

impl SocketPresence {
    /// Enters the tenant and the given courses (course id, role).
    pub fn open(
        presence: Arc<Presence>,
        tenant: TenantId,
        user: UserId,
        role: &str,
        courses: Vec<(CourseId, String)>,
    ) -> Self {
        presence.enter(Scope::Tenant(tenant.clone()), &user, role);
        let mut map = HashMap::with_capacity(courses.len());
        for (c, r) in courses {
            presence.enter(Scope::Course(tenant.clone(), c.clone()), &user, &r);
            map.insert(c, r);
        }
        Self {
            presence,
            tenant,
            user,
            courses: Mutex::new(Some(map)),
        }
    }

    /// The user's membership of a course now gives it `role`: enters the course as that
    /// role, or, already in it with another role, changes the role it is present with.
    pub fn enroll(&self, c: &CourseId, role: &str) {
        let mut courses = self.courses.lock().unwrap_or_else(|p| p.into_inner());
        let Some(map) = courses.as_mut() else { return };
        match map.get_mut(c) {
            Some(held) if held == role => {}
            Some(held) => {
                role.clone_into(held);
                self.presence.change_role(
                    Scope::Course(self.tenant.clone(), c.clone()),
                    &self.user,
                    role,
                );
            }
            None => {
                map.insert(c.clone(), role.to_owned());
                self.presence.enter(
                    Scope::Course(self.tenant.clone(), c.clone()),
                    &self.user,
                    role,
                );
            }
        }
    }

    /// The socket joined a course room (no-op if it already was in it, or is closed).
    pub fn enter_course(&self, c: &CourseId, role: &str) {
        let mut courses = self.courses.lock().unwrap_or_else(|p| p.into_inner());
        let Some(map) = courses.as_mut() else { return };
        if map.contains_key(c) {
            return;
        }
        map.insert(c.clone(), role.to_owned());
        self.presence.enter(
            Scope::Course(self.tenant.clone(), c.clone()),
            &self.user,
            role,
        );
    }

    /// The socket left a course room.
    pub fn leave_course(&self, c: &CourseId) {
        let mut courses = self.courses.lock().unwrap_or_else(|p| p.into_inner());
        if courses.as_mut().and_then(|m| m.remove(c)).is_some() {
            self.presence
                .exit(Scope::Course(self.tenant.clone(), c.clone()), &self.user);
        }
    }

    /// Leaves every scope (at disconnect); later calls do nothing.
    pub fn close(&self) {
        let Some(map) = self
            .courses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return;
        };
        for c in map.into_keys() {
            self.presence
                .exit(Scope::Course(self.tenant.clone(), c), &self.user);
        }
        self.presence
            .exit(Scope::Tenant(self.tenant.clone()), &self.user);
    }
}

impl Drop for SocketPresence {
    fn drop(&mut self) {
        self.close();
    }
}
