//! Event export (§12): the exported event, the webhook configuration and the bodies of the
//! export routes.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ids::TenantId;

/// One exported event, as webhooks POST it and the pull API returns it. `id` is stable
/// across retries and dead-letter replays, so a receiver can drop duplicates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportEvent {
    pub id: String,
    /// `progress:content`, `progress:video`, `notification:read`,
    /// `notification:dismissed`, `presence:join`, `presence:leave`.
    #[serde(rename = "type")]
    pub kind: String,
    pub tenant_id: TenantId,
    /// RFC 3339.
    pub at: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// A webhook POST body: `{ events: [...] }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub struct ExportBatch {
    pub events: Vec<ExportEvent>,
}

/// `PUT /tenants/{t}/webhook`.
#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// `http://` or `https://`.
    pub url: String,
    /// The HMAC-SHA256 key; never returned by the API.
    pub secret: String,
    /// Event types, or a prefix before the colon (`"progress"`).
    pub events: Vec<String>,
}

/// `GET /tenants/{t}/webhook`: the configuration without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub struct WebhookView {
    pub url: String,
    pub events: Vec<String>,
}

/// `GET /tenants/{t}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub struct EventsPage {
    pub events: Vec<ExportEvent>,
    /// The `after` of the next page (the same cursor when nothing was new).
    pub next: String,
}

/// `GET /tenants/{t}/webhook/dead-letters`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub struct DeadLetters {
    pub events: Vec<ExportEvent>,
    /// Dead letters held in all (the page may be shorter).
    pub count: u64,
}

/// `POST /tenants/{t}/webhook/dead-letters/replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub struct Replayed {
    pub replayed: u64,
}

/// `GET /tenants/{t}/webhook/status` (the operator console reads exactly this shape).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookStatus {
    pub configured: bool,
    /// Age of the oldest event not yet delivered (0 when none waits).
    pub lag_seconds: f64,
    /// Events not yet delivered.
    pub pending: u64,
    pub dead_letters: u64,
}
