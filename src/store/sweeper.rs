//! The background retention sweep: every node runs it, each at a jittered interval, so the
//! work spreads over time. Running it on several nodes at once is safe: each inbox is
//! trimmed by one atomic script, which does nothing when there is nothing to trim.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Store;
use crate::metrics;

/// Runs [`InboxStore::sweep`](super::InboxStore::sweep) every `interval` (± a quarter,
/// random) until `stop` fires. A failed sweep is logged and tried again next time.
pub fn spawn(store: Arc<dyn Store>, interval: Duration, stop: CancellationToken) {
    if interval.is_zero() {
        return;
    }
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
        }
    });
}
