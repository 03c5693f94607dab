//! The emit order of one node (see [`super::Recovery::order`]), one lock per tenant shard.
//!
//! On a single node, keeping an event and handing it to the local sockets happen in one
//! step, and a recovery's replay runs while no such step is half done. One lock for the
//! whole node did that, but serialized every tenant's emits behind each other: a tenant
//! that floods the API queued every other tenant's notifications behind its own (issue 10).
//! A socket only ever recovers the streams of one tenant's rooms (and everyone's), so a
//! lock per tenant shard gives the same guarantee to each socket, and tenants in other
//! shards no longer wait. Whatever is not one tenant's (a system alert to everyone, a
//! platform role room, a recovery whose rooms span no single tenant) takes every shard, in
//! index order, so it is ordered against all of them and cannot deadlock with the rest.

use std::hash::BuildHasher;

use tokio::sync::{Mutex, MutexGuard};

use crate::rooms;

/// Enough shards that a handful of busy tenants rarely share one; each is an idle mutex.
const SHARDS: usize = 64;

pub struct EmitOrder {
    shards: Box<[Mutex<()>]>,
    hasher: std::hash::RandomState,
}

/// Held while an event is kept and handed out, or while a recovery replays.
pub struct Ordered<'a> {
    _guards: Vec<MutexGuard<'a, ()>>,
}

impl EmitOrder {
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(())).collect(),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// Waits for the order of these rooms: their tenant's shard when they all belong to
    /// one tenant, every shard otherwise (no rooms means everyone).
    pub async fn lock(&self, rooms: &[String]) -> Ordered<'_> {
        let guards = match one_tenant(rooms) {
            Some(t) => vec![self.shards[self.shard_of(t)].lock().await],
            None => {
                let mut all = Vec::with_capacity(self.shards.len());
                for shard in self.shards.iter() {
                    all.push(shard.lock().await);
                }
                all
            }
        };
        Ordered { _guards: guards }
    }

    fn shard_of(&self, tenant: &str) -> usize {
        (self.hasher.hash_one(tenant) % self.shards.len() as u64) as usize
    }
}

impl Default for EmitOrder {
    fn default() -> Self {
        Self::new()
    }
}

/// The tenant every room belongs to, if there is exactly one.
fn one_tenant(rooms: &[String]) -> Option<&str> {
    let (first, rest) = rooms.split_first()?;
    let t = rooms::tenant_of(first)?;
    rest.iter()
        .all(|r| rooms::tenant_of(r) == Some(t))
        .then_some(t)
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn rooms(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Two tenants in different shards, found by trying names.
    fn two_shards(o: &EmitOrder) -> (String, String) {
        let a = "ta".to_owned();
        let b = (0..)
            .map(|i| format!("tb{i}"))
            .find(|b| o.shard_of(b) != o.shard_of(&a))
            .unwrap();
        (a, b)
    }

    #[tokio::test]
    async fn another_tenants_emit_does_not_wait() {
        let o = EmitOrder::new();
        let (a, b) = two_shards(&o);
        let _busy = o.lock(&rooms(&[&format!("tenant:{a}:user:u1")])).await;
        assert!(
            o.lock(&rooms(&[&format!("tenant:{b}:user:u1")]))
                .now_or_never()
                .is_some(),
            "tenant {b} waited for tenant {a}"
        );
    }

    #[tokio::test]
    async fn the_same_tenant_waits_whichever_of_its_rooms() {
        let o = EmitOrder::new();
        let _busy = o.lock(&rooms(&["tenant:t1:course:c1"])).await;
        let user_and_tenant = rooms(&["tenant:t1:user:u1", "tenant:t1"]);
        assert!(o.lock(&user_and_tenant).now_or_never().is_none());
    }

    #[tokio::test]
    async fn everyone_and_mixed_rooms_wait_for_every_tenant_and_hold_them_all() {
        let o = EmitOrder::new();
        let (a, b) = two_shards(&o);
        let busy = o.lock(&rooms(&[&format!("tenant:{b}")])).await;
        for spanning in [
            rooms(&[]),
            rooms(&["role:super_admin"]),
            rooms(&[&format!("tenant:{a}"), &format!("tenant:{b}")]),
        ] {
            assert!(o.lock(&spanning).now_or_never().is_none(), "{spanning:?}");
        }
        drop(busy);
        let all = o.lock(&[]).await;
        assert!(
            o.lock(&rooms(&[&format!("tenant:{a}")]))
                .now_or_never()
                .is_none()
        );
        drop(all);
    }
}
