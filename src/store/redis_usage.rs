//! Per-tenant storage accounting on Redis ([`UsageStore`]): the estimate is a small hash
//! per tenant (`lms:{<t>}:usage`); the measure SCANs every master for inboxes (`ZCARD`)
//! and bodies (`STRLEN`), a page of keys at a time.

use std::collections::HashMap;

use async_trait::async_trait;
use fred::interfaces::{ClientLike, HashesInterface, KeysInterface, SortedSetsInterface};
use fred::types::scan::Scanner;
use futures::StreamExt;
use futures::future::join_all;
use futures::stream::BoxStream;

use super::redis::{RedisStore, ms, unavailable};
use super::usage::{Usage, UsageStore};
use super::*;

const TENANT_USAGE: &str = include_str!("lua/tenant_usage.lua");

/// Keys `SCAN` returns at a time; each page is measured concurrently.
const MEASURE_BATCH: u32 = 200;

impl RedisStore {
    async fn write_usage(&self, t: &TenantId, mode: &str, u: Usage) -> StoreResult<()> {
        let args = vec![
            mode.to_owned(),
            u.bytes.to_string(),
            u.entries.to_string(),
            ms(self.limits.inbox_idle_ttl()).to_string(),
        ];
        self.eval(TENANT_USAGE, vec![keys::tenant_usage(t)], args)
            .await?;
        Ok(())
    }

    /// Every key matching `pattern` on every master, a page at a time, with its tenant.
    fn pages<'a>(&'a self, pattern: &'static str) -> BoxStream<'a, StoreResult<Vec<String>>> {
        let scan: BoxStream<'a, _> = if self.client.is_clustered() {
            Box::pin(self.client.scan_cluster(pattern, Some(MEASURE_BATCH), None))
        } else {
            Box::pin(self.client.scan(pattern, Some(MEASURE_BATCH), None))
        };
        Box::pin(scan.map(|page| {
            let mut page = page.map_err(unavailable)?;
            let found = page.take_results().unwrap_or_default();
            page.next();
            Ok(found
                .iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect())
        }))
    }

    /// Adds `measure(key)` of every key matching `pattern` to its tenant's total.
    async fn measure_keys<F, Fut>(
        &self,
        pattern: &'static str,
        totals: &mut HashMap<TenantId, Usage>,
        measure: F,
    ) -> StoreResult<()>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = StoreResult<Usage>>,
    {
        let mut pages = self.pages(pattern);
        while let Some(page) = pages.next().await {
            let page = page?;
            let sized = join_all(page.into_iter().filter_map(|key| {
                let t = keys::tenant_of(&key)?;
                let size = measure(key);
                Some(async move { Ok::<_, StoreError>((t, size.await?)) })
            }))
            .await;
            for res in sized {
                let (t, size) = res?;
                *totals.entry(t).or_default() += size;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl UsageStore for RedisStore {
    async fn usage(&self, t: &TenantId) -> StoreResult<Usage> {
        let (bytes, entries): (Option<u64>, Option<u64>) = self
            .client
            .hmget(keys::tenant_usage(t), vec!["bytes", "entries"])
            .await
            .map_err(unavailable)?;
        Ok(Usage {
            bytes: bytes.unwrap_or(0),
            entries: entries.unwrap_or(0),
        })
    }

    async fn add_usage(&self, t: &TenantId, add: Usage) -> StoreResult<()> {
        self.write_usage(t, "add", add).await
    }

    async fn measure_usage(&self) -> StoreResult<HashMap<TenantId, Usage>> {
        let mut totals = HashMap::new();
        let c = &self.client;
        self.measure_keys(keys::INBOX_PATTERN, &mut totals, |key| async move {
            let n: u64 = c.zcard(key).await.map_err(unavailable)?;
            Ok(Usage::references(n))
        })
        .await?;
        self.measure_keys(keys::BODY_PATTERN, &mut totals, |key| async move {
            let len: usize = c.strlen(key).await.map_err(unavailable)?;
            Ok(if len == 0 {
                Usage::default()
            } else {
                Usage::body(len)
            })
        })
        .await?;
        // Estimates of tenants with nothing left drop to zero.
        let mut stale = vec![];
        let mut pages = self.pages(keys::TENANT_USAGE_PATTERN);
        while let Some(page) = pages.next().await {
            stale.extend(
                page?
                    .iter()
                    .filter_map(|k| keys::tenant_of(k))
                    .filter(|t| !totals.contains_key(t)),
            );
        }
        for t in stale {
            self.write_usage(&t, "set", Usage::default()).await?;
        }
        for (t, u) in &totals {
            self.write_usage(t, "set", *u).await?;
        }
        Ok(totals)
    }
}
