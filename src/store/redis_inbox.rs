//! The inbox on Redis: a body stored once per tenant and notification id, references per
//! recipient.
//!
//! One send is two kinds of single-slot steps: [`InboxStore::open_fanout`] on the
//! notification's slot (body + idempotency record), then one [`InboxStore::insert`] per
//! recipient on that user's slot (a reference: an id in a sorted set scored by insert time;
//! a status in a second hash only once it is read or dismissed, so a user's first
//! notification creates one key, and the unread count is derived). A list reads the references in one script and the bodies by key;
//! a reference whose body is gone is skipped, counted, logged and dropped from the inbox,
//! so a lost key never breaks a read. Retention (by age, by count, dismissed entries,
//! inactive users) runs inside the insert script and in [`InboxStore::sweep`].

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use fred::interfaces::{ClientLike, KeysInterface};
use fred::types::Value;
use fred::types::scan::Scanner;
use futures::StreamExt;
use futures::future::join_all;
use serde::{Deserialize, Serialize};

use super::redis::{RedisStore, int, malformed, ms, now_ms, string, unavailable};
use super::*;
use crate::types::{NotificationType, Priority};

/// An inbox script with the functions every inbox script shares (`lua/inbox_lib.lua`:
/// the derived unread count, the upgrade of the first per-user layout) in front of it.
macro_rules! inbox_script {
    ($file:literal) => {
        concat!(
            include_str!("lua/inbox_lib.lua"),
            include_str!(concat!("lua/", $file))
        )
    };
}
pub(super) use inbox_script;

const INSERT: &str = inbox_script!("insert.lua");
const SET_STATUS: &str = inbox_script!("set_status.lua");
const READ_ALL: &str = inbox_script!("read_all.lua");
const LIST: &str = inbox_script!("list.lua");
const FORGET: &str = inbox_script!("forget.lua");
const OPEN_FANOUT: &str = include_str!("lua/open_fanout.lua");
const CLAIM_DELIVERY: &str = include_str!("lua/claim_delivery.lua");
const MARK_DELIVERED: &str = include_str!("lua/mark_delivered.lua");

/// Keys the sweep asks `SCAN` for at a time; small batches spread its work.
const SWEEP_BATCH: u32 = 200;

/// What a body key holds: the notification without what the keys already say (tenant,
/// recipient, status, id).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StoredBody {
    title: Arc<str>,
    message: Arc<str>,
    #[serde(rename = "type")]
    kind: NotificationType,
    priority: Priority,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Arc<crate::types::JsonData>>,
    created_at: String,
}

impl StoredBody {
    pub(super) fn of(n: &Notification) -> Self {
        Self {
            title: n.title.clone(),
            message: n.message.clone(),
            kind: n.kind,
            priority: n.priority,
            data: n.data.clone(),
            created_at: n.created_at.clone(),
        }
    }

    pub(super) fn into_notification(self, t: &TenantId, id: &NotificationId) -> Notification {
        Notification {
            id: id.clone(),
            tenant_id: t.clone(),
            user_id: None,
            title: self.title,
            message: self.message,
            kind: self.kind,
            priority: self.priority,
            status: NotificationStatus::Unread,
            data: self.data,
            created_at: self.created_at,
        }
    }
}

fn status_code(s: NotificationStatus) -> &'static str {
    match s {
        NotificationStatus::Unread => "U",
        NotificationStatus::Read => "R",
        NotificationStatus::Dismissed => "D",
    }
}

fn parse_status(s: &str) -> Option<NotificationStatus> {
    match s {
        "U" => Some(NotificationStatus::Unread),
        "R" => Some(NotificationStatus::Read),
        "D" => Some(NotificationStatus::Dismissed),
        _ => None,
    }
}

/// The leading integers of a script's reply.
fn ints<const N: usize>(v: &Value, what: &str) -> StoreResult<[i64; N]> {
    let Value::Array(items) = v else {
        return Err(malformed(what));
    };
    let mut out = [0; N];
    for (slot, item) in out.iter_mut().zip(items) {
        *slot = int(item).ok_or_else(|| malformed(what))?;
    }
    if items.len() < N {
        return Err(malformed(what));
    }
    Ok(out)
}

impl RedisStore {
    /// Every key of a user, the inbox's first: the scripts that are activity set the same
    /// idle TTL on all of them, so a user's keys expire together.
    pub(super) fn user_keys(t: &TenantId, u: &UserId) -> Vec<String> {
        vec![
            keys::inbox(t, u),
            keys::inbox_state(t, u),
            keys::user_courses(t, u),
        ]
    }

    fn idle_ms(&self) -> String {
        ms(self.limits.inbox_idle_ttl()).to_string()
    }

    async fn set_status(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
        to: NotificationStatus,
    ) -> StoreResult<StatusChange> {
        let reply = self
            .eval(
                SET_STATUS,
                Self::user_keys(t, u),
                vec![
                    id.to_string(),
                    status_code(to).into(),
                    now_ms().to_string(),
                    self.idle_ms(),
                ],
            )
            .await?;
        match ints::<2>(&reply, "set_status")? {
            [-1, _] => Err(StoreError::NotFound(format!("notification {id}"))),
            [changed, unread] => Ok(StatusChange {
                changed: changed == 1,
                unread: unread.max(0) as u64,
            }),
        }
    }

    /// Runs the insert script: an insert, or (with no id) only the retention rules.
    async fn insert_or_trim(
        &self,
        keys_: Vec<String>,
        id: Option<&NotificationId>,
    ) -> StoreResult<[i64; 3]> {
        let l = &self.limits;
        let reply = self
            .eval(
                INSERT,
                keys_,
                vec![
                    id.map(ToString::to_string).unwrap_or_default(),
                    now_ms().to_string(),
                    l.inbox_cap.max(1).to_string(),
                    ms(l.inbox_retention).to_string(),
                    ms(l.dismissed_retention).to_string(),
                    self.idle_ms(),
                    if id.is_some() { "1" } else { "0" }.into(),
                ],
            )
            .await?;
        ints::<3>(&reply, "insert")
    }

    /// The bodies of `ids`, `None` where a body is gone or unreadable.
    async fn bodies(&self, t: &TenantId, ids: &[NotificationId]) -> Vec<Option<Notification>> {
        let reads = ids.iter().map(|id| async move {
            let raw: Option<String> = self.client.get(keys::body(t, id)).await.ok()?;
            let body: StoredBody = serde_json::from_str(&raw?).ok()?;
            Some(body.into_notification(t, id))
        });
        join_all(reads).await
    }

    /// Drops references whose body is gone, so later reads and the count heal.
    async fn forget(&self, t: &TenantId, u: &UserId, ids: Vec<String>) {
        if let Err(e) = self.eval(FORGET, Self::user_keys(t, u), ids).await {
            tracing::warn!(tenant = %t, error = %e, "could not drop unreadable inbox entries");
        }
    }
}

#[async_trait]
impl InboxStore for RedisStore {
    async fn open_fanout(&self, n: &Notification) -> StoreResult<Fanout> {
        let t = &n.tenant_id;
        let json = serde_json::to_string(&StoredBody::of(n))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let reply = self
            .eval(
                OPEN_FANOUT,
                vec![keys::body(t, &n.id), keys::sent(t, &n.id)],
                vec![
                    json,
                    ms(self.limits.inbox_retention).to_string(),
                    ms(self.limits.idempotency_window).to_string(),
                    now_ms().to_string(),
                    ms(DELIVERY_LEASE).to_string(),
                ],
            )
            .await?;
        let items = reply.into_array();
        let mut it = items.iter();
        let retry = it
            .next()
            .and_then(int)
            .ok_or_else(|| malformed("open_fanout"))?
            == 1;
        let stored: StoredBody = it
            .next()
            .and_then(string)
            .and_then(|j| serde_json::from_str(&j).ok())
            .ok_or_else(|| malformed("open_fanout"))?;
        let delivered = it
            .filter_map(|v| string(v).and_then(|u| UserId::parse(u).ok()))
            .collect::<HashSet<_>>();
        Ok(Fanout {
            body: Arc::new(stored.into_notification(t, &n.id)),
            retry,
            delivered,
        })
    }

    async fn insert(&self, to: &UserId, body: &Arc<Notification>) -> StoreResult<InsertOutcome> {
        let keys_ = Self::user_keys(&body.tenant_id, to);
        Ok(match self.insert_or_trim(keys_, Some(&body.id)).await? {
            [1, unread, _] => InsertOutcome::Inserted {
                unread: unread.max(0) as u64,
            },
            [_, unread, _] => InsertOutcome::Duplicate {
                unread: unread.max(0) as u64,
            },
        })
    }

    async fn claim_delivery(
        &self,
        t: &TenantId,
        id: &NotificationId,
        to: &UserId,
    ) -> StoreResult<bool> {
        let reply = self
            .eval(
                CLAIM_DELIVERY,
                vec![keys::sent(t, id)],
                vec![
                    to.to_string(),
                    now_ms().to_string(),
                    ms(DELIVERY_LEASE).to_string(),
                ],
            )
            .await?;
        Ok(int(&reply).ok_or_else(|| malformed("claim_delivery"))? == 1)
    }

    async fn mark_delivered(
        &self,
        t: &TenantId,
        id: &NotificationId,
        to: &[UserId],
    ) -> StoreResult<()> {
        if to.is_empty() {
            return Ok(());
        }
        self.eval(
            MARK_DELIVERED,
            vec![keys::sent(t, id)],
            to.iter().map(ToString::to_string).collect(),
        )
        .await?;
        Ok(())
    }

    async fn mark_read(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
    ) -> StoreResult<StatusChange> {
        self.set_status(t, u, id, NotificationStatus::Read).await
    }

    async fn mark_all_read(&self, t: &TenantId, u: &UserId) -> StoreResult<u64> {
        let reply = self
            .eval(READ_ALL, Self::user_keys(t, u), vec![self.idle_ms()])
            .await?;
        int(&reply)
            .map(|n| n.max(0) as u64)
            .ok_or_else(|| malformed("read_all"))
    }

    async fn dismiss(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
    ) -> StoreResult<StatusChange> {
        self.set_status(t, u, id, NotificationStatus::Dismissed)
            .await
    }

    /// Exact under retention: the rules run first (without counting as activity).
    async fn unread_count(&self, t: &TenantId, u: &UserId) -> StoreResult<u64> {
        let [_, unread, _] = self.insert_or_trim(Self::user_keys(t, u), None).await?;
        Ok(unread.max(0) as u64)
    }

    async fn list(&self, t: &TenantId, u: &UserId, q: &ListQuery) -> StoreResult<Page> {
        let max = match q.before {
            Some(b) => format!("({b}"),
            None => "+inf".into(),
        };
        let want = q.status.map(status_code).unwrap_or("");
        self.insert_or_trim(Self::user_keys(t, u), None).await?;
        let reply = self
            .eval(
                LIST,
                Self::user_keys(t, u),
                vec![max, q.limit.to_string(), want.into()],
            )
            .await?;
        let [more, mut skipped] = ints::<2>(&reply, "list")?;
        let rest = reply.into_array().split_off(2);
        let mut refs = Vec::with_capacity(rest.len() / 3);
        for chunk in rest.chunks(3) {
            let [score, id, status] = chunk else {
                return Err(malformed("list"));
            };
            let score = string(score)
                .and_then(|s| s.parse::<f64>().ok())
                .ok_or_else(|| malformed("list"))? as u64;
            let id = string(id).and_then(|i| NotificationId::parse(i).ok());
            let status = string(status).as_deref().and_then(parse_status);
            refs.push((score, id, status));
        }
        let ids: Vec<NotificationId> = refs.iter().filter_map(|r| r.1.clone()).collect();
        let mut bodies = self.bodies(t, &ids).await.into_iter();
        let mut items = Vec::with_capacity(refs.len());
        let mut lost = vec![];
        let mut last_seq = None;
        for (score, id, status) in refs {
            last_seq = Some(score);
            let (Some(id), Some(status)) = (id, status) else {
                skipped += 1;
                continue;
            };
            match bodies.next().flatten() {
                Some(mut n) => {
                    n.user_id = Some(u.clone());
                    n.status = status;
                    items.push(n);
                }
                None => {
                    skipped += 1;
                    lost.push(id.to_string());
                }
            }
        }
        if skipped > 0 {
            tracing::warn!(tenant = %t, skipped, "inbox entries unreadable (key or body missing); listed the rest");
            crate::metrics::store_entries_skipped(skipped as u64);
        }
        if !lost.is_empty() {
            self.forget(t, u, lost).await;
        }
        Ok(Page {
            items,
            next_cursor: if more == 1 { last_seq } else { None },
            skipped: skipped.max(0) as u64,
        })
    }

    async fn sweep(&self) -> StoreResult<SweepReport> {
        let mut report = SweepReport::default();
        let pattern = keys::INBOX_PATTERN;
        // SCAN reaches one server; a cluster is scanned master by master.
        let mut pages: futures::stream::BoxStream<'_, _> = if self.client.is_clustered() {
            Box::pin(self.client.scan_cluster(pattern, Some(SWEEP_BATCH), None))
        } else {
            Box::pin(self.client.scan(pattern, Some(SWEEP_BATCH), None))
        };
        while let Some(page) = pages.next().await {
            let mut page = page.map_err(unavailable)?;
            for key in page.take_results().unwrap_or_default() {
                let Some(inbox) = key.as_str().map(str::to_owned) else {
                    continue;
                };
                let Some(state) = inbox.strip_suffix(":inbox").map(|p| format!("{p}:state")) else {
                    continue;
                };
                let [_, _, trimmed] = self.insert_or_trim(vec![inbox, state], None).await?;
                report.inboxes += 1;
                report.trimmed += trimmed.max(0) as u64;
            }
            page.next();
        }
        Ok(report)
    }
}
