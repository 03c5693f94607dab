//! The Notification as clients see it, its enums, and the content every sender shares.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::JsonData;
use crate::ids::{NotificationId, TenantId, UserId};
use std::sync::Arc;

/// Longest notification or alert title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// Longest notification or alert message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 5_000;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationType {
    AssignmentDue,
    AssignmentGraded,
    CourseUpdate,
    Enrollment,
    Announcement,
    Message,
    SystemAlert,
    #[default]
    General,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationStatus {
    Unread,
    Read,
    Dismissed,
}

/// A notification as clients see it (`notification:new`, `notification:list`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: NotificationId,
    pub tenant_id: TenantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub user_id: Option<UserId>,
    // The body (title, message, data) is shared by every recipient's copy: a fan-out to a
    // thousand users holds it once, not a thousand times. (Not a doc comment: those go
    // into the generated TypeScript.)
    pub title: Arc<str>,
    pub message: Arc<str>,
    #[serde(rename = "type")]
    pub kind: NotificationType,
    pub priority: Priority,
    pub status: NotificationStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional, as = "Option<serde_json::Value>")]
    pub data: Option<Arc<JsonData>>,
    /// RFC 3339.
    pub created_at: String,
}

/// What a notification says, whoever sends it: the service API (`NotificationInput`), a
/// tenant broadcast (`BroadcastRequest`) or an admin's event (`AdminBroadcastPayload`).
/// Each of those bodies declares these fields through `with_notification_content!` and
/// hands them over with `into_content`.
#[derive(Debug, Clone)]
pub struct NotificationContent {
    pub title: String,
    pub message: String,
    pub kind: Option<NotificationType>,
    pub priority: Option<Priority>,
    pub data: Option<serde_json::Value>,
}

impl NotificationContent {
    /// The notification this content becomes in `tenant`, of `default_kind` when it names
    /// none, unread, for no user yet.
    pub fn into_notification(
        self,
        id: NotificationId,
        tenant: TenantId,
        default_kind: NotificationType,
        created_at: String,
    ) -> Notification {
        Notification {
            id,
            tenant_id: tenant,
            user_id: None,
            title: self.title.into(),
            message: self.message.into(),
            kind: self.kind.unwrap_or(default_kind),
            priority: self.priority.unwrap_or_default(),
            status: NotificationStatus::Unread,
            data: self.data.map(|v| Arc::new(JsonData::new(v))),
            created_at,
        }
    }
}
