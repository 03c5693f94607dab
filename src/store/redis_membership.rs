//! Course membership on Redis: two single-slot steps with a repair path.
//!
//! The course hash (on the course's slot) is the authority: fan-out, role checks and
//! replacements read and change it in one script. Each user's course index (on the user's
//! slot) is written second. If that second step fails, the call answers `UNAVAILABLE` and
//! the caller's retry (every call is idempotent) finishes it; an index entry that disagrees
//! with its course is repaired when the index is read ([`MembershipStore::user_courses`]).
//!
//! Both keys expire after `INACTIVE_USER_RETENTION` without use: every change and every read
//! (a fan-out, a role check, a connect) sets the key's idle TTL again in the same script. A
//! user's index shares its TTL with the user's inbox keys (set together by the scripts of
//! either), so all of a user's keys expire together.

use std::collections::HashMap;

use async_trait::async_trait;
use fred::types::Value;
use futures::future::join_all;

use super::redis::{RedisStore, malformed, ms, role, roles, string};
use super::*;

const SET_MEMBER: &str = include_str!("lua/set_member.lua");
const REMOVE_MEMBER: &str = include_str!("lua/remove_member.lua");
const REPLACE_MEMBERS: &str = include_str!("lua/replace_members.lua");
const INDEX_COURSE: &str = include_str!("lua/index_course.lua");
const READ_MEMBERSHIP: &str = include_str!("lua/read_membership.lua");

/// A user's course index, then the user's other keys: changing or reading the index is
/// activity of the user, and all of a user's keys get their idle TTL together.
fn user_index_first(t: &TenantId, u: &UserId) -> Vec<String> {
    let mut all = RedisStore::user_keys(t, u);
    all.rotate_right(1);
    all
}

impl RedisStore {
    /// The idle TTL of membership keys: a course or an index nobody used (changed, fanned
    /// out to, checked, read at connect) for `INACTIVE_USER_RETENTION` expires.
    fn membership_ttl(&self) -> String {
        ms(self.limits.inbox_idle_ttl()).to_string()
    }

    /// The second step: the user's index says `role` for the course (or nothing).
    async fn index(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
        role: Option<CourseRole>,
    ) -> StoreResult<()> {
        let role = role.map_or("", |r| r.as_str());
        self.eval(
            INDEX_COURSE,
            user_index_first(t, u),
            vec![c.to_string(), role.into(), self.membership_ttl()],
        )
        .await?;
        Ok(())
    }

    /// One field (`Some`) or the whole of a membership hash (`keys[0]`), which the read
    /// keeps alive together with the rest of `keys`.
    async fn read_membership(&self, keys: Vec<String>, field: Option<&str>) -> StoreResult<Value> {
        let args = vec![self.membership_ttl(), field.unwrap_or("").to_owned()];
        self.eval(READ_MEMBERSHIP, keys, args).await
    }

    /// A whole membership hash, as field → value.
    async fn read_all_membership(
        &self,
        keys: Vec<String>,
        what: &str,
    ) -> StoreResult<HashMap<String, String>> {
        let flat = self.read_membership(keys, None).await?.into_array();
        flat.chunks(2)
            .map(|kv| match kv {
                [k, v] => Ok((
                    string(k).ok_or_else(|| malformed(what))?,
                    string(v).ok_or_else(|| malformed(what))?,
                )),
                _ => Err(malformed(what)),
            })
            .collect()
    }
}

#[async_trait]
impl MembershipStore for RedisStore {
    async fn set_member(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
        r: CourseRole,
    ) -> StoreResult<Option<CourseRole>> {
        let reply = self
            .eval(
                SET_MEMBER,
                vec![keys::course_members(t, c)],
                vec![u.to_string(), r.as_str().into(), self.membership_ttl()],
            )
            .await?;
        let previous = role(&reply, "set_member")?;
        self.index(t, c, u, Some(r)).await?;
        Ok(previous)
    }

    async fn remove_member(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
    ) -> StoreResult<Option<CourseRole>> {
        let reply = self
            .eval(
                REMOVE_MEMBER,
                vec![keys::course_members(t, c)],
                vec![u.to_string(), self.membership_ttl()],
            )
            .await?;
        let previous = role(&reply, "remove_member")?;
        self.index(t, c, u, None).await?;
        Ok(previous)
    }

    async fn replace_members(
        &self,
        t: &TenantId,
        c: &CourseId,
        members: &[Member],
    ) -> StoreResult<MembershipDiff> {
        let args = std::iter::once(self.membership_ttl())
            .chain(
                members
                    .iter()
                    .flat_map(|m| [m.user_id.to_string(), m.role.as_str().to_owned()]),
            )
            .collect();
        let reply = self
            .eval(REPLACE_MEMBERS, vec![keys::course_members(t, c)], args)
            .await?
            .into_array();
        let mut diff = MembershipDiff::default();
        for chunk in reply.chunks(3) {
            let [op, user, r] = chunk else {
                return Err(malformed("replace_members"));
            };
            let member = Member {
                user_id: string(user)
                    .and_then(|u| UserId::parse(u).ok())
                    .ok_or_else(|| malformed("replace_members"))?,
                role: role(r, "replace_members")?.ok_or_else(|| malformed("replace_members"))?,
            };
            match string(op).as_deref() {
                Some("+") => diff.upserted.push(member),
                Some("-") => diff.removed.push(member),
                _ => return Err(malformed("replace_members")),
            }
        }
        let upserts = diff
            .upserted
            .iter()
            .map(|m| self.index(t, c, &m.user_id, Some(m.role)));
        let removals = diff
            .removed
            .iter()
            .map(|m| self.index(t, c, &m.user_id, None));
        let (a, b) = futures::join!(join_all(upserts), join_all(removals));
        a.into_iter().chain(b).collect::<StoreResult<Vec<()>>>()?;
        Ok(diff)
    }

    async fn member_role(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
    ) -> StoreResult<Option<CourseRole>> {
        let v = self
            .read_membership(vec![keys::course_members(t, c)], Some(u.as_str()))
            .await?;
        role(&v, "member_role")
    }

    /// The user's index, each entry checked against its course (the repair path): an entry
    /// the course no longer has is dropped, a role the course changed is corrected.
    async fn user_courses(
        &self,
        t: &TenantId,
        u: &UserId,
    ) -> StoreResult<Vec<(CourseId, CourseRole)>> {
        let map = self
            .read_all_membership(user_index_first(t, u), "user_courses")
            .await?;
        let indexed = roles::<CourseId>(map, "user_courses")?;
        let checks = indexed.into_iter().map(|(c, indexed_role)| async move {
            let actual = self.member_role(t, &c, u).await?;
            if actual != Some(indexed_role) {
                tracing::info!(tenant = %t, course = %c, "repairing a user's course index");
                self.index(t, &c, u, actual).await?;
            }
            Ok::<_, StoreError>(actual.map(|r| (c, r)))
        });
        let checked = join_all(checks)
            .await
            .into_iter()
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(checked.into_iter().flatten().collect())
    }

    async fn course_members(&self, t: &TenantId, c: &CourseId) -> StoreResult<Vec<Member>> {
        let map = self
            .read_all_membership(vec![keys::course_members(t, c)], "course_members")
            .await?;
        Ok(roles::<UserId>(map, "course_members")?
            .into_iter()
            .map(|(user_id, role)| Member { user_id, role })
            .collect())
    }
}
