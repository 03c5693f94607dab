//! The operator console's API bodies (`GET /console/overview`): what one poll of the
//! console page shows, already cut down to what the viewer may see.

use serde::Serialize;

use crate::ids::{CourseId, TenantId, UserId};
use crate::role::Role;

/// Everything the console shows, as of one poll.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleOverview {
    pub viewer: ConsoleViewer,
    /// The node that answered: tenant, course and refusal figures are this node's.
    pub node: String,
    /// When the answer was made (RFC 3339).
    pub at: String,
    /// Every live node of the cluster (this one first), as `GET /stats` sees them.
    pub nodes: Vec<ConsoleNode>,
    /// Whether some nodes could not be read (the store was slow or unreachable).
    pub partial: bool,
    pub tenants: Vec<ConsoleTenant>,
    /// The most recent security refusals on this node, newest first.
    pub refusals: Vec<RecentRefusal>,
}

/// Who is looking: a super admin sees every tenant, a tenant admin its own.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleViewer {
    pub user_id: UserId,
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
}

/// One node and its health.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleNode {
    pub node: String,
    /// Sockets on the node; shown to a super admin only (not one tenant's figure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<u64>,
    /// `ready`, `draining` or `store_unreachable` for the answering node; `up` for a
    /// peer with a live heartbeat (a peer that stops beating drops out of the list).
    pub status: String,
}

/// One tenant's live sockets on this node, with its presence across the cluster.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleTenant {
    pub tenant_id: TenantId,
    /// Sockets of this tenant on every node (from the nodes' heartbeats, so a few
    /// seconds behind for the other nodes).
    pub connections: u64,
    /// Users online in the tenant on any node (presence); `None` when presence is off or
    /// its store could not answer.
    pub online: Option<u64>,
    pub courses: Vec<ConsoleCourse>,
    /// Connected users on this node, most sockets first, at most
    /// [`USERS_MAX`](crate::console::tally::USERS_MAX) per tenant.
    pub users: Vec<ConsoleUser>,
    /// Whether `users` was cut short.
    pub users_truncated: bool,
}

/// A course room of a tenant.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleCourse {
    pub course_id: CourseId,
    /// Sockets in the course room on this node.
    pub sockets: u64,
    /// Of them, sockets in the course's instructors room.
    pub instructors: u64,
    /// Users online in the course on any node (presence), when known.
    pub online: Option<u64>,
}

/// A connected user, the handle for a kick.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleUser {
    pub user_id: UserId,
    pub role: Role,
    pub sockets: u64,
}

/// One recent security refusal; never a token, never the client's own text.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecentRefusal {
    /// RFC 3339, milliseconds.
    pub at: String,
    /// The security kind: `auth_failed`, `tenant_mismatch`, `forbidden`, `rate_limited`.
    pub kind: String,
    /// What was refused: `connect`, `handshake`, an event name or an API route template.
    pub what: String,
    /// The contract error code answered.
    pub code: String,
    /// The client's address, as the node saw it (after trusted proxies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The caller's tenant, when the refusal came after its token was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantId>,
}
