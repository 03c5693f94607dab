//! Per-tenant quotas on the service API, so that no tenant's backend can starve another's
//! (PROTOCOL.md §13, docs/security.md).
//!
//! Each tenant has a token bucket (`API_RATE_PER_SEC`, `API_BURST`), one for the whole
//! cluster ([`TenantBuckets`]), and a cap on calls in flight on this node
//! (`API_MAX_IN_FLIGHT`, a bound on the node's own work); both answer `429 RATE_LIMITED`,
//! the bucket with `Retry-After`. A service token is charged to its own tenant; a super
//! admin to the tenant the path names, or to the shared platform bucket. Refusals are
//! counted and logged per tenant through a [`RefusalLog`], never a line per call.
//!
//! A quota refusal is answered after a short hold (`API_REFUSAL_HOLD_MS`): a backend that
//! retries as fast as it is answered would otherwise turn cheap refusals into a CPU flood
//! that slows every other tenant. Held refusals are bounded per node
//! (`API_MAX_HELD_REFUSALS`); past that, a refusal is answered at once and its connection
//! closed, so a flood must pay a new TCP handshake per call.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::client_ip::ClientIp;
use crate::error::{AppError, ErrorCode};
use crate::metrics::{self, SecurityKind};
use crate::refusal_log::{LogVerdict, RefusalLog};
use crate::store::redis_buckets::RedisBuckets;
pub use crate::tenant_buckets::QuotaKey;
use crate::tenant_buckets::TenantBuckets;

/// Why a call was refused: the `reason` label of `lms_api_refusals_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Rate,
    InFlight,
    DataSize,
}

impl Reason {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Rate => "rate",
            Self::InFlight => "in_flight",
            Self::DataSize => "data_size",
        }
    }
}

/// An error answer of a route that quotas guard: an ordinary API error (logged by the
/// router's refusal layer), or a quota refusal (already logged, aggregated per tenant).
#[derive(Debug)]
pub enum Refusal {
    Api(ApiError),
    /// Its `Retry-After`, when it has one, rides in the error.
    Quota {
        error: ApiError,
        close: bool,
    },
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<AppError> for Refusal {
    fn from(e: AppError) -> Self {
        Self::Api(e.into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Api(e) => e.into_response(),
            Self::Quota { error, close } => {
                let mut res = error.into_unlogged_response();
                if close {
                    res.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                res
            }
        }
    }
}

/// The quota settings of one node (see [`crate::config::Config`]).
#[derive(Debug, Clone, Copy)]
pub struct QuotaSettings {
    pub rate_per_sec: u32,
    pub burst: u32,
    pub max_in_flight: usize,
    /// How long a quota refusal is held before it is answered.
    pub refusal_hold: Duration,
    /// Refusals held at once on this node; past it they are answered at once, closing.
    pub max_held_refusals: usize,
}

/// The quotas of one node.
pub struct ApiQuotas {
    rate: TenantBuckets,
    max_in_flight: usize,
    in_flight: Mutex<HashMap<QuotaKey, usize>>,
    refusals: RefusalLog<QuotaKey>,
    refusal_hold: Duration,
    max_held_refusals: usize,
    held_refusals: AtomicUsize,
}

/// Who was refused, for the log line.
pub struct Source<'a> {
    pub key: &'a QuotaKey,
    pub client: Option<ClientIp>,
    pub user_agent: Option<&'a str>,
}

impl ApiQuotas {
    /// `shared`: the cluster's buckets (cluster mode); `None`: this node's own.
    pub fn new(settings: QuotaSettings, shared: Option<Arc<RedisBuckets>>) -> Arc<Self> {
        let rate = NonZeroU32::new(settings.rate_per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.burst).unwrap_or(rate);
        Arc::new(Self {
            rate: TenantBuckets::new("api", rate, burst, shared),
            max_in_flight: settings.max_in_flight.max(1),
            in_flight: Mutex::default(),
            refusals: RefusalLog::default(),
            refusal_hold: settings.refusal_hold,
            max_held_refusals: settings.max_held_refusals,
            held_refusals: AtomicUsize::new(0),
        })
    }

    /// Admits one call, or answers its quota refusal after the hold (see the module doc).
    pub async fn admit_or_hold(self: &Arc<Self>, source: &Source<'_>) -> Result<InFlight, Refusal> {
        let refusal = match self.admit(source).await {
            Ok(permit) => return Ok(permit),
            Err(refusal) => refusal,
        };
        if self.refusal_hold.is_zero() {
            return Err(refusal);
        }
        let held = HeldRefusal::enter(&self.held_refusals);
        if held.count > self.max_held_refusals {
            metrics::api_refusal_closed();
            return Err(match refusal {
                Refusal::Quota { error, .. } => Refusal::Quota { error, close: true },
                other => other,
            });
        }
        tokio::time::sleep(self.refusal_hold).await;
        Err(refusal)
    }

    /// Admits one call: a permit held until the response, or the 429 to answer. The
    /// in-flight cap is checked first: a tenant over it costs the cluster's bucket nothing.
    pub async fn admit(self: &Arc<Self>, source: &Source<'_>) -> Result<InFlight, Refusal> {
        let permit = self.enter(source)?;
        if let Err(secs) = self.rate.take(source.key, 1).await {
            let mut refusal = self.refuse(
                source,
                Reason::Rate,
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                format!("rate limit of this tenant reached; retry in {secs} s"),
            );
            if let Refusal::Quota { error, .. } = &mut refusal {
                error.error.retry_after_secs = Some(secs);
            }
            return Err(refusal);
        }
        Ok(permit)
    }

    /// Takes one of the tenant's slots of calls in flight on this node.
    fn enter(self: &Arc<Self>, source: &Source<'_>) -> Result<InFlight, Refusal> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let n = in_flight.entry(source.key.clone()).or_default();
        if *n >= self.max_in_flight {
            drop(in_flight);
            return Err(self.refuse(
                source,
                Reason::InFlight,
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                "too many calls of this tenant in flight; retry when one has finished".into(),
            ));
        }
        *n += 1;
        Ok(InFlight {
            quotas: self.clone(),
            key: source.key.clone(),
        })
    }

    /// Counts, logs (aggregated per tenant) and answers one refusal.
    pub fn refuse(
        &self,
        source: &Source<'_>,
        reason: Reason,
        status: StatusCode,
        code: ErrorCode,
        message: String,
    ) -> Refusal {
        metrics::api_refused(reason.as_str());
        if code == ErrorCode::RateLimited {
            metrics::security_event(SecurityKind::RateLimited);
        }
        if let LogVerdict::Log { suppressed } = self.refusals.admit(source.key) {
            let client = source.client.map(|c| c.to_string());
            tracing::info!(
                tenant = %source.key,
                client_ip = client.as_deref().unwrap_or("-"),
                user_agent = source.user_agent.unwrap_or("-"),
                reason = reason.as_str(),
                status = status.as_u16(),
                suppressed,
                "service API call refused by a quota"
            );
        }
        Refusal::Quota {
            error: ApiError::new(status, code, message),
            close: false,
        }
    }
}

/// One refusal being held; counts itself out when dropped (also when the client leaves).
struct HeldRefusal<'a> {
    counter: &'a AtomicUsize,
    /// Refusals held on the node, this one included.
    count: usize,
}

impl<'a> HeldRefusal<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        let count = counter.fetch_add(1, Ordering::Relaxed) + 1;
        Self { counter, count }
    }
}

impl Drop for HeldRefusal<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One call in flight; dropping it frees the tenant's slot.
pub struct InFlight {
    quotas: Arc<ApiQuotas>,
    key: QuotaKey,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut in_flight = self
            .quotas
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = in_flight.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                in_flight.remove(&self.key);
            }
        }
    }
}

/// Bytes of `value` as compact JSON, counted without building the string.
pub fn json_len(value: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a Value to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;

    fn key(t: &str) -> QuotaKey {
        QuotaKey::Tenant(TenantId::parse(t).unwrap())
    }

    fn settings(rate_per_sec: u32, burst: u32, max_in_flight: usize) -> QuotaSettings {
        QuotaSettings {
            rate_per_sec,
            burst,
            max_in_flight,
            refusal_hold: Duration::ZERO,
            max_held_refusals: 0,
        }
    }

    fn source(k: &QuotaKey) -> Source<'_> {
        Source {
            key: k,
            client: None,
            user_agent: None,
        }
    }

    #[tokio::test]
    async fn a_tenant_past_its_burst_is_refused_with_retry_after_and_another_is_not() {
        let q = ApiQuotas::new(settings(1, 3, 100), None);
        let (a, b) = (key("a"), key("b"));
        let mut held = vec![];
        for _ in 0..3 {
            held.push(q.admit(&source(&a)).await.expect("within the burst"));
        }
        let refused = q
            .admit(&source(&a))
            .await
            .err()
            .expect("past the burst")
            .into_response();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        assert!(q.admit(&source(&b)).await.is_ok());
    }

    #[tokio::test]
    async fn the_in_flight_cap_frees_a_slot_when_a_call_ends() {
        let q = ApiQuotas::new(settings(1000, 1000, 2), None);
        let a = key("a");
        let first = q.admit(&source(&a)).await.unwrap();
        let _second = q.admit(&source(&a)).await.unwrap();
        assert!(q.admit(&source(&a)).await.is_err());
        assert!(q.admit(&source(&key("b"))).await.is_ok());
        drop(first);
        assert!(q.admit(&source(&a)).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_held_and_past_the_hold_cap_answered_at_once_with_close() {
        let q = ApiQuotas::new(
            QuotaSettings {
                refusal_hold: Duration::from_millis(500),
                max_held_refusals: 1,
                ..settings(1, 1, 100)
            },
            None,
        );
        let a = key("a");
        let _admitted = q
            .admit_or_hold(&source(&a))
            .await
            .expect("within the burst");
        let started = tokio::time::Instant::now();
        let held_source = source(&a);
        let first = q.admit_or_hold(&held_source);
        let second = async {
            // Starts while the first refusal is held: over the cap of one held refusal.
            tokio::task::yield_now().await;
            let refused = q.admit_or_hold(&source(&a)).await.err().expect("refused");
            (
                tokio::time::Instant::now() - started,
                refused.into_response(),
            )
        };
        let (first, (second_after, second)) = tokio::join!(first, second);
        assert!(first.is_err());
        assert_eq!(
            tokio::time::Instant::now() - started,
            Duration::from_millis(500)
        );
        assert_eq!(second_after, Duration::ZERO, "answered at once");
        assert_eq!(second.headers()[header::CONNECTION], "close");
        assert_eq!(q.held_refusals.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn json_len_is_the_length_of_the_compact_serialisation() {
        let v = serde_json::json!({ "a": [1, "two\n"], "b": null });
        assert_eq!(json_len(&v), serde_json::to_string(&v).unwrap().len());
    }
}
