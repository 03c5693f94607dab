//! Wraps any engine to time every call and count failures per operation, so both engines
//! report `lms_store_operation_duration_seconds` and `lms_store_errors_total` alike.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::usage::Usage;
use super::*;
use crate::metrics;

pub struct Instrumented {
    inner: Arc<dyn Store>,
}

impl Instrumented {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self { inner }
    }
}

async fn timed<T>(op: &'static str, fut: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    let start = Instant::now();
    let res = fut.await;
    // NotFound is an answer, not a failure of the store.
    let ok = !matches!(res, Err(StoreError::Unavailable(_)));
    metrics::store_op(op, start.elapsed(), ok);
    if let Err(StoreError::Unavailable(e)) = &res {
        tracing::warn!(op, error = %e, "store call failed");
    }
    res
}

#[async_trait]
impl InboxStore for Instrumented {
    async fn open_fanout(&self, n: &Notification) -> StoreResult<Fanout> {
        timed("open_fanout", self.inner.open_fanout(n)).await
    }
    async fn insert(&self, to: &UserId, body: &Arc<Notification>) -> StoreResult<InsertOutcome> {
        timed("insert_notification", self.inner.insert(to, body)).await
    }
    async fn claim_delivery(
        &self,
        t: &TenantId,
        id: &NotificationId,
        to: &UserId,
    ) -> StoreResult<bool> {
        timed("claim_delivery", self.inner.claim_delivery(t, id, to)).await
    }
    async fn mark_delivered(
        &self,
        t: &TenantId,
        id: &NotificationId,
        to: &[UserId],
    ) -> StoreResult<()> {
        timed("mark_delivered", self.inner.mark_delivered(t, id, to)).await
    }
    async fn sweep(&self) -> StoreResult<SweepReport> {
        timed("sweep", self.inner.sweep()).await
    }
    async fn mark_read(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
    ) -> StoreResult<StatusChange> {
        timed("mark_read", self.inner.mark_read(t, u, id)).await
    }
    async fn mark_all_read(&self, t: &TenantId, u: &UserId) -> StoreResult<u64> {
        timed("mark_all_read", self.inner.mark_all_read(t, u)).await
    }
    async fn dismiss(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
    ) -> StoreResult<StatusChange> {
        timed("dismiss", self.inner.dismiss(t, u, id)).await
    }
    async fn unread_count(&self, t: &TenantId, u: &UserId) -> StoreResult<u64> {
        timed("unread_count", self.inner.unread_count(t, u)).await
    }
    async fn list(&self, t: &TenantId, u: &UserId, q: &ListQuery) -> StoreResult<Page> {
        timed("list", self.inner.list(t, u, q)).await
    }
}

#[async_trait]
impl MembershipStore for Instrumented {
    async fn set_member(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
        role: CourseRole,
    ) -> StoreResult<Option<CourseRole>> {
        timed("set_member", self.inner.set_member(t, c, u, role)).await
    }
    async fn remove_member(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
    ) -> StoreResult<Option<CourseRole>> {
        timed("remove_member", self.inner.remove_member(t, c, u)).await
    }
    async fn replace_members(
        &self,
        t: &TenantId,
        c: &CourseId,
        members: &[Member],
    ) -> StoreResult<MembershipDiff> {
        timed("replace_members", self.inner.replace_members(t, c, members)).await
    }
    async fn member_role(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
    ) -> StoreResult<Option<CourseRole>> {
        timed("member_role", self.inner.member_role(t, c, u)).await
    }
    async fn user_courses(
        &self,
        t: &TenantId,
        u: &UserId,
    ) -> StoreResult<Vec<(CourseId, CourseRole)>> {
        timed("user_courses", self.inner.user_courses(t, u)).await
    }
    async fn course_members(&self, t: &TenantId, c: &CourseId) -> StoreResult<Vec<Member>> {
        timed("course_members", self.inner.course_members(t, c)).await
    }
}

#[async_trait]
impl UsageStore for Instrumented {
    async fn usage(&self, t: &TenantId) -> StoreResult<Usage> {
        timed("usage", self.inner.usage(t)).await
    }
    async fn add_usage(&self, t: &TenantId, add: Usage) -> StoreResult<()> {
        timed("add_usage", self.inner.add_usage(t, add)).await
    }
    async fn measure_usage(&self) -> StoreResult<std::collections::HashMap<TenantId, Usage>> {
        timed("measure_usage", self.inner.measure_usage()).await
    }
}

#[async_trait]
impl Health for Instrumented {
    async fn ping(&self) -> StoreResult<()> {
        timed("ping", self.inner.ping()).await
    }
}
