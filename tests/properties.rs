//! Property tests of the parts that stand between hostile input and tenant isolation:
//! id validation, room and Redis key names, token extraction from a handshake, and
//! payload parsing. Each property runs a few hundred generated cases, so the file takes
//! seconds: `cargo test --test properties` (or `cargo nextest run --test properties`);
//! `PROPTEST_CASES=10000` runs more.

use std::collections::HashSet;

use lms_realtime::auth::{Role, token_from_handshake};
use lms_realtime::error::ErrorCode;
use lms_realtime::ids::{CourseId, IdError, MAX_ID_LEN, NotificationId, TenantId, UserId};
use lms_realtime::rooms::{self, RoomKind};
use lms_realtime::store::keys;
use lms_realtime::types::{
    AdminBroadcastPayload, CourseRef, CourseUpdatePayload, DismissPayload, ListPayload,
    MAX_ECHOED_CHARS, OwnerPayload, ProgressContentPayload, ProgressVideoPayload, ReadPayload,
    RefreshPayload, SystemAlertPayload, parse_payload,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(512)
}

/// Fewer cases where each one generates and parses a JSON tree.
fn json_config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// The documented id alphabet (src/ids.rs).
fn in_alphabet(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')
}

/// Valid ids over a small alphabet, so that generated pairs often coincide.
fn small_id() -> impl Strategy<Value = String> {
    "[ab1._@-]{1,4}"
}

fn tenant() -> impl Strategy<Value = TenantId> {
    // `cluster` is also the hash tag of the node registry's keys.
    prop_oneof![9 => small_id(), 1 => Just("cluster".to_owned())]
        .prop_map(|s| TenantId::parse(s).unwrap())
}

fn user() -> impl Strategy<Value = UserId> {
    small_id().prop_map(|s| UserId::parse(s).unwrap())
}

fn course() -> impl Strategy<Value = CourseId> {
    small_id().prop_map(|s| CourseId::parse(s).unwrap())
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Student),
        Just(Role::Instructor),
        Just(Role::Admin),
        Just(Role::SuperAdmin),
        Just(Role::Service),
    ]
}

/// Any JSON value, with keys drawn partly from the payloads' field names so that the
/// object paths of the parsers are reached, not only "missing field".
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "notificationId",
            "tenantId",
            "userId",
            "status",
            "limit",
            "before",
            "courseId",
            "changes",
            "contentId",
            "progress",
            "completed",
            "videoId",
            "positionSeconds",
            "durationSeconds",
            "title",
            "message",
            "type",
            "priority",
            "data",
            "token",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::from),
        small_id().prop_map(Value::from),
        prop::sample::select(vec!["READ", "DISMISSED", "UNREAD", "HIGH", "GENERAL"])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

// ---------------------------------------------------------------- ids

proptest! {
    #![proptest_config(config())]

    #[test]
    fn an_id_in_the_documented_alphabet_is_accepted_and_round_trips(
        raw in "[A-Za-z0-9._@-]{1,128}",
    ) {
        let id = UserId::parse(raw.clone()).unwrap();
        prop_assert_eq!(id.as_str(), raw.as_str());
        prop_assert_eq!(id.to_string(), raw.clone());
        let wire = serde_json::to_value(&id).unwrap();
        prop_assert_eq!(&wire, &Value::String(raw.clone()));
        prop_assert_eq!(serde_json::from_value::<UserId>(wire).unwrap(), id);
        let tenant: TenantId = raw.parse().unwrap();
        prop_assert_eq!(tenant.as_str(), raw.as_str());
    }

    #[test]
    fn any_string_is_an_id_exactly_when_it_is_short_non_empty_and_in_the_alphabet(
        raw in any::<String>(),
    ) {
        let expected = !raw.is_empty() && raw.len() <= MAX_ID_LEN && raw.chars().all(in_alphabet);
        let parsed = CourseId::parse(raw.clone());
        prop_assert_eq!(parsed.is_ok(), expected, "{:?}", raw);
        if let Err(e) = parsed {
            match e {
                IdError::Empty => prop_assert!(raw.is_empty()),
                IdError::TooLong => prop_assert!(raw.len() > MAX_ID_LEN),
                IdError::BadChar(c) => prop_assert!(!in_alphabet(c) && raw.contains(c)),
            }
        }
        // The wire path agrees with the constructor.
        prop_assert_eq!(serde_json::from_value::<NotificationId>(Value::String(raw)).is_ok(), expected);
    }

    #[test]
    fn an_integer_id_on_the_wire_is_its_decimal_string(n in any::<i64>()) {
        let id: UserId = serde_json::from_value(json!(n)).unwrap();
        prop_assert_eq!(id.as_str(), n.to_string());
    }

    #[test]
    fn no_valid_id_contains_a_room_separator_or_hash_tag_brace(raw in any::<String>()) {
        if let Ok(id) = TenantId::parse(raw) {
            prop_assert!(!id.as_str().contains([':', '{', '}']), "{}", id);
        }
    }
}

// ---------------------------------------------------------------- rooms

/// Every room the gateway builds, by what it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Room {
    Tenant(TenantId),
    User(TenantId, UserId),
    TenantRole(TenantId, Role),
    Admins(TenantId),
    Course(TenantId, CourseId),
    Instructors(TenantId, CourseId),
    PlatformRole(Role),
}

impl Room {
    fn name(&self) -> String {
        match self {
            Self::Tenant(t) => rooms::tenant(t),
            Self::User(t, u) => rooms::user(t, u),
            Self::TenantRole(t, r) => rooms::tenant_role(t, *r),
            Self::Admins(t) => rooms::admins(t),
            Self::Course(t, c) => rooms::course(t, c),
            Self::Instructors(t, c) => rooms::course_instructors(t, c),
            Self::PlatformRole(r) => rooms::platform_role(*r),
        }
    }

    fn tenant(&self) -> Option<&TenantId> {
        match self {
            Self::Tenant(t)
            | Self::User(t, _)
            | Self::TenantRole(t, _)
            | Self::Admins(t)
            | Self::Course(t, _)
            | Self::Instructors(t, _) => Some(t),
            Self::PlatformRole(_) => None,
        }
    }

    fn kind(&self) -> RoomKind {
        match self {
            Self::Tenant(_) => RoomKind::Tenant,
            Self::User(..) => RoomKind::User,
            Self::TenantRole(..) | Self::PlatformRole(_) => RoomKind::Role,
            Self::Admins(_) => RoomKind::Admins,
            Self::Course(..) => RoomKind::Course,
            Self::Instructors(..) => RoomKind::Instructors,
        }
    }
}

fn room() -> impl Strategy<Value = Room> {
    prop_oneof![
        tenant().prop_map(Room::Tenant),
        (tenant(), user()).prop_map(|(t, u)| Room::User(t, u)),
        (tenant(), role()).prop_map(|(t, r)| Room::TenantRole(t, r)),
        tenant().prop_map(Room::Admins),
        (tenant(), course()).prop_map(|(t, c)| Room::Course(t, c)),
        (tenant(), course()).prop_map(|(t, c)| Room::Instructors(t, c)),
        role().prop_map(Room::PlatformRole),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn two_rooms_share_a_name_only_when_they_name_the_same_thing(a in room(), b in room()) {
        prop_assert_eq!(a == b, a.name() == b.name(), "{:?} / {:?}", a, b);
    }

    #[test]
    fn a_room_name_is_unique_across_many_rooms(rooms in prop::collection::vec(room(), 1..40)) {
        let distinct: HashSet<&Room> = rooms.iter().collect();
        let names: HashSet<String> = rooms.iter().map(Room::name).collect();
        prop_assert_eq!(distinct.len(), names.len());
    }

    #[test]
    fn every_tenant_room_is_prefixed_by_its_tenant_and_no_other(a in room(), other in tenant()) {
        let name = a.name();
        match a.tenant() {
            Some(t) => {
                let prefix = format!("tenant:{t}");
                prop_assert!(name == prefix || name.starts_with(&format!("{prefix}:")), "{}", name);
                if &other != t {
                    let foreign = format!("tenant:{other}");
                    prop_assert!(name != foreign && !name.starts_with(&format!("{foreign}:")), "{}", name);
                }
            }
            None => prop_assert!(name.starts_with("role:") && !name.starts_with("tenant:")),
        }
        prop_assert_eq!(RoomKind::of(&name), Some(a.kind()), "{}", name);
    }
}

// ---------------------------------------------------------------- Redis keys

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Inbox(TenantId, UserId),
    InboxState(TenantId, UserId),
    UserCourses(TenantId, UserId),
    CourseMembers(TenantId, CourseId),
    Body(TenantId, NotificationId),
    Sent(TenantId, NotificationId),
    Export(TenantId),
}

impl Key {
    fn name(&self) -> String {
        match self {
            Self::Inbox(t, u) => keys::inbox(t, u),
            Self::InboxState(t, u) => keys::inbox_state(t, u),
            Self::UserCourses(t, u) => keys::user_courses(t, u),
            Self::CourseMembers(t, c) => keys::course_members(t, c),
            Self::Body(t, n) => keys::body(t, n),
            Self::Sent(t, n) => keys::sent(t, n),
            Self::Export(t) => keys::export_queue(t),
        }
    }

    fn tenant(&self) -> &TenantId {
        match self {
            Self::Inbox(t, _)
            | Self::InboxState(t, _)
            | Self::UserCourses(t, _)
            | Self::CourseMembers(t, _)
            | Self::Body(t, _)
            | Self::Sent(t, _)
            | Self::Export(t) => t,
        }
    }
}

fn notification_id() -> impl Strategy<Value = NotificationId> {
    small_id().prop_map(|s| NotificationId::parse(s).unwrap())
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        (tenant(), user()).prop_map(|(t, u)| Key::Inbox(t, u)),
        (tenant(), user()).prop_map(|(t, u)| Key::InboxState(t, u)),
        (tenant(), user()).prop_map(|(t, u)| Key::UserCourses(t, u)),
        (tenant(), course()).prop_map(|(t, c)| Key::CourseMembers(t, c)),
        (tenant(), notification_id()).prop_map(|(t, n)| Key::Body(t, n)),
        (tenant(), notification_id()).prop_map(|(t, n)| Key::Sent(t, n)),
        tenant().prop_map(Key::Export),
    ]
}

/// The part of a key Redis Cluster hashes: between the first `{` and the next `}`.
fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let close = key[open + 1..].find('}')? + open + 1;
    Some(&key[open + 1..close])
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn two_keys_are_equal_only_when_they_name_the_same_thing(a in key(), b in key()) {
        prop_assert_eq!(a == b, a.name() == b.name(), "{:?} / {:?}", a, b);
    }

    #[test]
    fn every_key_is_tagged_within_its_tenant_and_no_other(k in key(), other in tenant()) {
        let name = k.name();
        let t = k.tenant();
        // The tag is the tenant, or the tenant then `:` and a user, course or notification.
        let tag = hash_tag(&name).unwrap();
        prop_assert!(tag == t.as_str() || tag.starts_with(&format!("{t}:")), "{}", name);
        prop_assert!(name.starts_with(&format!("lms:{{{tag}}}:")), "{}", name);
        if &other != t {
            prop_assert!(tag != other.as_str() && !tag.starts_with(&format!("{other}:")), "{}", name);
        }
        // Not even a tenant named `cluster` can reach the node registry's keys.
        prop_assert_ne!(name.as_str(), keys::node_registry());
        prop_assert!(!name.starts_with("lms:{cluster}:node"), "{}", name);
    }
}

// ---------------------------------------------------------------- token extraction

/// A token as a client might send it: no spaces (a bearer value is trimmed) and nothing
/// the query string would have to encode.
fn plain_token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,60}"
}

fn bearer_headers(token: Option<&str>) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    if let Some(t) = token {
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {t}").parse().unwrap(),
        );
    }
    headers
}

fn non_string() -> impl Strategy<Value = Value> {
    json_value().prop_filter("not a string", |v| !v.is_string())
}

proptest! {
    #![proptest_config(json_config())]

    #[test]
    fn token_extraction_never_panics_on_arbitrary_input(
        auth in prop::option::of(json_value()),
        query in prop::option::of(any::<String>()),
        header in prop::option::of(prop::collection::vec(any::<u8>(), 0..80)),
    ) {
        let mut headers = http::HeaderMap::new();
        if let Some(value) = header.and_then(|h| http::HeaderValue::from_bytes(&h).ok()) {
            headers.insert(http::header::AUTHORIZATION, value);
        }
        let _ = token_from_handshake(auth.as_ref(), query.as_deref(), &headers);
    }

    #[test]
    fn the_auth_token_wins_over_the_query_which_wins_over_the_header(
        a in plain_token(),
        q in plain_token(),
        h in plain_token(),
        extra in "[a-z]{1,8}=[a-z0-9]{0,8}",
    ) {
        let headers = bearer_headers(Some(&h));
        let query = format!("EIO=4&{extra}&token={q}");
        let auth = json!({ "token": a });
        fn found(auth: Option<&Value>, query: Option<&str>, headers: &http::HeaderMap) -> Option<String> {
            token_from_handshake(auth, query, headers).unwrap()
        }
        prop_assert_eq!(found(Some(&auth), Some(&query), &headers), Some(a));
        prop_assert_eq!(found(Some(&json!({})), Some(&query), &headers), Some(q.clone()));
        prop_assert_eq!(found(None, Some(&query), &headers), Some(q));
        prop_assert_eq!(found(None, Some("EIO=4"), &headers), Some(h));
        prop_assert_eq!(found(None, None, &bearer_headers(None)), None);
    }

    #[test]
    fn a_non_string_auth_token_is_invalid_and_never_yields_the_query_or_header_token(
        bad in non_string(),
        q in plain_token(),
        h in plain_token(),
    ) {
        let auth = json!({ "token": bad });
        let err = token_from_handshake(Some(&auth), Some(&format!("token={q}")), &bearer_headers(Some(&h)))
            .unwrap_err();
        prop_assert_eq!(err.code(), ErrorCode::InvalidToken);
    }
}

// ---------------------------------------------------------------- payloads

/// Parses `value` as `T`; checks that a refusal is an INVALID_PAYLOAD with a safe message.
fn parses<T: serde::de::DeserializeOwned>(value: &Value) -> Result<bool, TestCaseError> {
    match parse_payload::<T>(value.clone()) {
        Ok(_) => Ok(true),
        Err(e) => {
            prop_assert_eq!(e.code, ErrorCode::InvalidPayload);
            prop_assert!(!e.message.chars().any(char::is_control), "{:?}", e.message);
            prop_assert!(
                e.message.chars().count() <= 4 * MAX_ECHOED_CHARS + 1,
                "{}",
                e.message
            );
            Ok(false)
        }
    }
}

proptest! {
    #![proptest_config(json_config())]

    #[test]
    fn every_object_payload_refuses_anything_but_an_object_and_never_panics(value in json_value()) {
        let accepted = [
            parses::<ReadPayload>(&value)?,
            parses::<DismissPayload>(&value)?,
            parses::<OwnerPayload>(&value)?,
            parses::<ListPayload>(&value)?,
            parses::<CourseUpdatePayload>(&value)?,
            parses::<ProgressContentPayload>(&value)?,
            parses::<ProgressVideoPayload>(&value)?,
            parses::<AdminBroadcastPayload>(&value)?,
            parses::<SystemAlertPayload>(&value)?,
            parses::<RefreshPayload>(&value)?,
        ];
        if !value.is_object() {
            prop_assert_eq!(accepted, [false; 10], "{}", value);
        }
        // Validation after parsing never panics either.
        if let Ok(p) = parse_payload::<ProgressContentPayload>(value.clone()) {
            let _ = p.validate();
        }
        if let Ok(p) = parse_payload::<ProgressVideoPayload>(value.clone()) {
            let _ = p.validate();
        }
    }

    #[test]
    fn a_course_is_a_bare_id_or_an_object_with_a_course_id_and_nothing_else(value in json_value()) {
        let accepted = parses::<CourseRef>(&value)?;
        let id_ok = |v: &Value| match v {
            Value::String(s) => CourseId::parse(s.clone()).is_ok(),
            Value::Number(n) => n.is_i64() || n.is_u64(),
            _ => false,
        };
        let expected = match &value {
            Value::Object(m) => m.get("courseId").is_some_and(id_ok),
            Value::Array(_) => false,
            other => id_ok(other),
        };
        prop_assert_eq!(accepted, expected, "{}", value);
    }

    #[test]
    fn an_array_of_the_right_fields_in_order_is_still_refused(
        id in small_id(),
        limit in 1u32..100,
    ) {
        prop_assert!(!parses::<ReadPayload>(&json!([id]))?);
        prop_assert!(!parses::<ListPayload>(&json!([limit]))?);
        prop_assert!(!parses::<ListPayload>(&json!([]))?);
        prop_assert!(!parses::<CourseRef>(&json!([id]))?);
    }
}
