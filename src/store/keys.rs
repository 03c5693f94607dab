//! Redis key names: the one place that spells them.
//!
//! Every tenant key starts with `lms:{<tenant>}:`. The braces are a Redis Cluster hash
//! tag: all of a tenant's keys hash to one slot, so a cluster shards by tenant and every
//! multi-key script of the store touches a single slot. Ids are validated newtypes that
//! admit neither `:` nor `{}`, so one tenant's id can never forge another tenant's key or
//! move a key to another slot.
//!
//! Cluster-wide bookkeeping (the node registry behind `GET /api/v1/stats`) lives under the
//! fixed tag `lms:{cluster}:`.

use crate::ids::{CourseId, TenantId, TokenId, UserId};

/// The prefix shared by every key of one tenant.
fn tenant(t: &TenantId) -> String {
    format!("lms:{{{t}}}")
}

/// A user's inbox order: sorted set of notification ids, score = per-user sequence
/// (the paging cursor).
pub fn inbox(t: &TenantId, u: &UserId) -> String {
    format!("{}:user:{u}:inbox", tenant(t))
}

/// A user's inbox entries: hash notification id → the notification as JSON.
pub fn entries(t: &TenantId, u: &UserId) -> String {
    format!("{}:user:{u}:entries", tenant(t))
}

/// A user's entry statuses: hash notification id → `UNREAD` | `READ` | `DISMISSED`.
pub fn statuses(t: &TenantId, u: &UserId) -> String {
    format!("{}:user:{u}:status", tenant(t))
}

/// A user's unread ids: a set, so the unread count is its exact cardinality.
pub fn unread(t: &TenantId, u: &UserId) -> String {
    format!("{}:user:{u}:unread", tenant(t))
}

/// A user's inbox sequence counter (INCR).
pub fn inbox_seq(t: &TenantId, u: &UserId) -> String {
    format!("{}:user:{u}:seq", tenant(t))
}

/// The courses of a user: hash course id → role.
pub fn user_courses(t: &TenantId, u: &UserId) -> String {
    format!("{}:user:{u}:courses", tenant(t))
}

/// The members of a course: hash user id → role.
pub fn course_members(t: &TenantId, c: &CourseId) -> String {
    format!("{}:course:{c}:members", tenant(t))
}

/// The tenant's progress log: a capped stream.
pub fn progress(t: &TenantId) -> String {
    format!("{}:progress", tenant(t))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    /// The part of a key Redis Cluster hashes: the first `{...}`.
    fn hash_tag(key: &str) -> &str {
        let open = key.find('{').unwrap();
        let close = key[open..].find('}').unwrap() + open;
        &key[open + 1..close]
    }

    #[test]
    fn every_key_of_a_tenant_is_hash_tagged_by_that_tenant() {
        let (u, c) = (UserId::parse("u1").unwrap(), CourseId::parse("c1").unwrap());
        let a = t("acme");
        let keys = [
            inbox(&a, &u),
            entries(&a, &u),
            statuses(&a, &u),
            unread(&a, &u),
            inbox_seq(&a, &u),
            user_courses(&a, &u),
            course_members(&a, &c),
            progress(&a),
            user_connections(Some(&a), &u),
            tenant_connections(Some(&a)),
            revoked_user(&a, &u),
            revoked_token(&a, &TokenId::parse("j{x}").unwrap()),
        ];
        for key in &keys {
            assert!(key.starts_with("lms:{acme}:"), "{key}");
            assert_eq!(hash_tag(key), "acme");
        }
        assert_eq!(inbox(&a, &u), "lms:{acme}:user:u1:inbox");
        assert_ne!(inbox(&a, &u), inbox(&t("other"), &u));
        let unique: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len());
    }

    #[test]
    fn the_node_registry_keys_share_one_slot() {
        assert_eq!(hash_tag(node_registry()), "cluster");
        assert_eq!(hash_tag(&node_stats("node-1")), "cluster");
    }
}
