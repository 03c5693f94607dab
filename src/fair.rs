//! Fair sharing of the store between tenants (§13).
//!
//! A rate limit bounds how many calls a tenant makes, but one call may fan out to a
//! thousand inbox writes. Without a bound on how many of those are outstanding at once, a
//! noisy tenant fills Redis's queue (or this node's executor) and every other tenant's
//! write waits behind it. Each tenant therefore gets at most `TENANT_STORE_CONCURRENCY`
//! store writes in flight per node; the rest wait in that tenant's own line, not in
//! everyone's. And since a line only orders the work, not its amount, each tenant also has
//! a budget of stored recipients per second ([`RecipientBudget`]): a call that would
//! exceed it is refused with `RATE_LIMITED` before anything is stored.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

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

/// Each tenant's budget of stored notification recipients (a token bucket per tenant).
pub struct RecipientBudget {
    limiter: DefaultKeyedRateLimiter<TenantId>,
    burst: NonZeroU32,
}

impl RecipientBudget {
    pub fn new(per_sec: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_sec.max(1)).expect("max(1)");
        let burst = NonZeroU32::new(burst.max(per_sec).max(1)).expect("max(1)");
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            burst,
        }
    }

    /// Charges `recipients` to the tenant, or says in how many seconds to retry. A call
    /// larger than the whole burst is charged the burst (it needs a full bucket).
    pub fn charge(&self, tenant: &TenantId, recipients: usize) -> Result<(), u64> {
        let n = u32::try_from(recipients)
            .unwrap_or(u32::MAX)
            .clamp(1, self.burst.get());
        let n = NonZeroU32::new(n).expect("clamped to at least 1");
        match self.limiter.check_key_n(tenant, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
            }
            Err(_) => Err(1),
        }
    }
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

    #[test]
    fn a_tenant_past_its_recipient_budget_is_refused_and_another_is_not() {
        let budget = RecipientBudget::new(100, 300);
        assert!(budget.charge(&t("noisy"), 250).is_ok());
        let retry = budget.charge(&t("noisy"), 100).unwrap_err();
        assert!((1..=2).contains(&retry), "{retry}");
        assert!(budget.charge(&t("quiet"), 300).is_ok());
        assert!(
            budget.charge(&t("big"), 10_000).is_ok(),
            "a call over the burst takes the full bucket"
        );
        assert!(budget.charge(&t("big"), 1).is_err());
    }
}
