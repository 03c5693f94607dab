//! The connection ledger: sockets per user and per tenant, counted where every node sees
//! them, so that `MAX_CONNECTIONS_PER_USER` and `MAX_CONNECTIONS_PER_TENANT` hold across a
//! cluster and under any number of simultaneous connects (§13).
//!
//! A reservation is taken before the connect goes on and is given back by dropping its
//! [`LedgerSlot`], on refusal and on disconnect alike. In memory (one node) the counts are
//! a map under a lock; in Redis ([`super::redis_connections`]) a script reserves atomically
//! and forgets the shares of nodes whose heartbeat has expired.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::StoreResult;
use crate::ids::{TenantId, UserId};

/// The caps one reservation is checked against; a tenant cap of 0 means none.
#[derive(Debug, Clone, Copy)]
pub struct LedgerCaps {
    pub per_user: usize,
    pub per_tenant: usize,
}

/// Which cap refused a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerRefusal {
    User,
    Tenant,
}

impl LedgerRefusal {
    pub fn reason(self) -> &'static str {
        match self {
            Self::User => "per-user connection cap reached",
            Self::Tenant => "per-tenant connection cap reached",
        }
    }
}

/// Who a reservation is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Holder {
    pub tenant: Option<TenantId>,
    pub user: UserId,
}

#[async_trait]
pub trait ConnectionLedger: Send + Sync + 'static {
    /// Takes one socket for `holder` if both caps allow it.
    async fn reserve(
        &self,
        holder: &Holder,
        caps: LedgerCaps,
    ) -> StoreResult<Result<(), LedgerRefusal>>;

    /// Gives back one socket taken by [`reserve`](Self::reserve) with the same caps.
    async fn release(&self, holder: &Holder, caps: LedgerCaps) -> StoreResult<()>;
}

/// A reserved socket; dropping it gives the reservation back (in a task: a release may
/// need the network, and drops happen in synchronous code).
pub struct LedgerSlot {
    ledger: Arc<dyn ConnectionLedger>,
    holder: Holder,
    caps: LedgerCaps,
}

impl LedgerSlot {
    /// Reserves a slot, or says which cap refused it.
    pub async fn take(
        ledger: &Arc<dyn ConnectionLedger>,
        holder: Holder,
        caps: LedgerCaps,
    ) -> StoreResult<Result<Self, LedgerRefusal>> {
        Ok(ledger.reserve(&holder, caps).await?.map(|()| Self {
            ledger: ledger.clone(),
            holder,
            caps,
        }))
    }
}

/// Attempts and pause between them when a release cannot reach the store.
const RELEASE_ATTEMPTS: u32 = 6;
const RELEASE_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

impl Drop for LedgerSlot {
    fn drop(&mut self) {
        let (ledger, holder, caps) = (self.ledger.clone(), self.holder.clone(), self.caps);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            for attempt in 1..=RELEASE_ATTEMPTS {
                match ledger.release(&holder, caps).await {
                    Ok(()) => return,
                    Err(e) if attempt == RELEASE_ATTEMPTS => {
                        tracing::warn!(error = %e, user = %holder.user, "connection count not released; it is corrected when this node's share expires or the user reconnects");
                    }
                    Err(_) => tokio::time::sleep(RELEASE_RETRY).await,
                }
            }
        });
    }
}

/// The single node's ledger.
#[derive(Default)]
pub struct MemoryLedger {
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    users: HashMap<Holder, usize>,
    tenants: HashMap<TenantId, usize>,
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

#[async_trait]
impl ConnectionLedger for MemoryLedger {
    async fn reserve(
        &self,
        holder: &Holder,
        caps: LedgerCaps,
    ) -> StoreResult<Result<(), LedgerRefusal>> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if c.users.get(holder).copied().unwrap_or(0) >= caps.per_user {
            return Ok(Err(LedgerRefusal::User));
        }
        let tenant = holder.tenant.as_ref().filter(|_| caps.per_tenant > 0);
        if let Some(t) = tenant {
            if c.tenants.get(t).copied().unwrap_or(0) >= caps.per_tenant {
                return Ok(Err(LedgerRefusal::Tenant));
            }
            *c.tenants.entry(t.clone()).or_default() += 1;
        }
        *c.users.entry(holder.clone()).or_default() += 1;
        Ok(Ok(()))
    }

    async fn release(&self, holder: &Holder, caps: LedgerCaps) -> StoreResult<()> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        decrement(&mut c.users, holder);
        if let Some(t) = holder.tenant.as_ref().filter(|_| caps.per_tenant > 0) {
            decrement(&mut c.tenants, t);
        }
        Ok(())
    }
}

/// The behaviour every ledger engine shares; run by each engine's tests.
pub mod conformance {
    use super::*;

    fn holder(t: &str, u: &str) -> Holder {
        Holder {
            tenant: Some(TenantId::parse(t).unwrap()),
            user: UserId::parse(u).unwrap(),
        }
    }

    /// Caps hold exactly under concurrent reservations, and released slots are reusable.
    pub async fn caps_are_exact_under_concurrency(ledger: Arc<dyn ConnectionLedger>) {
        let caps = LedgerCaps {
            per_user: 5,
            per_tenant: 8,
        };
        let u = holder("conf-t1", "u1");
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let (ledger, u) = (ledger.clone(), u.clone());
                tokio::spawn(async move { LedgerSlot::take(&ledger, u, caps).await })
            })
            .collect();
        let mut held = Vec::new();
        for t in tasks {
            if let Ok(slot) = t.await.unwrap().unwrap() {
                held.push(slot);
            }
        }
        assert_eq!(held.len(), 5, "per-user cap");
        let others: Vec<_> = (0..3)
            .map(|i| holder("conf-t1", &format!("other{i}")))
            .collect();
        for o in &others {
            held.push(
                LedgerSlot::take(&ledger, o.clone(), caps)
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        let refused = LedgerSlot::take(&ledger, holder("conf-t1", "late"), caps)
            .await
            .unwrap();
        assert_eq!(refused.err(), Some(LedgerRefusal::Tenant));
        assert!(
            LedgerSlot::take(&ledger, holder("conf-t2", "u1"), caps)
                .await
                .unwrap()
                .is_ok(),
            "another tenant is not affected"
        );
        drop(held);
        // Releases run in tasks: wait until the user can connect again.
        for _ in 0..100 {
            if LedgerSlot::take(&ledger, holder("conf-t1", "late"), caps)
                .await
                .unwrap()
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("released slots were not given back");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_ledger_is_exact_under_concurrency() {
        conformance::caps_are_exact_under_concurrency(Arc::new(MemoryLedger::default())).await;
    }
}
