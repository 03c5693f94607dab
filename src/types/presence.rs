//! Presence payloads (§10): the acks of `presence:list` / `presence:count`, the
//! `presence:join` / `presence:leave` events and the service API answers.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ids::{CourseId, UserId};

/// `presence:list` and `presence:count`: the course to ask about.
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PresenceQuery {
    #[ts(type = "string | number")]
    pub course_id: CourseId,
}

/// One online user.
#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresenceUser {
    pub user_id: UserId,
    /// The course role (`student`, `instructor`), or the token's role (`admin`) of a
    /// tenant admin who joined the course room.
    pub role: String,
    /// When the user's first socket came online (RFC 3339).
    pub since: String,
}

/// The `presence:list` ack and `GET /tenants/{t}/courses/{c}/presence`. The users are
/// shared: callers listing one course at once get one list (`presence::query`).
#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoursePresence {
    pub course_id: CourseId,
    #[ts(as = "Vec<PresenceUser>")]
    pub users: Arc<[PresenceUser]>,
    pub count: u64,
}

/// The `presence:count` ack.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PresenceCount {
    pub course_id: CourseId,
    pub count: u64,
}

/// `GET /tenants/{t}/presence`: the count, and with `?list=1` up to 1000 users.
#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantPresence {
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub users: Option<Vec<PresenceUser>>,
}

/// `presence:join` and `presence:leave`, to the course's instructors.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PresenceChange {
    pub course_id: CourseId,
    pub user_id: UserId,
    pub role: String,
    /// RFC 3339.
    pub at: String,
}
