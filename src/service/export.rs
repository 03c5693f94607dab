//! Event export (§12) as gateway operations: what the handlers append, and what the
//! export routes read and change (webhook, pull, dead letters, status).

use serde::Serialize;
use socketioxide::adapter::Adapter;

use super::Gateway;
use crate::error::AppError;
use crate::export::{EventType, Webhook, now_ms, parse_cursor};
use crate::ids::TenantId;
use crate::types::{DeadLetters, EventsPage, Replayed, WebhookRequest, WebhookStatus, WebhookView};

/// The most events one pull page or dead-letter read returns.
pub const MAX_PAGE: usize = 1_000;

impl<A: Adapter> Gateway<A> {
    /// Appends an exported event; `UNAVAILABLE` when the queue did not take it.
    pub async fn export(
        &self,
        t: &TenantId,
        kind: EventType,
        at: String,
        data: &impl Serialize,
    ) -> Result<(), AppError> {
        let data = serde_json::to_value(data).map_err(|_| AppError::internal())?;
        self.inner
            .export
            .record(t, kind, at, data)
            .await
            .map_err(|e| {
                crate::metrics::export_append_failed(kind.as_str());
                tracing::warn!(tenant = %t, event = kind.as_str(), error = %e, "event not exported: the queue did not take it");
                AppError::from(e)
            })
    }

    /// Appends an exported event after a change that already happened (a read, a
    /// presence change): a failure is logged and counted, not returned.
    pub async fn export_or_log(
        &self,
        t: &TenantId,
        kind: EventType,
        at: String,
        data: &impl Serialize,
    ) {
        let _logged = self.export(t, kind, at, data).await;
    }

    /// Stores a tenant's webhook (a new one starts after the events already queued).
    pub async fn put_webhook(
        &self,
        t: &TenantId,
        req: WebhookRequest,
    ) -> Result<WebhookView, AppError> {
        let hook = Webhook::parse(&req.url, &req.secret, &req.events)?;
        self.inner.export.queue().set_webhook(t, &hook).await?;
        self.inner.export.poke();
        tracing::info!(tenant = %t, events = ?hook.events.names(), "webhook configured");
        Ok(view(hook))
    }

    pub async fn webhook(&self, t: &TenantId) -> Result<WebhookView, AppError> {
        match self.inner.export.queue().webhook(t).await? {
            Some(hook) => Ok(view(hook)),
            None => Err(AppError::not_found(format!("tenant {t} has no webhook"))),
        }
    }

    pub async fn delete_webhook(&self, t: &TenantId) -> Result<(), AppError> {
        if self.inner.export.queue().delete_webhook(t).await? {
            tracing::info!(tenant = %t, "webhook removed");
            Ok(())
        } else {
            Err(AppError::not_found(format!("tenant {t} has no webhook")))
        }
    }

    /// One page of the tenant's exported events after `after` (from the oldest kept).
    pub async fn exported_events(
        &self,
        t: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<EventsPage, AppError> {
        let after = after.unwrap_or("0-0");
        parse_cursor(after)?;
        let page = self
            .inner
            .export
            .queue()
            .read(t, after, limit.clamp(1, MAX_PAGE))
            .await?;
        let next = page
            .last()
            .map_or_else(|| after.to_owned(), |q| q.pos.id.clone());
        Ok(EventsPage {
            events: page.into_iter().map(|q| q.event).collect(),
            next,
        })
    }

    pub async fn dead_letters(&self, t: &TenantId, limit: usize) -> Result<DeadLetters, AppError> {
        let queue = self.inner.export.queue();
        let events = queue.dead_letters(t, limit.clamp(1, MAX_PAGE)).await?;
        let count = queue.backlog(t).await?.dead_letters;
        Ok(DeadLetters { events, count })
    }

    /// Queues the oldest `limit` dead letters again (same ids) and clears them.
    pub async fn replay_dead_letters(
        &self,
        t: &TenantId,
        limit: usize,
    ) -> Result<Replayed, AppError> {
        let replayed = self
            .inner
            .export
            .queue()
            .replay_dead_letters(t, limit.clamp(1, MAX_PAGE))
            .await?;
        self.inner.export.poke();
        tracing::info!(tenant = %t, replayed, "dead letters queued again");
        Ok(Replayed { replayed })
    }

    pub async fn webhook_status(&self, t: &TenantId) -> Result<WebhookStatus, AppError> {
        let queue = self.inner.export.queue();
        let configured = queue.webhook(t).await?.is_some();
        let backlog = queue.backlog(t).await?;
        let lag_seconds = backlog
            .oldest_ms
            .map_or(0.0, |ms| now_ms().saturating_sub(ms) as f64 / 1000.0);
        Ok(WebhookStatus {
            configured,
            lag_seconds,
            pending: backlog.pending,
            dead_letters: backlog.dead_letters,
        })
    }
}

fn view(hook: Webhook) -> WebhookView {
    WebhookView {
        url: hook.url,
        events: hook.events.names().to_vec(),
    }
}
