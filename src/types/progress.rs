//! Progress reports (`progress:*`): payloads, their checks and the forwarded event.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::AppError;
use crate::ids::{CourseId, UserId};

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ProgressContentPayload {
    #[ts(type = "string | number")]
    pub course_id: CourseId,
    pub content_id: String,
    /// 0..=1.
    pub progress: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub completed: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ProgressVideoPayload {
    #[ts(type = "string | number")]
    pub course_id: CourseId,
    pub video_id: String,
    pub position_seconds: f64,
    pub duration_seconds: f64,
}

/// A forwarded progress event: the client's payload plus who and when.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressEvent<P> {
    #[serde(flatten)]
    pub payload: P,
    pub user_id: UserId,
    /// RFC 3339.
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct Throttled {
    pub throttled: bool,
}

/// Content and video ids are free-form but bounded, to keep the progress log small.
pub fn validate_short_id(field: &str, value: &str) -> Result<(), AppError> {
    if value.is_empty() || value.len() > crate::ids::MAX_ID_LEN {
        return Err(AppError::invalid(format!(
            "{field}: 1 to {} bytes",
            crate::ids::MAX_ID_LEN
        )));
    }
    Ok(())
}

impl ProgressContentPayload {
    pub fn validate(&self) -> Result<(), AppError> {
        validate_short_id("contentId", &self.content_id)?;
        if !(0.0..=1.0).contains(&self.progress) {
            return Err(AppError::invalid("progress: a number from 0 to 1"));
        }
        Ok(())
    }
}

impl ProgressVideoPayload {
    pub fn validate(&self) -> Result<(), AppError> {
        validate_short_id("videoId", &self.video_id)?;
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        if !ok(self.position_seconds) {
            return Err(AppError::invalid("positionSeconds: a number ≥ 0"));
        }
        if !ok(self.duration_seconds) {
            return Err(AppError::invalid("durationSeconds: a number ≥ 0"));
        }
        Ok(())
    }
}
