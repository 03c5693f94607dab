//! `POST /notifications`: whom a notification is for, and what it says.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::*;
use crate::error::AppError;
use crate::ids::{CourseId, NotificationId, TenantId, UserId};
use crate::role::Role;

#[derive(Debug, Clone, Default, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(description = "Exactly one of: userId, userIds (1 to 1000), courseId, role.")]
pub struct Target {
    #[serde(default)]
    #[ts(optional, type = "string | number")]
    pub user_id: Option<UserId>,
    #[serde(default)]
    #[ts(optional, type = "Array<string | number>")]
    pub user_ids: Option<Vec<UserId>>,
    #[serde(default)]
    #[ts(optional, type = "string | number")]
    pub course_id: Option<CourseId>,
    #[serde(default)]
    #[ts(optional)]
    pub role: Option<Role>,
}

/// The recipients of a notification, exactly one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipients {
    User(UserId),
    Users(Vec<UserId>),
    Course(CourseId),
    Role(Role),
}

/// Most users one `POST /notifications` may name.
pub const MAX_USER_IDS: usize = 1_000;

impl Target {
    pub fn into_recipients(self) -> Result<Recipients, AppError> {
        let named = [
            self.user_id.is_some(),
            self.user_ids.is_some(),
            self.course_id.is_some(),
            self.role.is_some(),
        ];
        if named.iter().filter(|n| **n).count() != 1 {
            return Err(AppError::invalid(
                "target: name exactly one of userId, userIds, courseId, role",
            ));
        }
        Ok(match self {
            Target {
                user_id: Some(u), ..
            } => Recipients::User(u),
            Target {
                user_ids: Some(us), ..
            } => {
                if us.is_empty() || us.len() > MAX_USER_IDS {
                    return Err(AppError::invalid(format!(
                        "target.userIds: between 1 and {MAX_USER_IDS} ids"
                    )));
                }
                let mut us = us;
                us.sort();
                us.dedup();
                Recipients::Users(us)
            }
            Target {
                course_id: Some(c), ..
            } => Recipients::Course(c),
            Target { role: Some(r), .. } => Recipients::Role(r),
            _ => unreachable!("exactly one target field is set"),
        })
    }
}

with_notification_content! {
    #[derive(Debug, Clone, Deserialize, TS, utoipa::ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct NotificationInput {
        /// Idempotency key; generated when absent.
        #[serde(default)]
        #[ts(optional, type = "string | number")]
        pub id: Option<NotificationId>,
    }
}

#[derive(Debug, Clone, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendNotificationRequest {
    #[ts(type = "string | number")]
    pub tenant_id: TenantId,
    #[serde(deserialize_with = "super::parse::object_only")]
    pub target: Target,
    #[serde(deserialize_with = "super::parse::object_only")]
    pub notification: NotificationInput,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub struct SendNotificationResponse {
    pub id: NotificationId,
    /// Recipients the notification was stored for (or, for a role target, delivered to live).
    pub recipients: u64,
}
