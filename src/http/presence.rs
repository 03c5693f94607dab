//! The presence routes (§10), for service and super_admin callers: who is online in a
//! course, and how many (and with `?list=1` up to 1000 of whom) in a tenant.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use socketioxide::adapter::Adapter;

use super::ApiState;
use super::caller::Caller;
use super::routes::{ApiResult, ids};
use crate::error::AppError;
use crate::ids::{CourseId, TenantId};

/// `GET /tenants/{t}/courses/{c}/presence`
pub async fn course<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path((t, c)): Path<(String, String)>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    let (t, c): (TenantId, CourseId) = (ids("tenant", &t)?, ids("course", &c)?);
    caller.check_tenant(&t)?;
    Ok(Json(s.presence.course_list(&t, &c).await?))
}

#[derive(Debug, Default, Deserialize)]
pub struct TenantQuery {
    list: Option<String>,
}

/// `GET /tenants/{t}/presence[?list=1]`
pub async fn tenant<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path(t): Path<String>,
    caller: Caller,
    Query(q): Query<TenantQuery>,
) -> ApiResult<impl IntoResponse> {
    let t: TenantId = ids("tenant", &t)?;
    caller.check_tenant(&t)?;
    let list = match q.list.as_deref() {
        None | Some("0" | "false") => false,
        Some("1" | "true") => true,
        Some(_) => return Err(AppError::invalid("list: 1 or 0").into()),
    };
    Ok(Json(s.presence.tenant(&t, list).await?))
}
