//! The presence routes (§10), for service and super_admin callers: who is online in a
//! course, and how many (and with `?list=1` up to 1000 of whom) in a tenant.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::IntoResponse;
use socketioxide::adapter::Adapter;

use super::ApiState;
use super::caller::Caller;
use super::openapi::{CourseParam, TenantParam};
use super::routes::{ApiResult, ids};
use crate::error::AppError;
use crate::ids::{CourseId, TenantId};
use crate::types::{CoursePresence, TenantPresence};

/// Who is online in a course.
#[utoipa::path(
    get,
    path = "/tenants/{t}/courses/{c}/presence",
    operation_id = "course_presence",
    tag = "presence",
    params(TenantParam, CourseParam),
    responses((status = 200, description = "The course's online users", body = CoursePresence)),
)]
pub async fn course<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path((t, c)): Path<(String, String)>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    let (t, c): (TenantId, CourseId) = (ids("tenant", &t)?, ids("course", &c)?);
    caller.check_tenant(&t)?;
    Ok(Json(s.presence.course_list(&t, &c).await?))
}

/// `?list=`: `1`/`true` lists, `0`/`false` or absent does not; anything else is refused.
/// Read by hand so that a bad query gets the API's error envelope, like any other input.
fn wants_list(query: Option<&str>) -> Result<bool, AppError> {
    let mut list = false;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("list", "1" | "true") => list = true,
            ("list", "0" | "false") => list = false,
            ("list", _) => return Err(AppError::invalid("list: 1 or 0")),
            _ => {}
        }
    }
    Ok(list)
}

/// How many users of the tenant are online, and with `?list=1` up to 1000 of whom.
#[utoipa::path(
    get,
    path = "/tenants/{t}/presence",
    operation_id = "tenant_presence",
    tag = "presence",
    params(
        TenantParam,
        ("list" = Option<String>, Query, description = "`1` or `true` lists the users", example = "1"),
    ),
    responses((status = 200, description = "The tenant's online count", body = TenantPresence)),
)]
pub async fn tenant<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path(t): Path<String>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<impl IntoResponse> {
    let t: TenantId = ids("tenant", &t)?;
    caller.check_tenant(&t)?;
    let list = wants_list(query.as_deref())?;
    Ok(Json(s.presence.tenant(&t, list).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_list_1_or_true_lists_and_a_bad_value_is_refused() {
        for (q, want) in [
            (None, false),
            (Some("list=1"), true),
            (Some("list=true"), true),
            (Some("list=0"), false),
            (Some("other=x&list=1"), true),
            (Some(""), false),
        ] {
            assert_eq!(wants_list(q).unwrap(), want, "{q:?}");
        }
        assert!(wants_list(Some("list=yes")).is_err());
        assert!(wants_list(Some("list")).is_err());
    }
}
