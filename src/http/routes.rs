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
use super::openapi::{CourseParam, TenantParam, UserParam};
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

/// Stores one inbox entry per recipient and delivers it live; idempotent on `notification.id`.
#[utoipa::path(
    post,
    path = "/notifications",
    tag = "notifications",
    request_body(
        content = SendNotificationRequest,
        example = json!({
            "tenantId": "acme",
            "target": { "userIds": ["u42", "u43"] },
            "notification": {
                "id": "n-2024-0001",
                "title": "Assignment graded",
                "message": "Your essay has been graded.",
                "type": "ASSIGNMENT_GRADED",
                "priority": "NORMAL",
                "data": { "assignmentId": "a7" }
            }
        }),
    ),
    responses((status = 202, description = "Stored and delivered", body = SendNotificationResponse)),
)]
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

/// `notification:new` to every socket of the tenant, live only (not stored per user).
#[utoipa::path(
    post,
    path = "/tenants/{t}/broadcast",
    tag = "notifications",
    params(TenantParam),
    request_body(
        content = BroadcastRequest,
        example = json!({
            "title": "Campus closed",
            "message": "The campus is closed on Friday.",
            "type": "ANNOUNCEMENT",
            "priority": "HIGH"
        }),
    ),
    responses((status = 202, description = "Sent to the tenant's sockets", body = BroadcastAccepted)),
)]
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
    Ok((StatusCode::ACCEPTED, Json(BroadcastAccepted { id: n.id })).into_response())
}

/// `system:alert` to every socket of every tenant (super_admin only).
#[utoipa::path(
    post,
    path = "/system/alerts",
    tag = "platform",
    request_body(
        content = SystemAlertRequest,
        example = json!({
            "title": "Maintenance",
            "message": "The platform restarts at 22:00 UTC.",
            "priority": "URGENT"
        }),
    ),
    responses((status = 202, description = "Sent to every socket", body = SystemAlert)),
)]
pub async fn system_alert<A: Adapter>(
    State(s): State<ApiState<A>>,
    caller: Caller,
    ApiJson(req): ApiJson<SystemAlertRequest>,
) -> ApiResult<impl IntoResponse> {
    caller.check_platform()?;
    let alert = s.gateway.send_system_alert(req).await?;
    Ok((StatusCode::ACCEPTED, Json(alert)))
}

/// Caches the membership; the user's live sockets join the course rooms on every node.
#[utoipa::path(
    put,
    path = "/tenants/{t}/courses/{c}/members/{u}",
    tag = "courses",
    params(TenantParam, CourseParam, UserParam),
    request_body(content = MemberRequest, example = json!({ "role": "student" })),
    responses((status = 200, description = "The membership as stored", body = Member)),
)]
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

/// Removes the membership; the user's live sockets leave the course rooms on every node.
#[utoipa::path(
    delete,
    path = "/tenants/{t}/courses/{c}/members/{u}",
    tag = "courses",
    params(TenantParam, CourseParam, UserParam),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "Not a member (NOT_FOUND)", body = ApiErrorBody),
    ),
)]
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

/// Replaces the course's whole membership.
#[utoipa::path(
    put,
    path = "/tenants/{t}/courses/{c}/members",
    tag = "courses",
    params(TenantParam, CourseParam),
    request_body(
        content = ReplaceMembersRequest,
        example = json!({
            "members": [
                { "userId": "u42", "role": "student" },
                { "userId": "t7", "role": "instructor" }
            ]
        }),
    ),
    responses((status = 200, description = "What changed", body = MembersReplaced)),
)]
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

/// `course:updated` to the course room.
#[utoipa::path(
    post,
    path = "/tenants/{t}/courses/{c}/events",
    tag = "courses",
    params(TenantParam, CourseParam),
    request_body(
        content = CourseEventRequest,
        example = json!({ "changes": { "title": "Algebra II", "published": true } }),
    ),
    responses((status = 202, description = "Sent to the course room", body = CourseUpdated)),
)]
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

/// The user's unread count.
#[utoipa::path(
    get,
    path = "/tenants/{t}/users/{u}/unread",
    tag = "notifications",
    params(TenantParam, UserParam),
    responses((status = 200, description = "Unread notifications", body = UnreadCount)),
)]
pub async fn unread<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path((t, u)): Path<(String, String)>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    let (t, u) = tenant_user(&caller, &t, &u)?;
    let unread = s.gateway.unread_count(&t, &u).await?;
    Ok(Json(UnreadCount { unread }))
}

/// Cluster-wide connection and room counts (super_admin only).
#[utoipa::path(
    get,
    path = "/stats",
    tag = "platform",
    responses((status = 200, description = "Sums over the nodes that answered", body = ClusterStats)),
)]
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
