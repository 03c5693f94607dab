//! `progress:*` events: an enrolled student's progress, forwarded live to the course's
//! instructors and the student's other sockets, and appended to the progress log.

use socketioxide::adapter::Adapter;

use super::EventCx;
use crate::error::AppError;
use crate::ids::CourseId;
use crate::metrics::SecurityKind;
use crate::rooms;
use crate::server_events as events;
use crate::service::now_rfc3339;
use crate::store::ProgressRecord;
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

async fn forward<A: Adapter, P: serde::Serialize>(
    cx: &EventCx<A>,
    event: &'static str,
    kind: &'static str,
    course: &CourseId,
    payload: P,
) -> Result<(), AppError> {
    let t = cx.tenant()?;
    let at = now_rfc3339();
    let body = ProgressEvent {
        payload,
        user_id: cx.claims().sub.clone(),
        at: at.clone(),
    };
    let record = ProgressRecord {
        user: cx.claims().sub.clone(),
        course: course.clone(),
        kind,
        payload: serde_json::to_value(&body.payload).map_err(|_| AppError::internal())?,
        at,
    };
    cx.gateway().record_progress(t, &record).await?;
    let targets = vec![
        rooms::course_instructors(t, course),
        rooms::user(t, &cx.claims().sub),
    ];
    cx.gateway()
        .emit_to_others_or_log(&cx.socket, targets, event, &body)
        .await;
    Ok(())
}

pub async fn content<A: Adapter>(
    cx: EventCx<A>,
    p: ProgressContentPayload,
) -> Result<(), AppError> {
    p.validate()?;
    check_enrolled(&cx, &p.course_id).await?;
    let course = p.course_id.clone();
    forward(&cx, events::PROGRESS_CONTENT, "content", &course, p).await
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
    forward(&cx, events::PROGRESS_VIDEO, "video", &course, p).await?;
    Ok(Throttled { throttled: false })
}
