//! Per-tenant storage accounting: what `TENANT_STORAGE_QUOTA` is checked against and what
//! `lms_tenant_storage_bytes` / `lms_tenant_storage_entries` report.
//!
//! A tenant's usage is an estimate: the last sweep's measure of what the store holds for the
//! tenant, plus what writes added since. It cannot be a counter kept by the store's scripts:
//! on a Redis Cluster a tenant's keys span every slot and a script touches one. The sweep
//! replaces the estimate with a fresh measure every `RETENTION_SWEEP_INTERVAL`, so between
//! two sweeps it is high by what retention freed since the last one (nothing is subtracted
//! when an entry expires), and low by what was written while the sweep itself was scanning.
//!
//! Bytes are counted the way Redis holds them, from the figures of the storage bench
//! (docs/benchmarks.md): a body is its stored JSON plus [`BODY_KEY_BYTES`], and each inbox
//! entry (a reference) [`REFERENCE_BYTES`]; entries are inbox entries.

use std::collections::HashMap;
use std::ops::AddAssign;

use async_trait::async_trait;

use super::redis_inbox::StoredBody;
use super::*;

/// What one inbox entry (an id in the order, perhaps a status) costs in Redis.
pub const REFERENCE_BYTES: u64 = 105;
/// What a body key costs in Redis beyond its JSON.
pub const BODY_KEY_BYTES: u64 = 80;

/// Bytes and entries a tenant keeps in the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub entries: u64,
}

impl Usage {
    /// One stored body of `json_len` bytes of JSON.
    pub fn body(json_len: usize) -> Self {
        Self {
            bytes: json_len as u64 + BODY_KEY_BYTES,
            entries: 0,
        }
    }

    /// `n` inbox entries.
    pub fn references(n: u64) -> Self {
        Self {
            bytes: n * REFERENCE_BYTES,
            entries: n,
        }
    }

    /// The body of `n` as the store keeps it (without what the keys say).
    pub fn of_body(n: &Notification) -> Self {
        Self::body(serde_json::to_string(&StoredBody::of(n)).map_or(0, |j| j.len()))
    }
}

impl AddAssign for Usage {
    fn add_assign(&mut self, other: Self) {
        self.bytes += other.bytes;
        self.entries += other.entries;
    }
}

/// Per-tenant usage, readable by every node.
#[async_trait]
pub trait UsageStore: Send + Sync + 'static {
    /// The tenant's estimate: the last measure plus what was added since.
    async fn usage(&self, t: &TenantId) -> StoreResult<Usage>;
    /// Adds what a write stored (the gateway calls it once per stored notification).
    async fn add_usage(&self, t: &TenantId, add: Usage) -> StoreResult<()>;
    /// Measures every tenant's data anew and makes it the estimate (tenants with nothing
    /// left drop to zero); returns the measures, for the gauges. Part of the sweep.
    async fn measure_usage(&self) -> StoreResult<HashMap<TenantId, Usage>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_costs_its_json_plus_its_key_and_references_cost_per_entry() {
        assert_eq!(Usage::body(700).bytes, 780);
        let mut u = Usage::body(100);
        u += Usage::references(3);
        assert_eq!(
            u,
            Usage {
                bytes: 180 + 315,
                entries: 3
            }
        );
    }
}
