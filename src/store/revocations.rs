//! Token revocations (§11): which tokens are refused before they expire, seen by every
//! node.
//!
//! Two kinds: every token of a user issued at or before a time (`iat <= before`; a token
//! without `iat` counts as issued before), and one token by its `jti`. A record only has
//! to outlive the tokens it refuses, so each is kept for the longest accepted token
//! lifetime and then forgotten: the store stays bounded. The check runs on every connect
//! and refresh, so an engine answers it in one round trip at most. In memory for one node
//! (this module), in Redis for a cluster ([`super::redis_revocations`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::StoreResult;
use crate::ids::{TenantId, TokenId, UserId};

/// What a check looks at: the verified claims that revocations can name.
#[derive(Debug, Clone, Copy)]
pub struct TokenFacts<'a> {
    pub tenant: &'a TenantId,
    pub user: &'a UserId,
    pub iat: Option<u64>,
    pub jti: Option<&'a TokenId>,
}

/// Whether a user revocation recorded as `before` refuses a token issued at `iat`.
pub fn issued_before(iat: Option<u64>, before: u64) -> bool {
    iat.is_none_or(|iat| iat <= before)
}

#[async_trait]
pub trait RevocationStore: Send + Sync + 'static {
    /// Refuses the tokens of `user` issued at or before `before` (seconds since the
    /// epoch), for `keep`. A later call with an earlier `before` never narrows it.
    async fn revoke_user(
        &self,
        t: &TenantId,
        u: &UserId,
        before: u64,
        keep: Duration,
    ) -> StoreResult<()>;

    /// Refuses the token with this `jti`, for `keep`.
    async fn revoke_token(&self, t: &TenantId, jti: &TokenId, keep: Duration) -> StoreResult<()>;

    /// Whether a token with these facts is revoked.
    async fn is_revoked(&self, token: TokenFacts<'_>) -> StoreResult<bool>;
}

/// Records above which the memory engine sweeps expired ones on the next write.
const SWEEP_ABOVE: usize = 10_000;

/// The single node's revocations.
#[derive(Default)]
pub struct MemoryRevocations {
    inner: Mutex<Records>,
}

#[derive(Default)]
struct Records {
    users: HashMap<(TenantId, UserId), (u64, Instant)>,
    tokens: HashMap<(TenantId, TokenId), Instant>,
}

impl Records {
    fn sweep(&mut self, now: Instant) {
        if self.users.len() + self.tokens.len() > SWEEP_ABOVE {
            self.users.retain(|_, (_, until)| *until > now);
            self.tokens.retain(|_, until| *until > now);
        }
    }
}

#[async_trait]
impl RevocationStore for MemoryRevocations {
    async fn revoke_user(
        &self,
        t: &TenantId,
        u: &UserId,
        before: u64,
        keep: Duration,
    ) -> StoreResult<()> {
        let now = Instant::now();
        let mut r = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        r.sweep(now);
        let entry = r
            .users
            .entry((t.clone(), u.clone()))
            .or_insert((before, now));
        if entry.1 <= now {
            *entry = (before, now);
        }
        entry.0 = entry.0.max(before);
        entry.1 = entry.1.max(now + keep);
        Ok(())
    }

    async fn revoke_token(&self, t: &TenantId, jti: &TokenId, keep: Duration) -> StoreResult<()> {
        let now = Instant::now();
        let mut r = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        r.sweep(now);
        let until = r.tokens.entry((t.clone(), jti.clone())).or_insert(now);
        *until = (*until).max(now + keep);
        Ok(())
    }

    async fn is_revoked(&self, token: TokenFacts<'_>) -> StoreResult<bool> {
        let now = Instant::now();
        let r = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let by_user = r
            .users
            .get(&(token.tenant.clone(), token.user.clone()))
            .is_some_and(|(before, until)| *until > now && issued_before(token.iat, *before));
        let by_jti = token.jti.is_some_and(|j| {
            r.tokens
                .get(&(token.tenant.clone(), j.clone()))
                .is_some_and(|until| *until > now)
        });
        Ok(by_user || by_jti)
    }
}

/// The behaviour every revocation engine shares; run by each engine's tests.
pub mod conformance {
    use std::sync::Arc;

    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    /// Whether the store refuses a token with these facts.
    async fn refuses(
        store: &Arc<dyn RevocationStore>,
        (t, u): (&TenantId, &UserId),
        iat: Option<u64>,
        jti: Option<&TokenId>,
    ) -> bool {
        let facts = TokenFacts {
            tenant: t,
            user: u,
            iat,
            jti,
        };
        store.is_revoked(facts).await.expect("the store answers")
    }

    fn ids(t: &str, u: &str) -> (TenantId, UserId) {
        (TenantId::parse(t).unwrap(), UserId::parse(u).unwrap())
    }

    /// A user revocation refuses tokens issued at or before its time (and those without
    /// `iat`), never later ones, never another user's or another tenant's; a later
    /// revocation with an earlier time does not narrow it.
    pub async fn a_user_revocation_refuses_older_tokens_only(store: Arc<dyn RevocationStore>) {
        let (t, u) = ids("rv-t1", "u1");
        let (other_t, v) = ids("rv-t2", "u2");
        let who = (&t, &u);
        assert!(!refuses(&store, who, Some(100), None).await);
        store.revoke_user(&t, &u, 1_000, DAY).await.unwrap();
        for (iat, refused) in [
            (Some(999), true),
            (Some(1_000), true),
            (None, true),
            (Some(1_001), false),
        ] {
            assert_eq!(
                refuses(&store, who, iat, None).await,
                refused,
                "iat {iat:?}"
            );
        }
        assert!(
            !refuses(&store, (&t, &v), Some(1), None).await,
            "another user"
        );
        assert!(
            !refuses(&store, (&other_t, &u), Some(1), None).await,
            "another tenant"
        );
        store.revoke_user(&t, &u, 500, DAY).await.unwrap();
        assert!(refuses(&store, who, Some(900), None).await, "not narrowed");
        store.revoke_user(&t, &u, 2_000, DAY).await.unwrap();
        assert!(refuses(&store, who, Some(1_500), None).await, "widened");
    }

    /// A `jti` revocation refuses that token only, in that tenant only.
    pub async fn a_token_revocation_refuses_that_token_only(store: Arc<dyn RevocationStore>) {
        let (t, u) = ids("rv-t3", "u1");
        let (other_t, _) = ids("rv-t4", "u1");
        let (j, k) = (
            TokenId::parse("jti-1").unwrap(),
            TokenId::parse("jti-2").unwrap(),
        );
        store.revoke_token(&t, &j, DAY).await.unwrap();
        assert!(refuses(&store, (&t, &u), Some(5), Some(&j)).await);
        assert!(!refuses(&store, (&t, &u), Some(5), Some(&k)).await);
        assert!(!refuses(&store, (&t, &u), Some(5), None).await);
        assert!(!refuses(&store, (&other_t, &u), Some(5), Some(&j)).await);
    }

    /// Records are forgotten once kept for their time.
    pub async fn records_expire(store: Arc<dyn RevocationStore>) {
        let (t, u) = ids("rv-t5", "u1");
        let j = TokenId::parse("jti-x").unwrap();
        let keep = Duration::from_secs(1);
        store.revoke_user(&t, &u, 1_000, keep).await.unwrap();
        store.revoke_token(&t, &j, keep).await.unwrap();
        assert!(refuses(&store, (&t, &u), Some(1), None).await);
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        assert!(!refuses(&store, (&t, &u), Some(1), None).await);
        assert!(!refuses(&store, (&t, &UserId::parse("u9").unwrap()), None, Some(&j)).await);
    }

    pub async fn all(store: Arc<dyn RevocationStore>) {
        a_user_revocation_refuses_older_tokens_only(store.clone()).await;
        a_token_revocation_refuses_that_token_only(store.clone()).await;
        records_expire(store).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_engine_passes_the_conformance_suite() {
        conformance::all(std::sync::Arc::new(MemoryRevocations::default())).await;
    }
}
