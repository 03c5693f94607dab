//! The service API routes (§5): each parses its input, checks the caller's scope and calls
//! one method of the [`Gateway`](crate::service::Gateway).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::quota::Refusal;
use socketioxide::adapter::Adapter;

use super::ApiState;
use super::caller::Caller;
use super::error::{ApiError, ApiJson};
use crate::error::{AppError, ErrorCode};
use crate::ids::{CourseId, TenantId, UserId};
use crate::types::*;

pub(super) type ApiResult<T> = Result<T, ApiError>;
/// For routes that may also answer a quota refusal.
type QuotaResult = Result<Response, Refusal>;

/// The `{t}` and `{u}` of a user route, checked against the caller's tenant.
pub(super) fn tenant_user(caller: &Caller, t: &str, u: &str) -> ApiResult<(TenantId, UserId)> {
    let (t, u): (TenantId, UserId) = (ids("tenant", t)?, ids("user", u)?);
    caller.check_tenant(&t)?;
    Ok((t, u))
}

/// Path segments are ids: parsed like any other id, so a bad one is a 400, not a room name.
pub(super) fn ids<T: std::str::FromStr<Err = crate::ids::IdError>>(
    field: &str,
    raw: &str,
) -> ApiResult<T> {
    raw.parse::<T>().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidPayload,
            format!("{field}: {e}"),
        )
    })
}

pub async fn send_notification<A: Adapter>(
    State(s): State<ApiState<A>>,
    caller: Caller,
    ApiJson(req): ApiJson<SendNotificationRequest>,
) -> QuotaResult {
    caller.check_tenant(&req.tenant_id)?;
    caller.check_data_size(&s, req.notification.data.as_ref())?;
    let recipients = req.target.into_recipients()?;
    let res = s
        .gateway
        .send_notification(&req.tenant_id, recipients, req.notification)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(res)).into_response())
}

pub async fn broadcast<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path(t): Path<String>,
    caller: Caller,
    ApiJson(req): ApiJson<BroadcastRequest>,
) -> QuotaResult {
    let t: TenantId = ids("tenant", &t)?;
    caller.check_tenant(&t)?;
    caller.check_data_size(&s, req.data.as_ref())?;
    let n = s
        .gateway
        .broadcast_to_tenant(&t, req.into_content())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "id": n.id })),
    )
        .into_response())
}

pub async fn system_alert<A: Adapter>(
    State(s): State<ApiState<A>>,
    caller: Caller,
    ApiJson(req): ApiJson<SystemAlertRequest>,
) -> ApiResult<impl IntoResponse> {
    caller.check_platform()?;
    let alert = s.gateway.send_system_alert(req).await?;
    Ok((StatusCode::ACCEPTED, Json(alert)))
}

pub async fn set_member<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path((t, c, u)): Path<(String, String, String)>,
    caller: Caller,
    ApiJson(req): ApiJson<MemberRequest>,
) -> ApiResult<impl IntoResponse> {
    let (t, c, u): (TenantId, CourseId, UserId) =
        (ids("tenant", &t)?, ids("course", &c)?, ids("user", &u)?);
    caller.check_tenant(&t)?;
    s.gateway.set_course_member(&t, &c, &u, req.role).await?;
    Ok(Json(Member {
        user_id: u,
        role: req.role,
    }))
}

pub async fn remove_member<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path((t, c, u)): Path<(String, String, String)>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    let (t, c, u): (TenantId, CourseId, UserId) =
        (ids("tenant", &t)?, ids("course", &c)?, ids("user", &u)?);
    caller.check_tenant(&t)?;
    s.gateway.remove_course_member(&t, &c, &u).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn replace_members<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path((t, c)): Path<(String, String)>,
    caller: Caller,
    ApiJson(req): ApiJson<ReplaceMembersRequest>,
) -> ApiResult<impl IntoResponse> {
    let (t, c): (TenantId, CourseId) = (ids("tenant", &t)?, ids("course", &c)?);
    caller.check_tenant(&t)?;
    let res = s
        .gateway
        .replace_course_members(&t, &c, req.members)
        .await?;
    Ok(Json(res))
}

pub async fn course_event<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path((t, c)): Path<(String, String)>,
    caller: Caller,
    ApiJson(req): ApiJson<CourseEventRequest>,
) -> ApiResult<impl IntoResponse> {
    let (t, c): (TenantId, CourseId) = (ids("tenant", &t)?, ids("course", &c)?);
    caller.check_tenant(&t)?;
    let event = s
        .gateway
        .publish_course_update(&t, &c, req.changes, caller.name())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(event)))
}

pub async fn unread<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path((t, u)): Path<(String, String)>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    let (t, u) = tenant_user(&caller, &t, &u)?;
    let unread = s.gateway.unread_count(&t, &u).await?;
    Ok(Json(UnreadCount { unread }))
}

pub async fn stats<A: Adapter>(
    State(s): State<ApiState<A>>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    caller.check_platform()?;
    Ok(Json(s.gateway.stats().await))
}

pub async fn not_found() -> ApiError {
    AppError::not_found("no such route").into()
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::InvalidPayload,
        "method not allowed on this route",
    )
}
