//! Webhook delivery: background tasks that POST each tenant's queue to its webhook, signed,
//! in batches, in queue order, at least once.
//!
//! Every node runs one [`spawn`]ed loop that walks the tenants with a webhook and starts a
//! task per tenant; the task delivers only while it holds the tenant's lease in the queue,
//! so one node delivers a tenant at a time. A batch is retried with exponential backoff and
//! jitter while the receiver fails (non-2xx, timeout, connect error); the cursor moves only
//! after a 2xx, and only while the lease is held. After `max_attempts` the batch goes to
//! the dead letters and delivery moves on. A node that dies mid-batch never moves the
//! cursor: when its lease expires another node sends the batch again (receivers drop
//! duplicates by event id). Sockets never wait on any of this: handlers only append.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::sign::{SIGNATURE_HEADER, TIMESTAMP_HEADER, signature};
use super::*;
use crate::metrics;
use crate::types::ExportBatch;

/// How delivery behaves (`WEBHOOK_*` settings).
#[derive(Debug, Clone, Copy)]
pub struct DeliverySettings {
    /// Attempts per batch before its events become dead letters.
    pub max_attempts: u32,
    /// Events per POST at most.
    pub batch_size: usize,
    /// The first retry waits about this long, doubling each time...
    pub backoff_base: Duration,
    /// ...up to this.
    pub backoff_max: Duration,
    /// One POST's whole time limit.
    pub request_timeout: Duration,
    /// How long a node's claim on a tenant lasts without renewal (a dead node's tenants
    /// move after it). Kept above twice the request timeout.
    pub lease_ttl: Duration,
    /// How often an idle node looks for new events and tenants appended on other nodes.
    pub poll_interval: Duration,
}

impl DeliverySettings {
    fn lease(&self) -> Duration {
        self.lease_ttl
            .max(self.request_timeout * 2 + Duration::from_secs(1))
    }

    /// The wait before retry `attempt` (1-based): exponential, capped, with jitter (half
    /// to all of it), so receivers coming back are not hit by every tenant at once.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        exp.min(self.backoff_max)
            .mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// What one POST came to (the `outcome` label of `lms_webhook_deliveries_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// The receiver answered, not with a 2xx.
    HttpError(u16),
    Timeout,
    /// No answer: connect refused, reset, TLS.
    ConnectError,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::HttpError(_) => "http_error",
            Self::Timeout => "timeout",
            Self::ConnectError => "connect_error",
        }
    }
}

/// How a batch ended.
enum Sent {
    Delivered,
    GaveUp,
    /// Shutdown, a lost lease, a removed webhook or an unreachable store: the batch stays
    /// after the cursor for whoever delivers next.
    Stopped,
}

/// Per tenant delivered here, how old its oldest undelivered event is; the gauge is the max.
#[derive(Default)]
struct Lag(Mutex<HashMap<TenantId, f64>>);

impl Lag {
    fn set(&self, t: &TenantId, secs: Option<f64>) {
        let mut lags = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match secs {
            Some(s) => lags.insert(t.clone(), s),
            None => lags.remove(t),
        };
        metrics::webhook_lag(lags.values().copied().fold(0.0, f64::max));
    }
}

struct Worker {
    queue: Arc<dyn ExportQueue>,
    wake: Arc<Notify>,
    settings: DeliverySettings,
    holder: String,
    http: reqwest::Client,
    lag: Lag,
    stop: CancellationToken,
}

/// Starts this node's delivery; it ends when `stop` fires (leases given back).
pub fn spawn(
    export: &Export,
    settings: DeliverySettings,
    node: &str,
    stop: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let http = reqwest::Client::builder()
        .timeout(settings.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("lms-realtime-webhook/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let worker = Arc::new(Worker {
        queue: export.queue().clone(),
        wake: export.wake(),
        settings,
        // Unique per process: two processes with one NODE_ID never share a lease.
        holder: format!("{node}/{}", uuid::Uuid::new_v4().simple()),
        http,
        lag: Lag::default(),
        stop,
    });
    Ok(tokio::spawn(worker.run()))
}

impl Worker {
    async fn run(self: Arc<Self>) {
        let mut running: HashMap<TenantId, JoinHandle<()>> = HashMap::new();
        loop {
            running.retain(|_, task| !task.is_finished());
            match self.queue.webhook_tenants().await {
                Ok(tenants) => {
                    for t in tenants {
                        if let std::collections::hash_map::Entry::Vacant(slot) =
                            running.entry(t.clone())
                        {
                            slot.insert(tokio::spawn(self.clone().deliver(t)));
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "webhook delivery cannot list tenants"),
            }
            if !self.idle().await {
                break;
            }
        }
        for (_, task) in running {
            let _ended = task.await;
        }
    }

    /// Waits for the poll interval or an append on this node; false on shutdown.
    async fn idle(&self) -> bool {
        tokio::select! {
            () = self.stop.cancelled() => false,
            () = tokio::time::sleep(self.settings.poll_interval) => true,
            () = self.wake.notified() => true,
        }
    }

    async fn holds_lease(&self, t: &TenantId) -> bool {
        match self
            .queue
            .lease(t, &self.holder, self.settings.lease())
            .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(tenant = %t, error = %e, "webhook lease not renewed");
                false
            }
        }
    }

    /// Delivers one tenant while this node holds its lease.
    async fn deliver(self: Arc<Self>, t: TenantId) {
        while !self.stop.is_cancelled() && self.holds_lease(&t).await {
            match self.step(&t).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(tenant = %t, error = %e, "webhook delivery paused: store unreachable");
                    break;
                }
            }
        }
        self.lag.set(&t, None);
        if let Err(e) = self.queue.release(&t, &self.holder).await {
            tracing::debug!(tenant = %t, error = %e, "webhook lease not released; it expires");
        }
    }

    /// One batch (or an idle wait); false when this task should end.
    async fn step(&self, t: &TenantId) -> StoreResult<bool> {
        let Some(hook) = self.queue.webhook(t).await? else {
            return Ok(false);
        };
        let cursor = self.queue.cursor(t).await?;
        let batch = self
            .queue
            .read(t, &cursor.id, self.settings.batch_size.max(1))
            .await?;
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            self.lag.set(t, Some(0.0));
            return Ok(self.idle().await);
        };
        let oldest = id_ms(&first.pos.id).unwrap_or_else(now_ms);
        self.lag
            .set(t, Some(now_ms().saturating_sub(oldest) as f64 / 1000.0));
        let to = last.pos.clone();
        let events: Vec<ExportEvent> = batch
            .into_iter()
            .map(|q| q.event)
            .filter(|e| hook.events.matches(&e.kind))
            .collect();
        if events.is_empty() {
            return self.queue.advance(t, &self.holder, &to).await;
        }
        match self.send(t, &events).await? {
            Sent::Delivered => self.queue.advance(t, &self.holder, &to).await,
            Sent::GaveUp => {
                let moved = self
                    .queue
                    .dead_letter(t, &self.holder, &events, &to)
                    .await?;
                if moved {
                    metrics::webhook_dead_letters(events.len() as u64);
                    tracing::error!(tenant = %t, events = events.len(), attempts = self.settings.max_attempts, "webhook batch moved to the dead letters");
                }
                Ok(moved)
            }
            Sent::Stopped => Ok(false),
        }
    }

    /// POSTs one batch until it is taken, retrying with backoff.
    async fn send(&self, t: &TenantId, events: &[ExportEvent]) -> StoreResult<Sent> {
        let body = serde_json::to_vec(&ExportBatch {
            events: events.to_vec(),
        })
        .map_err(|_| malformed("batch"))?;
        let attempts = self.settings.max_attempts.max(1);
        for attempt in 1..=attempts {
            // Read each time: a changed URL or secret applies to the next attempt, and a
            // removed webhook stops the retries.
            let Some(hook) = self.queue.webhook(t).await? else {
                return Ok(Sent::Stopped);
            };
            let outcome = self.post(&hook, &body).await;
            metrics::webhook_delivery(outcome.label());
            if outcome == Outcome::Ok {
                return Ok(Sent::Delivered);
            }
            let status = match outcome {
                Outcome::HttpError(s) => s,
                _ => 0,
            };
            tracing::warn!(tenant = %t, attempt, attempts, outcome = outcome.label(), status, host = host(&hook.url), "webhook delivery failed");
            if attempt == attempts {
                return Ok(Sent::GaveUp);
            }
            if !self.wait_holding(t, self.settings.backoff(attempt)).await {
                return Ok(Sent::Stopped);
            }
        }
        Ok(Sent::GaveUp)
    }

    async fn post(&self, hook: &Webhook, body: &[u8]) -> Outcome {
        let ts = now_ms() / 1000;
        let res = self
            .http
            .post(&hook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, signature(&hook.secret, ts, body))
            .body(body.to_vec())
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => Outcome::Ok,
            Ok(r) => Outcome::HttpError(r.status().as_u16()),
            Err(e) if e.is_timeout() => Outcome::Timeout,
            Err(_) => Outcome::ConnectError,
        }
    }

    /// Sleeps `wait` while renewing the lease; false on shutdown or when the lease is lost.
    async fn wait_holding(&self, t: &TenantId, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        let renew_every = self.settings.lease() / 3;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return self.holds_lease(t).await;
            }
            tokio::select! {
                () = self.stop.cancelled() => return false,
                () = tokio::time::sleep(left.min(renew_every)) => {}
            }
            if !self.holds_lease(t).await {
                return false;
            }
        }
    }
}

/// The host of a webhook URL, for logs (never its path or query: they may hold a token).
fn host(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DeliverySettings {
        DeliverySettings {
            max_attempts: 5,
            batch_size: 10,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1_000),
            request_timeout: Duration::from_secs(1),
            lease_ttl: Duration::from_secs(1),
            poll_interval: Duration::from_millis(100),
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter() {
        let s = settings();
        for _ in 0..50 {
            let first = s.backoff(1);
            assert!(
                (50..=100).contains(&(first.as_millis() as u64)),
                "{first:?}"
            );
            let third = s.backoff(3);
            assert!(
                (200..=400).contains(&(third.as_millis() as u64)),
                "{third:?}"
            );
            let late = s.backoff(30);
            assert!(
                (500..=1_000).contains(&(late.as_millis() as u64)),
                "{late:?}"
            );
        }
    }

    #[test]
    fn the_lease_outlasts_two_request_timeouts() {
        assert_eq!(settings().lease(), Duration::from_secs(3));
    }
}
