//! Operational endpoints: liveness, readiness (store reachable and not draining), metrics.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use socketioxide::adapter::Adapter;

use super::ApiState;
use crate::metrics;

/// How long readiness waits for the store before calling it unreachable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

pub async fn readyz<A: Adapter>(State(s): State<ApiState<A>>) -> impl IntoResponse {
    if s.draining.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "draining" })),
        );
    }
    let store = tokio::time::timeout(READY_TIMEOUT, s.gateway.ping_store()).await;
    let up = matches!(store, Ok(Ok(())));
    metrics::store_up(up);
    if up {
        (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready", "node": s.gateway.node_id() })),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "store unreachable" })),
        )
    }
}

/// This document (no token needed).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::document_json(),
    )
}

pub async fn metrics<A: Adapter>(State(s): State<ApiState<A>>) -> impl IntoResponse {
    s.gateway.refresh_room_gauges();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.prometheus.render(),
    )
}
