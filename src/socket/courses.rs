//! `course:*` events: joining after a membership check, leaving, and instructors' updates.

use socketioxide::adapter::Adapter;

use super::EventCx;
use crate::auth::Role;
use crate::error::AppError;
use crate::metrics::SecurityKind;
use crate::rooms;
use crate::types::{CourseRef, CourseRole, CourseUpdatePayload, CourseUpdated, Joined};

pub async fn join<A: Adapter>(cx: EventCx<A>, p: CourseRef) -> Result<Joined, AppError> {
    let course = p.course_id();
    let t = cx.tenant()?.clone();
    let role = cx
        .gateway()
        .course_role(&t, &course, &cx.claims().sub)
        .await?;
    let mut join = vec![rooms::course(&t, &course)];
    let present_as = match (role, cx.claims().role) {
        (Some(r @ CourseRole::Instructor), _) => {
            join.push(rooms::course_instructors(&t, &course));
            r.as_str()
        }
        (Some(r @ CourseRole::Student), _) => r.as_str(),
        (None, r @ (Role::Admin | Role::SuperAdmin)) => r.as_str(),
        (None, _) => {
            return Err(cx.refuse(
                SecurityKind::Forbidden,
                AppError::forbidden(format!("not enrolled in or teaching course {course}")),
            ));
        }
    };
    cx.ctx.gateway.rooms_ready(&join).await?;
    cx.socket.join(join);
    if let Some(p) = &cx.session.presence {
        p.enter_course(&course, present_as);
    }
    super::recovery::joined_courses_changed(&cx.socket, &cx.ctx, &course, true, &cx.session).await;
    Ok(Joined { course_id: course })
}

pub async fn leave<A: Adapter>(cx: EventCx<A>, p: CourseRef) -> Result<Joined, AppError> {
    let course = p.course_id();
    let t = cx.tenant()?;
    cx.socket.leave(vec![
        rooms::course(t, &course),
        rooms::course_instructors(t, &course),
    ]);
    if let Some(p) = &cx.session.presence {
        p.leave_course(&course);
    }
    super::recovery::joined_courses_changed(&cx.socket, &cx.ctx, &course, false, &cx.session).await;
    Ok(Joined { course_id: course })
}

pub async fn update<A: Adapter>(
    cx: EventCx<A>,
    p: CourseUpdatePayload,
) -> Result<CourseUpdated, AppError> {
    let t = cx.tenant()?.clone();
    let c = cx.claims();
    let allowed = match c.role {
        Role::Admin | Role::SuperAdmin => true,
        Role::Instructor => {
            cx.gateway().course_role(&t, &p.course_id, &c.sub).await?
                == Some(CourseRole::Instructor)
        }
        _ => false,
    };
    if !allowed {
        return Err(cx.refuse(
            SecurityKind::Forbidden,
            AppError::forbidden(format!(
                "only the course's instructors and tenant admins may update course {}",
                p.course_id
            )),
        ));
    }
    cx.gateway()
        .publish_course_update(&t, &p.course_id, p.changes, c.sub.to_string())
        .await
}
