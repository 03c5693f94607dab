//! The background retention sweep: every node runs it, each at a jittered interval, so the
//! work spreads over time. Running it on several nodes at once is safe: each inbox is
//! trimmed by one atomic script, which does nothing when there is nothing to trim. After
//! trimming it measures every tenant's storage (`usage`): the quota's estimate starts again
//! from what is stored, and the per-tenant storage gauges are set.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use std::collections::HashMap;

use super::Store;
use super::usage::Usage;
use crate::ids::TenantId;
use crate::metrics::{self, TenantGauge};

/// Runs [`InboxStore::sweep`](super::InboxStore::sweep) every `interval` (± a quarter,
/// random) until `stop` fires. A failed sweep is logged and tried again next time.
pub fn spawn(
    store: Arc<dyn Store>,
    interval: Duration,
    tenant_metric_cap: usize,
    stop: CancellationToken,
) {
    if interval.is_zero() {
        return;
    }
    let gauges = TenantGauge::storage(tenant_metric_cap);
    tokio::spawn(async move {
        loop {
            let quarter = interval / 4;
            // Random enough to spread nodes apart; uuid is already a dependency.
            let spread = (uuid::Uuid::new_v4().as_u128() % 1_000) as f64 / 1_000.0;
            let wait = interval - quarter + quarter.mul_f64(2.0 * spread);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            match store.sweep().await {
                Ok(report) => {
                    metrics::store_swept(report.trimmed);
                    tracing::debug!(
                        inboxes = report.inboxes,
                        trimmed = report.trimmed,
                        "retention sweep done"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "retention sweep failed; next one retries"),
            }
            match store.measure_usage().await {
                Ok(measured) => report_usage(&gauges, &measured),
                Err(e) => tracing::warn!(error = %e, "storage measure failed; next sweep retries"),
            }
        }
    });
}

/// Sets the storage gauges; tenants past the label cap add up under `other`.
fn report_usage(
    (bytes, entries): &(TenantGauge, TenantGauge),
    measured: &HashMap<TenantId, Usage>,
) {
    let (mut b, mut e) = (HashMap::new(), HashMap::new());
    for (t, u) in measured {
        *b.entry(bytes.label(t)).or_insert(0.0) += u.bytes as f64;
        *e.entry(entries.label(t)).or_insert(0.0) += u.entries as f64;
    }
    bytes.set_all(b);
    entries.set_all(e);
}
