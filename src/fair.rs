//! Fair sharing of the store between tenants (§13).
//!
//! A rate limit bounds how many calls a tenant makes, but one call may fan out to a
//! thousand inbox writes. Without a bound on how many of those are outstanding at once, a
//! noisy tenant fills Redis's queue (or this node's executor) and every other tenant's
//! write waits behind it. Each tenant therefore gets at most `TENANT_STORE_CONCURRENCY`
//! store writes in flight per node; the rest wait in that tenant's own line, not in
//! everyone's. And since a line only orders the work, not its amount, each tenant also has
//! a budget of stored recipients per second for the whole cluster (a
//! [`crate::tenant_buckets::TenantBuckets`]): a call that would exceed it is refused with
//! `RATE_LIMITED` before anything is stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ids::TenantId;

/// Tenants whose idle lines are forgotten once the map grows past this.
const TIDY_ABOVE: usize = 1_024;

/// One line of store writes per tenant.
pub struct TenantLines {
    per_tenant: usize,
    lines: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
}

impl TenantLines {
    pub fn new(per_tenant: usize) -> Self {
        Self {
            per_tenant: per_tenant.max(1),
            lines: Mutex::default(),
        }
    }

    /// Waits for one of the tenant's write slots; it is given back when the permit drops.
    pub async fn acquire(&self, tenant: &TenantId) -> OwnedSemaphorePermit {
        let line = {
            let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
            if lines.len() > TIDY_ABOVE {
                let full = self.per_tenant;
                lines.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < full);
            }
            lines
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
                .clone()
        };
        line.acquire_owned()
            .await
            .expect("a tenant's line is never closed")
    }
}

/// The settings of a node's fair sharing between tenants.
#[derive(Debug, Clone, Copy)]
pub struct FairShare {
    pub store_concurrency: usize,
    pub recipients_per_sec: u32,
    pub recipients_burst: u32,
    /// Bytes a tenant may keep in the store (`TENANT_STORAGE_QUOTA`); `None`: no quota.
    pub storage_quota: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    #[tokio::test]
    async fn a_tenant_past_its_share_waits_and_another_tenant_does_not() {
        let lines = TenantLines::new(2);
        let _a = lines.acquire(&t("noisy")).await;
        let _b = lines.acquire(&t("noisy")).await;
        let (noisy, quiet) = (t("noisy"), t("quiet"));
        let third = tokio::time::timeout(Duration::from_millis(50), lines.acquire(&noisy));
        assert!(
            third.await.is_err(),
            "the noisy tenant waits in its own line"
        );
        let other = tokio::time::timeout(Duration::from_millis(50), lines.acquire(&quiet));
        assert!(other.await.is_ok(), "another tenant does not");
    }
}
