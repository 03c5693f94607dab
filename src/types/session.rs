//! The socket's session and the operator's controls: refresh, expiry, errors, kicks and revocations.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::AppError;
use crate::ids::UserId;

#[derive(Debug, Clone, Deserialize, TS)]
pub struct RefreshPayload {
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Refreshed {
    /// The new expiry, seconds since the Unix epoch.
    pub expires_at: u64,
}

/// `auth:expired`: an empty object.
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS)]
pub struct AuthExpired {}

/// The `error` event, sent when an event without an ack callback fails.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ErrorEvent {
    pub code: crate::error::ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub event: Option<String>,
}

/// `DELETE /tenants/{t}/users/{u}/sockets` (§11).
#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub struct Disconnected {
    /// Sockets disconnected, summed over every node.
    pub disconnected: u64,
}

/// `POST /tenants/{t}/revocations` (§11): at least one of `userId` and `jti`.
#[derive(Debug, Clone, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevocationRequest {
    /// Refuse this user's tokens issued at or before `before`.
    #[serde(default)]
    #[ts(optional, type = "string | number")]
    pub user_id: Option<UserId>,
    /// Refuse the token with this `jti`.
    #[serde(default)]
    #[ts(optional, type = "string")]
    pub jti: Option<crate::ids::TokenId>,
    /// Seconds since the Unix epoch; default now.
    #[serde(default)]
    #[ts(optional)]
    pub before: Option<u64>,
}

/// What a revocation recorded and did.
#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revoked {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub user_id: Option<UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "string")]
    pub jti: Option<crate::ids::TokenId>,
    /// The user's tokens issued at or before this time are refused (seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub before: Option<u64>,
    /// When the record is forgotten (seconds): no token it refuses lives longer.
    pub expires_at: u64,
    /// Live sockets disconnected, summed over every node.
    pub disconnected: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub struct ApiErrorBody {
    pub error: AppError,
}
