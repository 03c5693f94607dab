//! The adapter's sharded room channels (vendor/socketioxide-redis, `rooms`), made ready
//! before local joins, and the gauge of how many this node holds.

use async_trait::async_trait;
use socketioxide_redis::RoomChannels;

use super::{MeteredFredDriver, metrics};
use crate::error::AppError;
use crate::service::channels;

/// The default namespace, the only one the gateway serves.
const NAMESPACE: &str = "/";

pub struct ClusterRooms(pub RoomChannels<MeteredFredDriver>);

#[async_trait]
impl channels::RoomChannels for ClusterRooms {
    async fn ready(&self, rooms: &[String]) -> Result<(), AppError> {
        let res = self.0.ready(NAMESPACE, rooms).await;
        metrics::room_channels(self.0.subscribed());
        res.map_err(|e| {
            tracing::warn!(error = %e, "room channels not subscribed; join refused");
            AppError::unavailable()
        })
    }
}
