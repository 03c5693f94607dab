//! The export routes (§12), for service and super_admin callers: a tenant's webhook, its
//! dead letters and delivery status, and the pull API over the same events. One function,
//! [`routes`], that the `/api/v1` router merges.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use socketioxide::adapter::Adapter;

use super::ApiState;
use super::caller::Caller;
use super::error::ApiJson;
use super::routes::{ApiResult, ids};
use crate::error::AppError;
use crate::ids::TenantId;
use crate::types::WebhookRequest;

/// Events per pull page or dead-letter read when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;

/// Every export route, relative to `/api/v1`.
pub fn routes<A: Adapter>() -> Router<ApiState<A>> {
    Router::new()
        .route(
            "/tenants/{t}/webhook",
            get(webhook::<A>)
                .put(put_webhook::<A>)
                .delete(delete_webhook::<A>),
        )
        .route("/tenants/{t}/webhook/status", get(status::<A>))
        .route("/tenants/{t}/webhook/dead-letters", get(dead_letters::<A>))
        .route(
            "/tenants/{t}/webhook/dead-letters/replay",
            post(replay::<A>),
        )
        .route("/tenants/{t}/events", get(events::<A>))
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
pub async fn webhook<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path(t): Path<String>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    let t = tenant(&caller, &t)?;
    Ok(Json(s.gateway.webhook(&t).await?))
}

/// `DELETE /tenants/{t}/webhook` → 204.
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
pub async fn status<A: Adapter>(
    State(s): State<ApiState<A>>,
    Path(t): Path<String>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    let t = tenant(&caller, &t)?;
    Ok(Json(s.gateway.webhook_status(&t).await?))
}

/// `GET /tenants/{t}/webhook/dead-letters[?limit=]` → `{ events, count }`, oldest first.
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
