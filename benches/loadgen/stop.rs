//! The run's stop signal, shared by the driver and every client (a leaf, so that the
//! client and the run loop need not import each other).

use tokio::sync::watch;

/// Resolves once `stop` turns true (or its sender is gone). The watch guard is dropped inside,
/// so callers' futures stay `Send`.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
