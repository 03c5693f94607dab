//! Service API authentication: a `Bearer` JWT whose role is `service` or `super_admin`.
//!
//! A service token is scoped to its own tenant (the claim is required for it); only a
//! super admin token may act on any tenant or send platform-wide alerts.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::ApiState;
use super::error::ApiError;
use crate::auth::{Claims, Role, bearer};
use crate::error::{AppError, ErrorCode};
use crate::ids::TenantId;
use crate::metrics::{self, SecurityKind};
use socketioxide::adapter::Adapter;

/// The authenticated backend calling the service API.
pub struct Caller(pub Claims);

impl<A: Adapter> FromRequestParts<ApiState<A>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState<A>) -> Result<Self, ApiError> {
        let route = parts.uri.path().to_owned();
        let Some(token) = bearer(&parts.headers) else {
            metrics::security_event(SecurityKind::AuthFailed);
            tracing::warn!(
                route,
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
            tracing::warn!(route, security = "auth_failed", reason = %e, "service API token refused");
            ApiError::from(AppError::from(e))
        })?;
        // A revoked service token (§11) is refused here too; a store that cannot say is a 503.
        state.operator.check(&claims).await.map_err(|e| {
            if e.code == ErrorCode::Unauthorized {
                metrics::security_event(SecurityKind::AuthFailed);
                metrics::revoked_token_refused("api");
                tracing::warn!(route, security = "auth_failed", user = %claims.sub, "revoked service API token");
            }
            ApiError::from(e)
        })?;
        if !matches!(claims.role, Role::Service | Role::SuperAdmin) {
            metrics::security_event(SecurityKind::Forbidden);
            tracing::warn!(route, security = "forbidden", user = %claims.sub, role = claims.role.as_str(), "service API needs a service token");
            return Err(AppError::forbidden(
                "the service API needs a service or super_admin token",
            )
            .into());
        }
        Ok(Self(claims))
    }
}

impl Caller {
    /// Refuses (and logs) a call on another tenant than the token's.
    pub fn check_tenant(&self, t: &TenantId) -> Result<(), ApiError> {
        if self.0.may_act_in(t) {
            return Ok(());
        }
        metrics::security_event(SecurityKind::TenantMismatch);
        tracing::warn!(security = "tenant_mismatch", user = %self.0.sub, tenant = ?self.0.tenant, target = %t, "service token used on another tenant");
        Err(AppError::tenant_mismatch().into())
    }

    /// Platform-wide operations need a super admin token.
    pub fn check_platform(&self) -> Result<(), ApiError> {
        if self.0.role == Role::SuperAdmin {
            return Ok(());
        }
        metrics::security_event(SecurityKind::Forbidden);
        tracing::warn!(security = "forbidden", user = %self.0.sub, "platform-wide call with a tenant service token");
        Err(AppError::forbidden("platform-wide operations need a super_admin token").into())
    }

    pub fn name(&self) -> String {
        format!("{}:{}", self.0.role.as_str(), self.0.sub)
    }
}
