//! Event export to the LMS (§12): the per-tenant queue every exported event is appended
//! to, read by the pull API and by webhook delivery.
//!
//! The queue is the one thing a handler touches: an append, cheap and awaited, so the
//! order of appends is the order the gateway took the events. Delivery ([`delivery`]) runs
//! in background tasks: per tenant one node at a time (a lease in the queue), from a cursor
//! kept in the queue, so a node that dies mid-batch loses nothing: its lease expires and
//! another node delivers from the cursor. Two engines implement [`ExportQueue`]
//! ([`memory`] bounded on one node, [`redis`] for a cluster), both passing
//! [`conformance`]. Everything kept is bounded by count and age ([`QueueBounds`]).

pub mod conformance;
pub mod delivery;
pub mod memory;
pub mod redis;
pub mod sign;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::error::AppError;
use crate::ids::TenantId;
use crate::store::{StoreError, StoreResult};
pub use crate::types::ExportEvent;

/// The exported event types (§12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    ProgressContent,
    ProgressVideo,
    NotificationRead,
    NotificationDismissed,
    PresenceJoin,
    PresenceLeave,
}

impl EventType {
    pub const ALL: [Self; 6] = [
        Self::ProgressContent,
        Self::ProgressVideo,
        Self::NotificationRead,
        Self::NotificationDismissed,
        Self::PresenceJoin,
        Self::PresenceLeave,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ProgressContent => "progress:content",
            Self::ProgressVideo => "progress:video",
            Self::NotificationRead => "notification:read",
            Self::NotificationDismissed => "notification:dismissed",
            Self::PresenceJoin => "presence:join",
            Self::PresenceLeave => "presence:leave",
        }
    }
}

/// Which event types a webhook takes: full names or prefixes before the colon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter(Vec<String>);

impl EventFilter {
    /// Refuses an empty list and anything that is neither a type nor a prefix of one.
    pub fn parse(names: &[String]) -> Result<Self, AppError> {
        if names.is_empty() || names.len() > 32 {
            return Err(AppError::invalid("events: 1 to 32 event types or prefixes"));
        }
        for n in names {
            let known = EventType::ALL
                .iter()
                .any(|t| t.as_str() == n || t.as_str().split(':').next() == Some(n.as_str()));
            if !known {
                return Err(AppError::invalid(format!(
                    "events: {n:?} is neither an exported event type nor a prefix of one \
                     (progress, notification, presence)"
                )));
            }
        }
        Ok(Self(names.to_vec()))
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    pub fn matches(&self, kind: &str) -> bool {
        let prefix = kind.split(':').next().unwrap_or(kind);
        self.0.iter().any(|n| n == kind || n == prefix)
    }
}

/// A tenant's webhook, as stored (the secret included: delivery signs with it).
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub secret: String,
    pub events: EventFilter,
}

impl std::fmt::Debug for Webhook {
    /// Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Checks a configuration from the API: an http(s) URL and a secret of 16 to 512
    /// bytes (a short secret makes signatures guessable).
    pub fn parse(url: &str, secret: &str, events: &[String]) -> Result<Self, AppError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| AppError::invalid(format!("url: not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(AppError::invalid(
                "url: an http:// or https:// URL with a host",
            ));
        }
        if url.len() > 2048 {
            return Err(AppError::invalid("url: at most 2048 bytes"));
        }
        if !(16..=512).contains(&secret.len()) {
            return Err(AppError::invalid("secret: 16 to 512 bytes"));
        }
        Ok(Self {
            url: url.to_owned(),
            secret: secret.to_owned(),
            events: EventFilter::parse(events)?,
        })
    }
}

/// A place in a tenant's queue: a stream id `<ms>-<seq>` (Redis's own format, which the
/// memory engine keeps too) and the entry's ordinal in the queue, for counting what is
/// pending without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub id: String,
    pub n: u64,
}

impl Position {
    /// Before the first event.
    pub fn start() -> Self {
        Self {
            id: "0-0".into(),
            n: 0,
        }
    }
}

/// Parses a pull cursor (`<ms>-<seq>`); anything else is a clear `INVALID_PAYLOAD`.
pub fn parse_cursor(raw: &str) -> Result<(u64, u64), AppError> {
    let bad = || AppError::invalid("after: a cursor from a previous page (<ms>-<seq>)");
    let (ms, seq) = raw.split_once('-').ok_or_else(bad)?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(ms) || !digits(seq) {
        return Err(bad());
    }
    Ok((
        ms.parse().map_err(|_| bad())?,
        seq.parse().map_err(|_| bad())?,
    ))
}

/// One event in the queue, with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub pos: Position,
    pub event: ExportEvent,
}

/// What a tenant's webhook has yet to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Events after the delivery cursor.
    pub pending: u64,
    /// When the oldest of them was appended (ms since the epoch).
    pub oldest_ms: Option<u64>,
    pub dead_letters: u64,
}

/// What each tenant's queue (and dead-letter list) keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueBounds {
    pub cap: usize,
    pub retention: Duration,
}

/// The per-tenant export queue, its webhook configuration, the delivery cursor and lease,
/// and the dead letters. Keyed by tenant first: an engine cannot reach across tenants.
#[async_trait]
pub trait ExportQueue: Send + Sync + 'static {
    /// Appends an event (bounded by count and age).
    async fn append(&self, e: &ExportEvent) -> StoreResult<()>;
    /// Up to `limit` events after the stream id `after`, oldest first.
    async fn read(&self, t: &TenantId, after: &str, limit: usize) -> StoreResult<Vec<Queued>>;
    /// Stores a webhook. A first configuration starts delivery at the queue's end; a
    /// replaced one keeps its cursor.
    async fn set_webhook(&self, t: &TenantId, w: &Webhook) -> StoreResult<()>;
    async fn webhook(&self, t: &TenantId) -> StoreResult<Option<Webhook>>;
    /// Removes the webhook, its cursor and lease (dead letters stay readable); false when
    /// there was none.
    async fn delete_webhook(&self, t: &TenantId) -> StoreResult<bool>;
    /// The tenants that have a webhook.
    async fn webhook_tenants(&self) -> StoreResult<Vec<TenantId>>;
    /// Takes or renews the tenant's delivery lease for `holder`; false when another holds
    /// it.
    async fn lease(&self, t: &TenantId, holder: &str, ttl: Duration) -> StoreResult<bool>;
    async fn release(&self, t: &TenantId, holder: &str) -> StoreResult<()>;
    /// Where delivery stands (the start when no webhook is configured).
    async fn cursor(&self, t: &TenantId) -> StoreResult<Position>;
    /// Moves the cursor to `to`, only while `holder` holds the lease (false otherwise:
    /// another node took over, and it delivers from the cursor).
    async fn advance(&self, t: &TenantId, holder: &str, to: &Position) -> StoreResult<bool>;
    /// Appends `events` to the dead letters and moves the cursor to `to`, in one step, only
    /// while `holder` holds the lease.
    async fn dead_letter(
        &self,
        t: &TenantId,
        holder: &str,
        events: &[ExportEvent],
        to: &Position,
    ) -> StoreResult<bool>;
    /// The oldest `limit` dead letters.
    async fn dead_letters(&self, t: &TenantId, limit: usize) -> StoreResult<Vec<ExportEvent>>;
    /// Appends the oldest `limit` dead letters to the queue again (same ids) and removes
    /// them from the list; how many.
    async fn replay_dead_letters(&self, t: &TenantId, limit: usize) -> StoreResult<u64>;
    async fn backlog(&self, t: &TenantId) -> StoreResult<Backlog>;
}

/// The gateway's handle on the queue: appends, and wakes this node's delivery at once.
pub struct Export {
    queue: Arc<dyn ExportQueue>,
    wake: Arc<Notify>,
}

impl Export {
    pub fn new(queue: Arc<dyn ExportQueue>) -> Self {
        Self {
            queue,
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn queue(&self) -> &Arc<dyn ExportQueue> {
        &self.queue
    }

    /// What delivery waits on between polls.
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Appends one event of `kind` with a fresh id.
    pub async fn record(
        &self,
        t: &TenantId,
        kind: EventType,
        at: String,
        data: serde_json::Value,
    ) -> StoreResult<()> {
        let event = ExportEvent {
            id: uuid::Uuid::new_v4().to_string(),
            kind: kind.as_str().to_owned(),
            tenant_id: t.clone(),
            at,
            data,
        };
        self.queue.append(&event).await?;
        self.wake.notify_waiters();
        Ok(())
    }

    /// Wakes delivery after a change made through the API (a replay, a new webhook).
    pub fn poke(&self) {
        self.wake.notify_waiters();
    }
}

/// Now, in ms since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The ms part of a stream id.
pub fn id_ms(id: &str) -> Option<u64> {
    id.split_once('-').and_then(|(ms, _)| ms.parse().ok())
}

fn malformed(what: &str) -> StoreError {
    StoreError::Unavailable(format!("export queue: unreadable {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_takes_full_names_and_prefixes_and_nothing_else() {
        let f = EventFilter::parse(&["progress".into(), "notification:read".into()]).unwrap();
        assert!(f.matches("progress:content") && f.matches("progress:video"));
        assert!(f.matches("notification:read"));
        assert!(!f.matches("notification:dismissed") && !f.matches("presence:join"));
        assert!(EventFilter::parse(&["progress:nope".into()]).is_err());
        assert!(EventFilter::parse(&["prog".into()]).is_err());
        assert!(EventFilter::parse(&[]).is_err());
    }

    #[test]
    fn a_webhook_needs_an_http_url_and_a_long_enough_secret_and_never_prints_it() {
        let ev = ["presence".to_owned()];
        assert!(Webhook::parse("ftp://x/y", "0123456789abcdef", &ev).is_err());
        assert!(Webhook::parse("not a url", "0123456789abcdef", &ev).is_err());
        assert!(Webhook::parse("https://lms.example/hook", "short", &ev).is_err());
        let w = Webhook::parse("https://lms.example/hook", "0123456789abcdef-secret", &ev).unwrap();
        assert!(!format!("{w:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn a_cursor_is_two_numbers_joined_by_a_dash() {
        assert_eq!(parse_cursor("17-3").unwrap(), (17, 3));
        for bad in [
            "",
            "17",
            "a-1",
            "1-",
            "-1",
            "1-2-3",
            "99999999999999999999999-0",
        ] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }
}
