//! Course membership (with live room moves), course updates and progress.

use socketioxide::adapter::Adapter;

use serde::Serialize;
use socketioxide::extract::SocketRef;

use super::{Gateway, now_rfc3339};
use crate::error::AppError;
use crate::export::EventType;
use crate::ids::{CourseId, TenantId, UserId};
use crate::presence::relay::MembershipChange;
use crate::rooms;
use crate::server_events as events;
use crate::types::*;

impl<A: Adapter> Gateway<A> {
    /// Caches a membership and moves the user's live sockets, on every node, into the
    /// course room (and the instructors' room for an instructor).
    pub async fn set_course_member(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
        role: CourseRole,
    ) -> Result<(), AppError> {
        let previous = self.inner.store.set_member(t, c, u, role).await?;
        self.after_upsert(t, c, u, role, previous == Some(CourseRole::Instructor))
            .await;
        Ok(())
    }

    /// Moves a (re-)enrolled user's live sockets, on every node, into the course room (and
    /// the instructors' room, or out of it) and tells them.
    async fn after_upsert(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
        role: CourseRole,
        was_instructor: bool,
    ) {
        let user_room = rooms::user(t, u);
        let mut join = vec![rooms::course(t, c)];
        if role == CourseRole::Instructor {
            join.push(rooms::course_instructors(t, c));
        } else if was_instructor {
            self.leave_rooms(&user_room, vec![rooms::course_instructors(t, c)])
                .await;
        }
        if let Err(e) = self.inner.io.within(user_room.clone()).join(join).await {
            tracing::warn!(tenant = %t, error = %e, "could not move live sockets into a course room");
        }
        self.relay_membership(t, c, u, Some(role)).await;
        let event = CourseEnrollment {
            course_id: c.clone(),
            user_id: u.clone(),
            action: EnrollmentAction::Enrolled,
            role,
        };
        self.emit_or_log(vec![user_room], events::COURSE_ENROLLMENT, &event)
            .await;
    }

    /// Removes a membership and takes the user's live sockets out of the course rooms.
    pub async fn remove_course_member(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
    ) -> Result<(), AppError> {
        let role = self
            .inner
            .store
            .remove_member(t, c, u)
            .await?
            .ok_or_else(|| {
                AppError::not_found(format!("user {u} is not a member of course {c}"))
            })?;
        self.after_removal(t, c, u, role).await;
        Ok(())
    }

    async fn after_removal(&self, t: &TenantId, c: &CourseId, u: &UserId, role: CourseRole) {
        let user_room = rooms::user(t, u);
        self.leave_rooms(
            &user_room,
            vec![rooms::course(t, c), rooms::course_instructors(t, c)],
        )
        .await;
        self.relay_membership(t, c, u, None).await;
        let event = CourseEnrollment {
            course_id: c.clone(),
            user_id: u.clone(),
            action: EnrollmentAction::Unenrolled,
            role,
        };
        self.emit_or_log(vec![user_room], events::COURSE_ENROLLMENT, &event)
            .await;
    }

    /// Tells every node's presence that the user's live sockets are now in the course as
    /// `role` (or out of it), as the room moves above did. Logged when it cannot be sent:
    /// the membership itself is stored, and presence follows at the user's next connect.
    async fn relay_membership(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
        role: Option<CourseRole>,
    ) {
        let change = MembershipChange {
            tenant: t.clone(),
            course: c.clone(),
            user: u.clone(),
            role: role.map(|r| r.as_str().to_owned()),
        };
        if let Err(e) = self.inner.memberships.send(&change).await {
            tracing::warn!(tenant = %t, course = %c, user = %u, error = %e, "presence not told of a membership change");
        }
    }

    async fn leave_rooms(&self, user_room: &str, rooms: Vec<String>) {
        if let Err(e) = self
            .inner
            .io
            .within(user_room.to_owned())
            .leave(rooms)
            .await
        {
            tracing::warn!(error = %e, "could not move live sockets out of a course room");
        }
    }

    /// Replaces the whole membership of a course and applies the difference live.
    pub async fn replace_course_members(
        &self,
        t: &TenantId,
        c: &CourseId,
        members: Vec<Member>,
    ) -> Result<MembersReplaced, AppError> {
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = members.iter().find(|m| !seen.insert(&m.user_id)) {
            return Err(AppError::invalid(format!(
                "members: user {} is listed twice",
                dup.user_id
            )));
        }
        let diff = self.inner.store.replace_members(t, c, &members).await?;
        for m in &diff.removed {
            self.after_removal(t, c, &m.user_id, m.role).await;
        }
        for m in &diff.upserted {
            // The diff does not say whether a student used to teach: leave the instructors'
            // room either way (a no-op when not in it).
            self.after_upsert(t, c, &m.user_id, m.role, true).await;
        }
        Ok(MembersReplaced {
            members: members.len() as u64,
            added: diff.upserted.len() as u64,
            removed: diff.removed.len() as u64,
        })
    }

    /// `course:updated` to the course room.
    pub async fn publish_course_update(
        &self,
        t: &TenantId,
        c: &CourseId,
        changes: serde_json::Map<String, serde_json::Value>,
        updated_by: String,
    ) -> Result<CourseUpdated, AppError> {
        let event = CourseUpdated {
            course_id: c.clone(),
            changes,
            updated_by,
        };
        self.emit_or_unavailable(vec![rooms::course(t, c)], events::COURSE_UPDATED, &event)
            .await?;
        Ok(event)
    }

    /// The role a user has in a course, from the membership cache.
    pub async fn course_role(
        &self,
        t: &TenantId,
        c: &CourseId,
        u: &UserId,
    ) -> Result<Option<CourseRole>, AppError> {
        Ok(self.inner.store.member_role(t, c, u).await?)
    }

    /// The courses a user is a member of, with the role in each (rooms at connect).
    pub async fn user_courses(
        &self,
        t: &TenantId,
        u: &UserId,
    ) -> Result<Vec<(CourseId, CourseRole)>, AppError> {
        Ok(self.inner.store.user_courses(t, u).await?)
    }

    /// Appends a student's progress report to the tenant's export queue (§12), then
    /// forwards it live to the course's instructors and the student's other sockets
    /// (`from` left out). `UNAVAILABLE` when the queue did not take it: the client can send
    /// it again, and nothing was forwarded that the LMS will not get.
    pub async fn forward_progress<P: Serialize>(
        &self,
        from: &SocketRef<A>,
        t: &TenantId,
        user: &UserId,
        course: &CourseId,
        kind: ProgressKind,
        payload: P,
    ) -> Result<(), AppError> {
        let at = now_rfc3339();
        let body = ProgressEvent {
            payload,
            user_id: user.clone(),
            at: at.clone(),
        };
        self.export(t, kind.exported(), at, &body).await?;
        let targets = vec![rooms::course_instructors(t, course), rooms::user(t, user)];
        self.emit_to_others_or_log(from, targets, kind.event(), &body)
            .await;
        Ok(())
    }
}

/// The two kinds of progress report: their exported type and their event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressKind {
    Content,
    Video,
}

impl ProgressKind {
    fn exported(self) -> EventType {
        match self {
            Self::Content => EventType::ProgressContent,
            Self::Video => EventType::ProgressVideo,
        }
    }

    fn event(self) -> &'static str {
        match self {
            Self::Content => events::PROGRESS_CONTENT,
            Self::Video => events::PROGRESS_VIDEO,
        }
    }
}
