//! Presence payloads (§10): the acks of `presence:list` / `presence:count`, the
//! `presence:join` / `presence:leave` events and the service API answers.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use ts_rs::TS;

use crate::ids::{CourseId, UserId};

/// `presence:list` and `presence:count`: the course to ask about.
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PresenceQuery {
    #[ts(type = "string | number")]
    pub course_id: CourseId,
}

/// One online user.
#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresenceUser {
    pub user_id: UserId,
    /// The course role (`student`, `instructor`), or the token's role (`admin`) of a
    /// tenant admin who joined the course room.
    pub role: String,
    /// When the user's first socket came online (RFC 3339).
    #[ts(type = "string")]
    #[schema(value_type = String, format = DateTime)]
    pub since: Rfc3339Millis,
}

/// A time in ms since the epoch that is an RFC 3339 string on the wire, formatted as it is
/// serialized: a 10,000-user `presence:list` then formats into the answer itself instead
/// of allocating one string per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339Millis(pub u64);

impl Rfc3339Millis {
    fn time(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(i64::try_from(self.0).unwrap_or(0)).unwrap_or_default()
    }
}

impl fmt::Display for Rfc3339Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The same text as `to_rfc3339_opts(SecondsFormat::Millis, true)`.
        write!(f, "{}", self.time().format("%Y-%m-%dT%H:%M:%S%.3fZ"))
    }
}

impl Serialize for Rfc3339Millis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rfc3339Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let time = DateTime::parse_from_rfc3339(&text).map_err(serde::de::Error::custom)?;
        Ok(Self(u64::try_from(time.timestamp_millis()).unwrap_or(0)))
    }
}

/// The `presence:list` ack and `GET /tenants/{t}/courses/{c}/presence`. The users are
/// shared: callers listing one course at once, or within `PRESENCE_LIST_CACHE_MS` of each
/// other, get one list (`presence::query`).
#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoursePresence {
    pub course_id: CourseId,
    #[ts(as = "Vec<PresenceUser>")]
    #[schema(value_type = Vec<PresenceUser>)]
    pub users: PresenceUsers,
    pub count: u64,
}

/// A list of [`PresenceUser`]s encoded once as their JSON array: a 10,000-user list is
/// ~770 KB of JSON, and every caller that shares the list (`presence::query`) sends these
/// bytes as they are instead of serializing 10,000 users again. Serializes only through
/// `serde_json` (the ack's parser and the HTTP route both use it).
#[derive(Clone)]
pub struct PresenceUsers(Arc<RawValue>);

impl PresenceUsers {
    /// Encodes `users` (the same text as serializing them with `serde_json`).
    pub fn encode<'a>(users: impl ExactSizeIterator<Item = (&'a str, &'a str, u64)>) -> Self {
        let mut out = Vec::with_capacity(2 + users.len() * 80);
        out.push(b'[');
        for (i, (user, role, since_ms)) in users.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"userId\":");
            json_str(&mut out, user);
            out.extend_from_slice(b",\"role\":");
            json_str(&mut out, role);
            out.extend_from_slice(b",\"since\":\"");
            rfc3339_millis(&mut out, since_ms);
            out.extend_from_slice(b"\"}");
        }
        out.push(b']');
        let text = String::from_utf8(out).expect("JSON text of UTF-8 strings");
        Self(Arc::from(
            RawValue::from_string(text).expect("a JSON array of objects"),
        ))
    }

    /// The JSON array.
    pub fn json(&self) -> &str {
        self.0.get()
    }
}

impl fmt::Debug for PresenceUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PresenceUsers({} B)", self.json().len())
    }
}

impl Serialize for PresenceUsers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for PresenceUsers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let users = Vec::<PresenceUser>::deserialize(d)?;
        Ok(Self::encode(
            users
                .iter()
                .map(|u| (u.user_id.as_str(), u.role.as_str(), u.since.0)),
        ))
    }
}

/// A JSON string: as is when nothing in it needs escaping (ids and roles never do).
fn json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec");
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of a time in ms since the epoch: the text of
/// [`Rfc3339Millis`] without a formatter per user (years 1970-9999).
fn rfc3339_millis(out: &mut Vec<u8>, ms: u64) {
    let ms = ms.min(253_402_300_799_999);
    let (days, ms_of_day) = (ms / 86_400_000, ms % 86_400_000);
    // Days since 1970-01-01 to a civil date (H. Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let digits = |out: &mut Vec<u8>, v: u64, n: u32| {
        for i in (0..n).rev() {
            out.push(b'0' + (v / 10_u64.pow(i) % 10) as u8);
        }
    };
    digits(out, year, 4);
    out.push(b'-');
    digits(out, month, 2);
    out.push(b'-');
    digits(out, day, 2);
    out.push(b'T');
    digits(out, ms_of_day / 3_600_000, 2);
    out.push(b':');
    digits(out, ms_of_day / 60_000 % 60, 2);
    out.push(b':');
    digits(out, ms_of_day / 1_000 % 60, 2);
    out.push(b'.');
    digits(out, ms_of_day % 1_000, 3);
    out.push(b'Z');
}

/// The `presence:count` ack.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PresenceCount {
    pub course_id: CourseId,
    pub count: u64,
}

/// `GET /tenants/{t}/presence`: the count, and with `?list=1` up to 1000 users.
#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantPresence {
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub users: Option<Vec<PresenceUser>>,
}

/// `presence:join` and `presence:leave`, to the course's instructors.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PresenceChange {
    pub course_id: CourseId,
    pub user_id: UserId,
    pub role: String,
    /// RFC 3339.
    pub at: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::SecondsFormat;

    #[test]
    fn since_is_the_rfc3339_text_of_its_millis_and_reads_back() {
        for ms in [
            0_u64,
            1_733_140_000_123,
            1_733_140_000_000,
            4_102_444_799_999,
        ] {
            let expected = DateTime::from_timestamp_millis(ms as i64)
                .unwrap()
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            let json = serde_json::to_string(&Rfc3339Millis(ms)).unwrap();
            assert_eq!(json, format!("\"{expected}\""));
            let back: Rfc3339Millis = serde_json::from_str(&json).unwrap();
            assert_eq!(back, Rfc3339Millis(ms));
        }
    }

    #[test]
    fn encoded_users_are_the_json_of_the_users() {
        let mut users = Vec::new();
        // Every day of 1970-2100 (leap years, centuries), at a varying time of day.
        for day in 0..47_847_u64 {
            let ms = day * 86_400_000 + (day * 7_919_993) % 86_400_000;
            users.push(PresenceUser {
                user_id: UserId::parse(format!("u{day}")).unwrap(),
                role: "student".into(),
                since: Rfc3339Millis(ms),
            });
        }
        users.push(PresenceUser {
            user_id: UserId::parse("a.b_c-d@e").unwrap(),
            role: "ta \"x\" \\ é \u{1}".into(),
            since: Rfc3339Millis(4_102_444_799_999),
        });
        let encoded = PresenceUsers::encode(
            users
                .iter()
                .map(|u| (u.user_id.as_str(), u.role.as_str(), u.since.0)),
        );
        assert_eq!(encoded.json(), serde_json::to_string(&users).unwrap());
        let course = CoursePresence {
            course_id: CourseId::parse("c1").unwrap(),
            users: encoded,
            count: users.len() as u64,
        };
        let text = serde_json::to_string(&course).unwrap();
        let back: CoursePresence = serde_json::from_str(&text).unwrap();
        assert_eq!(back.users.json(), course.users.json());
    }
}
