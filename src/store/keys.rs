//! Redis key names: the one place that spells them.
//!
//! The braces in a key are its Redis Cluster hash tag: keys with the same tag share a slot.
//! Tags are per user (`lms:{<tenant>:u:<user>}:…`), per course (`lms:{<tenant>:c:<course>}:…`)
//! and per notification (`lms:{<tenant>:n:<id>}:…`), so one tenant's data spreads over every
//! master of a cluster, while every script of the store still touches one slot. The tenant is
//! in every key name, so isolation holds by construction. Ids are validated newtypes that
//! admit neither `:` nor `{}`, so one tenant's id can never forge another tenant's key or
//! move a key to another slot.
//!
//! Small per-tenant state (the progress log, the connection counters, revocations) keeps the
//! tenant tag `lms:{<tenant>}:`, and cluster-wide bookkeeping (the node registry behind
//! `GET /api/v1/stats`) lives under the fixed tag `lms:{cluster}:`. [`legacy`] spells the
//! layout before per-user tags, for `lms-realtime migrate-keys`.

use crate::ids::{CourseId, NotificationId, TenantId, TokenId, UserId};

/// The prefix shared by the tenant-wide keys of one tenant.
fn tenant(t: &TenantId) -> String {
    format!("lms:{{{t}}}")
}

/// The prefix of one user's keys: hash tag per user, tenant in the name.
fn user(t: &TenantId, u: &UserId) -> String {
    format!("lms:{{{t}:u:{u}}}")
}

/// A user's inbox order: sorted set of notification ids, score = the paging cursor, which is
/// the insert time in µs (made unique per user), so trimming by age is a range of scores.
pub fn inbox(t: &TenantId, u: &UserId) -> String {
    format!("{}:inbox", user(t, u))
}

/// A user's inbox state: hash notification id → `R` | `D<dismissed at, ms>` for the entries
/// read or dismissed, plus `:dmin` (oldest dismissal, ms); it exists only once an entry was
/// read or dismissed, so a user's first notification creates one key. An id of the order
/// without a state is unread; the unread count is derived (order size less the states).
/// Field names that start with `:` can never be ids. (The first per-user layout also kept
/// `U` and a stored `:unread` here; the inbox scripts drop them when they meet them.)
pub fn inbox_state(t: &TenantId, u: &UserId) -> String {
    format!("{}:state", user(t, u))
}

/// The courses of a user: hash course id → role. An index of the course hashes, repaired
/// from them when read (see `redis_membership`); expires after `INACTIVE_USER_RETENTION`
/// without a change or a read.
pub fn user_courses(t: &TenantId, u: &UserId) -> String {
    format!("{}:courses", user(t, u))
}

/// The members of a course: hash user id → role. The authority on membership; expires
/// after `INACTIVE_USER_RETENTION` without a change or a read (fan-out, role check).
pub fn course_members(t: &TenantId, c: &CourseId) -> String {
    format!("lms:{{{t}:c:{c}}}:members")
}

/// A notification's body, stored once for every recipient: JSON without the fields the
/// keys already say (tenant, user, status, id).
pub fn body(t: &TenantId, id: &NotificationId) -> String {
    format!("lms:{{{t}:n:{id}}}:body")
}

/// The idempotency record of a notification id: set of the users it was delivered to, plus
/// the member `:open`; expires after `IDEMPOTENCY_WINDOW`.
pub fn sent(t: &TenantId, id: &NotificationId) -> String {
    format!("lms:{{{t}:n:{id}}}:sent")
}

/// What `SCAN` matches to find every user inbox (the retention sweep).
pub const INBOX_PATTERN: &str = "lms:{*:u:*}:inbox";

/// What `SCAN` matches to find every notification body (the usage measure).
pub const BODY_PATTERN: &str = "lms:{*:n:*}:body";

/// A tenant's storage estimate: hash `bytes`, `entries` (see `usage`).
pub fn tenant_usage(t: &TenantId) -> String {
    format!("{}:usage", tenant(t))
}

/// What `SCAN` matches to find every tenant's storage estimate.
pub const TENANT_USAGE_PATTERN: &str = "lms:{*}:usage";

/// The tenant a key of this module belongs to: what its hash tag holds before the first
/// `:` (ids admit no `:`, so a tenant id ends there).
pub fn tenant_of(key: &str) -> Option<TenantId> {
    let tag = key.strip_prefix("lms:{")?;
    let end = tag.find([':', '}'])?;
    TenantId::parse(&tag[..end]).ok()
}

/// What `SCAN` matches to find every membership key: course hashes and user indexes.
pub const MEMBERSHIP_PATTERNS: [&str; 2] = ["lms:{*:c:*}:members", "lms:{*:u:*}:courses"];

/// The tenant's export queue (§12, `export::redis`): a stream capped by count and by age,
/// entries `n` (ordinal) and `e` (event JSON). It replaces the progress log
/// (`lms:{<tenant>}:progress`, which nothing writes any more and which expires by itself).
/// Every export key of a tenant shares the tenant tag, so each script touches one slot.
pub fn export_queue(t: &TenantId) -> String {
    format!("{}:export", tenant(t))
}

/// The ordinal of the last event appended to the export queue (counts what is pending).
pub fn export_count(t: &TenantId) -> String {
    format!("{}:export:n", tenant(t))
}

/// The tenant's webhook: hash `url`, `secret`, `events` (JSON list), `cursor` (stream id
/// delivered up to) and `n` (its ordinal).
pub fn webhook(t: &TenantId) -> String {
    format!("{}:webhook", tenant(t))
}

/// Which node delivers the tenant's webhook now: its holder id, with a TTL.
pub fn webhook_lease(t: &TenantId) -> String {
    format!("{}:webhook:lease", tenant(t))
}

/// Events delivery gave up on: a list of event JSON, oldest first, capped.
pub fn webhook_dead_letters(t: &TenantId) -> String {
    format!("{}:webhook:dead", tenant(t))
}

/// The tenants that have a webhook (a set), which every node's delivery walks.
pub const WEBHOOK_TENANTS: &str = "lms:{cluster}:webhooks";

/// A user's revocation: the `before` (seconds) at or before which their tokens are refused.
pub fn revoked_user(t: &TenantId, u: &UserId) -> String {
    format!("{}:user:{u}:revoked", tenant(t))
}

/// A revoked token, by the digest of its `jti`.
pub fn revoked_token(t: &TenantId, jti: &TokenId) -> String {
    format!("{}:revoked:jti:{}", tenant(t), jti.digest())
}

/// Where a tenant-less (platform) user's keys live.
const PLATFORM: &str = "lms:{platform}";

/// A user's sockets across the cluster: hash instance → count (see `redis_connections`).
pub fn user_connections(t: Option<&TenantId>, u: &UserId) -> String {
    match t {
        Some(t) => format!("{}:user:{u}:conns", tenant(t)),
        None => format!("{PLATFORM}:user:{u}:conns"),
    }
}

/// A tenant's sockets across the cluster: hash instance → count.
pub fn tenant_connections(t: Option<&TenantId>) -> String {
    match t {
        Some(t) => format!("{}:conns", tenant(t)),
        None => format!("{PLATFORM}:conns"),
    }
}

/// A tenant's token bucket for `purpose` (`api`, `recipients`), shared by every node: the
/// bucket's "theoretical arrival time" in µs (see `redis_buckets`); it expires once full.
pub fn quota_bucket(t: Option<&TenantId>, purpose: &str) -> String {
    match t {
        Some(t) => format!("{}:quota:{purpose}", tenant(t)),
        None => format!("{PLATFORM}:quota:{purpose}"),
    }
}

/// The live node processes: sorted set instance → heartbeat expiry (ms since epoch).
pub fn instance_registry() -> &'static str {
    "lms:{cluster}:instances"
}

/// The live nodes of the cluster: sorted set node id → heartbeat expiry (ms since epoch).
pub fn node_registry() -> &'static str {
    "lms:{cluster}:nodes"
}

/// One node's latest stats (JSON), expiring with its heartbeat.
pub fn node_stats(node: &str) -> String {
    format!("lms:{{cluster}}:node:{node}")
}

/// The layout before per-user hash tags: every key of a tenant under `lms:{<tenant>}:`.
pub mod legacy {
    /// Matches every old inbox order key; the tenant and user are parsed back with
    /// [`parse_user_key`].
    pub const INBOX_PATTERN: &str = "lms:{*}:user:*:inbox";
    /// Matches every old course membership key.
    pub const COURSE_PATTERN: &str = "lms:{*}:course:*:members";

    /// The old key of `part` (`inbox`, `entries`, `status`, `unread`, `seq`, `courses`) of
    /// a user.
    pub fn user_key(tenant: &str, user: &str, part: &str) -> String {
        format!("lms:{{{tenant}}}:user:{user}:{part}")
    }

    /// (tenant, user) of an old `lms:{t}:user:<u>:<part>` key.
    pub fn parse_user_key(key: &str) -> Option<(&str, &str)> {
        let rest = key.strip_prefix("lms:{")?;
        let (tenant, rest) = rest.split_once("}:user:")?;
        let (user, _) = rest.rsplit_once(':')?;
        Some((tenant, user))
    }

    /// (tenant, course) of an old `lms:{t}:course:<c>:members` key.
    pub fn parse_course_key(key: &str) -> Option<(&str, &str)> {
        let rest = key.strip_prefix("lms:{")?;
        let (tenant, rest) = rest.split_once("}:course:")?;
        let course = rest.strip_suffix(":members")?;
        Some((tenant, course))
    }
}

/// The part of a key Redis Cluster hashes: the first `{...}` (for the tests of every key
/// module).
#[cfg(test)]
pub(crate) fn hash_tag(key: &str) -> &str {
    let open = key.find('{').unwrap();
    let close = key[open..].find('}').unwrap() + open;
    &key[open + 1..close]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    #[test]
    fn every_key_names_its_tenant_and_is_tagged_by_user_course_or_notification() {
        let (u, c) = (UserId::parse("u1").unwrap(), CourseId::parse("c1").unwrap());
        let n = NotificationId::parse("n1").unwrap();
        let a = t("acme");
        let tagged = [
            (inbox(&a, &u), "acme:u:u1"),
            (inbox_state(&a, &u), "acme:u:u1"),
            (user_courses(&a, &u), "acme:u:u1"),
            (course_members(&a, &c), "acme:c:c1"),
            (body(&a, &n), "acme:n:n1"),
            (sent(&a, &n), "acme:n:n1"),
            (export_queue(&a), "acme"),
            (export_count(&a), "acme"),
            (webhook(&a), "acme"),
            (webhook_lease(&a), "acme"),
            (webhook_dead_letters(&a), "acme"),
            (user_connections(Some(&a), &u), "acme"),
            (tenant_connections(Some(&a)), "acme"),
            (revoked_user(&a, &u), "acme"),
            (revoked_token(&a, &TokenId::parse("j{x}").unwrap()), "acme"),
            (quota_bucket(Some(&a), "api"), "acme"),
            (quota_bucket(Some(&a), "recipients"), "acme"),
        ];
        for (key, tag) in &tagged {
            assert!(key.starts_with("lms:{acme"), "{key}");
            assert_eq!(hash_tag(key), *tag);
        }
        assert_eq!(inbox(&a, &u), "lms:{acme:u:u1}:inbox");
        assert_ne!(inbox(&a, &u), inbox(&t("other"), &u));
        let unique: std::collections::HashSet<_> = tagged.iter().map(|(k, _)| k).collect();
        assert_eq!(unique.len(), tagged.len());
    }

    #[test]
    fn every_tenant_key_names_its_tenant_back() {
        let (u, c) = (UserId::parse("u1").unwrap(), CourseId::parse("c1").unwrap());
        let n = NotificationId::parse("n1").unwrap();
        let a = t("acme");
        for key in [
            inbox(&a, &u),
            course_members(&a, &c),
            body(&a, &n),
            tenant_usage(&a),
            quota_bucket(Some(&a), "api"),
        ] {
            assert_eq!(tenant_of(&key), Some(a.clone()), "{key}");
        }
        assert_eq!(tenant_of(node_registry()), TenantId::parse("cluster").ok());
        assert_eq!(tenant_of("other:{acme}:x"), None);
    }

    #[test]
    fn old_keys_parse_back_to_their_tenant_and_ids() {
        let key = legacy::user_key("acme", "u-1", "inbox");
        assert_eq!(key, "lms:{acme}:user:u-1:inbox");
        assert_eq!(legacy::parse_user_key(&key), Some(("acme", "u-1")));
        assert_eq!(
            legacy::parse_course_key("lms:{acme}:course:c.1:members"),
            Some(("acme", "c.1"))
        );
        assert_eq!(legacy::parse_user_key("lms:{acme:u:u1}:inbox"), None);
    }

    #[test]
    fn the_node_registry_keys_share_one_slot() {
        assert_eq!(hash_tag(node_registry()), "cluster");
        assert_eq!(hash_tag(&node_stats("node-1")), "cluster");
    }
}
