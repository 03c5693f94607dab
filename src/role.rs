//! The roles of the contract (§1): a leaf module, so that payload types can name a role
//! without depending on the token code.

use serde::{Deserialize, Serialize};

/// Roles of the contract (§1).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Student,
    Instructor,
    Admin,
    SuperAdmin,
    Service,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Student => "student",
            Self::Instructor => "instructor",
            Self::Admin => "admin",
            Self::SuperAdmin => "super_admin",
            Self::Service => "service",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        Some(match raw {
            "student" => Self::Student,
            "instructor" => Self::Instructor,
            "admin" => Self::Admin,
            "super_admin" => Self::SuperAdmin,
            "service" => Self::Service,
            _ => return None,
        })
    }
}
