//! The operator console's routes: the page and its assets (`/console`, `/console/...`),
//! and its API under `/api/v1/console`, for `super_admin` and tenant `admin` tokens
//! ([`Audience::Console`]). A tenant admin sees and acts on its own tenant only.

use std::sync::atomic::Ordering;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use socketioxide::adapter::Adapter;

use super::ApiState;
use super::caller::{Audience, Caller};
use super::openapi::{TenantParam, UserParam};
use super::quota::Refusal;
use super::routes::{ApiResult, not_found, tenant_user};
use crate::console::{self, Asset, overview};
use crate::types::{ConsoleOverview, Disconnected};

/// A caller of the console API: a super admin, or a tenant admin.
pub struct ConsoleCaller(pub Caller);

impl<A: Adapter> FromRequestParts<ApiState<A>> for ConsoleCaller {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState<A>) -> Result<Self, Refusal> {
        Caller::admit(parts, state, Audience::Console)
            .await
            .map(ConsoleCaller)
    }
}

/// The page and its assets, outside `/api/v1`.
pub fn pages<A: Adapter>() -> Router<ApiState<A>> {
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/{asset}", get(asset))
}

/// `GET /api/v1/console/overview`: what one poll of the console page shows.
#[utoipa::path(
    get,
    path = "/console/overview",
    operation_id = "console_overview",
    tag = "console",
    responses((status = 200, description = "The live system as this viewer may see it", body = ConsoleOverview)),
)]
pub(super) async fn get_overview<A: Adapter>(
    State(s): State<ApiState<A>>,
    ConsoleCaller(caller): ConsoleCaller,
) -> impl IntoResponse {
    let sources = overview::Sources {
        gateway: &s.gateway,
        presence: &s.presence,
        refusals: &s.refusals,
        draining: s.draining.load(Ordering::Relaxed),
    };
    Json(overview::overview(sources, &caller.claims).await)
}

/// `DELETE /api/v1/console/tenants/{t}/users/{u}/sockets`: the §11 kick, open to the
/// tenant's own admin as well.
#[utoipa::path(
    delete,
    path = "/console/tenants/{t}/users/{u}/sockets",
    operation_id = "console_kick",
    tag = "console",
    params(TenantParam, UserParam),
    responses((status = 200, description = "Sockets disconnected", body = Disconnected)),
)]
pub(super) async fn kick<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path((t, u)): Path<(String, String)>,
    ConsoleCaller(caller): ConsoleCaller,
) -> ApiResult<impl IntoResponse> {
    let (t, u) = tenant_user(&caller, &t, &u)?;
    let disconnected = s.operator.kick_user(&t, &u).await?;
    tracing::info!(tenant = %t, user = %u, by = %caller.name(), disconnected, "console kick");
    Ok(Json(Disconnected { disconnected }))
}

async fn index() -> Response {
    serve(&console::INDEX)
}

async fn asset(Path(name): Path<String>) -> Response {
    match console::asset(&name) {
        Some(a) => serve(a),
        None => not_found().await.into_response(),
    }
}

/// An embedded file with the console's security headers: strict CSP, no sniffing, no
/// framing, no referrer, and no caching (a new binary brings a new page).
fn serve(a: &'static Asset) -> Response {
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(a.content_type),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(console::CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    (headers, a.body).into_response()
}
