//! The socket's own inbox: `notification:*` payloads and their acks.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::*;
use crate::ids::{NotificationId, TenantId, UserId};

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ReadPayload {
    pub notification_id: NotificationId,
    #[serde(default)]
    #[ts(optional)]
    pub tenant_id: Option<TenantId>,
    #[serde(default)]
    #[ts(optional)]
    pub user_id: Option<UserId>,
    /// `READ` (the default) or `DISMISSED`.
    #[serde(default)]
    #[ts(optional)]
    pub status: Option<NotificationStatus>,
}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DismissPayload {
    pub notification_id: NotificationId,
    #[serde(default)]
    #[ts(optional)]
    pub tenant_id: Option<TenantId>,
    #[serde(default)]
    #[ts(optional)]
    pub user_id: Option<UserId>,
}

/// `notification:read_all`; the optional ids are checked against the socket's own.
#[derive(Debug, Clone, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct OwnerPayload {
    #[serde(default)]
    #[ts(optional)]
    pub tenant_id: Option<TenantId>,
    #[serde(default)]
    #[ts(optional)]
    pub user_id: Option<UserId>,
}

#[derive(Debug, Clone, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ListPayload {
    /// 1..=100, default 20.
    #[serde(default)]
    #[ts(optional)]
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    #[serde(default)]
    #[ts(optional)]
    pub before: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub status: Option<NotificationStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub struct UnreadCount {
    pub unread: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRef {
    pub notification_id: NotificationId,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// Pass as `before` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}
