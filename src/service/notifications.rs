//! Notifications (stored per recipient, then delivered) and live-only broadcasts.

use futures::{StreamExt, stream};
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::{Gateway, new_notification_id, now_rfc3339};
use crate::emit;
use crate::error::AppError;
use crate::export::EventType;
use crate::ids::{NotificationId, TenantId, UserId};
use crate::metrics;
use crate::rooms;
use crate::server_events as events;
use crate::store::{Fanout, InsertOutcome, ListQuery, StatusChange};
use crate::tenant_buckets::QuotaKey;
use crate::types::*;

/// How many store writes one notification fans out concurrently.
const STORE_FANOUT: usize = 32;

/// Recipients whose live push is recorded in one store call.
const MARK_CHUNK: usize = 500;

/// What storing and pushing one recipient did.
#[derive(Default)]
struct Stored {
    /// 1 when a reference was stored (for the storage estimate).
    inserted: u64,
    /// The recipient, when it was pushed live (its push is to be recorded).
    pushed: Option<UserId>,
}

/// Largest page of `notification:list`.
const MAX_PAGE: u32 = 100;
const DEFAULT_PAGE: u32 = 20;

/// A list request as the store takes it, its limit and cursor checked.
fn list_query(p: &ListPayload) -> Result<ListQuery, AppError> {
    let limit = p.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::invalid(format!("limit: from 1 to {MAX_PAGE}")));
    }
    let before = match p.before.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<u64>()
                .map_err(|_| AppError::invalid("before: not a cursor from nextCursor"))?,
        ),
    };
    Ok(ListQuery {
        limit: limit as usize,
        before,
        status: p.status,
    })
}

impl<A: Adapter> Gateway<A> {
    /// Stores a notification for one user and delivers it live.
    pub async fn send_notification_to_user(
        &self,
        tenant: &TenantId,
        user: &UserId,
        input: NotificationInput,
    ) -> Result<SendNotificationResponse, AppError> {
        self.send_notification(tenant, Recipients::User(user.clone()), input)
            .await
    }

    /// Stores one inbox entry per recipient (idempotent on the id), counts it unread and
    /// delivers `notification:new` + `notification:count` to the recipients' sockets on
    /// whatever node they are. A role target is delivered live only (there is no user
    /// directory to store it for). On a store failure nothing is reported as done.
    pub async fn send_notification(
        &self,
        tenant: &TenantId,
        recipients: Recipients,
        input: NotificationInput,
    ) -> Result<SendNotificationResponse, AppError> {
        let id = input.id.clone().unwrap_or_else(new_notification_id);
        let content = input.into_content();
        validate_text("notification.", &content.title, &content.message)?;
        let template = content.into_notification(
            id.clone(),
            tenant.clone(),
            NotificationType::default(),
            now_rfc3339(),
        );
        let users = match recipients {
            Recipients::User(u) => vec![u],
            Recipients::Users(us) => us,
            Recipients::Course(c) => self
                .inner
                .store
                .course_members(tenant, &c)
                .await?
                .into_iter()
                .map(|m| m.user_id)
                .collect(),
            Recipients::Role(role) => {
                self.emit_or_unavailable(
                    vec![rooms::tenant_role(tenant, role)],
                    events::NOTIFICATION_NEW,
                    &template,
                )
                .await?;
                return Ok(SendNotificationResponse { id, recipients: 0 });
            }
        };
        let count = users.len() as u64;
        self.check_storage_quota(tenant).await?;
        let quota_key = QuotaKey::Tenant(tenant.clone());
        if let Err(retry_secs) = self.inner.recipients.take(&quota_key, users.len()).await {
            return Err(AppError::rate_limited(
                format!(
                    "this tenant's notification volume is over its share \
                     (TENANT_NOTIFY_RECIPIENTS_PER_SEC); retry in {retry_secs} s"
                ),
                retry_secs,
            ));
        }
        let fanout = self.inner.store.open_fanout(&template).await?;
        let results: Vec<Result<Stored, AppError>> = stream::iter(users)
            // Exact idempotency: whoever already got this id live is skipped.
            .filter(|user| futures::future::ready(!fanout.delivered.contains(user)))
            .map(|user| {
                let fanout = &fanout;
                async move {
                    let stored = self.store_and_deliver(&user, fanout).await;
                    // One recipient per turn: a large fan-out goes to the back of the run
                    // queue after each, so it cannot hold a worker for a whole batch while
                    // another tenant's notification waits (issue 10, fair sharing).
                    tokio::task::yield_now().await;
                    stored
                }
            })
            .buffer_unordered(STORE_FANOUT)
            .collect()
            .await;
        let mut inserted = 0;
        let mut failed = None;
        let mut pushed = Vec::new();
        for r in results {
            match r {
                Ok(s) => {
                    inserted += s.inserted;
                    pushed.extend(s.pushed);
                }
                Err(e) => failed = Some(e),
            }
        }
        self.record_pushes(&fanout, &pushed).await;
        // What was stored counts against the quota even when another recipient failed.
        self.account_stored(&fanout, inserted).await;
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(SendNotificationResponse {
            id,
            recipients: count,
        })
    }

    /// Records the live pushes of a fan-out, so that no later retry repeats them: one store
    /// call per [`MARK_CHUNK`] recipients, not one each. Pushed and stored already: failing
    /// the call now would make the sender retry a success, so a failure is only logged.
    async fn record_pushes(&self, fanout: &Fanout, pushed: &[UserId]) {
        let body = &fanout.body;
        for chunk in pushed.chunks(MARK_CHUNK) {
            if let Err(e) = self
                .inner
                .store
                .mark_delivered(&body.tenant_id, &body.id, chunk)
                .await
            {
                tracing::warn!(tenant = %body.tenant_id, notification = %body.id, error = %e, "could not record deliveries; a retry may push them again");
            }
        }
    }

    /// Stores one recipient's reference and pushes it live. A duplicate is pushed only on a
    /// retry (stored by a send that died before its push). The push is claimed first, so
    /// that concurrent sends of one id push it once, and recorded after the fan-out
    /// ([`Self::record_pushes`]), so that no later retry repeats it.
    async fn store_and_deliver(&self, user: &UserId, fanout: &Fanout) -> Result<Stored, AppError> {
        let body = &fanout.body;
        // The tenant's line covers the recipient's whole chain (insert, claim, the emits),
        // not the insert alone: every step is a Redis command on a connection all tenants
        // share, so a tenant may have only this many chains queued there at once.
        let _slot = self.inner.lines.acquire(&body.tenant_id).await;
        let (unread, stored) = match self.inner.store.insert(user, body).await? {
            InsertOutcome::Inserted { unread } => {
                metrics::notifications_stored(1);
                (unread, 1)
            }
            InsertOutcome::Duplicate { unread } if fanout.retry => (unread, 0),
            InsertOutcome::Duplicate { .. } => {
                tracing::debug!(tenant = %body.tenant_id, notification = %body.id, "duplicate notification id ignored");
                return Ok(Stored::default());
            }
        };
        if !self
            .inner
            .store
            .claim_delivery(&body.tenant_id, &body.id, user)
            .await?
        {
            return Ok(Stored {
                inserted: stored,
                pushed: None,
            });
        }
        let mut n = (**body).clone();
        n.user_id = Some(user.clone());
        self.emit_pair_or_log(
            vec![rooms::user(&n.tenant_id, user)],
            (events::NOTIFICATION_NEW, &n),
            (events::NOTIFICATION_COUNT, &UnreadCount { unread }),
        )
        .await;
        Ok(Stored {
            inserted: stored,
            pushed: Some(user.clone()),
        })
    }

    /// UNREAD → READ; a change is exported as `notification:read` (§12).
    pub async fn mark_read(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
    ) -> Result<StatusChange, AppError> {
        let change = self.inner.store.mark_read(t, u, id).await?;
        if change.changed {
            let data = StatusExport::one(u, id);
            self.export_or_log(t, EventType::NotificationRead, now_rfc3339(), &data)
                .await;
        }
        Ok(change)
    }

    /// Every UNREAD entry → READ; exported as one `notification:read` with `all: true`.
    pub async fn mark_all_read(&self, t: &TenantId, u: &UserId) -> Result<u64, AppError> {
        let count = self.inner.store.mark_all_read(t, u).await?;
        if count > 0 {
            let data = StatusExport::all(u, count);
            self.export_or_log(t, EventType::NotificationRead, now_rfc3339(), &data)
                .await;
        }
        Ok(count)
    }

    /// Any status → DISMISSED; a change is exported as `notification:dismissed`.
    pub async fn dismiss(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
    ) -> Result<StatusChange, AppError> {
        let change = self.inner.store.dismiss(t, u, id).await?;
        if change.changed {
            let data = StatusExport::one(u, id);
            self.export_or_log(t, EventType::NotificationDismissed, now_rfc3339(), &data)
                .await;
        }
        Ok(change)
    }

    pub async fn unread_count(&self, t: &TenantId, u: &UserId) -> Result<u64, AppError> {
        Ok(self.inner.store.unread_count(t, u).await?)
    }

    /// Tells one socket its user's unread count, zero included: a pushed count can be lost
    /// (a node died between a store write and its emit), and the count may have gone to zero
    /// meanwhile, so every connect gets the count as the store has it.
    pub async fn send_unread_count(
        &self,
        to: &SocketRef<A>,
        t: &TenantId,
        u: &UserId,
    ) -> Result<(), AppError> {
        let unread = self.unread_count(t, u).await?;
        if let Err(e) = emit::to_socket(to, events::NOTIFICATION_COUNT, &UnreadCount { unread }) {
            metrics::emit_dropped(events::NOTIFICATION_COUNT);
            tracing::debug!(sid = %to.id, error = %e, "unread count not sent: socket gone or full");
        }
        Ok(())
    }

    /// One page of the user's inbox, newest first; `before` is a `nextCursor` of an
    /// earlier page.
    pub async fn list_notifications(
        &self,
        t: &TenantId,
        u: &UserId,
        p: &ListPayload,
    ) -> Result<NotificationPage, AppError> {
        let page = self.inner.store.list(t, u, &list_query(p)?).await?;
        Ok(NotificationPage {
            items: page.items,
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        })
    }

    // ------------------------------------------------------------ broadcasts

    /// `notification:new` to every socket of a tenant; live only, stored for nobody.
    pub async fn broadcast_to_tenant(
        &self,
        tenant: &TenantId,
        content: NotificationContent,
    ) -> Result<Notification, AppError> {
        validate_text("", &content.title, &content.message)?;
        let n = content.into_notification(
            new_notification_id(),
            tenant.clone(),
            NotificationType::Announcement,
            now_rfc3339(),
        );
        self.emit_or_unavailable(vec![rooms::tenant(tenant)], events::NOTIFICATION_NEW, &n)
            .await?;
        Ok(n)
    }

    /// `system:alert` to every socket of every tenant, on every node.
    pub async fn send_system_alert(
        &self,
        req: SystemAlertRequest,
    ) -> Result<SystemAlert, AppError> {
        validate_text("", &req.title, &req.message)?;
        let alert = SystemAlert {
            title: req.title,
            message: req.message,
            priority: req.priority.unwrap_or(Priority::High),
            at: now_rfc3339(),
        };
        self.emit_or_unavailable(vec![], events::SYSTEM_ALERT, &alert)
            .await?;
        Ok(alert)
    }
}

/// The `data` of an exported `notification:read` / `notification:dismissed`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusExport<'a> {
    user_id: &'a UserId,
    #[serde(skip_serializing_if = "Option::is_none")]
    notification_id: Option<&'a NotificationId>,
    /// True for a "mark all read" (`notification:read_all`)...
    #[serde(skip_serializing_if = "Option::is_none")]
    all: Option<bool>,
    /// ...and how many notifications it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
}

impl<'a> StatusExport<'a> {
    fn one(user_id: &'a UserId, id: &'a NotificationId) -> Self {
        Self {
            user_id,
            notification_id: Some(id),
            all: None,
            count: None,
        }
    }

    fn all(user_id: &'a UserId, count: u64) -> Self {
        Self {
            user_id,
            notification_id: None,
            all: Some(true),
            count: Some(count),
        }
    }
}
