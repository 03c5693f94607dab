//! `progress:*` events: an enrolled student's progress, forwarded live to the course's
//! instructors and the student's other sockets, and appended to the export queue (§12).

use socketioxide::adapter::Adapter;

use super::EventCx;
use crate::error::AppError;
use crate::ids::CourseId;
use crate::metrics::SecurityKind;
use crate::service::ProgressKind;
use crate::types::*;

/// Only a student enrolled in the course may report progress in it.
async fn check_enrolled<A: Adapter>(cx: &EventCx<A>, course: &CourseId) -> Result<(), AppError> {
    let role = cx
        .gateway()
        .course_role(cx.tenant()?, course, &cx.claims().sub)
        .await?;
    if role != Some(CourseRole::Student) {
        return Err(cx.refuse(
            SecurityKind::Forbidden,
            AppError::forbidden(format!(
                "only students enrolled in course {course} report progress in it"
            )),
        ));
    }
    Ok(())
}

pub async fn content<A: Adapter>(
    cx: EventCx<A>,
    p: ProgressContentPayload,
) -> Result<(), AppError> {
    p.validate()?;
    check_enrolled(&cx, &p.course_id).await?;
    let course = p.course_id.clone();
    let (t, user) = (cx.tenant()?, &cx.claims().sub);
    cx.gateway()
        .forward_progress(&cx.socket, t, user, &course, ProgressKind::Content, p)
        .await
}

pub async fn video<A: Adapter>(
    cx: EventCx<A>,
    p: ProgressVideoPayload,
) -> Result<Throttled, AppError> {
    p.validate()?;
    check_enrolled(&cx, &p.course_id).await?;
    let key = format!("{}/{}", p.course_id, p.video_id);
    if !cx
        .session
        .video_may_forward(&key, cx.ctx.limits.progress_video_interval)
    {
        return Ok(Throttled { throttled: true });
    }
    let course = p.course_id.clone();
    let (t, user) = (cx.tenant()?, &cx.claims().sub);
    cx.gateway()
        .forward_progress(&cx.socket, t, user, &course, ProgressKind::Video, p)
        .await?;
    Ok(Throttled { throttled: false })
}
