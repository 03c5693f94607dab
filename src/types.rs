//! Every payload on the wire, in one module: the single source of truth.
//!
//! Client→server payloads, server→client events, the Notification and its enums and the
//! service API bodies are Rust types here; `typescript.rs` generates the TypeScript
//! declarations from them, so a rename on one side breaks the build, not a user.
//! Incoming payloads validate when parsed ([`parse_payload`]), with a message naming the
//! offending field.

use std::sync::Arc;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use ts_rs::TS;

use crate::error::AppError;
use crate::ids::{CourseId, NotificationId, TenantId, UserId};
use crate::role::Role;

mod presence;
pub use presence::*;

/// Longest notification or alert title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest notification or alert message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 5_000;

// ---------------------------------------------------------------- the Notification

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationType {
    AssignmentDue,
    AssignmentGraded,
    CourseUpdate,
    Enrollment,
    Announcement,
    Message,
    SystemAlert,
    #[default]
    General,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationStatus {
    Unread,
    Read,
    Dismissed,
}

/// A notification as clients see it (`notification:new`, `notification:list`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: NotificationId,
    pub tenant_id: TenantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub user_id: Option<UserId>,
    // The body (title, message, data) is shared by every recipient's copy: a fan-out to a
    // thousand users holds it once, not a thousand times. (Not a doc comment: those go
    // into the generated TypeScript.)
    pub title: Arc<str>,
    pub message: Arc<str>,
    #[serde(rename = "type")]
    pub kind: NotificationType,
    pub priority: Priority,
    pub status: NotificationStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub data: Option<Arc<serde_json::Value>>,
    /// RFC 3339.
    pub created_at: String,
}

/// A course role kept in the membership cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum CourseRole {
    Student,
    Instructor,
}

impl CourseRole {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Student => "student",
            Self::Instructor => "instructor",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "student" => Some(Self::Student),
            "instructor" => Some(Self::Instructor),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------- client → server

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ReadPayload {
    pub notification_id: NotificationId,
    #[serde(default)]
    #[ts(optional)]
    pub tenant_id: Option<TenantId>,
    #[serde(default)]
    #[ts(optional)]
    pub user_id: Option<UserId>,
    /// `READ` (the default) or `DISMISSED`.
    #[serde(default)]
    #[ts(optional)]
    pub status: Option<NotificationStatus>,
}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DismissPayload {
    pub notification_id: NotificationId,
    #[serde(default)]
    #[ts(optional)]
    pub tenant_id: Option<TenantId>,
    #[serde(default)]
    #[ts(optional)]
    pub user_id: Option<UserId>,
}

/// `notification:read_all`; the optional ids are checked against the socket's own.
#[derive(Debug, Clone, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct OwnerPayload {
    #[serde(default)]
    #[ts(optional)]
    pub tenant_id: Option<TenantId>,
    #[serde(default)]
    #[ts(optional)]
    pub user_id: Option<UserId>,
}

#[derive(Debug, Clone, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ListPayload {
    /// 1..=100, default 20.
    #[serde(default)]
    #[ts(optional)]
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    #[serde(default)]
    #[ts(optional)]
    pub before: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub status: Option<NotificationStatus>,
}

/// `courseId` or `{ courseId }`.
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(untagged)]
pub enum CourseRef {
    Id(#[ts(type = "string | number")] CourseId),
    Object {
        #[serde(rename = "courseId")]
        #[ts(type = "string | number")]
        course_id: CourseId,
    },
}

impl CourseRef {
    pub fn course_id(self) -> CourseId {
        match self {
            Self::Id(c) | Self::Object { course_id: c } => c,
        }
    }
}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CourseUpdatePayload {
    #[ts(type = "string | number")]
    pub course_id: CourseId,
    pub changes: serde_json::Map<String, serde_json::Value>,
}

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

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AdminBroadcastPayload {
    pub title: String,
    pub message: String,
    #[serde(default, rename = "type")]
    #[ts(optional)]
    pub kind: Option<NotificationType>,
    #[serde(default)]
    #[ts(optional)]
    pub priority: Option<Priority>,
    /// Required for a super admin; an admin may only name its own tenant.
    #[serde(default)]
    #[ts(optional)]
    pub tenant_id: Option<TenantId>,
    #[serde(default)]
    #[ts(optional)]
    pub data: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SystemAlertPayload {
    pub title: String,
    pub message: String,
    #[serde(default)]
    #[ts(optional)]
    pub priority: Option<Priority>,
}

#[derive(Debug, Clone, Deserialize, TS)]
pub struct RefreshPayload {
    pub token: String,
}

// ---------------------------------------------------------------- server → client

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct UnreadCount {
    pub unread: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRef {
    pub notification_id: NotificationId,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CourseUpdated {
    pub course_id: CourseId,
    pub changes: serde_json::Map<String, serde_json::Value>,
    /// The instructor or admin who made the change, or `"service"`.
    pub updated_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum EnrollmentAction {
    Enrolled,
    Unenrolled,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CourseEnrollment {
    pub course_id: CourseId,
    pub user_id: UserId,
    pub action: EnrollmentAction,
    pub role: CourseRole,
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
pub struct SystemAlert {
    pub title: String,
    pub message: String,
    pub priority: Priority,
    /// RFC 3339.
    pub at: String,
}

/// `auth:expired`: an empty object.
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS)]
pub struct AuthExpired {}

/// The `error` event, sent when an event without an ack callback fails.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ErrorEvent {
    pub code: crate::error::ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub event: Option<String>,
}

// ---------------------------------------------------------------- acks

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// Pass as `before` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct Throttled {
    pub throttled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Refreshed {
    /// The new expiry, seconds since the Unix epoch.
    pub expires_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Joined {
    pub course_id: CourseId,
}

// ---------------------------------------------------------------- service API

#[derive(Debug, Clone, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    #[serde(default)]
    #[ts(optional, type = "string | number")]
    pub user_id: Option<UserId>,
    #[serde(default)]
    #[ts(optional, type = "Array<string | number>")]
    pub user_ids: Option<Vec<UserId>>,
    #[serde(default)]
    #[ts(optional, type = "string | number")]
    pub course_id: Option<CourseId>,
    #[serde(default)]
    #[ts(optional)]
    pub role: Option<Role>,
}

/// The recipients of a notification, exactly one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipients {
    User(UserId),
    Users(Vec<UserId>),
    Course(CourseId),
    Role(Role),
}

/// Most users one `POST /notifications` may name.
pub const MAX_USER_IDS: usize = 1_000;

impl Target {
    pub fn into_recipients(self) -> Result<Recipients, AppError> {
        let named = [
            self.user_id.is_some(),
            self.user_ids.is_some(),
            self.course_id.is_some(),
            self.role.is_some(),
        ];
        if named.iter().filter(|n| **n).count() != 1 {
            return Err(AppError::invalid(
                "target: name exactly one of userId, userIds, courseId, role",
            ));
        }
        Ok(match self {
            Target {
                user_id: Some(u), ..
            } => Recipients::User(u),
            Target {
                user_ids: Some(us), ..
            } => {
                if us.is_empty() || us.len() > MAX_USER_IDS {
                    return Err(AppError::invalid(format!(
                        "target.userIds: between 1 and {MAX_USER_IDS} ids"
                    )));
                }
                let mut us = us;
                us.sort();
                us.dedup();
                Recipients::Users(us)
            }
            Target {
                course_id: Some(c), ..
            } => Recipients::Course(c),
            Target { role: Some(r), .. } => Recipients::Role(r),
            _ => unreachable!("exactly one target field is set"),
        })
    }
}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct NotificationInput {
    /// Idempotency key; generated when absent.
    #[serde(default)]
    #[ts(optional, type = "string | number")]
    pub id: Option<NotificationId>,
    pub title: String,
    pub message: String,
    #[serde(rename = "type", default)]
    #[ts(optional)]
    pub kind: Option<NotificationType>,
    #[serde(default)]
    #[ts(optional)]
    pub priority: Option<Priority>,
    #[serde(default)]
    #[ts(optional)]
    pub data: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SendNotificationRequest {
    #[ts(type = "string | number")]
    pub tenant_id: TenantId,
    #[serde(deserialize_with = "object_only")]
    pub target: Target,
    #[serde(deserialize_with = "object_only")]
    pub notification: NotificationInput,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct SendNotificationResponse {
    pub id: NotificationId,
    /// Recipients the notification was stored for (or, for a role target, delivered to live).
    pub recipients: u64,
}

#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastRequest {
    pub title: String,
    pub message: String,
    #[serde(rename = "type", default)]
    #[ts(optional)]
    pub kind: Option<NotificationType>,
    #[serde(default)]
    #[ts(optional)]
    pub priority: Option<Priority>,
    #[serde(default)]
    #[ts(optional)]
    pub data: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, TS)]
pub struct SystemAlertRequest {
    pub title: String,
    pub message: String,
    #[serde(default)]
    #[ts(optional)]
    pub priority: Option<Priority>,
}

/// `DELETE /tenants/{t}/users/{u}/sockets` (§11).
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct Disconnected {
    /// Sockets disconnected, summed over every node.
    pub disconnected: u64,
}

/// `POST /tenants/{t}/revocations` (§11): at least one of `userId` and `jti`.
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevocationRequest {
    /// Refuse this user's tokens issued at or before `before`.
    #[serde(default)]
    #[ts(optional, type = "string | number")]
    pub user_id: Option<UserId>,
    /// Refuse the token with this `jti`.
    #[serde(default)]
    #[ts(optional, type = "string")]
    pub jti: Option<crate::ids::TokenId>,
    /// Seconds since the Unix epoch; default now.
    #[serde(default)]
    #[ts(optional)]
    pub before: Option<u64>,
}

/// What a revocation recorded and did.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Revoked {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub user_id: Option<UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "string")]
    pub jti: Option<crate::ids::TokenId>,
    /// The user's tokens issued at or before this time are refused (seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub before: Option<u64>,
    /// When the record is forgotten (seconds): no token it refuses lives longer.
    pub expires_at: u64,
    /// Live sockets disconnected, summed over every node.
    pub disconnected: u64,
}

#[derive(Debug, Clone, Deserialize, TS)]
pub struct MemberRequest {
    pub role: CourseRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    #[ts(type = "string | number")]
    pub user_id: UserId,
    pub role: CourseRole,
}

#[derive(Debug, Clone, Deserialize, TS)]
pub struct ReplaceMembersRequest {
    #[serde(deserialize_with = "objects_only")]
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct MembersReplaced {
    pub members: u64,
    pub added: u64,
    pub removed: u64,
}

#[derive(Debug, Clone, Deserialize, TS)]
pub struct CourseEventRequest {
    pub changes: serde_json::Map<String, serde_json::Value>,
}

/// Connection and room counts of one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct NodeStats {
    pub node: String,
    pub connections: u64,
    /// Rooms and members per room kind.
    pub rooms: std::collections::BTreeMap<String, RoomStats>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RoomStats {
    pub rooms: u64,
    pub members: u64,
}

/// `GET /api/v1/stats`: sums over the nodes that answered, and which did.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStats {
    pub connections: u64,
    pub rooms: std::collections::BTreeMap<String, RoomStats>,
    pub nodes: Vec<NodeStats>,
    /// True when some node may not have answered in time: the sums are then a lower bound.
    pub partial: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ApiErrorBody {
    pub error: AppError,
}

// ---------------------------------------------------------------- parsing

/// Longest run of client text an error message quotes back, in characters.
pub const MAX_ECHOED_CHARS: usize = 100;

/// Parses a JSON value into `T`, naming the offending field on failure.
///
/// A JSON array is refused at the root: serde lets a struct be read from a sequence of
/// its fields in order (`[]` would pass for `{ limit?, before?, status? }`), which no
/// client means and no payload of the contract is. Every other shape is left to `T`,
/// which is how `course:join` still takes a bare `courseId`. The message quotes client
/// text only through [`echo_safe`], so a hostile payload cannot fill logs or acks.
pub fn parse_payload<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, AppError> {
    if value.is_array() {
        return Err(AppError::invalid(
            "the payload must be a JSON object, not an array",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let message = if path == "." || path.is_empty() {
            inner
        } else {
            format!("{path}: {inner}")
        };
        AppError::invalid(echo_safe(&message))
    })
}

/// Makes an error message safe to send back and log: every quoted run (between `` ` ``
/// or `"`, where serde puts the client's text) is cut to [`MAX_ECHOED_CHARS`], control
/// characters become `\u{..}` escapes, and the whole is bounded too.
pub fn echo_safe(message: &str) -> String {
    const MAX_TOTAL_CHARS: usize = 4 * MAX_ECHOED_CHARS;
    let mut out = String::with_capacity(message.len().min(MAX_TOTAL_CHARS + 8));
    let mut quote: Option<char> = None;
    let mut quoted = 0usize;
    let mut written = 0usize;
    for c in message.chars() {
        if written >= MAX_TOTAL_CHARS {
            out.push('…');
            break;
        }
        match quote {
            Some(q) if c == q => {
                quote = None;
            }
            Some(_) => {
                quoted += 1;
                if quoted > MAX_ECHOED_CHARS {
                    if quoted == MAX_ECHOED_CHARS + 1 {
                        out.push('…');
                        written += 1;
                    }
                    continue;
                }
            }
            None if c == '`' || c == '"' => {
                quote = Some(c);
                quoted = 0;
            }
            None => {}
        }
        if c.is_control() {
            let escaped = c.escape_unicode().to_string();
            written += escaped.len();
            out.push_str(&escaped);
        } else {
            written += 1;
            out.push(c);
        }
    }
    out
}

/// Reads a struct nested in a payload only from a JSON object, as [`parse_payload`] does
/// at the root. The struct reads the object's own map, so `serde_path_to_error` still
/// names the field (`target.userId: …`).
fn object_only<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_map(ObjectOnly(std::marker::PhantomData))
}

/// A list of structs, each read only from a JSON object.
fn objects_only<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Items<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Items<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of JSON objects")
        }
        fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Vec<T>, S::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(item) = seq.next_element_seed(ObjectOnly(std::marker::PhantomData))? {
                items.push(item);
            }
            Ok(items)
        }
    }
    d.deserialize_seq(Items(std::marker::PhantomData))
}

/// Reads `T` from a map and nothing else.
struct ObjectOnly<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for ObjectOnly<T> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<M: serde::de::MapAccess<'de>>(self, map: M) -> Result<T, M::Error> {
        T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
    }
}

impl<'de, T: Deserialize<'de>> serde::de::DeserializeSeed<'de> for ObjectOnly<T> {
    type Value = T;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_map(self)
    }
}

/// Checks a title and message length, naming the field.
pub fn validate_text(field_prefix: &str, title: &str, message: &str) -> Result<(), AppError> {
    check_len(&format!("{field_prefix}title"), title, MAX_TITLE_CHARS)?;
    check_len(
        &format!("{field_prefix}message"),
        message,
        MAX_MESSAGE_CHARS,
    )
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), AppError> {
    let n = value.chars().count();
    if value.trim().is_empty() {
        return Err(AppError::invalid(format!("{field}: must not be empty")));
    }
    if n > max {
        return Err(AppError::invalid(format!(
            "{field}: at most {max} characters"
        )));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    #[test]
    fn a_missing_field_is_named_in_the_error() {
        let err = parse_payload::<ReadPayload>(json!({})).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidPayload);
        assert!(err.message.contains("notificationId"), "{}", err.message);
        let err = parse_payload::<ProgressVideoPayload>(
            json!({"courseId": "c", "videoId": "v", "positionSeconds": "x", "durationSeconds": 1}),
        )
        .unwrap_err();
        assert!(
            err.message.starts_with("positionSeconds"),
            "{}",
            err.message
        );
    }

    #[test]
    fn an_array_is_refused_where_an_object_payload_is_expected() {
        let err = parse_payload::<ListPayload>(json!([])).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidPayload);
        assert!(err.message.contains("JSON object"), "{}", err.message);
        assert!(parse_payload::<ReadPayload>(json!(["n1"])).is_err());
        assert!(parse_payload::<OwnerPayload>(json!([null, null])).is_err());
        assert!(parse_payload::<CourseRef>(json!(["c1"])).is_err());
        assert!(parse_payload::<ProgressVideoPayload>(json!(["c", "v", 1.0, 2.0])).is_err());
        assert!(parse_payload::<ListPayload>(json!({})).is_ok());
    }

    #[test]
    fn a_struct_nested_in_a_service_body_must_be_an_object_too() {
        let body = |target: serde_json::Value| json!({"tenantId": "t1", "target": target, "notification": {"title": "t", "message": "m"}});
        let err = parse_payload::<SendNotificationRequest>(body(json!(["u1"]))).unwrap_err();
        assert!(err.message.starts_with("target: "), "{}", err.message);
        assert!(err.message.contains("JSON object"), "{}", err.message);
        let ok: SendNotificationRequest = parse_payload(body(json!({"userId": "u1"}))).unwrap();
        assert_eq!(ok.target.user_id.unwrap().as_str(), "u1");
        // The nested field is still named by its full path.
        let err =
            parse_payload::<SendNotificationRequest>(body(json!({"userId": "u:1"}))).unwrap_err();
        assert!(
            err.message.starts_with("target.userId: "),
            "{}",
            err.message
        );
        let err = parse_payload::<SendNotificationRequest>(
            json!({"tenantId": "t1", "target": {"userId": "u1"}, "notification": ["t", "m"]}),
        )
        .unwrap_err();
        assert!(err.message.starts_with("notification: "), "{}", err.message);

        let members =
            |m: serde_json::Value| parse_payload::<ReplaceMembersRequest>(json!({ "members": m }));
        assert!(members(json!([["u1", "student"]])).is_err());
        assert!(members(json!({"u1": "student"})).is_err());
        let ok = members(json!([{"userId": "u1", "role": "student"}])).unwrap();
        assert_eq!(ok.members.len(), 1);
        let err = members(json!([{"userId": "u1", "role": "x"}])).unwrap_err();
        assert!(
            err.message.starts_with("members[0].role: "),
            "{}",
            err.message
        );
    }

    #[test]
    fn an_error_message_quotes_at_most_a_hundred_characters_and_no_control_characters() {
        let hostile = format!("\u{1b}[31m{}\n\r\u{0}", "A".repeat(10_000));
        for value in [
            json!(hostile),
            json!({ "notificationId": "n", "status": hostile }),
            json!({ "notificationId": hostile }),
        ] {
            let err = parse_payload::<ReadPayload>(value).unwrap_err();
            assert!(err.message.chars().count() < 300, "{}", err.message);
            assert!(
                !err.message.chars().any(char::is_control),
                "{:?}",
                err.message
            );
            assert!(!err.message.contains(&"A".repeat(MAX_ECHOED_CHARS + 1)));
        }
        // What serde says after the quoted text survives the cut.
        let err = parse_payload::<ReadPayload>(json!({ "notificationId": "n", "status": hostile }))
            .unwrap_err();
        assert!(err.message.contains("expected one of"), "{}", err.message);
    }

    #[test]
    fn a_course_is_named_by_id_or_object_and_numbers_count_as_strings() {
        let c: CourseRef = parse_payload(json!(101)).unwrap();
        assert_eq!(c.course_id().as_str(), "101");
        let c: CourseRef = parse_payload(json!({"courseId": "c-1"})).unwrap();
        assert_eq!(c.course_id().as_str(), "c-1");
        assert!(parse_payload::<CourseRef>(json!({"course": 1})).is_err());
    }

    #[test]
    fn a_target_names_exactly_one_kind_of_recipient() {
        let t: Target = parse_payload(json!({"userId": 5})).unwrap();
        assert_eq!(
            t.into_recipients().unwrap(),
            Recipients::User(UserId::parse("5").unwrap())
        );
        let t: Target = parse_payload(json!({"userId": 5, "courseId": "c"})).unwrap();
        assert!(t.into_recipients().is_err());
        let t: Target = parse_payload(json!({})).unwrap();
        assert!(t.into_recipients().is_err());
        let t: Target = parse_payload(json!({"userIds": []})).unwrap();
        assert!(t.into_recipients().is_err());
        let t: Target = parse_payload(json!({"userIds": ["b", "a", "b"]})).unwrap();
        let Recipients::Users(us) = t.into_recipients().unwrap() else {
            panic!()
        };
        assert_eq!(us.len(), 2);
    }

    #[test]
    fn progress_must_lie_between_zero_and_one() {
        let p: ProgressContentPayload =
            parse_payload(json!({"courseId": "c", "contentId": "x", "progress": 1.5})).unwrap();
        assert!(p.validate().unwrap_err().message.starts_with("progress"));
        let p: ProgressContentPayload =
            parse_payload(json!({"courseId": "c", "contentId": "x", "progress": 0.5})).unwrap();
        assert!(p.validate().is_ok());
    }

    #[test]
    fn titles_and_messages_are_bounded_and_not_blank() {
        assert!(validate_text("", "t", "m").is_ok());
        assert!(
            validate_text("", " ", "m")
                .unwrap_err()
                .message
                .starts_with("title")
        );
        assert!(
            validate_text("notification.", "t", &"x".repeat(5001))
                .unwrap_err()
                .message
                .starts_with("notification.message")
        );
    }

    #[test]
    fn a_notification_serializes_in_camel_case_with_its_type() {
        let n = Notification {
            id: NotificationId::parse("n1").unwrap(),
            tenant_id: TenantId::parse("t").unwrap(),
            user_id: None,
            title: "T".into(),
            message: "M".into(),
            kind: NotificationType::AssignmentDue,
            priority: Priority::High,
            status: NotificationStatus::Unread,
            data: None,
            created_at: "2026-01-01T00:00:00Z".into(),
        };
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["type"], "ASSIGNMENT_DUE");
        assert_eq!(v["tenantId"], "t");
        assert_eq!(v["createdAt"], "2026-01-01T00:00:00Z");
        assert!(v.get("userId").is_none());
    }
}
