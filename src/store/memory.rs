//! The embedded engine: everything in this process, for one node, development and fast
//! tests, not for production scale (nothing survives a restart). It follows the same bounds
//! as Redis; a background task calls [`InboxStore::sweep`] for what expires by time.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::memory_inbox::{Inboxes, SentRecords};
use super::usage::Usage;
use super::*;

type UserKey = (TenantId, UserId);
type CourseKey = (TenantId, CourseId);

/// One membership map (a course's members, or a user's courses) and when it was last used:
/// one unused for the idle TTL is gone, as its Redis key expires.
struct Roles<K> {
    roles: HashMap<K, CourseRole>,
    used: Instant,
}

impl<K> Default for Roles<K> {
    fn default() -> Self {
        Self {
            roles: HashMap::new(),
            used: Instant::now(),
        }
    }
}

/// The live map under `key`, marked used now; an idle one is dropped first.
fn used<'m, Q: Eq + Hash, K>(
    maps: &'m mut HashMap<Q, Roles<K>>,
    key: &Q,
    idle: Duration,
    now: Instant,
) -> Option<&'m mut Roles<K>> {
    if maps
        .get(key)
        .is_some_and(|m| now.duration_since(m.used) >= idle)
    {
        maps.remove(key);
    }
    let m = maps.get_mut(key)?;
    m.used = now;
    Some(m)
}

/// Like [`used`], creating the map when there is none.
fn used_or_new<'m, Q: Eq + Hash + Clone, K>(
    maps: &'m mut HashMap<Q, Roles<K>>,
    key: &Q,
    idle: Duration,
    now: Instant,
) -> &'m mut Roles<K> {
    used(maps, key, idle, now);
    maps.entry(key.clone()).or_default()
}

struct Membership {
    idle: Duration,
    by_course: HashMap<CourseKey, Roles<UserId>>,
    by_user: HashMap<UserKey, Roles<CourseId>>,
}

impl Membership {
    fn new(idle: Duration) -> Self {
        Self {
            idle,
            by_course: HashMap::new(),
            by_user: HashMap::new(),
        }
    }

    fn set(
        &mut self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
        role: CourseRole,
    ) -> Option<CourseRole> {
        let now = Instant::now();
        let user = (t.clone(), u.clone());
        used_or_new(&mut self.by_user, &user, self.idle, now)
            .roles
            .insert(c.clone(), role);
        let course = (t.clone(), c.clone());
        used_or_new(&mut self.by_course, &course, self.idle, now)
            .roles
            .insert(u.clone(), role)
    }

    fn remove(&mut self, t: &TenantId, c: &CourseId, u: &UserId) -> Option<CourseRole> {
        let now = Instant::now();
        let key = (t.clone(), u.clone());
        if let Some(courses) = used(&mut self.by_user, &key, self.idle, now) {
            courses.roles.remove(c);
            if courses.roles.is_empty() {
                self.by_user.remove(&key);
            }
        }
        let key = (t.clone(), c.clone());
        let members = used(&mut self.by_course, &key, self.idle, now)?;
        let role = members.roles.remove(u);
        if members.roles.is_empty() {
            self.by_course.remove(&key);
        }
        role
    }

    /// A course's members, or a user's courses, marked used (a read is use).
    fn course(&mut self, t: &TenantId, c: &CourseId) -> Option<&HashMap<UserId, CourseRole>> {
        let key = (t.clone(), c.clone());
        Some(&used(&mut self.by_course, &key, self.idle, Instant::now())?.roles)
    }

    /// A user's courses, each checked against its course (which may have expired apart
    /// from the index, or changed): the repair path of the Redis engine.
    fn user(&mut self, t: &TenantId, u: &UserId) -> Vec<(CourseId, CourseRole)> {
        let key = (t.clone(), u.clone());
        let Some(index) = used(&mut self.by_user, &key, self.idle, Instant::now()) else {
            return vec![];
        };
        let indexed: Vec<CourseId> = index.roles.keys().cloned().collect();
        let checked: Vec<(CourseId, Option<CourseRole>)> = indexed
            .into_iter()
            .map(|c| {
                let actual = self.course(t, &c).and_then(|m| m.get(u).copied());
                (c, actual)
            })
            .collect();
        let Some(index) = self.by_user.get_mut(&key) else {
            return vec![];
        };
        let mut out = vec![];
        for (c, actual) in checked {
            match actual {
                Some(r) => {
                    index.roles.insert(c.clone(), r);
                    out.push((c, r));
                }
                None => {
                    index.roles.remove(&c);
                }
            }
        }
        if index.roles.is_empty() {
            self.by_user.remove(&key);
        }
        out
    }

    /// Activity of the user on the inbox side keeps their course index (a user's data
    /// expires together, as on Redis).
    fn touch_user(&mut self, t: &TenantId, u: &UserId) {
        used(
            &mut self.by_user,
            &(t.clone(), u.clone()),
            self.idle,
            Instant::now(),
        );
    }

    /// Drops every map unused for the idle TTL (the sweep).
    fn evict_idle(&mut self, now: Instant) {
        let idle = self.idle;
        self.by_course
            .retain(|_, m| now.duration_since(m.used) < idle);
        self.by_user
            .retain(|_, m| now.duration_since(m.used) < idle);
    }
}

/// Everything in memory behind short-lived mutexes; no call awaits while holding one.
pub struct MemoryStore {
    pub(super) limits: StoreLimits,
    inboxes: Mutex<Inboxes>,
    sent: Mutex<SentRecords>,
    members: Mutex<Membership>,
    usage: Mutex<HashMap<TenantId, Usage>>,
}

impl MemoryStore {
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            limits,
            inboxes: Mutex::default(),
            sent: Mutex::default(),
            members: Mutex::new(Membership::new(limits.inbox_idle_ttl())),
            usage: Mutex::default(),
        }
    }

    pub(super) fn inboxes(&self) -> MutexGuard<'_, Inboxes> {
        self.inboxes.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn sent(&self) -> MutexGuard<'_, SentRecords> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn usage(&self) -> MutexGuard<'_, HashMap<TenantId, Usage>> {
        self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn members(&self) -> MutexGuard<'_, Membership> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a user's course index alive with their inbox activity.
    pub(super) fn touch_user_index(&self, t: &TenantId, u: &UserId) {
        self.members().touch_user(t, u);
    }

    /// Drops course memberships and course indexes unused for the idle TTL.
    pub(super) fn evict_idle_memberships(&self, now: Instant) {
        self.members().evict_idle(now);
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
        let previous = self.members().set(t, c, u, role);
        self.touch_inbox(t, u);
        Ok(previous)
    }

    async fn remove_member(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
    ) -> StoreResult<Option<CourseRole>> {
        let previous = self.members().remove(t, c, u);
        self.touch_inbox(t, u);
        Ok(previous)
    }

    async fn replace_members(
        &self,
        t: &TenantId,
        c: &CourseId,
        members: &[Member],
    ) -> StoreResult<MembershipDiff> {
        let mut m = self.members();
        let current = m.course(t, c).cloned().unwrap_or_default();
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
        drop(m);
        for member in diff.upserted.iter().chain(&diff.removed) {
            self.touch_inbox(t, &member.user_id);
        }
        Ok(diff)
    }

    async fn member_role(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
    ) -> StoreResult<Option<CourseRole>> {
        Ok(self
            .members()
            .course(t, c)
            .and_then(|ms| ms.get(u).copied()))
    }

    async fn user_courses(
        &self,
        t: &TenantId,
        u: &UserId,
    ) -> StoreResult<Vec<(CourseId, CourseRole)>> {
        let courses = self.members().user(t, u);
        // A connect is activity of the user.
        self.touch_inbox(t, u);
        Ok(courses)
    }

    async fn course_members(&self, t: &TenantId, c: &CourseId) -> StoreResult<Vec<Member>> {
        Ok(self
            .members()
            .course(t, c)
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
        ..StoreLimits::DEFAULT
    };

    #[tokio::test]
    async fn the_memory_store_passes_the_conformance_suite() {
        conformance::run_all(&MemoryStore::new(SMALL), SMALL).await;
    }

    #[tokio::test]
    async fn the_memory_store_drops_unused_memberships() {
        let s = MemoryStore::new(conformance::lifecycle::SHORT);
        conformance::lifecycle::idle_memberships_expire(&s, async |t, c, u| {
            let m = s.members();
            !m.by_course.contains_key(&(t.clone(), c.clone()))
                && !m.by_user.contains_key(&(t.clone(), u.clone()))
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
