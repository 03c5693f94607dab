//! Parsing incoming payloads: one error naming the offending field, client text echoed only
//! bounded; and the length checks shared by every text field.

use super::*;
use crate::error::AppError;
use serde::Deserialize;
use serde::de::DeserializeOwned;

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
pub(super) fn object_only<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_map(ObjectOnly(std::marker::PhantomData))
}

/// A list of structs, each read only from a JSON object.
pub(super) fn objects_only<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::ids::{NotificationId, TenantId, UserId};
    use serde_json::json;

    #[test]
    fn a_bad_value_in_shared_notification_content_is_named_with_its_path() {
        let err = parse_payload::<SendNotificationRequest>(json!({
            "tenantId": "t",
            "target": { "userId": "u" },
            "notification": { "title": "t", "message": "m", "type": "NOPE" },
        }))
        .unwrap_err();
        assert!(
            err.message
                .starts_with("notification.type: unknown variant"),
            "{}",
            err.message
        );
        let err = parse_payload::<AdminBroadcastPayload>(
            json!({ "title": "t", "message": "m", "priority": 5 }),
        )
        .unwrap_err();
        assert!(err.message.starts_with("priority: "), "{}", err.message);
    }

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
