//! `admin:*` events: tenant broadcasts by admins, platform alerts by super admins.

use socketioxide::adapter::Adapter;

use super::EventCx;
use crate::auth::Role;
use crate::error::AppError;
use crate::metrics::SecurityKind;
use crate::types::*;

pub async fn broadcast<A: Adapter>(
    cx: EventCx<A>,
    p: AdminBroadcastPayload,
) -> Result<Notification, AppError> {
    let c = cx.claims();
    let tenant = match (c.role, p.tenant_id.as_ref(), c.tenant.as_ref()) {
        (Role::SuperAdmin, Some(t), _) => t.clone(),
        (Role::SuperAdmin, None, Some(own)) => own.clone(),
        (Role::SuperAdmin, None, None) => {
            return Err(AppError::invalid(
                "tenantId: required for a super admin without a tenant",
            ));
        }
        (Role::Admin, named, Some(own)) => {
            if named.is_some_and(|t| t != own) {
                return Err(cx.refuse(SecurityKind::TenantMismatch, AppError::tenant_mismatch()));
            }
            own.clone()
        }
        _ => {
            return Err(cx.refuse(
                SecurityKind::Forbidden,
                AppError::forbidden("only admins may broadcast"),
            ));
        }
    };
    cx.gateway()
        .broadcast_to_tenant(&tenant, p.into_content())
        .await
}

pub async fn system_alert<A: Adapter>(
    cx: EventCx<A>,
    p: SystemAlertPayload,
) -> Result<SystemAlert, AppError> {
    if cx.claims().role != Role::SuperAdmin {
        return Err(cx.refuse(
            SecurityKind::Forbidden,
            AppError::forbidden("only super admins may send system alerts"),
        ));
    }
    cx.gateway().send_system_alert(p).await
}
