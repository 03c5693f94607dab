//! The cluster engine: the store on Redis (standalone or Redis Cluster) through fred.
//!
//! Several nodes write the same inboxes at once, so every read-modify-write of an inbox is
//! one Lua script: Redis runs a script atomically, which keeps the unread count exact under
//! any interleaving of inserts, reads and dismissals from any number of nodes. Key names come
//! from [`super::keys`]; all keys of one call share the tenant's hash tag, so each script
//! touches one slot and runs unchanged on a Redis Cluster. The scripts live in `lua/`, each
//! with a header naming its keys and arguments.
//!
//! Data model, per user: a sorted set of ids scored by a per-user sequence (INCR; the
//! paging cursor), a hash id → notification JSON, a hash id → status, and a set of the
//! unread ids (the count is its cardinality). Membership is two hashes (course → members,
//! user → courses); the progress log is a stream capped with `XADD MAXLEN =`.
//!
//! Failures: every Redis error or timeout becomes [`StoreError::Unavailable`]. The client
//! never retries a command on its own (see `cluster::client_config`), and a command that
//! timed out is dropped by fred before it is written, so a call reported as failed is not
//! replayed later; a write that did reach Redis before the connection broke may still be
//! reported as failed, which is the safe direction (inserts are idempotent on the id).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::Client;
use fred::interfaces::{
    ClientLike, HashesInterface, KeysInterface, LuaInterface, SetsInterface, StreamsInterface,
};
use fred::types::Value;
use fred::types::config::Options;

use super::keys;
use super::*;

/// How long `ping` (readiness) waits; it also fails at once while the client is
/// disconnected, so `/readyz` answers 503 quickly when Redis is down.
pub const PING_TIMEOUT: Duration = Duration::from_millis(1_000);

/// How often `replace_members` retries when the membership changed under it.
const REPLACE_ATTEMPTS: usize = 8;

const INSERT: &str = include_str!("lua/insert.lua");

const SET_STATUS: &str = include_str!("lua/set_status.lua");

const READ_ALL: &str = include_str!("lua/read_all.lua");

const LIST: &str = include_str!("lua/list.lua");

const SET_MEMBER: &str = include_str!("lua/set_member.lua");

const REMOVE_MEMBER: &str = include_str!("lua/remove_member.lua");

const REPLACE_MEMBERS: &str = include_str!("lua/replace_members.lua");

/// The store on Redis. Cheap to clone (the fred client is a handle).
#[derive(Clone)]
pub struct RedisStore {
    client: Client,
    limits: StoreLimits,
}

impl RedisStore {
    /// Wraps a connected client. Configure it with `cluster::client_config` (RESP3, a
    /// command timeout, no silent retries) so that no call can hang or be replayed.
    pub fn new(client: Client, limits: StoreLimits) -> Self {
        Self { client, limits }
    }

    async fn eval(
        &self,
        script: &'static str,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> StoreResult<Value> {
        self.client
            .eval(script, keys, args)
            .await
            .map_err(unavailable)
    }
}

/// Every Redis error or timeout is `Unavailable`: nothing was (known to be) written.
pub(super) fn unavailable(e: fred::error::Error) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

fn malformed(what: &str) -> StoreError {
    StoreError::Unavailable(format!("redis: unexpected reply to {what}"))
}

fn int(v: &Value) -> Option<i64> {
    v.as_i64()
}

fn string(v: &Value) -> Option<String> {
    v.as_string()
}

/// A `{flag, unread}` reply of the inbox scripts.
fn pair(v: Value, what: &str) -> StoreResult<(i64, u64)> {
    match v.into_array().as_slice() {
        [a, b] => match (int(a), int(b)) {
            (Some(a), Some(b)) => Ok((a, b.max(0) as u64)),
            _ => Err(malformed(what)),
        },
        _ => Err(malformed(what)),
    }
}

fn status_str(s: NotificationStatus) -> &'static str {
    match s {
        NotificationStatus::Unread => "UNREAD",
        NotificationStatus::Read => "READ",
        NotificationStatus::Dismissed => "DISMISSED",
    }
}

fn parse_status(s: &str) -> Option<NotificationStatus> {
    match s {
        "UNREAD" => Some(NotificationStatus::Unread),
        "READ" => Some(NotificationStatus::Read),
        "DISMISSED" => Some(NotificationStatus::Dismissed),
        _ => None,
    }
}

fn role(v: &Value, what: &str) -> StoreResult<Option<CourseRole>> {
    if v.is_null() {
        return Ok(None);
    }
    string(v)
        .and_then(|s| CourseRole::parse(&s))
        .map(Some)
        .ok_or_else(|| malformed(what))
}

fn roles<K: std::str::FromStr>(
    map: HashMap<String, String>,
    what: &str,
) -> StoreResult<Vec<(K, CourseRole)>> {
    map.into_iter()
        .map(|(k, r)| {
            let key = k.parse::<K>().map_err(|_| malformed(what))?;
            let role = CourseRole::parse(&r).ok_or_else(|| malformed(what))?;
            Ok((key, role))
        })
        .collect()
}

#[async_trait]
impl Store for RedisStore {
    async fn insert_notification(&self, n: &Notification) -> StoreResult<InsertOutcome> {
        let user = n
            .user_id
            .as_ref()
            .ok_or_else(|| StoreError::NotFound("an inbox entry needs a recipient".into()))?;
        let t = &n.tenant_id;
        let json = serde_json::to_string(n).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let reply = self
            .eval(
                INSERT,
                vec![
                    keys::inbox(t, user),
                    keys::entries(t, user),
                    keys::statuses(t, user),
                    keys::unread(t, user),
                    keys::inbox_seq(t, user),
                ],
                vec![
                    n.id.to_string(),
                    json,
                    status_str(n.status).into(),
                    self.limits.inbox_cap.max(1).to_string(),
                ],
            )
            .await?;
        Ok(match pair(reply, "insert")? {
            (1, unread) => InsertOutcome::Inserted { unread },
            (_, unread) => InsertOutcome::Duplicate { unread },
        })
    }

    async fn mark_read(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
    ) -> StoreResult<StatusChange> {
        self.set_status(t, u, id, NotificationStatus::Read).await
    }

    async fn mark_all_read(&self, t: &TenantId, u: &UserId) -> StoreResult<u64> {
        let reply = self
            .eval(
                READ_ALL,
                vec![keys::statuses(t, u), keys::unread(t, u)],
                vec![],
            )
            .await?;
        int(&reply)
            .map(|n| n.max(0) as u64)
            .ok_or_else(|| malformed("read_all"))
    }

    async fn dismiss(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
    ) -> StoreResult<StatusChange> {
        self.set_status(t, u, id, NotificationStatus::Dismissed)
            .await
    }

    async fn unread_count(&self, t: &TenantId, u: &UserId) -> StoreResult<u64> {
        self.client
            .scard::<u64, _>(keys::unread(t, u))
            .await
            .map_err(unavailable)
    }

    async fn list(&self, t: &TenantId, u: &UserId, q: &ListQuery) -> StoreResult<Page> {
        let max = match q.before {
            Some(b) => format!("({b}"),
            None => "+inf".into(),
        };
        let reply = self
            .eval(
                LIST,
                vec![keys::inbox(t, u), keys::entries(t, u), keys::statuses(t, u)],
                vec![
                    max,
                    q.limit.to_string(),
                    q.status.map(status_str).unwrap_or("").into(),
                ],
            )
            .await?
            .into_array();
        let mut it = reply.into_iter();
        let more = it
            .next()
            .as_ref()
            .and_then(int)
            .ok_or_else(|| malformed("list"))?
            == 1;
        let rest: Vec<Value> = it.collect();
        let mut items = Vec::with_capacity(rest.len() / 3);
        let mut last_seq = None;
        for chunk in rest.chunks(3) {
            let [seq, json, status] = chunk else {
                return Err(malformed("list"));
            };
            let seq = string(seq)
                .and_then(|s| s.parse::<f64>().ok())
                .ok_or_else(|| malformed("list"))? as u64;
            let json = string(json).ok_or_else(|| malformed("list"))?;
            let mut n: Notification = serde_json::from_str(&json).map_err(|_| malformed("list"))?;
            n.status = string(status)
                .as_deref()
                .and_then(parse_status)
                .ok_or_else(|| malformed("list"))?;
            items.push(n);
            last_seq = Some(seq);
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
        r: CourseRole,
    ) -> StoreResult<Option<CourseRole>> {
        let reply = self
            .eval(
                SET_MEMBER,
                vec![keys::course_members(t, c), keys::user_courses(t, u)],
                vec![u.to_string(), c.to_string(), r.as_str().into()],
            )
            .await?;
        role(&reply, "set_member")
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
                vec![keys::course_members(t, c), keys::user_courses(t, u)],
                vec![u.to_string(), c.to_string()],
            )
            .await?;
        role(&reply, "remove_member")
    }

    async fn replace_members(
        &self,
        t: &TenantId,
        c: &CourseId,
        members: &[Member],
    ) -> StoreResult<MembershipDiff> {
        for _ in 0..REPLACE_ATTEMPTS {
            let current: HashMap<String, String> = self
                .client
                .hgetall(keys::course_members(t, c))
                .await
                .map_err(unavailable)?;
            let mut users: Vec<(String, &str)> = members
                .iter()
                .map(|m| (m.user_id.to_string(), m.role.as_str()))
                .collect();
            for u in current.keys() {
                if !members.iter().any(|m| m.user_id.as_str() == u) {
                    users.push((u.clone(), ""));
                }
            }
            let mut keys_ = vec![keys::course_members(t, c)];
            let mut args = vec![c.to_string(), users.len().to_string()];
            for (u, r) in &users {
                let user = UserId::parse(u.as_str()).map_err(|_| malformed("replace_members"))?;
                keys_.push(keys::user_courses(t, &user));
                args.push(u.clone());
                args.push((*r).to_owned());
            }
            let reply = self.eval(REPLACE_MEMBERS, keys_, args).await?.into_array();
            let mut it = reply.into_iter();
            match it.next().as_ref().and_then(string).as_deref() {
                Some("retry") => continue,
                Some("ok") => {}
                _ => return Err(malformed("replace_members")),
            }
            let rest: Vec<Value> = it.collect();
            let mut diff = MembershipDiff::default();
            for chunk in rest.chunks(3) {
                let [op, user, r] = chunk else {
                    return Err(malformed("replace_members"));
                };
                let member = Member {
                    user_id: string(user)
                        .and_then(|u| UserId::parse(u).ok())
                        .ok_or_else(|| malformed("replace_members"))?,
                    role: role(r, "replace_members")?
                        .ok_or_else(|| malformed("replace_members"))?,
                };
                match string(op).as_deref() {
                    Some("+") => diff.upserted.push(member),
                    Some("-") => diff.removed.push(member),
                    _ => return Err(malformed("replace_members")),
                }
            }
            return Ok(diff);
        }
        Err(StoreError::Unavailable(
            "course membership kept changing during replacement; retry".into(),
        ))
    }

    async fn member_role(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
    ) -> StoreResult<Option<CourseRole>> {
        let v: Value = self
            .client
            .hget(keys::course_members(t, c), u.as_str())
            .await
            .map_err(unavailable)?;
        role(&v, "member_role")
    }

    async fn user_courses(
        &self,
        t: &TenantId,
        u: &UserId,
    ) -> StoreResult<Vec<(CourseId, CourseRole)>> {
        let map: HashMap<String, String> = self
            .client
            .hgetall(keys::user_courses(t, u))
            .await
            .map_err(unavailable)?;
        roles(map, "user_courses")
    }

    async fn course_members(&self, t: &TenantId, c: &CourseId) -> StoreResult<Vec<Member>> {
        let map: HashMap<String, String> = self
            .client
            .hgetall(keys::course_members(t, c))
            .await
            .map_err(unavailable)?;
        Ok(roles::<UserId>(map, "course_members")?
            .into_iter()
            .map(|(user_id, role)| Member { user_id, role })
            .collect())
    }

    async fn course_exists(&self, t: &TenantId, c: &CourseId) -> StoreResult<bool> {
        let n: u64 = self
            .client
            .exists(keys::course_members(t, c))
            .await
            .map_err(unavailable)?;
        Ok(n > 0)
    }

    async fn append_progress(&self, t: &TenantId, r: &ProgressRecord) -> StoreResult<()> {
        let json = serde_json::json!({
            "user": r.user,
            "course": r.course,
            "kind": r.kind,
            "payload": r.payload,
            "at": r.at,
        })
        .to_string();
        let cap = self.limits.progress_log_cap.max(1) as i64;
        let _: Value = self
            .client
            .xadd(
                keys::progress(t),
                false,
                ("MAXLEN", "=", cap, None),
                "*",
                vec![("r", json)],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn recent_progress(
        &self,
        t: &TenantId,
        limit: usize,
    ) -> StoreResult<Vec<ProgressRecord>> {
        if limit == 0 {
            return Ok(vec![]);
        }
        let entries: Vec<(String, HashMap<String, String>)> = self
            .client
            .xrevrange(keys::progress(t), "+", "-", Some(limit as u64))
            .await
            .map_err(unavailable)?;
        entries
            .into_iter()
            .map(|(_, fields)| {
                let raw = fields
                    .get("r")
                    .ok_or_else(|| malformed("recent_progress"))?;
                let v: serde_json::Value =
                    serde_json::from_str(raw).map_err(|_| malformed("recent_progress"))?;
                let field = |name: &str| v.get(name).and_then(|x| x.as_str()).map(str::to_owned);
                Ok(ProgressRecord {
                    user: field("user")
                        .and_then(|u| UserId::parse(u).ok())
                        .ok_or_else(|| malformed("recent_progress"))?,
                    course: field("course")
                        .and_then(|c| CourseId::parse(c).ok())
                        .ok_or_else(|| malformed("recent_progress"))?,
                    kind: if field("kind").as_deref() == Some("video") {
                        "video"
                    } else {
                        "content"
                    },
                    payload: v.get("payload").cloned().unwrap_or_default(),
                    at: field("at").unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn ping(&self) -> StoreResult<()> {
        let opts = Options {
            fail_fast: true,
            timeout: Some(PING_TIMEOUT),
            max_attempts: Some(1),
            ..Default::default()
        };
        self.client
            .with_options(&opts)
            .ping::<()>(None)
            .await
            .map_err(unavailable)
    }
}

impl RedisStore {
    async fn set_status(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
        to: NotificationStatus,
    ) -> StoreResult<StatusChange> {
        let reply = self
            .eval(
                SET_STATUS,
                vec![keys::statuses(t, u), keys::unread(t, u)],
                vec![id.to_string(), status_str(to).into()],
            )
            .await?;
        match pair(reply, "set_status")? {
            (-1, _) => Err(StoreError::NotFound(format!("notification {id}"))),
            (changed, unread) => Ok(StatusChange {
                changed: changed == 1,
                unread,
            }),
        }
    }
}
