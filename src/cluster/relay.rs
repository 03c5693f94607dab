//! The cluster's membership relay: changes published on one sharded pub/sub channel,
//! through the adapter's own driver, so that they are re-subscribed after a Redis
//! reconnect and counted like the adapter's messages.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use socketioxide_redis::drivers::Driver;
use tokio::sync::mpsc;

use super::driver::MeteredFredDriver;
use crate::presence::relay::{Incoming, MembershipChange, MembershipRelay};

/// The channel every node subscribes to (beside the adapter's `lms-…` channels).
const CHANNEL: &str = "lms-presence-membership";
/// Messages buffered between the subscriber connection and the forwarding task.
const BUFFER: usize = 1_024;

pub struct RedisRelay {
    driver: MeteredFredDriver,
}

impl RedisRelay {
    /// Subscribes this node and forwards what arrives to the returned [`Incoming`].
    pub async fn start(driver: MeteredFredDriver) -> anyhow::Result<(Arc<Self>, Incoming)> {
        let mut stream = driver
            .subscribe(CHANNEL.to_owned(), BUFFER)
            .await
            .map_err(|e| anyhow::anyhow!("cannot subscribe to membership changes: {e}"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some((_, bytes)) = stream.next().await {
                match serde_json::from_slice::<MembershipChange>(&bytes) {
                    Ok(change) => {
                        if tx.send(change).is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "malformed membership change ignored"),
                }
            }
        });
        Ok((Arc::new(Self { driver }), rx))
    }
}

#[async_trait]
impl MembershipRelay for RedisRelay {
    async fn send(&self, change: &MembershipChange) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(change)?;
        self.driver
            .publish(CHANNEL.to_owned(), bytes)
            .await
            .map_err(|e| anyhow::anyhow!("membership change not published: {e}"))
    }
}
