//! Sending a notification: its body stored once, a reference per recipient, each pushed
//! live exactly once however often the id is sent (see `InboxStore::open_fanout`).

use std::sync::Arc;

use futures::{StreamExt, stream};
use socketioxide::adapter::Adapter;

use super::{Gateway, events, new_notification_id, now_rfc3339};
use crate::error::{AppError, ErrorCode};
use crate::ids::{TenantId, UserId};
use crate::metrics;
use crate::rooms;
use crate::store::{Fanout, InsertOutcome};
use crate::types::*;

/// How many store writes one notification fans out concurrently.
const STORE_FANOUT: usize = 32;

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
        validate_text("notification.", &input.title, &input.message)?;
        let id = match input.id.clone() {
            Some(id) => id,
            None => new_notification_id(),
        };
        let template = Notification {
            id: id.clone(),
            tenant_id: tenant.clone(),
            user_id: None,
            title: input.title.into(),
            message: input.message.into(),
            kind: input.kind.unwrap_or_default(),
            priority: input.priority.unwrap_or_default(),
            status: NotificationStatus::Unread,
            data: input.data.map(Arc::new),
            created_at: now_rfc3339(),
        };
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
                self.emit_live(
                    vec![rooms::tenant_role(tenant, role)],
                    events::NOTIFICATION_NEW,
                    &template,
                )
                .await?;
                return Ok(SendNotificationResponse { id, recipients: 0 });
            }
        };
        let count = users.len() as u64;
        if let Err(retry_secs) = self.inner.recipients.charge(tenant, users.len()) {
            return Err(AppError::new(
                ErrorCode::RateLimited,
                format!(
                    "this tenant's notification volume is over its share \
                     (TENANT_NOTIFY_RECIPIENTS_PER_SEC); retry in {retry_secs} s"
                ),
            ));
        }
        let fanout = self.inner.store.open_fanout(&template).await?;
        let results: Vec<Result<(), AppError>> = stream::iter(users)
            // Exact idempotency: whoever already got this id live is skipped.
            .filter(|user| futures::future::ready(!fanout.delivered.contains(user)))
            .map(|user| {
                let fanout = &fanout;
                async move { self.store_and_deliver(&user, fanout).await }
            })
            .buffer_unordered(STORE_FANOUT)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(SendNotificationResponse {
            id,
            recipients: count,
        })
    }

    /// Stores one recipient's reference and pushes it live. A duplicate is pushed only on a
    /// retry (stored by a send that died before its push). The push is claimed first, so
    /// that concurrent sends of one id push it once, and recorded after, so that no later
    /// retry repeats it.
    async fn store_and_deliver(&self, user: &UserId, fanout: &Fanout) -> Result<(), AppError> {
        let body = &fanout.body;
        let slot = self.inner.lines.acquire(&body.tenant_id).await;
        let outcome = self.inner.store.insert(user, body).await;
        drop(slot);
        let unread = match outcome? {
            InsertOutcome::Inserted { unread } => {
                metrics::notifications_stored(1);
                unread
            }
            InsertOutcome::Duplicate { unread } if fanout.retry => unread,
            InsertOutcome::Duplicate { .. } => {
                tracing::debug!(tenant = %body.tenant_id, notification = %body.id, "duplicate notification id ignored");
                return Ok(());
            }
        };
        if !self
            .inner
            .store
            .claim_delivery(&body.tenant_id, &body.id, user)
            .await?
        {
            return Ok(());
        }
        let mut n = (**body).clone();
        n.user_id = Some(user.clone());
        let room = rooms::user(&n.tenant_id, user);
        self.emit_to(vec![room.clone()], events::NOTIFICATION_NEW, &n)
            .await;
        self.emit_to(
            vec![room],
            events::NOTIFICATION_COUNT,
            &UnreadCount { unread },
        )
        .await;
        // Stored and pushed: failing the call now would make the sender retry a success.
        if let Err(e) = self
            .inner
            .store
            .mark_delivered(&n.tenant_id, &n.id, user)
            .await
        {
            tracing::warn!(tenant = %n.tenant_id, notification = %n.id, error = %e, "could not record a delivery; a retry may push it again");
        }
        Ok(())
    }
}
