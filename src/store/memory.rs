//! The embedded engine: everything in this process, for a single node and fast tests.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;

type UserKey = (TenantId, UserId);
type CourseKey = (TenantId, CourseId);

#[derive(Default)]
struct Inbox {
    next_seq: u64,
    entries: BTreeMap<u64, Notification>,
    by_id: HashMap<NotificationId, u64>,
    unread: u64,
}

impl Inbox {
    fn set_status(
        &mut self,
        id: &NotificationId,
        to: NotificationStatus,
    ) -> StoreResult<StatusChange> {
        let seq = *self
            .by_id
            .get(id)
            .ok_or_else(|| StoreError::NotFound(format!("notification {id}")))?;
        let entry = self.entries.get_mut(&seq).expect("by_id and entries agree");
        let from = entry.status;
        let changed = match (from, to) {
            (a, b) if a == b => false,
            // A read or dismissed notification never becomes "read" again.
            (NotificationStatus::Dismissed, NotificationStatus::Read) => false,
            _ => true,
        };
        if changed {
            entry.status = to;
            if from == NotificationStatus::Unread {
                self.unread -= 1;
            }
        }
        Ok(StatusChange {
            changed,
            unread: self.unread,
        })
    }
}

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
    limits: StoreLimits,
    inboxes: Mutex<HashMap<UserKey, Inbox>>,
    members: Mutex<Membership>,
    progress: Mutex<HashMap<TenantId, VecDeque<ProgressRecord>>>,
}

impl MemoryStore {
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            limits,
            inboxes: Mutex::default(),
            members: Mutex::default(),
            progress: Mutex::default(),
        }
    }

    fn with_inbox<R>(&self, t: &TenantId, u: &UserId, f: impl FnOnce(&mut Inbox) -> R) -> R {
        let mut inboxes = self.inboxes.lock().unwrap_or_else(|p| p.into_inner());
        f(inboxes.entry((t.clone(), u.clone())).or_default())
    }

    fn members(&self) -> std::sync::MutexGuard<'_, Membership> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn insert_notification(&self, n: &Notification) -> StoreResult<InsertOutcome> {
        let user = n
            .user_id
            .as_ref()
            .ok_or_else(|| StoreError::NotFound("an inbox entry needs a recipient".into()))?;
        let cap = self.limits.inbox_cap.max(1);
        Ok(self.with_inbox(&n.tenant_id, user, |inbox| {
            if inbox.by_id.contains_key(&n.id) {
                return InsertOutcome::Duplicate {
                    unread: inbox.unread,
                };
            }
            inbox.next_seq += 1;
            let seq = inbox.next_seq;
            inbox.by_id.insert(n.id.clone(), seq);
            if n.status == NotificationStatus::Unread {
                inbox.unread += 1;
            }
            inbox.entries.insert(seq, n.clone());
            while inbox.entries.len() > cap {
                let (_, old) = inbox.entries.pop_first().expect("non-empty");
                inbox.by_id.remove(&old.id);
                if old.status == NotificationStatus::Unread {
                    inbox.unread -= 1;
                }
            }
            InsertOutcome::Inserted {
                unread: inbox.unread,
            }
        }))
    }

    async fn mark_read(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
    ) -> StoreResult<StatusChange> {
        self.with_inbox(t, u, |inbox| inbox.set_status(id, NotificationStatus::Read))
    }

    async fn mark_all_read(&self, t: &TenantId, u: &UserId) -> StoreResult<u64> {
        Ok(self.with_inbox(t, u, |inbox| {
            let mut changed = 0;
            for n in inbox.entries.values_mut() {
                if n.status == NotificationStatus::Unread {
                    n.status = NotificationStatus::Read;
                    changed += 1;
                }
            }
            inbox.unread = 0;
            changed
        }))
    }

    async fn dismiss(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
    ) -> StoreResult<StatusChange> {
        self.with_inbox(t, u, |inbox| {
            inbox.set_status(id, NotificationStatus::Dismissed)
        })
    }

    async fn unread_count(&self, t: &TenantId, u: &UserId) -> StoreResult<u64> {
        let inboxes = self.inboxes.lock().unwrap_or_else(|p| p.into_inner());
        Ok(inboxes.get(&(t.clone(), u.clone())).map_or(0, |i| i.unread))
    }

    async fn list(&self, t: &TenantId, u: &UserId, q: &ListQuery) -> StoreResult<Page> {
        let inboxes = self.inboxes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(inbox) = inboxes.get(&(t.clone(), u.clone())) else {
            return Ok(Page {
                items: vec![],
                next_cursor: None,
            });
        };
        let upper = q.before.unwrap_or(u64::MAX);
        let mut items = Vec::with_capacity(q.limit);
        let mut last_seq = None;
        let mut more = false;
        for (seq, n) in inbox.entries.range(..upper).rev() {
            if q.status.is_some_and(|s| s != n.status) {
                continue;
            }
            if items.len() == q.limit {
                more = true;
                break;
            }
            items.push(n.clone());
            last_seq = Some(*seq);
        }
        Ok(Page {
            items,
            next_cursor: if more { last_seq } else { None },
        })
    }

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

    async fn course_exists(&self, t: &TenantId, c: &CourseId) -> StoreResult<bool> {
        Ok(self
            .members()
            .by_course
            .contains_key(&(t.clone(), c.clone())))
    }

    async fn append_progress(&self, t: &TenantId, r: &ProgressRecord) -> StoreResult<()> {
        let mut logs = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        let log = logs.entry(t.clone()).or_default();
        log.push_back(r.clone());
        while log.len() > self.limits.progress_log_cap.max(1) {
            log.pop_front();
        }
        Ok(())
    }

    async fn recent_progress(
        &self,
        t: &TenantId,
        limit: usize,
    ) -> StoreResult<Vec<ProgressRecord>> {
        let logs = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        Ok(logs
            .get(t)
            .map(|l| l.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default())
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> MemoryStore {
        MemoryStore::new(StoreLimits {
            inbox_cap: 5,
            progress_log_cap: 3,
        })
    }

    #[tokio::test]
    async fn the_memory_store_passes_the_conformance_suite() {
        conformance::run_all(
            &store(),
            StoreLimits {
                inbox_cap: 5,
                progress_log_cap: 3,
            },
        )
        .await;
    }
}
