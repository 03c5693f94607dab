//! Connection and room counts (`GET /stats`).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Connection and room counts of one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub struct NodeStats {
    pub node: String,
    pub connections: u64,
    /// Rooms and members per room kind.
    pub rooms: std::collections::BTreeMap<String, RoomStats>,
    /// Sockets per tenant on the node (the operator console sums them over the cluster).
    /// Absent from the heartbeats of nodes older than this field.
    #[serde(default)]
    pub tenants: std::collections::BTreeMap<String, u64>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema,
)]
pub struct RoomStats {
    pub rooms: u64,
    pub members: u64,
}

/// `GET /api/v1/stats`: sums over the nodes that answered, and which did.
#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStats {
    pub connections: u64,
    pub rooms: std::collections::BTreeMap<String, RoomStats>,
    pub nodes: Vec<NodeStats>,
    /// True when some node may not have answered in time: the sums are then a lower bound.
    pub partial: bool,
}
