//! Service API authentication: a `Bearer` JWT whose role is `service` or `super_admin`
//! (the operator console's routes take a tenant `admin` too, [`Audience::Console`]).
//!
//! A service token is scoped to its own tenant (the claim is required for it); only a
//! super admin token may act on any tenant or send platform-wide alerts. An authenticated
//! call is then admitted by its tenant's [quotas](super::quota) before its body is read.
//! Every security refusal here is also kept in the node's ring of recent refusals.

use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::ApiState;
use super::error::ApiError;
use super::quota::{InFlight, QuotaKey, Reason, Refusal, Source};
use crate::auth::{Claims, Role, bearer};
use crate::client_ip::ClientIp;
use crate::error::{AppError, ErrorCode};
use crate::ids::TenantId;
use crate::metrics::{self, SecurityKind};
use crate::recent_refusals::{RecentRefusals, Seen};
use socketioxide::adapter::Adapter;

/// The authenticated backend calling the service API, admitted by its tenant's quotas.
pub struct Caller {
    pub claims: Claims,
    key: QuotaKey,
    client: Option<ClientIp>,
    user_agent: Option<String>,
    /// The route template, for the refusal ring (never the raw path: it holds ids).
    route: String,
    refusals: Arc<RecentRefusals>,
    /// Frees the tenant's in-flight slot when the handler returns.
    _permit: InFlight,
}

/// Who a route is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The service API (§5, §11): `service` and `super_admin` tokens.
    Service,
    /// The operator console: `super_admin`, or a tenant `admin` with its tenant.
    Console,
}

impl Audience {
    fn admits(self, claims: &Claims) -> bool {
        match self {
            Self::Service => matches!(claims.role, Role::Service | Role::SuperAdmin),
            Self::Console => {
                claims.role == Role::SuperAdmin
                    || (claims.role == Role::Admin && claims.tenant.is_some())
            }
        }
    }

    fn refusal(self) -> &'static str {
        match self {
            Self::Service => "the service API needs a service or super_admin token",
            Self::Console => "the console needs a super_admin or tenant admin token",
        }
    }
}

impl<A: Adapter> FromRequestParts<ApiState<A>> for Caller {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState<A>) -> Result<Self, Refusal> {
        Self::admit(parts, state, Audience::Service).await
    }
}

impl Caller {
    /// Authenticates a call for `audience`, charges its quota and checks revocation.
    pub async fn admit<A: Adapter>(
        parts: &mut Parts,
        state: &ApiState<A>,
        audience: Audience,
    ) -> Result<Self, Refusal> {
        let claims = authenticate(parts, state, audience).await?;
        let key = match (&claims.role, &claims.tenant) {
            (Role::Service | Role::Admin, Some(t)) => QuotaKey::Tenant(t.clone()),
            _ => path_tenant(parts)
                .await
                .map_or(QuotaKey::Platform, QuotaKey::Tenant),
        };
        let client = parts.extensions.get::<ClientIp>().copied();
        let user_agent = crate::client_ip::user_agent(&parts.headers);
        let source = Source {
            key: &key,
            client,
            user_agent: user_agent.as_deref(),
        };
        let permit = state.quotas.admit_or_hold(&source).await?;
        // After the quota: a flood over its quota is refused without a store round trip.
        check_revoked(parts, state, &claims).await?;
        Ok(Self {
            claims,
            key,
            client,
            user_agent,
            route: route_of(parts),
            refusals: state.refusals.clone(),
            _permit: permit,
        })
    }
}

/// The matched route template of a request.
fn route_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<MatchedPath>()
        .map_or_else(|| "api".to_owned(), |p| p.as_str().to_owned())
}

/// Keeps a refusal of the service API in the node's ring.
fn remember(
    ring: &RecentRefusals,
    parts: &Parts,
    kind: SecurityKind,
    code: ErrorCode,
    tenant: Option<&TenantId>,
) {
    ring.record(Seen {
        kind: kind.as_str(),
        what: &route_of(parts),
        code: code.as_str(),
        client: parts.extensions.get::<ClientIp>().map(|c| c.0),
        tenant,
    });
}

/// A revoked service token (§11) is refused here too; a store that cannot say is a 503.
async fn check_revoked<A: Adapter>(
    parts: &Parts,
    state: &ApiState<A>,
    claims: &Claims,
) -> Result<(), ApiError> {
    let route = parts.uri.path();
    state.operator.check(claims).await.map_err(|e| {
            if e.code == ErrorCode::Unauthorized {
                metrics::security_event(SecurityKind::AuthFailed);
                remember(&state.refusals, parts, SecurityKind::AuthFailed, e.code, claims.tenant.as_ref());
                metrics::revoked_token_refused("api");
                tracing::warn!(route, security = "auth_failed", user = %claims.sub, "revoked service API token");
            }
            ApiError::from(e)
        })
}

/// The `{t}` segment of a tenant route, when it is a valid tenant id.
async fn path_tenant(parts: &mut Parts) -> Option<TenantId> {
    let params = RawPathParams::from_request_parts(parts, &()).await.ok()?;
    params
        .iter()
        .find(|(name, _)| *name == "t")
        .and_then(|(_, raw)| raw.parse().ok())
}

async fn authenticate<A: Adapter>(
    parts: &Parts,
    state: &ApiState<A>,
    audience: Audience,
) -> Result<Claims, ApiError> {
    {
        let route = parts.uri.path().to_owned();
        let client = parts.extensions.get::<ClientIp>().map(|c| c.to_string());
        let client = client.as_deref().unwrap_or("-");
        let Some(token) = bearer(&parts.headers) else {
            metrics::security_event(SecurityKind::AuthFailed);
            remember(
                &state.refusals,
                parts,
                SecurityKind::AuthFailed,
                ErrorCode::Unauthorized,
                None,
            );
            tracing::warn!(
                route,
                client_ip = client,
                security = "auth_failed",
                "service API call without a bearer token"
            );
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "Authorization: Bearer <jwt> required",
            ));
        };
        let claims = state.verifier.verify(token).await.map_err(|e| {
            metrics::security_event(SecurityKind::AuthFailed);
            remember(&state.refusals, parts, SecurityKind::AuthFailed, e.code(), None);
            tracing::warn!(route, client_ip = client, security = "auth_failed", reason = %e, "service API token refused");
            ApiError::from(AppError::from(e))
        })?;
        if !audience.admits(&claims) {
            metrics::security_event(SecurityKind::Forbidden);
            remember(
                &state.refusals,
                parts,
                SecurityKind::Forbidden,
                ErrorCode::Forbidden,
                claims.tenant.as_ref(),
            );
            tracing::warn!(route, client_ip = client, security = "forbidden", user = %claims.sub, role = claims.role.as_str(), ?audience, "token role not allowed on this route");
            return Err(AppError::forbidden(audience.refusal()).into());
        }
        Ok(claims)
    }
}

impl Caller {
    /// Refuses (and logs) a call on another tenant than the token's.
    pub fn check_tenant(&self, t: &TenantId) -> Result<(), ApiError> {
        if self.claims.may_act_in(t) {
            return Ok(());
        }
        metrics::security_event(SecurityKind::TenantMismatch);
        self.refusals.record(Seen {
            kind: SecurityKind::TenantMismatch.as_str(),
            what: &self.route,
            code: ErrorCode::TenantMismatch.as_str(),
            client: self.client.map(|c| c.0),
            tenant: self.claims.tenant.as_ref(),
        });
        tracing::warn!(security = "tenant_mismatch", user = %self.claims.sub, tenant = ?self.claims.tenant, target = %t, "service token used on another tenant");
        Err(AppError::tenant_mismatch().into())
    }

    /// Platform-wide operations need a super admin token.
    pub fn check_platform(&self) -> Result<(), ApiError> {
        if self.claims.role == Role::SuperAdmin {
            return Ok(());
        }
        metrics::security_event(SecurityKind::Forbidden);
        tracing::warn!(security = "forbidden", user = %self.claims.sub, "platform-wide call with a tenant service token");
        Err(AppError::forbidden("platform-wide operations need a super_admin token").into())
    }

    /// Refuses a notification whose `data` is larger than the configured cap (413).
    pub fn check_data_size(
        &self,
        state: &ApiState<impl Adapter>,
        data: Option<&serde_json::Value>,
    ) -> Result<(), Refusal> {
        let max = state.max_notification_data_bytes;
        let Some(len) = data.map(super::quota::json_len).filter(|&n| n > max) else {
            return Ok(());
        };
        let source = Source {
            key: &self.key,
            client: self.client,
            user_agent: self.user_agent.as_deref(),
        };
        Err(state.quotas.refuse(
            &source,
            Reason::DataSize,
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidPayload,
            format!("notification.data: {len} bytes of JSON, more than the {max} allowed"),
        ))
    }

    pub fn name(&self) -> String {
        format!("{}:{}", self.claims.role.as_str(), self.claims.sub)
    }
}
