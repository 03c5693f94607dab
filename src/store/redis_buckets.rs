//! Token buckets in Redis: one per tenant and purpose for the whole cluster (§13), so a
//! tenant's quota does not grow with the number of nodes its backend reaches.

use std::time::Duration;

use fred::clients::Client;
use fred::error::{Error, ErrorKind};
use fred::interfaces::ClientLike;

use crate::cluster::lua::EvalCached;

const TAKE: &str = include_str!("lua/take_tokens.lua");

/// The cluster's buckets, kept by the bucket script (GCRA, the server's clock).
pub struct RedisBuckets {
    client: Client,
}

/// A bucket's shape: it refills one token every `per_token` and holds `burst` tokens.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub per_token: Duration,
    pub burst: u32,
}

impl RedisBuckets {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Takes `cost` tokens (at most the burst) from the bucket at `key`: `None` when taken,
    /// else how long until they would fit. Fails at once while the client is reconnecting:
    /// a call should not wait out the command timeout for its quota and then again for the
    /// store.
    pub async fn take(
        &self,
        key: String,
        shape: Shape,
        cost: u32,
    ) -> Result<Option<Duration>, Error> {
        if !self.client.is_connected() {
            return Err(Error::new(ErrorKind::IO, "not connected"));
        }
        // Whole µs, at least 1: rates above 1,000,000 a second are 1,000,000 a second.
        let per_token_us = (shape.per_token.as_micros() as i64).max(1);
        let wait_us: i64 = self
            .client
            .eval_cached(
                TAKE,
                key,
                vec![per_token_us, i64::from(shape.burst), i64::from(cost)],
            )
            .await?;
        Ok((wait_us > 0).then(|| Duration::from_micros(wait_us as u64)))
    }
}
