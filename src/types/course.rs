//! Courses: membership (service API), `course:*` payloads and events.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ids::{CourseId, UserId};

/// A course role kept in the membership cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CourseRole {
    Student,
    Instructor,
}

impl CourseRole {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Student => "student",
            Self::Instructor => "instructor",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "student" => Some(Self::Student),
            "instructor" => Some(Self::Instructor),
            _ => None,
        }
    }
}

/// `courseId` or `{ courseId }`.
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(untagged)]
pub enum CourseRef {
    Id(#[ts(type = "string | number")] CourseId),
    Object {
        #[serde(rename = "courseId")]
        #[ts(type = "string | number")]
        course_id: CourseId,
    },
}

impl CourseRef {
    pub fn course_id(self) -> CourseId {
        match self {
            Self::Id(c) | Self::Object { course_id: c } => c,
        }
    }
}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CourseUpdatePayload {
    #[ts(type = "string | number")]
    pub course_id: CourseId,
    pub changes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CourseUpdated {
    pub course_id: CourseId,
    pub changes: serde_json::Map<String, serde_json::Value>,
    /// The instructor or admin who made the change, or `"service"`.
    pub updated_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum EnrollmentAction {
    Enrolled,
    Unenrolled,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CourseEnrollment {
    pub course_id: CourseId,
    pub user_id: UserId,
    pub action: EnrollmentAction,
    pub role: CourseRole,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Joined {
    pub course_id: CourseId,
}

#[derive(Debug, Clone, Deserialize, TS, utoipa::ToSchema)]
pub struct MemberRequest {
    pub role: CourseRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    #[ts(type = "string | number")]
    pub user_id: UserId,
    pub role: CourseRole,
}

#[derive(Debug, Clone, Deserialize, TS, utoipa::ToSchema)]
pub struct ReplaceMembersRequest {
    #[serde(deserialize_with = "super::parse::objects_only")]
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub struct MembersReplaced {
    pub members: u64,
    pub added: u64,
    pub removed: u64,
}

#[derive(Debug, Clone, Deserialize, TS, utoipa::ToSchema)]
pub struct CourseEventRequest {
    pub changes: serde_json::Map<String, serde_json::Value>,
}
