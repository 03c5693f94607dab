//! Recovery in a cluster: one Redis stream per room, sessions as strings.
//!
//! A stream is one key on its room's slot (`keys::stream`), so every script touches one
//! slot and works unchanged on Redis Cluster. Entries get Redis' own ids (`*`): two nodes
//! appending to one stream never conflict, and the offset travels as a field. Appending
//! trims by count (`MAXLEN ~`) and by age (`MINID ~`) in the same script. A read starts
//! [`CLOCK_ALLOWANCE`] before the offset's millisecond, so a node whose clock is ahead by
//! less than that loses nothing, and the offsets themselves decide what comes after.

use crate::cluster::lua::EvalCached;
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::Client;
use fred::interfaces::KeysInterface;
use fred::types::{Expiration, Value};
use futures::future::try_join_all;

use super::offset::now_ms;
use super::{Entry, Missed, Offset, RecoveryStore, SavedSession, StreamBounds, keys, merge};
use crate::store::{StoreError, StoreResult};

const APPEND: &str = include_str!("lua/append.lua");
const SINCE: &str = include_str!("lua/since.lua");
const RELEASE: &str = include_str!("lua/release_session.lua");

/// How far the clocks of the nodes and of Redis may disagree.
pub const CLOCK_ALLOWANCE: Duration = Duration::from_millis(1_000);

pub struct RedisRecovery {
    client: Client,
    bounds: StreamBounds,
}

impl RedisRecovery {
    pub fn new(client: Client, bounds: StreamBounds) -> Self {
        Self { client, bounds }
    }

    fn age_ms(&self) -> u64 {
        self.bounds.max_age.as_millis() as u64
    }

    /// (the first kept offset if the stream was trimmed, the entries from `after`'s ms
    /// minus the allowance).
    async fn read(&self, key: String, after: Offset) -> StoreResult<(Option<Offset>, Vec<Entry>)> {
        let allowance = CLOCK_ALLOWANCE.as_millis() as u64;
        let start = format!("{}-0", after.ms.saturating_sub(allowance));
        let reply: Value = self
            .client
            .eval_cached(SINCE, vec![key], vec![start])
            .await
            .map_err(unavailable)?;
        parse_since(reply).ok_or_else(|| malformed("since"))
    }
}

fn unavailable(e: fred::error::Error) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

fn malformed(what: &str) -> StoreError {
    StoreError::Unavailable(format!("redis: unexpected reply to recovery {what}"))
}

/// `{ first kept offset or '', [[id, [field, value, …]], …] }` → (floor, entries).
fn parse_since(reply: Value) -> Option<(Option<Offset>, Vec<Entry>)> {
    let mut parts = reply.into_array().into_iter();
    let floor = parts.next()?.as_string()?;
    let floor = match floor.as_str() {
        "" => None,
        o => Some(Offset::parse(o)?),
    };
    let mut entries = Vec::new();
    for item in parts.next()?.into_array() {
        let mut item = item.into_array().into_iter();
        let _id = item.next()?;
        let fields = item.next()?.into_array();
        let (mut o, mut e, mut d, mut x) = (None, None, None, None);
        for pair in fields.chunks(2) {
            let [k, v] = pair else { return None };
            match k.as_str()?.as_ref() {
                "o" => o = Offset::parse(&v.as_string()?),
                "e" => e = v.as_string(),
                "d" => d = v.as_string(),
                "x" => x = v.as_string(),
                _ => {}
            }
        }
        entries.push(Entry {
            offset: o?,
            event: e?,
            data: d?,
            except: x,
        });
    }
    Some((floor, entries))
}

#[async_trait]
impl RecoveryStore for RedisRecovery {
    async fn append(&self, rooms: &[String], entries: &[Entry]) -> StoreResult<()> {
        let min_id = format!("{}-0", now_ms().saturating_sub(self.age_ms()));
        let mut args = vec![
            self.bounds.max_len.max(1).to_string(),
            min_id,
            self.age_ms().max(1).to_string(),
        ];
        for entry in entries {
            args.extend([
                entry.offset.to_string(),
                entry.event.clone(),
                entry.data.clone(),
                entry.except.clone().unwrap_or_default(),
            ]);
        }
        // One script per stream, sent together (fred pipelines them on its connection).
        try_join_all(rooms.iter().filter_map(|r| keys::stream(r)).map(|key| {
            let args = args.clone();
            async move {
                let _: Value = self
                    .client
                    .eval_cached(APPEND, vec![key], args)
                    .await
                    .map_err(unavailable)?;
                Ok::<_, StoreError>(())
            }
        }))
        .await?;
        Ok(())
    }

    async fn since(&self, rooms: &[String], after: Offset) -> StoreResult<Missed> {
        if after.ms + self.age_ms() <= now_ms() {
            return Ok(Missed::TooOld);
        }
        let reads = try_join_all(
            rooms
                .iter()
                .filter_map(|r| keys::stream(r))
                .map(|key| self.read(key, after)),
        )
        .await?;
        let mut found = Vec::new();
        for (floor, entries) in reads {
            // Trimmed up to an entry after `after`: what came between is gone.
            if floor.is_some_and(|first| first > after) {
                return Ok(Missed::TooOld);
            }
            found.extend(entries.into_iter().filter(|e| e.offset > after));
        }
        Ok(Missed::Events(merge(found)))
    }

    async fn put_session(&self, key: &str, s: &SavedSession, ttl: Duration) -> StoreResult<()> {
        let ms = (ttl.as_millis() as i64).max(1);
        self.client
            .set::<(), _, _>(key, encode(s), Some(Expiration::PX(ms)), None, false)
            .await
            .map_err(unavailable)
    }

    async fn get_session(&self, key: &str) -> StoreResult<Option<SavedSession>> {
        let found: Option<String> = self.client.get(key).await.map_err(unavailable)?;
        // A record this version cannot read is no session: a plain connection, not an error.
        Ok(found.and_then(|s| decode(&s)))
    }

    async fn release_session(&self, key: &str, sid: &str, ttl: Duration) -> StoreResult<()> {
        let ms = (ttl.as_millis() as u64).max(1).to_string();
        let _: i64 = self
            .client
            .eval_cached(RELEASE, vec![key.to_owned()], vec![sid.to_owned(), ms])
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// A session as stored: `<sid> <start>[ <course joined>…]`, space-separated (no part can
/// hold a space: a socket id, an offset, validated course ids). Without joined courses it
/// is ~42 bytes, which Redis keeps in the value's own object (up to 44 bytes: `embstr`);
/// the JSON of the same session took 74 bytes in an allocation of its own (200 → 168 bytes
/// of `MEMORY USAGE` per session: one per connected socket).
fn encode(s: &SavedSession) -> String {
    let mut out = format!("{} {}", s.sid, s.start);
    for course in &s.joined {
        out.push(' ');
        out.push_str(course);
    }
    out
}

/// Reads [`encode`]'s form, or the JSON written before it (a node of an older version).
fn decode(raw: &str) -> Option<SavedSession> {
    if raw.starts_with('{') {
        return serde_json::from_str(raw).ok();
    }
    let mut parts = raw.split(' ');
    let (sid, start) = (parts.next()?, parts.next()?);
    (!sid.is_empty() && !start.is_empty()).then(|| SavedSession {
        sid: sid.to_owned(),
        start: start.to_owned(),
        joined: parts.map(str::to_owned).collect(),
    })
}

#[cfg(test)]
mod session_codec_tests {
    use super::*;

    #[test]
    fn a_session_reads_back_and_fits_in_an_embedded_string() {
        let s = SavedSession {
            start: "~1796529776877-1-cec77699".into(),
            joined: vec![],
            sid: "fP8pu7gUTeDWZ0EN".into(),
        };
        assert!(encode(&s).len() <= 44, "{}", encode(&s));
        assert_eq!(decode(&encode(&s)), Some(s.clone()));
        let joined = SavedSession {
            joined: vec!["c1".into(), "c-2".into()],
            ..s.clone()
        };
        assert_eq!(decode(&encode(&joined)), Some(joined));
    }

    #[test]
    fn a_json_session_of_an_older_node_is_still_read() {
        let old =
            r#"{"start":"~1796529776877-1-cec77699","joined":["c1"],"sid":"fP8pu7gUTeDWZ0EN"}"#;
        let s = decode(old).unwrap();
        assert_eq!((s.sid.as_str(), s.joined.len()), ("fP8pu7gUTeDWZ0EN", 1));
        assert_eq!(decode("onlyone"), None);
        assert_eq!(decode(""), None);
    }
}
