//! The export routes (§12), for service and super_admin callers: a tenant's webhook, its
//! dead letters and delivery status, and the pull API over the same events. Each handler is
//! in the `service_api!` table of [`super::openapi`], which routes and documents it.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use socketioxide::adapter::Adapter;

use super::ApiState;
use super::caller::Caller;
use super::error::ApiJson;
use super::openapi::TenantParam;
use super::routes::{ApiResult, ids};
use crate::error::AppError;
use crate::ids::TenantId;
use crate::types::{
    ApiErrorBody, DeadLetters, EventsPage, Replayed, WebhookRequest, WebhookStatus, WebhookView,
};

/// Events per pull page or dead-letter read when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;

/// The `limit` query parameter, as the document names it.
#[derive(utoipa::IntoParams)]
#[expect(dead_code, reason = "read by the document only")]
#[into_params(parameter_in = Query)]
pub(super) struct LimitParam {
    /// Most events in the answer (1-1000, default 100).
    #[param(example = "10")]
    pub limit: Option<String>,
}

/// The pull API's query parameters, as the document names them.
#[derive(utoipa::IntoParams)]
#[expect(dead_code, reason = "read by the document only")]
#[into_params(parameter_in = Query)]
pub(super) struct PullParams {
    /// The `next` of the previous page (`<ms>-<seq>`); absent: from the oldest kept event.
    #[param(example = "0-0")]
    pub after: Option<String>,
    /// Most events in the answer (1-1000, default 100).
    #[param(example = "10")]
    pub limit: Option<String>,
}

/// The `{t}` of a route, checked against the caller's tenant.
fn tenant(caller: &Caller, t: &str) -> ApiResult<TenantId> {
    let t: TenantId = ids("tenant", t)?;
    caller.check_tenant(&t)?;
    Ok(t)
}

/// The query of the export routes: `after` (pull only) and `limit`, read by hand so a bad
/// value gets the API's error envelope.
#[derive(Debug, Default, PartialEq, Eq)]
struct Page {
    after: Option<String>,
    limit: usize,
}

/// The `{t}` (checked against the caller) and the query of a paged route.
fn tenant_page(
    caller: &Caller,
    t: &str,
    query: Option<&str>,
    takes_after: bool,
) -> ApiResult<(TenantId, Page)> {
    let t = tenant(caller, t)?;
    Ok((t, page(query, takes_after)?))
}

fn page(query: Option<&str>, takes_after: bool) -> Result<Page, AppError> {
    let mut page = Page {
        after: None,
        limit: DEFAULT_LIMIT,
    };
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("after", v) if takes_after => {
                crate::export::parse_cursor(v)?;
                page.after = Some(v.to_owned());
            }
            ("limit", v) => {
                page.limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=crate::service::MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        AppError::invalid(format!("limit: 1 to {}", crate::service::MAX_PAGE))
                    })?;
            }
            _ => {}
        }
    }
    Ok(page)
}

/// `PUT /tenants/{t}/webhook` `{ url, secret, events }` → `{ url, events }`.
#[utoipa::path(
    put,
    path = "/tenants/{t}/webhook",
    tag = "export",
    params(TenantParam),
    request_body(content = WebhookRequest, example = json!({
        "url": "https://lms.example.edu/hooks/realtime",
        "secret": "3f9c2b1e7d6a5f4e3d2c1b0a99887766",
        "events": ["progress", "notification:read"]
    })),
    responses((status = 200, description = "The webhook as stored, without its secret", body = WebhookView)),
)]
pub async fn put_webhook<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path(t): Path<String>,
    caller: Caller,
    ApiJson(req): ApiJson<WebhookRequest>,
) -> ApiResult<impl IntoResponse> {
    let t = tenant(&caller, &t)?;
    let view = s.gateway.put_webhook(&t, req).await?;
    tracing::info!(tenant = %t, by = caller.name(), "webhook set through the API");
    Ok(Json(view))
}

/// `GET /tenants/{t}/webhook` → `{ url, events }` (never the secret).
#[utoipa::path(
    get,
    path = "/tenants/{t}/webhook",
    tag = "export",
    params(TenantParam),
    responses(
        (status = 200, description = "The webhook, without its secret", body = WebhookView),
        (status = 404, description = "The tenant has no webhook", body = ApiErrorBody),
    ),
)]
pub async fn webhook<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path(t): Path<String>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    let t = tenant(&caller, &t)?;
    Ok(Json(s.gateway.webhook(&t).await?))
}

/// `DELETE /tenants/{t}/webhook` → 204.
#[utoipa::path(
    delete,
    path = "/tenants/{t}/webhook",
    tag = "export",
    params(TenantParam),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "The tenant has no webhook", body = ApiErrorBody),
    ),
)]
pub async fn delete_webhook<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path(t): Path<String>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    let t = tenant(&caller, &t)?;
    s.gateway.delete_webhook(&t).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /tenants/{t}/webhook/status` → `{ configured, lagSeconds, pending, deadLetters }`.
#[utoipa::path(
    get,
    path = "/tenants/{t}/webhook/status",
    tag = "export",
    params(TenantParam),
    responses((status = 200, description = "Delivery lag, pending events and dead letters", body = WebhookStatus)),
)]
pub async fn status<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path(t): Path<String>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    let t = tenant(&caller, &t)?;
    Ok(Json(s.gateway.webhook_status(&t).await?))
}

/// `GET /tenants/{t}/webhook/dead-letters[?limit=]` → `{ events, count }`, oldest first.
#[utoipa::path(
    get,
    path = "/tenants/{t}/webhook/dead-letters",
    tag = "export",
    params(TenantParam, LimitParam),
    responses((status = 200, description = "Dead letters, oldest first", body = DeadLetters)),
)]
pub async fn dead_letters<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path(t): Path<String>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<impl IntoResponse> {
    let (t, page) = tenant_page(&caller, &t, query.as_deref(), false)?;
    Ok(Json(s.gateway.dead_letters(&t, page.limit).await?))
}

/// `POST /tenants/{t}/webhook/dead-letters/replay[?limit=]` → `{ replayed }`.
#[utoipa::path(
    post,
    path = "/tenants/{t}/webhook/dead-letters/replay",
    tag = "export",
    params(TenantParam, LimitParam),
    responses((status = 200, description = "Dead letters queued again", body = Replayed)),
)]
pub async fn replay<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path(t): Path<String>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<impl IntoResponse> {
    let (t, page) = tenant_page(&caller, &t, query.as_deref(), false)?;
    Ok(Json(s.gateway.replay_dead_letters(&t, page.limit).await?))
}

/// `GET /tenants/{t}/events[?after=<cursor>&limit=]` → `{ events, next }`.
#[utoipa::path(
    get,
    path = "/tenants/{t}/events",
    tag = "export",
    params(TenantParam, PullParams),
    responses((status = 200, description = "A page of exported events and the next cursor", body = EventsPage)),
)]
pub async fn events<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path(t): Path<String>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<impl IntoResponse> {
    let (t, page) = tenant_page(&caller, &t, query.as_deref(), true)?;
    Ok(Json(
        s.gateway
            .exported_events(&t, page.after.as_deref(), page.limit)
            .await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_query_takes_a_cursor_and_a_bounded_limit_and_refuses_the_rest() {
        assert_eq!(page(None, true).unwrap().limit, DEFAULT_LIMIT);
        let p = page(Some("after=17-2&limit=5"), true).unwrap();
        assert_eq!((p.after.as_deref(), p.limit), (Some("17-2"), 5));
        assert!(page(Some("after=nope"), true).is_err());
        assert!(page(Some("limit=0"), true).is_err());
        assert!(page(Some("limit=100000"), true).is_err());
        assert!(page(Some("limit=x"), false).is_err());
        assert_eq!(page(Some("after=x"), false).unwrap().after, None);
    }
}
