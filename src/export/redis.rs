//! The export queue on Redis, for a cluster: per tenant a stream (the queue), a hash (the
//! webhook with its delivery cursor), a lease string and a dead-letter list, all under the
//! tenant's hash tag so every script touches one slot (and runs on Redis Cluster). The set
//! of tenants with a webhook lives under the cluster tag, written apart from the hash.
//! Scripts are in `lua/`, each with a header naming keys and arguments.

use crate::cluster::lua::EvalCached;
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::Client;
use fred::interfaces::{HashesInterface, KeysInterface, ListInterface, SetsInterface};
use fred::types::Value;

use super::*;
use crate::store::keys;

const APPEND: &str = include_str!("lua/append.lua");
const READ: &str = include_str!("lua/read.lua");
const WEBHOOK_SET: &str = include_str!("lua/webhook_set.lua");
const LEASE: &str = include_str!("lua/lease.lua");
const RELEASE: &str = include_str!("lua/release.lua");
const ADVANCE: &str = include_str!("lua/advance.lua");
const REPLAY: &str = include_str!("lua/replay.lua");
const BACKLOG: &str = include_str!("lua/backlog.lua");

/// The export queue of every tenant, in Redis. Cheap to clone.
#[derive(Clone)]
pub struct RedisExport {
    client: Client,
    bounds: QueueBounds,
}

fn unavailable(e: fred::error::Error) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

fn ms(d: Duration) -> String {
    (d.as_millis() as u64).max(1).to_string()
}

impl RedisExport {
    /// On a client configured by `cluster::client_config` (timeouts, no silent retries).
    pub fn new(client: Client, bounds: QueueBounds) -> Self {
        Self { client, bounds }
    }

    async fn eval(
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

    /// The oldest stream id the age bound keeps.
    fn oldest_kept(&self) -> String {
        now_ms()
            .saturating_sub(self.bounds.retention.as_millis() as u64)
            .to_string()
    }

    fn cap(&self) -> String {
        self.bounds.cap.max(1).to_string()
    }

    /// Moves the cursor, dead-lettering `events` on the way (see `lua/advance.lua`).
    async fn move_cursor(
        &self,
        t: &TenantId,
        holder: &str,
        to: &Position,
        events: &[ExportEvent],
    ) -> StoreResult<bool> {
        let mut args = vec![
            holder.to_owned(),
            to.id.clone(),
            to.n.to_string(),
            self.cap(),
            ms(self.bounds.retention),
        ];
        for e in events {
            args.push(serde_json::to_string(e).map_err(|_| malformed("event"))?);
        }
        let keys = vec![
            keys::webhook_lease(t),
            keys::webhook(t),
            keys::webhook_dead_letters(t),
        ];
        Ok(self.eval(ADVANCE, keys, args).await?.as_i64() == Some(1))
    }
}

fn string(v: Value) -> Option<String> {
    v.as_string()
}

#[async_trait]
impl ExportQueue for RedisExport {
    async fn append(&self, e: &ExportEvent) -> StoreResult<()> {
        let t = &e.tenant_id;
        let json = serde_json::to_string(e).map_err(|_| malformed("event"))?;
        self.eval(
            APPEND,
            vec![keys::export_queue(t), keys::export_count(t)],
            vec![
                json,
                self.oldest_kept(),
                self.cap(),
                ms(self.bounds.retention),
            ],
        )
        .await?;
        Ok(())
    }

    async fn read(&self, t: &TenantId, after: &str, limit: usize) -> StoreResult<Vec<Queued>> {
        let reply = self
            .eval(
                READ,
                vec![keys::export_queue(t)],
                vec![
                    after.to_owned(),
                    limit.max(1).to_string(),
                    self.oldest_kept(),
                ],
            )
            .await?;
        let flat = reply.into_array();
        let mut out = Vec::with_capacity(flat.len() / 3);
        let mut it = flat.into_iter();
        while let (Some(id), Some(n), Some(e)) = (it.next(), it.next(), it.next()) {
            let id = string(id).ok_or_else(|| malformed("stream id"))?;
            let n = n.as_u64().ok_or_else(|| malformed("ordinal"))?;
            let Some(event) = string(e).and_then(|e| serde_json::from_str(&e).ok()) else {
                tracing::warn!(tenant = %t, id, "unreadable export event skipped");
                continue;
            };
            out.push(Queued {
                pos: Position { id, n },
                event,
            });
        }
        Ok(out)
    }

    async fn set_webhook(&self, t: &TenantId, w: &Webhook) -> StoreResult<()> {
        let events = serde_json::to_string(w.events.names()).map_err(|_| malformed("events"))?;
        self.eval(
            WEBHOOK_SET,
            vec![
                keys::webhook(t),
                keys::export_queue(t),
                keys::export_count(t),
            ],
            vec![w.url.clone(), w.secret.clone(), events],
        )
        .await?;
        // After the hash: a tenant listed without one is skipped by delivery.
        self.client
            .sadd::<(), _, _>(keys::WEBHOOK_TENANTS, t.as_str())
            .await
            .map_err(unavailable)
    }

    async fn webhook(&self, t: &TenantId) -> StoreResult<Option<Webhook>> {
        let fields: Vec<Option<String>> = self
            .client
            .hmget(keys::webhook(t), vec!["url", "secret", "events"])
            .await
            .map_err(unavailable)?;
        let [Some(url), Some(secret), Some(events)] =
            <[Option<String>; 3]>::try_from(fields).map_err(|_| malformed("webhook"))?
        else {
            return Ok(None);
        };
        let names: Vec<String> = serde_json::from_str(&events).map_err(|_| malformed("webhook"))?;
        let events = EventFilter::parse(&names).map_err(|_| malformed("webhook"))?;
        Ok(Some(Webhook {
            url,
            secret,
            events,
        }))
    }

    async fn delete_webhook(&self, t: &TenantId) -> StoreResult<bool> {
        let removed: u64 = self
            .client
            .del(vec![keys::webhook(t), keys::webhook_lease(t)])
            .await
            .map_err(unavailable)?;
        self.client
            .srem::<(), _, _>(keys::WEBHOOK_TENANTS, t.as_str())
            .await
            .map_err(unavailable)?;
        Ok(removed > 0)
    }

    async fn webhook_tenants(&self) -> StoreResult<Vec<TenantId>> {
        let members: Vec<String> = self
            .client
            .smembers(keys::WEBHOOK_TENANTS)
            .await
            .map_err(unavailable)?;
        Ok(members.iter().filter_map(|m| m.parse().ok()).collect())
    }

    async fn lease(&self, t: &TenantId, holder: &str, ttl: Duration) -> StoreResult<bool> {
        let keys = vec![keys::webhook_lease(t), keys::webhook(t)];
        let reply = self
            .eval(LEASE, keys, vec![holder.to_owned(), ms(ttl)])
            .await?;
        Ok(reply.as_i64() == Some(1))
    }

    async fn release(&self, t: &TenantId, holder: &str) -> StoreResult<()> {
        self.eval(
            RELEASE,
            vec![keys::webhook_lease(t)],
            vec![holder.to_owned()],
        )
        .await?;
        Ok(())
    }

    async fn cursor(&self, t: &TenantId) -> StoreResult<Position> {
        let fields: Vec<Option<String>> = self
            .client
            .hmget(keys::webhook(t), vec!["cursor", "n"])
            .await
            .map_err(unavailable)?;
        match fields.as_slice() {
            [Some(id), Some(n)] => Ok(Position {
                id: id.clone(),
                n: n.parse().map_err(|_| malformed("cursor"))?,
            }),
            _ => Ok(Position::start()),
        }
    }

    async fn advance(&self, t: &TenantId, holder: &str, to: &Position) -> StoreResult<bool> {
        self.move_cursor(t, holder, to, &[]).await
    }

    async fn dead_letter(
        &self,
        t: &TenantId,
        holder: &str,
        events: &[ExportEvent],
        to: &Position,
    ) -> StoreResult<bool> {
        self.move_cursor(t, holder, to, events).await
    }

    async fn dead_letters(&self, t: &TenantId, limit: usize) -> StoreResult<Vec<ExportEvent>> {
        let stop = limit.max(1) as i64 - 1;
        let items: Vec<String> = self
            .client
            .lrange(keys::webhook_dead_letters(t), 0, stop)
            .await
            .map_err(unavailable)?;
        Ok(items
            .iter()
            .filter_map(|e| serde_json::from_str(e).ok())
            .collect())
    }

    async fn replay_dead_letters(&self, t: &TenantId, limit: usize) -> StoreResult<u64> {
        let keys = vec![
            keys::webhook_dead_letters(t),
            keys::export_queue(t),
            keys::export_count(t),
        ];
        let args = vec![
            limit.max(1).to_string(),
            self.oldest_kept(),
            self.cap(),
            ms(self.bounds.retention),
        ];
        let n = self.eval(REPLAY, keys, args).await?;
        n.as_u64().ok_or_else(|| malformed("replay"))
    }

    async fn backlog(&self, t: &TenantId) -> StoreResult<Backlog> {
        let keys = vec![
            keys::webhook(t),
            keys::export_queue(t),
            keys::export_count(t),
            keys::webhook_dead_letters(t),
        ];
        let reply = self.eval(BACKLOG, keys, vec![]).await?.into_array();
        let [pending, oldest, dead] =
            <[Value; 3]>::try_from(reply).map_err(|_| malformed("backlog"))?;
        Ok(Backlog {
            pending: pending.as_u64().unwrap_or(0),
            oldest_ms: oldest.as_string().as_deref().and_then(id_ms),
            dead_letters: dead.as_u64().unwrap_or(0),
        })
    }
}
