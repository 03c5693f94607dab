//! The export queue in memory, for one node: bounded per tenant by count and age, like the
//! Redis engine, and gone with the process (a single node has no one to hand over to).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::*;

#[derive(Default)]
struct Tenant {
    /// Oldest first: (ms, seq, ordinal, event).
    queue: VecDeque<(u64, u64, u64, ExportEvent)>,
    /// Ordinal of the last appended event.
    appended: u64,
    webhook: Option<Webhook>,
    cursor: Option<Position>,
    lease: Option<(String, Instant)>,
    dead: VecDeque<ExportEvent>,
}

/// The queue of every tenant of this node.
pub struct MemoryExport {
    bounds: QueueBounds,
    tenants: Mutex<HashMap<TenantId, Tenant>>,
    /// The last stream id given, so ids only grow even if the clock steps back.
    last: Mutex<(u64, u64)>,
}

impl MemoryExport {
    pub fn new(bounds: QueueBounds) -> Self {
        Self {
            bounds,
            tenants: Mutex::default(),
            last: Mutex::new((0, 0)),
        }
    }

    fn next_id(&self) -> (u64, u64) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        *last = if now > last.0 {
            (now, 0)
        } else {
            (last.0, last.1 + 1)
        };
        *last
    }

    fn with<R>(&self, t: &TenantId, f: impl FnOnce(&mut Tenant) -> R) -> R {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let tenant = tenants.entry(t.clone()).or_default();
        let r = f(tenant);
        let t_empty = tenant.queue.is_empty() && tenant.webhook.is_none() && tenant.dead.is_empty();
        if t_empty {
            tenants.remove(t);
        }
        r
    }

    fn push(&self, tenant: &mut Tenant, e: ExportEvent) {
        let (ms, seq) = self.next_id();
        tenant.appended += 1;
        tenant.queue.push_back((ms, seq, tenant.appended, e));
        let oldest = now_ms().saturating_sub(self.bounds.retention.as_millis() as u64);
        while tenant.queue.len() > self.bounds.cap.max(1)
            || tenant.queue.front().is_some_and(|q| q.0 < oldest)
        {
            tenant.queue.pop_front();
        }
    }

    fn holds(tenant: &Tenant, holder: &str) -> bool {
        tenant
            .lease
            .as_ref()
            .is_some_and(|(h, until)| h == holder && *until > Instant::now())
    }
}

fn position(ms: u64, seq: u64, n: u64) -> Position {
    Position {
        id: format!("{ms}-{seq}"),
        n,
    }
}

#[async_trait]
impl ExportQueue for MemoryExport {
    async fn append(&self, e: &ExportEvent) -> StoreResult<()> {
        self.with(&e.tenant_id, |tenant| self.push(tenant, e.clone()));
        Ok(())
    }

    async fn read(&self, t: &TenantId, after: &str, limit: usize) -> StoreResult<Vec<Queued>> {
        let after = parse_cursor(after).map_err(|_| malformed("cursor"))?;
        let oldest = now_ms().saturating_sub(self.bounds.retention.as_millis() as u64);
        Ok(self.with(t, |tenant| {
            tenant
                .queue
                .iter()
                .filter(|q| (q.0, q.1) > after && q.0 >= oldest)
                .take(limit)
                .map(|(ms, seq, n, e)| Queued {
                    pos: position(*ms, *seq, *n),
                    event: e.clone(),
                })
                .collect()
        }))
    }

    async fn set_webhook(&self, t: &TenantId, w: &Webhook) -> StoreResult<()> {
        self.with(t, |tenant| {
            if tenant.cursor.is_none() {
                tenant.cursor = Some(match tenant.queue.back() {
                    Some((ms, seq, n, _)) => position(*ms, *seq, *n),
                    None => Position {
                        id: "0-0".into(),
                        n: tenant.appended,
                    },
                });
            }
            tenant.webhook = Some(w.clone());
        });
        Ok(())
    }

    async fn webhook(&self, t: &TenantId) -> StoreResult<Option<Webhook>> {
        Ok(self.with(t, |tenant| tenant.webhook.clone()))
    }

    async fn delete_webhook(&self, t: &TenantId) -> StoreResult<bool> {
        Ok(self.with(t, |tenant| {
            tenant.cursor = None;
            tenant.lease = None;
            tenant.webhook.take().is_some()
        }))
    }

    async fn webhook_tenants(&self) -> StoreResult<Vec<TenantId>> {
        let tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        Ok(tenants
            .iter()
            .filter(|(_, v)| v.webhook.is_some())
            .map(|(t, _)| t.clone())
            .collect())
    }

    async fn lease(&self, t: &TenantId, holder: &str, ttl: Duration) -> StoreResult<bool> {
        Ok(self.with(t, |tenant| {
            let free = match &tenant.lease {
                Some((h, until)) => h == holder || *until <= Instant::now(),
                None => true,
            };
            if free && tenant.webhook.is_some() {
                tenant.lease = Some((holder.to_owned(), Instant::now() + ttl));
            }
            free && tenant.webhook.is_some()
        }))
    }

    async fn release(&self, t: &TenantId, holder: &str) -> StoreResult<()> {
        self.with(t, |tenant| {
            if tenant.lease.as_ref().is_some_and(|(h, _)| h == holder) {
                tenant.lease = None;
            }
        });
        Ok(())
    }

    async fn cursor(&self, t: &TenantId) -> StoreResult<Position> {
        Ok(self.with(t, |tenant| {
            tenant.cursor.clone().unwrap_or_else(Position::start)
        }))
    }

    async fn advance(&self, t: &TenantId, holder: &str, to: &Position) -> StoreResult<bool> {
        Ok(self.with(t, |tenant| {
            let ok = Self::holds(tenant, holder) && tenant.webhook.is_some();
            if ok {
                tenant.cursor = Some(to.clone());
            }
            ok
        }))
    }

    async fn dead_letter(
        &self,
        t: &TenantId,
        holder: &str,
        events: &[ExportEvent],
        to: &Position,
    ) -> StoreResult<bool> {
        let cap = self.bounds.cap.max(1);
        Ok(self.with(t, |tenant| {
            let ok = Self::holds(tenant, holder) && tenant.webhook.is_some();
            if ok {
                tenant.dead.extend(events.iter().cloned());
                while tenant.dead.len() > cap {
                    tenant.dead.pop_front();
                }
                tenant.cursor = Some(to.clone());
            }
            ok
        }))
    }

    async fn dead_letters(&self, t: &TenantId, limit: usize) -> StoreResult<Vec<ExportEvent>> {
        Ok(self.with(t, |tenant| {
            tenant.dead.iter().take(limit).cloned().collect()
        }))
    }

    async fn replay_dead_letters(&self, t: &TenantId, limit: usize) -> StoreResult<u64> {
        Ok(self.with(t, |tenant| {
            let n = limit.min(tenant.dead.len());
            let replayed: Vec<_> = tenant.dead.drain(..n).collect();
            for e in replayed {
                self.push(tenant, e);
            }
            n as u64
        }))
    }

    async fn backlog(&self, t: &TenantId) -> StoreResult<Backlog> {
        let oldest_kept = now_ms().saturating_sub(self.bounds.retention.as_millis() as u64);
        Ok(self.with(t, |tenant| {
            let dead_letters = tenant.dead.len() as u64;
            let Some(cursor) = &tenant.cursor else {
                return Backlog {
                    dead_letters,
                    ..Backlog::default()
                };
            };
            let after = parse_cursor(&cursor.id).unwrap_or((0, 0));
            let mut waiting = tenant
                .queue
                .iter()
                .filter(|q| (q.0, q.1) > after && q.0 >= oldest_kept);
            let oldest_ms = waiting.next().map(|q| q.0);
            Backlog {
                pending: oldest_ms.map_or(0, |_| 1 + waiting.count() as u64),
                oldest_ms,
                dead_letters,
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_engine_passes_the_export_suite() {
        conformance::run_all(|bounds| async move {
            Arc::new(MemoryExport::new(bounds)) as Arc<dyn ExportQueue>
        })
        .await;
    }
}
