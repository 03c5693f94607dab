//! The HTTP surface: the service API under `/api/v1` for LMS backends, and the operational
//! endpoints (`/healthz`, `/readyz`, `/metrics`) for SREs.

mod caller;
mod console;
pub mod error;
mod export;
pub mod handshake;
mod openapi;
mod operator;
mod ops;
mod owned_parts;
mod presence;
pub mod quota;
mod routes;

pub use owned_parts::detach_from_read_buffer;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use socketioxide::adapter::Adapter;
use tracing::Instrument;

use crate::auth::Verifier;
use crate::client_ip::ClientIp;
use crate::metrics;
use crate::operator::Operator;
use crate::presence::Presence;
use crate::recent_refusals::RecentRefusals;
use crate::refusal_log::{LogVerdict, RefusalLog};
use crate::service::Gateway;
use error::RefusalNote;
use quota::ApiQuotas;

/// What every route shares.
pub struct ApiState<A: Adapter> {
    pub gateway: Gateway<A>,
    pub verifier: Verifier,
    pub operator: Operator<A>,
    pub presence: Arc<Presence>,
    pub prometheus: PrometheusHandle,
    pub draining: Arc<AtomicBool>,
    pub quotas: Arc<ApiQuotas>,
    pub max_notification_data_bytes: usize,
    /// The node's recent security refusals (the console shows them).
    pub refusals: Arc<RecentRefusals>,
}

impl<A: Adapter> Clone for ApiState<A> {
    fn clone(&self) -> Self {
        Self {
            gateway: self.gateway.clone(),
            verifier: self.verifier.clone(),
            operator: self.operator.clone(),
            presence: self.presence.clone(),
            prometheus: self.prometheus.clone(),
            draining: self.draining.clone(),
            quotas: self.quotas.clone(),
            max_notification_data_bytes: self.max_notification_data_bytes,
            refusals: self.refusals.clone(),
        }
    }
}

/// Where `/metrics` is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsOn {
    /// On the public port, beside the API (no `METRICS_PORT`).
    PublicPort,
    /// Only on the internal listener of `METRICS_PORT` ([`metrics_router`]).
    InternalPort,
}

/// The routes, with the body limit, request metrics and refusal logging. Every framework
/// rejection (unknown route, wrong method) answers the error envelope too.
pub fn router<A: Adapter>(
    state: ApiState<A>,
    max_body_bytes: usize,
    metrics_on: MetricsOn,
) -> Router {
    // Every `/api/v1` route comes from the table in `openapi.rs`, which also builds the
    // OpenAPI document: add a route there, never with `.route` here.
    let api = openapi::router::<A>()
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(middleware::from_fn(trace_requests));
    let mut router = Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz::<A>))
        .merge(console::pages::<A>());
    if metrics_on == MetricsOn::PublicPort {
        router = router.route("/metrics", get(ops::metrics::<A>));
    }
    router
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(
            Arc::new(RefusalLog::default()),
            log_refusals,
        ))
        .layer(middleware::from_fn(count_requests))
        .with_state(state)
}

/// The internal listener's routes (`METRICS_PORT`): `/metrics` and nothing else.
pub fn metrics_router<A: Adapter>(state: ApiState<A>) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics::<A>))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state)
}

/// Logs each error answer with the client's address and user agent: server errors always,
/// refusals aggregated per client address so that a flood of bad calls is not a flood of
/// lines. Never the query string, which may hold a token.
async fn log_refusals(
    State(log): State<Arc<RefusalLog<IpAddr>>>,
    req: Request,
    next: Next,
) -> Response {
    let client = req.extensions().get::<ClientIp>().copied();
    let user_agent = crate::client_ip::user_agent(req.headers());
    let path = req.uri().path().to_owned();
    let mut response = next.run(req).await;
    let Some(note) = response.extensions_mut().remove::<RefusalNote>() else {
        return response;
    };
    let client_ip = client.map_or_else(|| "-".to_owned(), |c| c.to_string());
    let user_agent = user_agent.as_deref().unwrap_or("-");
    let status = note.status.as_u16();
    if note.status.is_server_error() {
        tracing::warn!(status, code = note.code, detail = %note.detail, path, client_ip, user_agent, "request failed");
        return response;
    }
    let source = client.map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0);
    if let LogVerdict::Log { suppressed } = log.admit(&source) {
        tracing::info!(status, code = note.code, detail = %note.detail, path, client_ip, user_agent, suppressed, "request refused");
    }
    response
}

/// With traces on, runs each service API request in a span named by its route template,
/// the child of the caller's `traceparent`; the emits it causes are spans inside it.
async fn trace_requests(req: Request, next: Next) -> Response {
    if !crate::traces::enabled() {
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let span = crate::traces::request_span(req.method(), route, req.headers());
    let response = next.run(req).instrument(span.clone()).await;
    crate::traces::record_status(&span, response.status());
    response
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::telemetry::tests::Captured;
    use axum::http::StatusCode;
    use error::ApiError;
    use tower::ServiceExt;

    /// The keys of one flat JSON object, in order, duplicates kept.
    fn keys(line: &str) -> Vec<String> {
        struct Keys(Vec<String>);
        impl<'de> serde::Deserialize<'de> for Keys {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Keys;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("an object")
                    }
                    fn visit_map<M: serde::de::MapAccess<'de>>(
                        self,
                        mut m: M,
                    ) -> Result<Keys, M::Error> {
                        let mut keys = vec![];
                        while let Some((k, _)) = m.next_entry::<String, serde::de::IgnoredAny>()? {
                            keys.push(k);
                        }
                        Ok(Keys(keys))
                    }
                }
                d.deserialize_map(V)
            }
        }
        serde_json::from_str::<Keys>(line).unwrap().0
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_refusal_is_one_json_line_without_duplicate_keys_and_names_the_client() {
        let out = Captured::default();
        let _guard = tracing::subscriber::set_default(crate::telemetry::json(
            crate::telemetry::filter(None),
            out.clone(),
        ));
        let app = Router::new()
            .route(
                "/x",
                get(|| async {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        ErrorCode::InvalidPayload,
                        "bad\nthing",
                    )
                }),
            )
            .layer(middleware::from_fn_with_state(
                Arc::new(RefusalLog::default()),
                log_refusals,
            ));
        let mut req = Request::builder()
            .uri("/x")
            .header("user-agent", "probe/1")
            .body(axum::body::Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(ClientIp("203.0.113.7".parse().unwrap()));
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let logged = out.text();
        let line = logged
            .lines()
            .find(|l| l.contains("request refused"))
            .expect(&logged);
        let keys = keys(line);
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "duplicate keys in {line}");
        assert!(
            line.contains("203.0.113.7") && line.contains("probe/1"),
            "{line}"
        );
    }
}
