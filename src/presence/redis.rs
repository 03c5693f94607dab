//! Presence in Redis, for a cluster.
//!
//! Every entry belongs to the node process ("instance": node id plus boot id) that wrote
//! it: a scope keeps, per instance, the set of users that instance holds, and per user the
//! number of instances holding it. Each instance refreshes its score in a registry on
//! every [`upkeep`](PresenceStore::upkeep); any node that finds an instance whose score
//! has lapsed purges that instance's share of every scope it wrote to (an index kept per
//! instance), so a crashed node's users stop counting one TTL after its last heartbeat,
//! and their instructors hear `presence:leave`. Scripts in `lua/`; keys in [`keys`].

use crate::cluster::lua::EvalCached;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::Client;
use fred::interfaces::{
    ClientLike, HashesInterface, KeysInterface, SetsInterface, SortedSetsInterface,
};
use fred::types::{ClusterHash, CustomCommand, Value};

use super::keys;
use super::{Change, Departed, PresenceStore, PresentUser, Rules, Scope, Settled, Upkeep, Verdict};
use crate::ids::UserId;
use crate::store::{StoreError, StoreResult};

const DECIDE: &str = include_str!("lua/decide.lua");
static JOIN: LazyLock<String> =
    LazyLock::new(|| format!("{DECIDE}\n{}", include_str!("lua/join.lua")));
static LEAVE: LazyLock<String> =
    LazyLock::new(|| format!("{DECIDE}\n{}", include_str!("lua/leave.lua")));
static SETTLE: LazyLock<String> =
    LazyLock::new(|| format!("{DECIDE}\n{}", include_str!("lua/settle.lua")));
const ROLE: &str = include_str!("lua/role.lua");
static PURGE: LazyLock<String> =
    LazyLock::new(|| format!("{DECIDE}\n{}", include_str!("lua/purge.lua")));

/// `HSCAN` as a command of its own (fred's scan stream turns each page into a map).
static HSCAN: LazyLock<CustomCommand> =
    LazyLock::new(|| CustomCommand::new_static("HSCAN", ClusterHash::FirstKey, false));
/// Fields asked for per `HSCAN` page of a list: about 100 KB of reply.
const LIST_PAGE: &str = "2000";

/// Appends one `HSCAN` page (`field, value, ...`) of a scope's info hash to `users`.
fn parse_page(page: Value, users: &mut Vec<PresentUser>) -> StoreResult<()> {
    let flat = page.into_array();
    users.reserve(flat.len() / 2);
    for pair in flat.chunks_exact(2) {
        let (Some(user), Some(info)) = (pair[0].as_string(), pair[1].as_str()) else {
            return Err(malformed("list"));
        };
        let Ok(user) = UserId::parse(user) else {
            continue;
        };
        let (role, since) = info.split_once('|').ok_or_else(|| malformed("list"))?;
        users.push(PresentUser {
            user,
            role: role.to_owned(),
            since_ms: since.parse().unwrap_or(0),
        });
    }
    Ok(())
}

/// Dead instances purged per upkeep, so that one upkeep stays short.
const PURGES_PER_UPKEEP: i64 = 4;

fn unavailable(e: fred::error::Error) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

fn malformed(what: &str) -> StoreError {
    StoreError::Unavailable(format!("redis: unexpected reply to presence {what}"))
}

fn flag(announces: bool) -> String {
    if announces { "1" } else { "0" }.to_owned()
}

/// `verdict, recheck_at` as the scripts return them.
fn verdict(kind: &Value, at: &Value, what: &str) -> StoreResult<Verdict> {
    match kind.as_string().as_deref() {
        Some("quiet") => Ok(Verdict::Quiet),
        Some("announce") => Ok(Verdict::Announce),
        Some("suppressed") => Ok(Verdict::Suppressed {
            recheck_at_ms: at.as_u64().ok_or_else(|| malformed(what))?,
        }),
        _ => Err(malformed(what)),
    }
}

fn change(reply: Value, what: &str) -> StoreResult<Change> {
    match reply.into_array().as_slice() {
        [flipped, kind, at] => Ok(Change {
            flipped: flipped.as_i64() == Some(1),
            verdict: verdict(kind, at, what)?,
        }),
        _ => Err(malformed(what)),
    }
}

pub struct RedisPresence {
    client: Client,
    instance: String,
    /// How long an instance's entries live after its last upkeep.
    ttl: Duration,
    /// Scopes already in this instance's index (cleared when the index may be gone).
    indexed: Mutex<HashSet<Scope>>,
    registered: AtomicBool,
}

impl RedisPresence {
    pub fn new(client: Client, instance: String, ttl: Duration) -> Self {
        Self {
            client,
            instance,
            ttl,
            indexed: Mutex::default(),
            registered: AtomicBool::new(false),
        }
    }

    /// Records that this instance writes to `scope`, before it does, so that a purge
    /// after a crash finds it.
    async fn index(&self, scope: &Scope) -> StoreResult<()> {
        if self
            .indexed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(scope)
        {
            return Ok(());
        }
        let _: i64 = self
            .client
            .sadd(keys::scopes_of(&self.instance), keys::scope_member(scope))
            .await
            .map_err(unavailable)?;
        self.indexed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(scope.clone());
        Ok(())
    }

    fn scope_keys(&self, scope: &Scope, instance: &str) -> Vec<String> {
        vec![
            keys::holders(scope),
            keys::info(scope),
            keys::held_by(scope, instance),
            keys::announced(scope),
        ]
    }

    /// Purges every scope share of `instance`; returns the users that went away.
    async fn purge(&self, instance: &str, rules: Rules) -> StoreResult<Vec<Departed>> {
        let index = keys::scopes_of(instance);
        let members: Vec<String> = self.client.smembers(&index).await.map_err(unavailable)?;
        let mut departed = Vec::new();
        for scope in members.iter().filter_map(|m| keys::parse_scope_member(m)) {
            let args = vec![
                rules.now_ms.to_string(),
                rules.debounce_ms.to_string(),
                flag(scope.announces()),
            ];
            let reply: Value = self
                .client
                .eval_cached(PURGE.as_str(), self.scope_keys(&scope, instance), args)
                .await
                .map_err(unavailable)?;
            for row in reply.into_array() {
                let [user, role, kind, at] =
                    <[Value; 4]>::try_from(row.into_array()).map_err(|_| malformed("purge"))?;
                let Some(user) = user.as_string().and_then(|u| UserId::parse(u).ok()) else {
                    continue;
                };
                departed.push(Departed {
                    scope: scope.clone(),
                    user,
                    role: role.as_string().unwrap_or_default(),
                    verdict: verdict(&kind, &at, "purge")?,
                });
            }
        }
        let _: i64 = self.client.del(&index).await.map_err(unavailable)?;
        let _: i64 = self
            .client
            .zrem(keys::registry(), instance)
            .await
            .map_err(unavailable)?;
        Ok(departed)
    }
}

#[async_trait]
impl PresenceStore for RedisPresence {
    async fn join(
        &self,
        scope: &Scope,
        user: &UserId,
        role: &str,
        rules: Rules,
    ) -> StoreResult<Change> {
        self.index(scope).await?;
        let args = vec![
            user.to_string(),
            role.to_owned(),
            rules.now_ms.to_string(),
            rules.debounce_ms.to_string(),
            flag(scope.announces()),
        ];
        let reply: Value = self
            .client
            .eval_cached(JOIN.as_str(), self.scope_keys(scope, &self.instance), args)
            .await
            .map_err(unavailable)?;
        change(reply, "join")
    }

    async fn leave(&self, scope: &Scope, user: &UserId, rules: Rules) -> StoreResult<Change> {
        let args = vec![
            user.to_string(),
            rules.now_ms.to_string(),
            rules.debounce_ms.to_string(),
            flag(scope.announces()),
        ];
        let reply: Value = self
            .client
            .eval_cached(LEAVE.as_str(), self.scope_keys(scope, &self.instance), args)
            .await
            .map_err(unavailable)?;
        change(reply, "leave")
    }

    async fn settle(&self, scope: &Scope, user: &UserId, rules: Rules) -> StoreResult<Settled> {
        let args = vec![
            user.to_string(),
            rules.now_ms.to_string(),
            rules.debounce_ms.to_string(),
        ];
        let reply: Value = self
            .client
            .eval_cached(
                SETTLE.as_str(),
                vec![keys::holders(scope), keys::announced(scope)],
                args,
            )
            .await
            .map_err(unavailable)?;
        match reply.into_array().as_slice() {
            [kind, at, online] => Ok(Settled {
                online: online.as_i64() == Some(1),
                verdict: verdict(kind, at, "settle")?,
            }),
            _ => Err(malformed("settle")),
        }
    }

    async fn set_role(&self, scope: &Scope, user: &UserId, role: &str) -> StoreResult<()> {
        let _: i64 = self
            .client
            .eval_cached(
                ROLE,
                vec![keys::info(scope)],
                vec![user.to_string(), role.to_owned()],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn count(&self, scope: &Scope) -> StoreResult<u64> {
        self.client
            .hlen(keys::holders(scope))
            .await
            .map_err(unavailable)
    }

    async fn list(&self, scope: &Scope, limit: usize) -> StoreResult<Vec<PresentUser>> {
        // Pages of `HSCAN`, not one reply: the Redis client parses a reply again from its
        // start each time more of it arrives, so one 600 KB reply (a 10,000-user course)
        // was parsed about ten times; pages of ~100 KB are parsed once or twice each.
        // (A Lua loop over HSCAN took 50-80 ms of Redis time; docs/benchmarks.md.)
        let key = keys::info(scope);
        let mut users = Vec::new();
        let mut cursor = String::from("0");
        loop {
            let reply: Value = self
                .client
                .custom(
                    HSCAN.clone(),
                    vec![key.as_str(), &cursor, "COUNT", LIST_PAGE],
                )
                .await
                .map_err(unavailable)?;
            let mut reply = reply.into_array().into_iter();
            let (Some(next), Some(page)) = (reply.next(), reply.next()) else {
                return Err(malformed("list"));
            };
            cursor = next.as_string().ok_or_else(|| malformed("list"))?;
            parse_page(page, &mut users)?;
            if cursor == "0" || users.len() >= limit {
                break;
            }
        }
        // A scan may return a user twice while Redis resizes the hash; sorted, the list is
        // also in a stable order.
        users.sort_unstable_by(|a, b| a.user.as_str().cmp(b.user.as_str()));
        users.dedup_by(|a, b| a.user == b.user);
        users.truncate(limit);
        Ok(users)
    }

    async fn upkeep(&self, rules: Rules) -> StoreResult<Upkeep> {
        let expires = (rules.now_ms + self.ttl.as_millis() as u64) as f64;
        let added: i64 = self
            .client
            .zadd(
                keys::registry(),
                None,
                None,
                false,
                false,
                (expires, self.instance.as_str()),
            )
            .await
            .map_err(unavailable)?;
        // Absent although registered before: another node took this instance for dead
        // and purged it (a long pause, a partition). Its entries must be written again.
        let resync = added == 1 && self.registered.swap(true, Ordering::Relaxed);
        if resync {
            self.indexed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
        let dead: Vec<String> = self
            .client
            .zrangebyscore(
                keys::registry(),
                f64::NEG_INFINITY,
                rules.now_ms as f64,
                false,
                Some((0, PURGES_PER_UPKEEP)),
            )
            .await
            .map_err(unavailable)?;
        let mut departed = Vec::new();
        for instance in dead.iter().filter(|i| **i != self.instance) {
            tracing::info!(
                instance,
                "presence: purging a node process whose heartbeat lapsed"
            );
            departed.extend(self.purge(instance, rules).await?);
        }
        Ok(Upkeep { departed, resync })
    }

    async fn withdraw(&self, rules: Rules) -> StoreResult<Vec<Departed>> {
        let departed = self.purge(&self.instance.clone(), rules).await?;
        self.indexed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(departed)
    }
}
