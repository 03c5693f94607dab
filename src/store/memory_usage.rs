//! Per-tenant storage accounting in memory ([`UsageStore`]): the same estimate as on Redis
//! (`usage`), measured from the inboxes by the sweep.

use std::collections::HashMap;

use async_trait::async_trait;

use super::memory::MemoryStore;
use super::memory_inbox::measure;
use super::usage::{Usage, UsageStore};
use super::*;

#[async_trait]
impl UsageStore for MemoryStore {
    async fn usage(&self, t: &TenantId) -> StoreResult<Usage> {
        Ok(self.usage().get(t).copied().unwrap_or_default())
    }

    async fn add_usage(&self, t: &TenantId, add: Usage) -> StoreResult<()> {
        *self.usage().entry(t.clone()).or_default() += add;
        Ok(())
    }

    async fn measure_usage(&self) -> StoreResult<HashMap<TenantId, Usage>> {
        let measured = measure(&self.inboxes());
        self.usage().clone_from(&measured);
        Ok(measured)
    }
}
