//! `presence:*` events (§10): the list for a course's instructors and tenant admins, the
//! count for any member; the announcer that sends `presence:join` / `presence:leave`
//! to a course's instructors (and to the export queue, §12); and the follower that applies the service API's membership
//! changes to this node's sockets.

use std::sync::Arc;

use futures::future::BoxFuture;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use super::EventCx;
use crate::auth::Role;
use crate::error::AppError;
use crate::export::EventType;
use crate::ids::CourseId;
use crate::metrics::SecurityKind;
use crate::presence::relay::Incoming;
use crate::presence::{Announcement, Announcer};
use crate::rooms;
use crate::server_events as events;
use crate::service::{Gateway, now_rfc3339};
use crate::types::{CoursePresence, CourseRole, PresenceChange, PresenceCount, PresenceQuery};

/// What the socket's user is in the course: an admin, or its course role.
async fn standing<A: Adapter>(
    cx: &EventCx<A>,
    c: &CourseId,
) -> Result<(bool, Option<CourseRole>), AppError> {
    let claims = cx.claims();
    let t = cx.tenant()?;
    if matches!(claims.role, Role::Admin | Role::SuperAdmin) {
        return Ok((true, None));
    }
    Ok((false, cx.gateway().course_role(t, c, &claims.sub).await?))
}

pub async fn list<A: Adapter>(
    cx: EventCx<A>,
    p: PresenceQuery,
) -> Result<CoursePresence, AppError> {
    let c = p.course_id;
    match standing(&cx, &c).await? {
        (true, _) | (_, Some(CourseRole::Instructor)) => {}
        _ => {
            return Err(cx.refuse(
                SecurityKind::Forbidden,
                AppError::forbidden(format!(
                    "only the instructors of course {c} and tenant admins may list who is online"
                )),
            ));
        }
    }
    cx.ctx.presence.course_list(cx.tenant()?, &c).await
}

pub async fn count<A: Adapter>(
    cx: EventCx<A>,
    p: PresenceQuery,
) -> Result<PresenceCount, AppError> {
    let c = p.course_id;
    if let (false, None) = standing(&cx, &c).await? {
        return Err(cx.refuse(
            SecurityKind::Forbidden,
            AppError::forbidden(format!("not a member of course {c}")),
        ));
    }
    cx.ctx.presence.course_count(cx.tenant()?, &c).await
}

/// Sends presence changes to the course's instructors' room, on every node.
pub struct RoomAnnouncer<A: Adapter> {
    pub gateway: Gateway<A>,
}

impl<A: Adapter> Announcer for RoomAnnouncer<A> {
    fn announce(&self, a: Announcement) -> BoxFuture<'static, ()> {
        let gateway = self.gateway.clone();
        Box::pin(async move {
            let (event, kind) = if a.joined {
                (events::PRESENCE_JOIN, EventType::PresenceJoin)
            } else {
                (events::PRESENCE_LEAVE, EventType::PresenceLeave)
            };
            let room = rooms::course_instructors(&a.tenant, &a.course);
            let change = PresenceChange {
                course_id: a.course,
                user_id: a.user,
                role: a.role,
                at: now_rfc3339(),
            };
            gateway.emit_or_log(vec![room], event, &change).await;
            gateway
                .export_or_log(&a.tenant, kind, change.at.clone(), &change)
                .await;
        })
    }
}

/// Applies the membership changes that reach this node to its own sockets of each user:
/// enrolled, they are present in the course (with `presence:join` if they were not, with
/// the new role if they were); unenrolled, they leave it. Runs until the relay closes.
pub async fn follow_memberships<A: Adapter>(io: SocketIo<A>, mut incoming: Incoming) {
    while let Some(change) = incoming.recv().await {
        let sockets = io
            .within(rooms::user(&change.tenant, &change.user))
            .sockets();
        for s in sockets {
            let Some(session) = s.extensions.get::<Arc<super::session::Session>>() else {
                continue;
            };
            let Some(p) = &session.presence else {
                continue;
            };
            match &change.role {
                Some(role) => p.enroll(&change.course, role),
                None => p.leave_course(&change.course),
            }
        }
    }
}
