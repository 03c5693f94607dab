//! Per-tenant token buckets for the whole cluster (§13): the service API's call rate and
//! the notification recipients' budget.
//!
//! In a cluster a bucket lives in Redis ([`RedisBuckets`]), so that a tenant's quota is the
//! same whether its backend calls one node or ten. A refusal is remembered on the node until
//! the bucket could hold the call, so the bulk of a flood (refused calls) is answered
//! without Redis. When Redis cannot answer, the node charges its own bucket of the same
//! shape (the quota per node), logged and counted (`lms_store_errors_total{op="quota"}`):
//! a quota never refuses a call that a Redis blip alone would not have failed. On one node
//! its own bucket is all there is.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::ids::TenantId;
use crate::metrics;
use crate::store::keys;
use crate::store::redis_buckets::{RedisBuckets, Shape};

/// Whose quota a call is charged to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QuotaKey {
    Tenant(TenantId),
    /// Platform-wide calls of super admins that name no tenant.
    Platform,
}

impl QuotaKey {
    fn tenant(&self) -> Option<&TenantId> {
        match self {
            Self::Tenant(t) => Some(t),
            Self::Platform => None,
        }
    }
}

impl std::fmt::Display for QuotaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tenant(t) => t.fmt(f),
            Self::Platform => f.write_str("(platform)"),
        }
    }
}

/// Buckets (and remembered refusals) kept before idle ones are forgotten; a full bucket is
/// the same as none.
const RETAIN_ABOVE: usize = 10_000;

/// How often a node that fell back to its own buckets says so in the log.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// One purpose's bucket per tenant.
pub struct TenantBuckets {
    /// Names the Redis key (`api`, `recipients`).
    purpose: &'static str,
    shape: Shape,
    local: DefaultKeyedRateLimiter<QuotaKey>,
    shared: Option<Shared>,
}

/// The cluster's buckets, with what this node remembers of their refusals.
struct Shared {
    redis: Arc<RedisBuckets>,
    refused: Mutex<HashMap<QuotaKey, Refused>>,
    last_warned: Mutex<Option<Instant>>,
}

/// A refusal from Redis: no call of at least `cost` fits before `until`.
#[derive(Clone, Copy)]
struct Refused {
    until: Instant,
    cost: u32,
}

impl TenantBuckets {
    /// `per_sec` tokens a second, `burst` at most; `shared`: the cluster's buckets.
    pub fn new(
        purpose: &'static str,
        per_sec: NonZeroU32,
        burst: NonZeroU32,
        shared: Option<Arc<RedisBuckets>>,
    ) -> Self {
        let quota = Quota::per_second(per_sec).allow_burst(burst);
        Self {
            purpose,
            shape: Shape {
                per_token: quota.replenish_interval(),
                burst: burst.get(),
            },
            local: RateLimiter::keyed(quota),
            shared: shared.map(|redis| Shared {
                redis,
                refused: Mutex::default(),
                last_warned: Mutex::default(),
            }),
        }
    }

    /// Takes `cost` tokens from the key's bucket, or says in how many whole seconds to retry
    /// (at least 1). A cost over the burst takes the whole burst: it needs a full bucket.
    pub async fn take(&self, key: &QuotaKey, cost: usize) -> Result<(), u64> {
        let cost = u32::try_from(cost)
            .unwrap_or(u32::MAX)
            .clamp(1, self.shape.burst);
        let Some(shared) = &self.shared else {
            return self.take_local(key, cost);
        };
        if let Some(wait) = shared.remembered(key, cost) {
            return Err(whole_secs(wait));
        }
        let started = Instant::now();
        let taken = shared
            .redis
            .take(
                keys::quota_bucket(key.tenant(), self.purpose),
                self.shape,
                cost,
            )
            .await;
        metrics::store_op("quota", started.elapsed(), taken.is_ok());
        match taken {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => {
                shared.remember(key, cost, wait);
                Err(whole_secs(wait))
            }
            Err(e) => {
                shared.warn_fallback(self.purpose, &e);
                self.take_local(key, cost)
            }
        }
    }

    fn take_local(&self, key: &QuotaKey, cost: u32) -> Result<(), u64> {
        if self.local.len() > RETAIN_ABOVE {
            self.local.retain_recent();
        }
        let n = NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN);
        match self.local.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(whole_secs(
                not_until.wait_time_from(DefaultClock::default().now()),
            )),
            // Over the burst: cannot happen, the cost is clamped to it.
            Err(_) => Err(1),
        }
    }
}

impl Shared {
    /// How long a refusal remembered for this key still holds for a call of `cost`.
    fn remembered(&self, key: &QuotaKey, cost: u32) -> Option<Duration> {
        let refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        let r = refused.get(key)?;
        let now = Instant::now();
        (cost >= r.cost && r.until > now).then(|| r.until - now)
    }

    fn remember(&self, key: &QuotaKey, cost: u32, wait: Duration) {
        let now = Instant::now();
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if refused.len() > RETAIN_ABOVE {
            refused.retain(|_, r| r.until > now);
        }
        refused.insert(
            key.clone(),
            Refused {
                until: now + wait,
                cost,
            },
        );
    }

    fn warn_fallback(&self, purpose: &str, e: &fred::error::Error) {
        let now = Instant::now();
        let mut last = self.last_warned.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|at| now - at >= WARN_EVERY) {
            *last = Some(now);
            tracing::warn!(purpose, error = %e, "quota buckets unreachable in redis; this node charges its own buckets meanwhile");
        }
    }
}

/// Whole seconds, rounded up, at least 1: retrying earlier would be refused again.
fn whole_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: &str) -> QuotaKey {
        QuotaKey::Tenant(TenantId::parse(t).unwrap())
    }

    fn n(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).unwrap()
    }

    #[tokio::test]
    async fn a_tenant_past_its_burst_is_refused_and_another_is_not() {
        let buckets = TenantBuckets::new("recipients", n(100), n(300), None);
        assert!(buckets.take(&key("noisy"), 250).await.is_ok());
        let retry = buckets.take(&key("noisy"), 100).await.unwrap_err();
        assert!((1..=2).contains(&retry), "{retry}");
        assert!(buckets.take(&key("quiet"), 300).await.is_ok());
        assert!(
            buckets.take(&key("big"), 10_000).await.is_ok(),
            "a call over the burst takes the full bucket"
        );
        assert!(buckets.take(&key("big"), 1).await.is_err());
    }

    #[test]
    fn waits_round_up_to_whole_seconds_of_at_least_one() {
        assert_eq!(whole_secs(Duration::ZERO), 1);
        assert_eq!(whole_secs(Duration::from_millis(1)), 1);
        assert_eq!(whole_secs(Duration::from_millis(1001)), 2);
        assert_eq!(whole_secs(Duration::from_secs(3)), 3);
    }
}
