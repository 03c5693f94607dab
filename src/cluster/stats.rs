//! Cluster-wide stats from heartbeats: every node writes its own [`NodeStats`] to Redis
//! each second with a short TTL, and `GET /api/v1/stats` reads the live ones.
//!
//! A heartbeat rather than a request to every node: a reader never waits on a slow or
//! dead peer, only on Redis (bounded by the stats timeout). A node that stops cleanly
//! removes itself at once; a node that dies disappears when its entry expires
//! ([`HEARTBEAT_TTL`]). Each node's figures are as of its last heartbeat
//! ([`HEARTBEAT_INTERVAL`] old at most), and the answer names every node it counted.
//! When Redis cannot be read in time the answer holds this node only and says `partial`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use fred::clients::Client;
use fred::interfaces::{KeysInterface, SortedSetsInterface};
use fred::types::Expiration;

use crate::service::PeerStats;
use crate::store::keys;
use crate::store::redis_connections::LiveInstances;
use crate::types::NodeStats;

/// How often a node publishes its stats.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// How long a node's stats stay visible without a new heartbeat.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(3);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Reads and writes the node registry.
#[derive(Clone)]
pub struct RedisPeers {
    client: Client,
    node: String,
    /// This process: the node id and a boot id (see `redis_connections`).
    instance: String,
    live: LiveInstances,
}

impl RedisPeers {
    pub fn new(client: Client, node: String, instance: String, live: LiveInstances) -> Self {
        Self {
            client,
            node,
            instance,
            live,
        }
    }

    /// Publishes this node's stats and refreshes its registry entry.
    pub async fn heartbeat(&self, stats: &NodeStats) -> fred::prelude::FredResult<()> {
        let json = serde_json::to_string(stats).unwrap_or_default();
        let ttl = HEARTBEAT_TTL.as_millis() as i64;
        let now = now_ms();
        let _: () = self
            .client
            .set(
                keys::node_stats(&self.node),
                json,
                Some(Expiration::PX(ttl)),
                None,
                false,
            )
            .await?;
        let _: () = self
            .client
            .zadd(
                keys::node_registry(),
                None,
                None,
                false,
                false,
                ((now + ttl) as f64, self.node.as_str()),
            )
            .await?;
        // Forget nodes whose heartbeat expired long ago (crashed without deregistering).
        let _: () = self
            .client
            .zremrangebyscore(keys::node_registry(), f64::NEG_INFINITY, now as f64)
            .await?;
        self.refresh_instances(now, ttl).await
    }

    /// Registers this process and reads which others are live, for the connection ledger.
    async fn refresh_instances(&self, now: i64, ttl: i64) -> fred::prelude::FredResult<()> {
        let registry = keys::instance_registry();
        let _: () = self
            .client
            .zadd(
                registry,
                None,
                None,
                false,
                false,
                ((now + ttl) as f64, self.instance.as_str()),
            )
            .await?;
        let _: () = self
            .client
            .zremrangebyscore(registry, f64::NEG_INFINITY, now as f64)
            .await?;
        let live: Vec<String> = self
            .client
            .zrangebyscore(registry, now as f64, "+inf", false, None)
            .await?;
        self.live.set(live);
        Ok(())
    }

    /// Removes this node from the registry (clean shutdown).
    pub async fn deregister(&self) -> fred::prelude::FredResult<()> {
        let _: () = self
            .client
            .zrem(keys::node_registry(), self.node.as_str())
            .await?;
        let _: () = self.client.del(keys::node_stats(&self.node)).await?;
        let _: () = self
            .client
            .zrem(keys::instance_registry(), self.instance.as_str())
            .await?;
        Ok(())
    }

    /// The stats of every other node with a live heartbeat.
    async fn peers(&self) -> fred::prelude::FredResult<Vec<NodeStats>> {
        let nodes: Vec<String> = self
            .client
            .zrangebyscore(keys::node_registry(), now_ms() as f64, "+inf", false, None)
            .await?;
        let others: Vec<String> = nodes.into_iter().filter(|n| *n != self.node).collect();
        if others.is_empty() {
            return Ok(vec![]);
        }
        let keys: Vec<String> = others.iter().map(|n| keys::node_stats(n)).collect();
        let values: Vec<Option<String>> = self.client.mget(keys).await?;
        Ok(values
            .into_iter()
            .flatten()
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect())
    }
}

#[async_trait]
impl PeerStats for RedisPeers {
    async fn collect(&self, local: NodeStats, timeout: Duration) -> (Vec<NodeStats>, bool) {
        match tokio::time::timeout(timeout, self.peers()).await {
            Ok(Ok(mut peers)) => {
                peers.sort_by(|a, b| a.node.cmp(&b.node));
                let mut nodes = vec![local];
                nodes.extend(peers);
                (nodes, false)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cluster stats: node registry unreadable; answering for this node only");
                (vec![local], true)
            }
            Err(_) => {
                tracing::warn!(
                    "cluster stats: node registry timed out; answering for this node only"
                );
                (vec![local], true)
            }
        }
    }
}
