//! Token revocations in Redis, for a cluster: one string key per revoked user (its
//! `before`) and one per revoked `jti` (by digest), both under the tenant's hash tag, so a
//! check is a single `MGET` on one slot. Each key expires with the record.

use crate::cluster::lua::EvalCached;
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::Client;
use fred::interfaces::KeysInterface;
use fred::types::Expiration;

use super::StoreResult;
use super::keys;
use super::redis::unavailable;
use super::revocations::{RevocationStore, TokenFacts, issued_before};
use crate::ids::{TenantId, TokenId, UserId};

const REVOKE_USER: &str = include_str!("lua/revoke_user.lua");

pub struct RedisRevocations {
    client: Client,
}

impl RedisRevocations {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn secs(d: Duration) -> i64 {
    d.as_secs().max(1).try_into().unwrap_or(i64::MAX)
}

#[async_trait]
impl RevocationStore for RedisRevocations {
    async fn revoke_user(
        &self,
        t: &TenantId,
        u: &UserId,
        before: u64,
        keep: Duration,
    ) -> StoreResult<()> {
        let args = vec![before.to_string(), secs(keep).to_string()];
        let _: i64 = self
            .client
            .eval_cached(REVOKE_USER, vec![keys::revoked_user(t, u)], args)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn revoke_token(&self, t: &TenantId, jti: &TokenId, keep: Duration) -> StoreResult<()> {
        let _: () = self
            .client
            .set(
                keys::revoked_token(t, jti),
                "1",
                Some(Expiration::EX(secs(keep))),
                None,
                false,
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn is_revoked(&self, token: TokenFacts<'_>) -> StoreResult<bool> {
        let mut names = vec![keys::revoked_user(token.tenant, token.user)];
        if let Some(j) = token.jti {
            names.push(keys::revoked_token(token.tenant, j));
        }
        let found: Vec<Option<String>> = self.client.mget(names).await.map_err(unavailable)?;
        let by_user = found
            .first()
            .and_then(|v| v.as_deref())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|before| issued_before(token.iat, before));
        let by_jti = found.get(1).is_some_and(Option::is_some);
        Ok(by_user || by_jti)
    }
}
