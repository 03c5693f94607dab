//! The operator routes (§11): kick a user's sockets, revoke tokens. Each checks the
//! caller's tenant against the path and calls the [`Operator`](crate::operator::Operator).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use socketioxide::adapter::Adapter;

use super::ApiState;
use super::caller::Caller;
use super::error::ApiJson;
use super::routes::{ApiResult, ids, tenant_user};
use crate::ids::TenantId;
use crate::types::{Disconnected, RevocationRequest};

/// `DELETE /tenants/{t}/users/{u}/sockets`
pub async fn kick<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path((t, u)): Path<(String, String)>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    let (t, u) = tenant_user(&caller, &t, &u)?;
    let disconnected = s.operator.kick_user(&t, &u).await?;
    Ok(Json(Disconnected { disconnected }))
}

/// `POST /tenants/{t}/revocations`
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
