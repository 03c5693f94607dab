//! The HTTP surface: the service API under `/api/v1` for LMS backends, and the operational
//! endpoints (`/healthz`, `/readyz`, `/metrics`) for SREs.

mod caller;
pub mod error;
pub mod handshake;
mod operator;
mod ops;
mod owned_parts;
mod routes;

pub use owned_parts::detach_from_read_buffer;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use metrics_exporter_prometheus::PrometheusHandle;
use socketioxide::adapter::Adapter;

use crate::auth::Verifier;
use crate::metrics;
use crate::operator::Operator;
use crate::service::Gateway;

/// What every route shares.
pub struct ApiState<A: Adapter> {
    pub gateway: Gateway<A>,
    pub verifier: Verifier,
    pub operator: Operator<A>,
    pub prometheus: PrometheusHandle,
    pub draining: Arc<AtomicBool>,
}

impl<A: Adapter> Clone for ApiState<A> {
    fn clone(&self) -> Self {
        Self {
            gateway: self.gateway.clone(),
            verifier: self.verifier.clone(),
            operator: self.operator.clone(),
            prometheus: self.prometheus.clone(),
            draining: self.draining.clone(),
        }
    }
}

/// The routes, with the body limit and request metrics.
pub fn router<A: Adapter>(state: ApiState<A>, max_body_bytes: usize) -> Router {
    let api = Router::new()
        .route("/notifications", post(routes::send_notification::<A>))
        .route("/tenants/{t}/broadcast", post(routes::broadcast::<A>))
        .route("/system/alerts", post(routes::system_alert::<A>))
        .route(
            "/tenants/{t}/courses/{c}/members/{u}",
            put(routes::set_member::<A>).delete(routes::remove_member::<A>),
        )
        .route(
            "/tenants/{t}/courses/{c}/members",
            put(routes::replace_members::<A>),
        )
        .route(
            "/tenants/{t}/courses/{c}/events",
            post(routes::course_event::<A>),
        )
        .route("/tenants/{t}/users/{u}/unread", get(routes::unread::<A>))
        .route("/stats", get(routes::stats::<A>))
        .route(
            "/tenants/{t}/users/{u}/sockets",
            delete(operator::kick::<A>),
        )
        .route("/tenants/{t}/revocations", post(operator::revoke::<A>))
        .fallback(routes::not_found);
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz::<A>))
        .route("/metrics", get(ops::metrics::<A>))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn(count_requests))
        .with_state(state)
}

/// Counts every request by its route template (never the raw path: it holds ids).
async fn count_requests(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    if !route.starts_with("/socket.io") {
        metrics::http_request(route, response.status().as_u16());
    }
    response
}
