//! Live-only broadcasts: a tenant's announcement (admin event or service API) and the
//! platform's system alert. Both announcement bodies carry a [`NotificationContent`].

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::{NotificationContent, NotificationType, Priority};
use crate::ids::{NotificationId, TenantId};

with_notification_content! {
    /// `admin:broadcast`: the content, and the tenant for a super admin.
    #[derive(Debug, Clone, Deserialize, TS)]
    #[serde(rename_all = "camelCase")]
    pub struct AdminBroadcastPayload {
        /// Required for a super admin; an admin may only name its own tenant.
        #[serde(default)]
        #[ts(optional)]
        pub tenant_id: Option<TenantId>,
    }
}

with_notification_content! {
    /// `POST /tenants/{t}/broadcast`.
    #[derive(Debug, Clone, Deserialize, TS, utoipa::ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct BroadcastRequest {}
}

/// The answer to `POST /tenants/{t}/broadcast`: the id the announcement went out with.
#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub struct BroadcastAccepted {
    pub id: NotificationId,
}

/// `POST /system/alerts` and `admin:system_alert` alike.
#[derive(Debug, Clone, Deserialize, TS, utoipa::ToSchema)]
pub struct SystemAlertRequest {
    pub title: String,
    pub message: String,
    #[serde(default)]
    #[ts(optional)]
    pub priority: Option<Priority>,
}

/// `admin:system_alert`'s payload is the service API's request.
pub type SystemAlertPayload = SystemAlertRequest;

#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub struct SystemAlert {
    pub title: String,
    pub message: String,
    pub priority: Priority,
    /// RFC 3339.
    pub at: String,
}
