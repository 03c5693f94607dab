//! Per-tenant storage quotas (`TENANT_STORAGE_QUOTA`): a tenant whose estimated usage
//! (`store::usage`) reached its quota has its stored notifications refused with
//! `RATE_LIMITED` / 429, nothing stored, while other tenants go on; what a send stored is
//! added to the estimate.

use socketioxide::adapter::Adapter;

use super::Gateway;
use crate::error::{AppError, ErrorCode};
use crate::ids::TenantId;
use crate::metrics;
use crate::store::Fanout;
use crate::store::usage::Usage;

impl<A: Adapter> Gateway<A> {
    /// Refuses a stored notification of a tenant at or above its quota.
    pub(super) async fn check_storage_quota(&self, t: &TenantId) -> Result<(), AppError> {
        let Some(quota) = self.inner.storage_quota else {
            return Ok(());
        };
        let used = self.inner.store.usage(t).await?;
        if used.bytes < quota {
            return Ok(());
        }
        metrics::api_refused("storage_quota");
        tracing::warn!(
            tenant = %t,
            stored_bytes = used.bytes,
            quota,
            "stored notification refused: the tenant's storage quota is used up"
        );
        Err(AppError::new(
            ErrorCode::RateLimited,
            format!(
                "this tenant's storage quota is used up ({} of {quota} bytes stored, \
                 TENANT_STORAGE_QUOTA); stored notifications are refused until retention \
                 frees space",
                used.bytes
            ),
        ))
    }

    /// Adds what one send stored to its tenant's estimate: the body when this send stored
    /// it, and one reference per recipient inserted. A failure is logged, not returned:
    /// the notification is stored, and the next sweep measures it anyway.
    pub(super) async fn account_stored(&self, fanout: &Fanout, inserted: u64) {
        let mut add = Usage::references(inserted);
        if !fanout.retry {
            add += Usage::of_body(&fanout.body);
        }
        if add == Usage::default() {
            return;
        }
        let t = &fanout.body.tenant_id;
        if let Err(e) = self.inner.store.add_usage(t, add).await {
            tracing::warn!(tenant = %t, error = %e, "storage estimate not updated; the next sweep measures it");
        }
    }
}
