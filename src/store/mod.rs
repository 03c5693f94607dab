//! The state that must survive a node: inboxes, unread counts, course membership and the
//! progress log, behind one trait.
//!
//! Two engines implement it, chosen at start by configuration (like Centrifugo's engines):
//! [`memory::MemoryStore`] for the embedded single node and [`redis`] for a cluster. Both
//! pass the same suite ([`conformance`]). Every method is keyed by tenant first, so an
//! implementation can never reach across tenants by accident.

pub mod conformance;
pub mod connections;
pub mod instrumented;
pub mod keys;
pub mod memory;
pub mod redis;
pub mod redis_connections;
pub mod redis_revocations;
pub mod revocations;

use async_trait::async_trait;

use crate::error::AppError;
use crate::ids::{CourseId, NotificationId, TenantId, UserId};
use crate::types::{CourseRole, Member, Notification, NotificationStatus};

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

/// What inserting a notification did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored and counted unread; the user's unread count after it.
    Inserted { unread: u64 },
    /// The id was already in this user's inbox: nothing stored or counted twice.
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
}

/// One entry of the progress log.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressRecord {
    pub user: UserId,
    pub course: CourseId,
    /// `content` or `video`.
    pub kind: &'static str,
    pub payload: serde_json::Value,
    /// RFC 3339.
    pub at: String,
}

/// How a membership replacement changed the course.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipDiff {
    /// Members added, or whose role changed.
    pub upserted: Vec<Member>,
    /// Members no longer in the course, with their former role.
    pub removed: Vec<Member>,
}

/// Bounds every engine keeps.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// Entries kept per user inbox; older ones are dropped (and stop counting unread).
    pub inbox_cap: usize,
    /// Entries kept in each tenant's progress log.
    pub progress_log_cap: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            inbox_cap: 500,
            progress_log_cap: 10_000,
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores one inbox entry (its `user_id` is the recipient) and counts it unread,
    /// unless its id is already in that inbox.
    async fn insert_notification(&self, n: &Notification) -> StoreResult<InsertOutcome>;
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
    async fn list(&self, t: &TenantId, u: &UserId, q: &ListQuery) -> StoreResult<Page>;

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
    /// Whether the course has any member (admins may join only a known course).
    async fn course_exists(&self, t: &TenantId, c: &CourseId) -> StoreResult<bool>;

    /// Appends to the tenant's bounded progress log.
    async fn append_progress(&self, t: &TenantId, r: &ProgressRecord) -> StoreResult<()>;
    /// The newest progress entries of a tenant, newest first.
    async fn recent_progress(&self, t: &TenantId, limit: usize)
    -> StoreResult<Vec<ProgressRecord>>;

    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
}
