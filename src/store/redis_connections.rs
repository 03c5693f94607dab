//! The connection ledger in Redis: cluster-wide per-user and per-tenant socket counts.
//!
//! Each count is a hash with one field per node process ("instance": the node id plus a
//! boot id, so that a node restarted under the same name does not inherit its dead
//! predecessor's share). The scripts in `lua/` reserve atomically and prune the shares of
//! instances that are neither live (heartbeat registry, [`LiveInstances`]) nor recently
//! active, so a crashed node's sockets stop counting once its heartbeat expires.

use crate::cluster::lua::EvalCached;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use fred::clients::Client;

use super::StoreResult;
use super::connections::{ConnectionLedger, Holder, LedgerCaps, LedgerRefusal};
use super::keys;
use super::redis::unavailable;

const RESERVE: &str = include_str!("lua/reserve_connection.lua");
const RELEASE: &str = include_str!("lua/release_connection.lua");

/// How long a share counts without its instance in the live list: longer than it takes a
/// new node's first heartbeat to reach every other node's list.
pub const GRACE: Duration = Duration::from_secs(10);

/// The instances with a live heartbeat, as this node last read them.
#[derive(Clone, Default)]
pub struct LiveInstances(Arc<RwLock<Vec<String>>>);

impl LiveInstances {
    pub fn set(&self, instances: Vec<String>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = instances;
    }

    fn get(&self) -> Vec<String> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

pub struct RedisLedger {
    client: Client,
    instance: String,
    live: LiveInstances,
}

impl RedisLedger {
    pub fn new(client: Client, instance: String, live: LiveInstances) -> Self {
        Self {
            client,
            instance,
            live,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn counter_keys(holder: &Holder) -> Vec<String> {
    vec![
        keys::user_connections(holder.tenant.as_ref(), &holder.user),
        keys::tenant_connections(holder.tenant.as_ref()),
    ]
}

fn counts_tenant(holder: &Holder, caps: LedgerCaps) -> bool {
    holder.tenant.is_some() && caps.per_tenant > 0
}

#[async_trait]
impl ConnectionLedger for RedisLedger {
    async fn reserve(
        &self,
        holder: &Holder,
        caps: LedgerCaps,
    ) -> StoreResult<Result<(), LedgerRefusal>> {
        let tenant_cap = if counts_tenant(holder, caps) {
            caps.per_tenant
        } else {
            0
        };
        let mut args = vec![
            self.instance.clone(),
            now_ms().to_string(),
            GRACE.as_millis().to_string(),
            caps.per_user.to_string(),
            tenant_cap.to_string(),
        ];
        args.extend(self.live.get());
        let reply: i64 = self
            .client
            .eval_cached(RESERVE, counter_keys(holder), args)
            .await
            .map_err(unavailable)?;
        Ok(match reply {
            1 => Ok(()),
            -2 => Err(LedgerRefusal::Tenant),
            _ => Err(LedgerRefusal::User),
        })
    }

    async fn release(&self, holder: &Holder, caps: LedgerCaps) -> StoreResult<()> {
        let counted = if counts_tenant(holder, caps) {
            "1"
        } else {
            "0"
        };
        let args = vec![
            self.instance.clone(),
            counted.to_owned(),
            now_ms().to_string(),
        ];
        let _: i64 = self
            .client
            .eval_cached(RELEASE, counter_keys(holder), args)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
