//! Presence payloads (§10): the acks of `presence:list` / `presence:count`, the
//! `presence:join` / `presence:leave` events and the service API answers.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
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
/// shared: callers listing one course at once get one list (`presence::query`).
#[derive(Debug, Clone, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoursePresence {
    pub course_id: CourseId,
    #[ts(as = "Vec<PresenceUser>")]
    pub users: Arc<[PresenceUser]>,
    pub count: u64,
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
}
