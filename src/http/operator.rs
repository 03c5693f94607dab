//! The operator routes (§11): kick a user's sockets, revoke tokens. Each checks the
//! caller's tenant against the path and calls the [`Operator`](crate::operator::Operator).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use socketioxide::adapter::Adapter;

use super::ApiState;
use super::caller::Caller;
use super::error::ApiJson;
use super::openapi::{TenantParam, UserParam};
use super::routes::{ApiResult, ids, tenant_user};
use crate::ids::TenantId;
use crate::types::{Disconnected, RevocationRequest, Revoked};

/// Disconnects every socket of the user on every node (no recovery).
#[utoipa::path(
    delete,
    path = "/tenants/{t}/users/{u}/sockets",
    tag = "operator",
    params(TenantParam, UserParam),
    responses((status = 200, description = "Sockets disconnected", body = Disconnected)),
)]
pub async fn kick<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path((t, u)): Path<(String, String)>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    let (t, u) = tenant_user(&caller, &t, &u)?;
    let disconnected = s.operator.kick_user(&t, &u).await?;
    Ok(Json(Disconnected { disconnected }))
}

/// Refuses a user's tokens issued before `before`, or one token by `jti`, on every node,
/// and disconnects the matching live sockets.
#[utoipa::path(
    post,
    path = "/tenants/{t}/revocations",
    tag = "operator",
    params(TenantParam),
    request_body(content = RevocationRequest, example = json!({ "userId": "u42" })),
    responses((status = 200, description = "What was recorded and done", body = Revoked)),
)]
pub async fn revoke<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path(t): Path<String>,
    caller: Caller,
    ApiJson(req): ApiJson<RevocationRequest>,
) -> ApiResult<impl IntoResponse> {
    let t: TenantId = ids("tenant", &t)?;
    caller.check_tenant(&t)?;
    Ok(Json(s.operator.revoke(&t, req).await?))
}
