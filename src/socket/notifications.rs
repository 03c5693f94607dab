//! `notification:*` events: the owner's inbox, with every other socket of the user kept
//! in sync (`notification:read`, `notification:dismissed`, `notification:count`).

use socketioxide::adapter::Adapter;

use super::EventCx;
use crate::error::AppError;
use crate::rooms;
use crate::server_events as events;
use crate::types::*;

/// Tells the user's other sockets what changed, and all of them the new count.
async fn sync<A: Adapter>(
    cx: &EventCx<A>,
    event: Option<(&'static str, NotificationRef)>,
    unread: u64,
) -> Result<(), AppError> {
    let room = rooms::user(cx.tenant()?, &cx.claims().sub);
    if let Some((name, body)) = event {
        cx.gateway()
            .emit_to_others_or_log(&cx.socket, vec![room.clone()], name, &body)
            .await;
    }
    cx.gateway()
        .emit_or_log(
            vec![room],
            events::NOTIFICATION_COUNT,
            &UnreadCount { unread },
        )
        .await;
    Ok(())
}

pub async fn read<A: Adapter>(cx: EventCx<A>, p: ReadPayload) -> Result<UnreadCount, AppError> {
    match p.status {
        None | Some(NotificationStatus::Read) => {}
        // `status: DISMISSED` is a dismissal, with the same effects as notification:dismiss.
        Some(NotificationStatus::Dismissed) => {
            let p = DismissPayload {
                notification_id: p.notification_id,
                tenant_id: p.tenant_id,
                user_id: p.user_id,
            };
            return dismiss(cx, p).await;
        }
        Some(NotificationStatus::Unread) => {
            return Err(AppError::invalid("status: only READ or DISMISSED"));
        }
    }
    cx.check_owner(p.tenant_id.as_ref(), p.user_id.as_ref())?;
    let (t, u) = (cx.tenant()?, &cx.claims().sub);
    let change = cx.gateway().mark_read(t, u, &p.notification_id).await?;
    if change.changed {
        let body = NotificationRef {
            notification_id: p.notification_id,
        };
        sync(&cx, Some((events::NOTIFICATION_READ, body)), change.unread).await?;
    }
    Ok(UnreadCount {
        unread: change.unread,
    })
}

pub async fn read_all<A: Adapter>(
    cx: EventCx<A>,
    p: OwnerPayload,
) -> Result<UnreadCount, AppError> {
    cx.check_owner(p.tenant_id.as_ref(), p.user_id.as_ref())?;
    let changed = cx
        .gateway()
        .mark_all_read(cx.tenant()?, &cx.claims().sub)
        .await?;
    if changed > 0 {
        sync(&cx, None, 0).await?;
    }
    Ok(UnreadCount { unread: 0 })
}

pub async fn dismiss<A: Adapter>(
    cx: EventCx<A>,
    p: DismissPayload,
) -> Result<UnreadCount, AppError> {
    cx.check_owner(p.tenant_id.as_ref(), p.user_id.as_ref())?;
    let change = cx
        .gateway()
        .dismiss(cx.tenant()?, &cx.claims().sub, &p.notification_id)
        .await?;
    if change.changed {
        let body = NotificationRef {
            notification_id: p.notification_id,
        };
        // All the user's sockets, this one included, learn of the dismissal.
        let room = rooms::user(cx.tenant()?, &cx.claims().sub);
        cx.gateway()
            .emit_or_log(vec![room], events::NOTIFICATION_DISMISSED, &body)
            .await;
        sync(&cx, None, change.unread).await?;
    }
    Ok(UnreadCount {
        unread: change.unread,
    })
}

pub async fn count<A: Adapter>(cx: EventCx<A>, p: OwnerPayload) -> Result<UnreadCount, AppError> {
    cx.check_owner(p.tenant_id.as_ref(), p.user_id.as_ref())?;
    let unread = cx
        .gateway()
        .unread_count(cx.tenant()?, &cx.claims().sub)
        .await?;
    Ok(UnreadCount { unread })
}

pub async fn list<A: Adapter>(
    cx: EventCx<A>,
    p: ListPayload,
) -> Result<NotificationPage, AppError> {
    cx.gateway()
        .list_notifications(cx.tenant()?, &cx.claims().sub, &p)
        .await
}
