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
        let reserve = async |h: &Holder| ledger.reserve(h, caps).await.unwrap();
        let u = holder("conf-t1", "u1");
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let (ledger, u) = (ledger.clone(), u.clone());
                tokio::spawn(async move { ledger.reserve(&u, caps).await.unwrap() })
            })
            .collect();
        let mut held = Vec::new();
        for t in tasks {
            if t.await.unwrap().is_ok() {
                held.push(u.clone());
            }
        }
        assert_eq!(held.len(), 5, "per-user cap");
        for i in 0..3 {
            let o = holder("conf-t1", &format!("other{i}"));
            assert_eq!(reserve(&o).await, Ok(()));
            held.push(o);
        }
        let late = holder("conf-t1", "late");
        assert_eq!(reserve(&late).await, Err(LedgerRefusal::Tenant));
        assert_eq!(
            reserve(&holder("conf-t2", "u1")).await,
            Ok(()),
            "another tenant is not affected"
        );
        for h in &held {
            ledger.release(h, caps).await.unwrap();
        }
        assert_eq!(reserve(&late).await, Ok(()), "released slots are reusable");
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
