//! Presence of the single node: a map per scope under one lock. The node is the only
//! holder, so a join or leave from the tracker is a cluster-wide flip by itself.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    Announced, Change, Departed, PresenceStore, PresentUser, Rules, Scope, Settled, Upkeep,
    Verdict, decide,
};
use crate::ids::UserId;
use crate::store::StoreResult;

#[derive(Default)]
struct ScopeState {
    online: HashMap<UserId, (String, u64)>,
    announced: HashMap<UserId, (bool, u64)>,
}

impl ScopeState {
    fn is_empty(&self) -> bool {
        self.online.is_empty() && self.announced.is_empty()
    }

    fn decide(&mut self, scope: &Scope, user: &UserId, online: bool, rules: Rules) -> Verdict {
        if !scope.announces() {
            return Verdict::Quiet;
        }
        let last: Announced = self.announced.get(user).copied();
        let (verdict, keep) = decide(last, online, rules);
        match keep {
            Some(a) => self.announced.insert(user.clone(), a),
            None => self.announced.remove(user),
        };
        verdict
    }
}

#[derive(Default)]
pub struct MemoryPresence {
    scopes: Mutex<HashMap<Scope, ScopeState>>,
}

impl MemoryPresence {
    fn with<R>(&self, scope: &Scope, f: impl FnOnce(&mut ScopeState) -> R) -> R {
        let mut scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        let state = scopes.entry(scope.clone()).or_default();
        let r = f(state);
        if state.is_empty() {
            scopes.remove(scope);
        }
        r
    }
}

#[async_trait]
impl PresenceStore for MemoryPresence {
    async fn join(
        &self,
        scope: &Scope,
        user: &UserId,
        role: &str,
        rules: Rules,
    ) -> StoreResult<Change> {
        Ok(self.with(scope, |s| {
            if s.online.contains_key(user) {
                return Change::NONE;
            }
            s.online
                .insert(user.clone(), (role.to_owned(), rules.now_ms));
            Change {
                flipped: true,
                verdict: s.decide(scope, user, true, rules),
            }
        }))
    }

    async fn leave(&self, scope: &Scope, user: &UserId, rules: Rules) -> StoreResult<Change> {
        Ok(self.with(scope, |s| {
            if s.online.remove(user).is_none() {
                return Change::NONE;
            }
            Change {
                flipped: true,
                verdict: s.decide(scope, user, false, rules),
            }
        }))
    }

    async fn set_role(&self, scope: &Scope, user: &UserId, role: &str) -> StoreResult<()> {
        self.with(scope, |s| {
            if let Some((held, _)) = s.online.get_mut(user) {
                role.clone_into(held);
            }
        });
        Ok(())
    }

    async fn settle(&self, scope: &Scope, user: &UserId, rules: Rules) -> StoreResult<Settled> {
        Ok(self.with(scope, |s| {
            let online = s.online.contains_key(user);
            Settled {
                online,
                verdict: s.decide(scope, user, online, rules),
            }
        }))
    }

    async fn count(&self, scope: &Scope) -> StoreResult<u64> {
        let scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        Ok(scopes.get(scope).map_or(0, |s| s.online.len() as u64))
    }

    async fn list(&self, scope: &Scope, limit: usize) -> StoreResult<Vec<PresentUser>> {
        let scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        Ok(scopes.get(scope).map_or_else(Vec::new, |s| {
            s.online
                .iter()
                .take(limit)
                .map(|(user, (role, since_ms))| PresentUser {
                    user: user.clone(),
                    role: role.clone(),
                    since_ms: *since_ms,
                })
                .collect()
        }))
    }

    async fn upkeep(&self, _rules: Rules) -> StoreResult<Upkeep> {
        Ok(Upkeep::default())
    }

    async fn withdraw(&self, _rules: Rules) -> StoreResult<Vec<Departed>> {
        self.scopes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(vec![])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn the_memory_engine_passes_the_presence_suite() {
        super::super::conformance::run_single(Arc::new(MemoryPresence::default())).await;
    }
}
