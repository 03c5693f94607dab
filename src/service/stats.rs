//! Connection and room counts: this node's, and the cluster's through [`PeerStats`].

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use socketioxide::{SocketIo, adapter::Adapter};

use super::Gateway;
use crate::metrics;
use crate::rooms::RoomKind;
use crate::types::*;

/// Stats of the other nodes of a cluster; absent on a single node.
#[async_trait]
pub trait PeerStats: Send + Sync + 'static {
    /// Every live node's stats (this one's included), and whether the answer is partial.
    async fn collect(&self, local: NodeStats, timeout: Duration) -> (Vec<NodeStats>, bool);
}

/// A node's connection and room counts, from its local sockets.
pub fn local_stats<A: Adapter>(io: &SocketIo<A>, node_id: &str) -> NodeStats {
    let sockets = io.local().sockets();
    let mut per_kind: BTreeMap<&'static str, (HashSet<String>, u64)> = BTreeMap::new();
    let mut tenants: BTreeMap<String, u64> = BTreeMap::new();
    for s in &sockets {
        for room in s.rooms() {
            if let Some(kind) = RoomKind::of(&room) {
                if kind == RoomKind::Tenant
                    && let Some(t) = room.strip_prefix("tenant:")
                {
                    *tenants.entry(t.to_owned()).or_default() += 1;
                }
                let entry = per_kind.entry(kind.as_str()).or_default();
                entry.1 += 1;
                if !entry.0.contains(room.as_ref()) {
                    entry.0.insert(room.into_owned());
                }
            }
        }
    }
    let rooms = RoomKind::ALL
        .iter()
        .map(|k| {
            let (names, members) = per_kind.remove(k.as_str()).unwrap_or_default();
            (
                k.as_str().to_owned(),
                RoomStats {
                    rooms: names.len() as u64,
                    members,
                },
            )
        })
        .collect();
    NodeStats {
        node: node_id.to_owned(),
        connections: sockets.len() as u64,
        rooms,
        tenants,
    }
}

impl<A: Adapter> Gateway<A> {
    /// This node's connection and room counts.
    pub fn local_stats(&self) -> NodeStats {
        local_stats(&self.inner.io, &self.inner.node_id)
    }

    /// Connection and room counts summed over the cluster, with the nodes that answered.
    pub async fn stats(&self) -> ClusterStats {
        let local = self.local_stats();
        let (nodes, partial) = match &self.inner.peers {
            Some(peers) => peers.collect(local, self.inner.stats_timeout).await,
            None => (vec![local], false),
        };
        let mut rooms: BTreeMap<String, RoomStats> = BTreeMap::new();
        for n in &nodes {
            for (kind, r) in &n.rooms {
                let sum = rooms.entry(kind.clone()).or_default();
                sum.rooms += r.rooms;
                sum.members += r.members;
            }
        }
        ClusterStats {
            connections: nodes.iter().map(|n| n.connections).sum(),
            rooms,
            nodes,
            partial,
        }
    }

    /// Refreshes the per-kind room gauges from the local sockets.
    pub fn refresh_room_gauges(&self) {
        for (kind, r) in self.local_stats().rooms {
            let kind = RoomKind::ALL
                .iter()
                .find(|k| k.as_str() == kind)
                .map_or("other", |k| k.as_str());
            metrics::room_gauges(kind, r.rooms, r.members);
        }
    }
}
