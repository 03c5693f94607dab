//! The state that must survive a node, behind four narrow traits: [`InboxStore`] (inboxes,
//! unread counts, notification bodies and their idempotency records), [`MembershipStore`],
//! [`Health`] and [`UsageStore`] (per-tenant storage, for quotas); [`Store`] is all four.
//! Progress reports and the other exported events go to the export queue
//! ([`crate::export`]), which replaced the progress log.
//!
//! Two engines implement them, chosen at start by configuration (like Centrifugo's engines):
//! [`memory::MemoryStore`] for the embedded single node and development, and [`redis`] for a
//! cluster. Both pass the same suite ([`conformance`]). Every method is keyed by tenant
//! first, so an implementation can never reach across tenants by accident. Everything
//! stored is bounded by count and by age ([`StoreLimits`]).

pub mod conformance;
pub mod connections;
pub mod instrumented;
pub mod keys;
pub mod memory;
pub mod memory_inbox;
mod memory_usage;
pub mod migrate;
pub mod redis;
pub mod redis_buckets;
pub mod redis_connections;
pub mod redis_inbox;
pub mod redis_membership;
pub mod redis_revocations;
mod redis_usage;
pub mod revocations;
pub mod sweeper;
pub mod usage;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::AppError;
use crate::ids::{CourseId, NotificationId, TenantId, UserId};
use crate::types::{CourseRole, Member, Notification, NotificationStatus};
use usage::UsageStore;

/// Why a store call failed. `Unavailable` means nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// At the edge, a store failure is the contract's `NOT_FOUND` or `UNAVAILABLE`.
impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => AppError::not_found(what),
            StoreError::Unavailable(_) => AppError::unavailable(),
        }
    }
}

/// A delivery of one notification id, opened by [`InboxStore::open_fanout`].
#[derive(Debug, Clone, PartialEq)]
pub struct Fanout {
    /// The body as stored (on a retry, the first send's), shared by every recipient.
    pub body: Arc<Notification>,
    /// True when the id was already sent within the idempotency window.
    pub retry: bool,
    /// Recipients who already got it live, or are getting it from a send in flight (only
    /// on a retry): they are skipped.
    pub delivered: HashSet<UserId>,
}

/// What inserting a notification did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored and counted unread; the user's unread count after it.
    Inserted { unread: u64 },
    /// The id was already in this user's inbox: nothing stored or counted twice.
    /// On a retry ([`Fanout::retry`]) it may not have been pushed yet.
    Duplicate { unread: u64 },
}

/// The result of a status change (read, dismiss).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusChange {
    /// False when the notification already had that status (an idempotent repeat).
    pub changed: bool,
    pub unread: u64,
}

/// A page request: newest first, `before` a cursor from a previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: usize,
    pub before: Option<u64>,
    pub status: Option<NotificationStatus>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Notification>,
    pub next_cursor: Option<u64>,
    /// Entries that could not be read (a key or body missing) and were left out.
    pub skipped: u64,
}

/// How a membership replacement changed the course.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipDiff {
    /// Members added, or whose role changed.
    pub upserted: Vec<Member>,
    /// Members no longer in the course, with their former role.
    pub removed: Vec<Member>,
}

/// Bounds every engine keeps: by count and by age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Entries kept per user inbox; older ones are dropped (and stop counting unread).
    pub inbox_cap: usize,
    /// Inbox entries (and notification bodies) older than this are dropped.
    pub inbox_retention: Duration,
    /// A user with no activity (insert, read, dismiss, connect, enrolment change) for this
    /// long loses every key at once; an unused course membership goes after it too.
    pub inactive_user_retention: Duration,
    /// Dismissed entries are dropped this long after their dismissal.
    pub dismissed_retention: Duration,
    /// How long a notification id is remembered for exact idempotency.
    pub idempotency_window: Duration,
}

const DAY: u64 = 24 * 3600;

/// How long a claimed push ([`InboxStore::claim_delivery`]) blocks other sends of the same id
/// before a retry may take it over.
pub const DELIVERY_LEASE: Duration = Duration::from_secs(30);

impl StoreLimits {
    /// The defaults of the configuration, usable in `const` items.
    pub const DEFAULT: Self = Self {
        inbox_cap: 500,
        inbox_retention: Duration::from_secs(90 * DAY),
        inactive_user_retention: Duration::from_secs(180 * DAY),
        dismissed_retention: Duration::from_secs(7 * DAY),
        idempotency_window: Duration::from_secs(DAY),
    };

    /// How long a user's keys (and a course's membership) live without activity.
    pub fn inbox_idle_ttl(&self) -> Duration {
        self.inactive_user_retention.max(Duration::from_secs(1))
    }
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What one retention sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub inboxes: u64,
    pub trimmed: u64,
}

/// A user's inbox: stored entries, their status and the exact unread count.
#[async_trait]
pub trait InboxStore: Send + Sync + 'static {
    /// Stores the body of a notification once per tenant and id (first send wins) and opens
    /// or resumes its idempotency record.
    async fn open_fanout(&self, n: &Notification) -> StoreResult<Fanout>;
    /// Stores a reference to an opened body in `to`'s inbox and counts it unread, unless the
    /// id is already there. The recipient is an argument, so an entry without one cannot
    /// exist.
    async fn insert(&self, to: &UserId, body: &Arc<Notification>) -> StoreResult<InsertOutcome>;
    /// Claims the live push to `to`: true for exactly one of several concurrent sends of an
    /// id (a claim older than [`DELIVERY_LEASE`] can be taken over: its node died).
    async fn claim_delivery(
        &self,
        t: &TenantId,
        id: &NotificationId,
        to: &UserId,
    ) -> StoreResult<bool>;
    /// Records that the users `to` got the notification live, so that a retry does not push
    /// it again. One call for many recipients: the record is one per notification.
    async fn mark_delivered(
        &self,
        t: &TenantId,
        id: &NotificationId,
        to: &[UserId],
    ) -> StoreResult<()>;
    /// UNREAD → READ. `NotFound` when the id is not in the inbox.
    async fn mark_read(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
    ) -> StoreResult<StatusChange>;
    /// Every UNREAD entry → READ; returns how many changed.
    async fn mark_all_read(&self, t: &TenantId, u: &UserId) -> StoreResult<u64>;
    /// Any status → DISMISSED. `NotFound` when the id is not in the inbox.
    async fn dismiss(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
    ) -> StoreResult<StatusChange>;
    async fn unread_count(&self, t: &TenantId, u: &UserId) -> StoreResult<u64>;
    /// A page, newest first; what cannot be read is skipped and counted in [`Page::skipped`].
    async fn list(&self, t: &TenantId, u: &UserId, q: &ListQuery) -> StoreResult<Page>;
    /// One pass of the retention rules over every inbox. Safe on every node at once.
    async fn sweep(&self) -> StoreResult<SweepReport>;
}

/// Course membership, readable by course (fan-out, role checks) and by user (rooms).
#[async_trait]
pub trait MembershipStore: Send + Sync + 'static {
    /// Adds or updates a member; returns the previous role.
    async fn set_member(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
        role: CourseRole,
    ) -> StoreResult<Option<CourseRole>>;
    /// Removes a member; returns the role it had.
    async fn remove_member(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
    ) -> StoreResult<Option<CourseRole>>;
    /// Replaces the whole membership of a course.
    async fn replace_members(
        &self,
        t: &TenantId,
        c: &CourseId,
        members: &[Member],
    ) -> StoreResult<MembershipDiff>;
    async fn member_role(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
    ) -> StoreResult<Option<CourseRole>>;
    async fn user_courses(
        &self,
        t: &TenantId,
        u: &UserId,
    ) -> StoreResult<Vec<(CourseId, CourseRole)>>;
    async fn course_members(&self, t: &TenantId, c: &CourseId) -> StoreResult<Vec<Member>>;
}

/// Whether the engine can be reached at all.
#[async_trait]
pub trait Health: Send + Sync + 'static {
    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
}

/// Every part of the store, as one handle for the gateway. Implemented for anything that
/// implements the four parts.
pub trait Store: InboxStore + MembershipStore + Health + UsageStore {}

impl<S: InboxStore + MembershipStore + Health + UsageStore + ?Sized> Store for S {}
