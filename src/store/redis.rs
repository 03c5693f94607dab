//! The cluster engine: the store on Redis (standalone or Redis Cluster) through fred.
//!
//! Several nodes write the same inboxes at once, so every read-modify-write of an inbox is
//! one Lua script: Redis runs a script atomically, which keeps the unread count exact under
//! any interleaving of inserts, reads and dismissals from any number of nodes. Key names come
//! from [`super::keys`]; all keys of one script share one hash tag (a user, a course, a
//! notification), so each script touches one slot and runs unchanged on a Redis Cluster. The scripts live in `lua/`, each
//! with a header naming its keys and arguments.
//!
//! Data model ([`super::keys`] spells every key): a notification's body is stored once per
//! tenant and id, next to its idempotency record; each recipient's inbox holds references
//! (a sorted set of ids scored by insert time, a hash of statuses with the unread count),
//! see [`super::redis_inbox`]. Membership is a hash per course (the authority) and an index
//! per user ([`super::redis_membership`]). (The progress log that was here is now the
//! export queue, `export::redis`.)
//!
//! Failures: every Redis error or timeout becomes [`StoreError::Unavailable`]. The client
//! never retries a command on its own (see `cluster::client_config`), and a command that
//! timed out is dropped by fred before it is written, so a call reported as failed is not
//! replayed later; a write that did reach Redis before the connection broke may still be
//! reported as failed, which is the safe direction (inserts are idempotent on the id).

use crate::cluster::lua::EvalCached;
use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::types::Value;
use fred::types::config::Options;

use super::*;

/// How long `ping` (readiness) waits; it also fails at once while the client is
/// disconnected, so `/readyz` answers 503 quickly when Redis is down.
pub const PING_TIMEOUT: Duration = Duration::from_millis(1_000);

/// The store on Redis. Cheap to clone (the fred client is a handle).
#[derive(Clone)]
pub struct RedisStore {
    pub(super) client: Client,
    pub(super) limits: StoreLimits,
}

impl RedisStore {
    /// Wraps a connected client. Configure it with `cluster::client_config` (RESP3, a
    /// command timeout, no silent retries) so that no call can hang or be replayed.
    pub fn new(client: Client, limits: StoreLimits) -> Self {
        Self { client, limits }
    }

    pub(super) async fn eval(
        &self,
        script: &'static str,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> StoreResult<Value> {
        self.client
            .eval_cached(script, keys, args)
            .await
            .map_err(unavailable)
    }
}

/// Every Redis error or timeout is `Unavailable`: nothing was (known to be) written.
pub(super) fn unavailable(e: fred::error::Error) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

pub(super) fn malformed(what: &str) -> StoreError {
    StoreError::Unavailable(format!("redis: unexpected reply to {what}"))
}

pub(super) fn int(v: &Value) -> Option<i64> {
    v.as_i64()
}

pub(super) fn string(v: &Value) -> Option<String> {
    v.as_string()
}

pub(super) fn role(v: &Value, what: &str) -> StoreResult<Option<CourseRole>> {
    if v.is_null() {
        return Ok(None);
    }
    string(v)
        .and_then(|s| CourseRole::parse(&s))
        .map(Some)
        .ok_or_else(|| malformed(what))
}

pub(super) fn roles<K: std::str::FromStr>(
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

/// Now, in ms since the epoch, as the scripts take it.
pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A duration in ms, at least 1 (`PEXPIRE 0` would delete).
pub(super) fn ms(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

#[async_trait]
impl Health for RedisStore {
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
