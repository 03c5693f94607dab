//! The embedded engine: everything in this process, for one node, development and fast
//! tests, not for production scale (nothing survives a restart). It follows the same bounds
//! as Redis; a background task calls [`InboxStore::sweep`] for what expires by time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use async_trait::async_trait;

use super::memory_inbox::{Inboxes, SentRecords};
use super::*;

type UserKey = (TenantId, UserId);
type CourseKey = (TenantId, CourseId);

#[derive(Default)]
struct Membership {
    by_course: HashMap<CourseKey, HashMap<UserId, CourseRole>>,
    by_user: HashMap<UserKey, HashMap<CourseId, CourseRole>>,
}

impl Membership {
    fn set(
        &mut self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
        role: CourseRole,
    ) -> Option<CourseRole> {
        self.by_user
            .entry((t.clone(), u.clone()))
            .or_default()
            .insert(c.clone(), role);
        self.by_course
            .entry((t.clone(), c.clone()))
            .or_default()
            .insert(u.clone(), role)
    }

    fn remove(&mut self, t: &TenantId, c: &CourseId, u: &UserId) -> Option<CourseRole> {
        let key = (t.clone(), u.clone());
        if let Some(courses) = self.by_user.get_mut(&key) {
            courses.remove(c);
            if courses.is_empty() {
                self.by_user.remove(&key);
            }
        }
        let key = (t.clone(), c.clone());
        let members = self.by_course.get_mut(&key)?;
        let role = members.remove(u);
        if members.is_empty() {
            self.by_course.remove(&key);
        }
        role
    }
}

/// Everything in memory behind short-lived mutexes; no call awaits while holding one.
pub struct MemoryStore {
    pub(super) limits: StoreLimits,
    inboxes: Mutex<Inboxes>,
    sent: Mutex<SentRecords>,
    members: Mutex<Membership>,
    progress: Mutex<HashMap<TenantId, VecDeque<(Instant, ProgressRecord)>>>,
}

impl MemoryStore {
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            limits,
            inboxes: Mutex::default(),
            sent: Mutex::default(),
            members: Mutex::default(),
            progress: Mutex::default(),
        }
    }

    pub(super) fn inboxes(&self) -> MutexGuard<'_, Inboxes> {
        self.inboxes.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn sent(&self) -> MutexGuard<'_, SentRecords> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn members(&self) -> MutexGuard<'_, Membership> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl MembershipStore for MemoryStore {
    async fn set_member(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
        role: CourseRole,
    ) -> StoreResult<Option<CourseRole>> {
        Ok(self.members().set(t, c, u, role))
    }

    async fn remove_member(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
    ) -> StoreResult<Option<CourseRole>> {
        Ok(self.members().remove(t, c, u))
    }

    async fn replace_members(
        &self,
        t: &TenantId,
        c: &CourseId,
        members: &[Member],
    ) -> StoreResult<MembershipDiff> {
        let mut m = self.members();
        let current = m
            .by_course
            .get(&(t.clone(), c.clone()))
            .cloned()
            .unwrap_or_default();
        let wanted: HashMap<&UserId, CourseRole> =
            members.iter().map(|m| (&m.user_id, m.role)).collect();
        let mut diff = MembershipDiff::default();
        for (user, role) in &current {
            if !wanted.contains_key(user) {
                m.remove(t, c, user);
                diff.removed.push(Member {
                    user_id: user.clone(),
                    role: *role,
                });
            }
        }
        for (user, role) in wanted {
            if current.get(user) != Some(&role) {
                m.set(t, c, user, role);
                diff.upserted.push(Member {
                    user_id: user.clone(),
                    role,
                });
            }
        }
        Ok(diff)
    }

    async fn member_role(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
    ) -> StoreResult<Option<CourseRole>> {
        let m = self.members();
        Ok(m.by_course
            .get(&(t.clone(), c.clone()))
            .and_then(|ms| ms.get(u).copied()))
    }

    async fn user_courses(
        &self,
        t: &TenantId,
        u: &UserId,
    ) -> StoreResult<Vec<(CourseId, CourseRole)>> {
        let m = self.members();
        Ok(m.by_user
            .get(&(t.clone(), u.clone()))
            .map(|cs| cs.iter().map(|(c, r)| (c.clone(), *r)).collect())
            .unwrap_or_default())
    }

    async fn course_members(&self, t: &TenantId, c: &CourseId) -> StoreResult<Vec<Member>> {
        let m = self.members();
        Ok(m.by_course
            .get(&(t.clone(), c.clone()))
            .map(|ms| {
                ms.iter()
                    .map(|(u, r)| Member {
                        user_id: u.clone(),
                        role: *r,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[async_trait]
impl ProgressLog for MemoryStore {
    async fn append_progress(&self, t: &TenantId, r: &ProgressRecord) -> StoreResult<()> {
        let mut logs = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let log = logs.entry(t.clone()).or_default();
        log.push_back((now, r.clone()));
        let keep = self.limits.progress_retention;
        while log.len() > self.limits.progress_log_cap.max(1)
            || log
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > keep)
        {
            log.pop_front();
        }
        Ok(())
    }
}

#[async_trait]
impl Health for MemoryStore {
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: StoreLimits = StoreLimits {
        inbox_cap: 5,
        progress_log_cap: 3,
        ..StoreLimits::DEFAULT
    };

    #[tokio::test]
    async fn the_memory_store_passes_the_conformance_suite() {
        conformance::run_all(&MemoryStore::new(SMALL), SMALL).await;
        let s = MemoryStore::new(SMALL);
        conformance::the_progress_log_is_bounded(&s, SMALL, async |t| {
            s.progress.lock().unwrap().get(t).map_or(0, |l| l.len())
        })
        .await;
    }

    #[tokio::test]
    async fn the_memory_store_follows_the_retention_rules() {
        let s = MemoryStore::new(conformance::lifecycle::SHORT);
        conformance::lifecycle::retention_rules_hold(&s, async |t, u| {
            !s.inboxes().contains_key(&(t.clone(), u.clone()))
        })
        .await;
    }
}
