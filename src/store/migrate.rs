//! `lms-realtime migrate-keys`: copies the layout before per-user hash tags (every key of a
//! tenant under `lms:{<tenant>}:`, a full JSON copy per recipient) into the current one
//! (bodies once, references per user, per-user and per-course tags), and upgrades the inboxes
//! of the first per-user layout (which kept unread entries and the count in the state hash,
//! and membership keys without a TTL).
//!
//! Safe on a live cluster and safe to run twice: each user's inbox is merged by one script
//! that skips ids the new inbox already has, bodies are written only where missing, and
//! memberships are set idempotently. New nodes already write the new layout, so run it once
//! after every node is upgraded; with `--delete-old` it removes each old key it copied.

use std::collections::HashMap;

use fred::interfaces::{ClientLike, HashesInterface, KeysInterface, SortedSetsInterface};
use fred::types::Value;
use fred::types::scan::Scanner;
use futures::StreamExt;
use futures::stream::BoxStream;

use super::keys::{self, legacy};
use super::redis::{RedisStore, ms, now_ms, unavailable};
use super::redis_inbox::StoredBody;
use super::*;

const MERGE_INBOX: &str = super::redis_inbox::inbox_script!("migrate_inbox.lua");
const EXPIRE_PERSISTENT: &str = include_str!("lua/expire_persistent.lua");

/// What a migration copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MigrationReport {
    pub inboxes: u64,
    pub entries: u64,
    pub courses: u64,
    pub memberships: u64,
    /// Old entries or keys that could not be parsed, left in place.
    pub unreadable: u64,
    /// Inboxes of the per-user layout passed through the inbox scripts, which drop what the
    /// first version of it kept in the state hash (`U` entries, a stored `:unread`).
    pub upgraded: u64,
    /// Membership keys that had no TTL yet (before memberships expired with inactivity).
    pub ttl_set: u64,
}

/// Every key matching `pattern`, on every master.
async fn scan_all(store: &RedisStore, pattern: &str) -> StoreResult<Vec<String>> {
    let client = &store.client;
    let mut pages: BoxStream<'_, _> = if client.is_clustered() {
        Box::pin(client.scan_cluster(pattern.to_owned(), Some(500), None))
    } else {
        Box::pin(client.scan(pattern.to_owned(), Some(500), None))
    };
    let mut out = vec![];
    while let Some(page) = pages.next().await {
        let mut page = page.map_err(unavailable)?;
        let found = page.take_results().unwrap_or_default();
        out.extend(found.iter().filter_map(|k| k.as_str().map(str::to_owned)));
        page.next();
    }
    Ok(out)
}

fn status_code(old: &str) -> Option<String> {
    match old {
        "UNREAD" => Some("U".into()),
        "READ" => Some("R".into()),
        "DISMISSED" => Some(format!("D{}", now_ms())),
        _ => None,
    }
}

/// Copies every old inbox and membership into the new layout.
pub async fn migrate_keys(store: &RedisStore, delete_old: bool) -> StoreResult<MigrationReport> {
    let mut report = MigrationReport::default();
    for key in scan_all(store, legacy::INBOX_PATTERN).await? {
        let Some((t, u)) = legacy::parse_user_key(&key)
            .and_then(|(t, u)| Some((TenantId::parse(t).ok()?, UserId::parse(u).ok()?)))
        else {
            report.unreadable += 1;
            continue;
        };
        migrate_inbox(store, &t, &u, delete_old, &mut report).await?;
    }
    for key in scan_all(store, legacy::COURSE_PATTERN).await? {
        let Some((t, c)) = legacy::parse_course_key(&key)
            .and_then(|(t, c)| Some((TenantId::parse(t).ok()?, CourseId::parse(c).ok()?)))
        else {
            report.unreadable += 1;
            continue;
        };
        let members: HashMap<String, String> =
            store.client.hgetall(&key).await.map_err(unavailable)?;
        for (u, r) in members {
            let (Ok(u), Some(r)) = (UserId::parse(u), CourseRole::parse(&r)) else {
                report.unreadable += 1;
                continue;
            };
            store.set_member(&t, &c, &u, r).await?;
            report.memberships += 1;
            if delete_old {
                let old = legacy::user_key(t.as_str(), u.as_str(), "courses");
                let _: () = store.client.del(old).await.map_err(unavailable)?;
            }
        }
        report.courses += 1;
        if delete_old {
            let _: () = store.client.del(&key).await.map_err(unavailable)?;
        }
    }
    // Every script that touches an inbox upgrades it; one sweep touches them all at once.
    report.upgraded = store.sweep().await?.inboxes;
    let ttl = ms(store.limits.inbox_idle_ttl()).to_string();
    for pattern in keys::MEMBERSHIP_PATTERNS {
        for key in scan_all(store, pattern).await? {
            let set = store
                .eval(EXPIRE_PERSISTENT, vec![key], vec![ttl.clone()])
                .await?;
            report.ttl_set += u64::from(set.as_i64() == Some(1));
        }
    }
    Ok(report)
}

async fn migrate_inbox(
    store: &RedisStore,
    t: &TenantId,
    u: &UserId,
    delete_old: bool,
    report: &mut MigrationReport,
) -> StoreResult<()> {
    let old = |part| legacy::user_key(t.as_str(), u.as_str(), part);
    let order: Vec<String> = store
        .client
        .zrange(old("inbox"), 0, -1, None, false, None, false)
        .await
        .map_err(unavailable)?;
    let entries: HashMap<String, String> = store
        .client
        .hgetall(old("entries"))
        .await
        .map_err(unavailable)?;
    let statuses: HashMap<String, String> = store
        .client
        .hgetall(old("status"))
        .await
        .map_err(unavailable)?;
    let mut args = vec![];
    for (position, id) in order.iter().enumerate() {
        let parsed = entries
            .get(id)
            .and_then(|json| serde_json::from_str::<Notification>(json).ok());
        let code = statuses.get(id).and_then(|s| status_code(s));
        let (Some(n), Some(code)) = (parsed, code) else {
            report.unreadable += 1;
            continue;
        };
        let created = chrono::DateTime::parse_from_rfc3339(&n.created_at)
            .map_or(now_ms() as i64, |d| d.timestamp_millis());
        let json = serde_json::to_string(&StoredBody::of(&n))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let body_ttl = ms(store.limits.inbox_retention) as i64;
        let _: Value = store
            .client
            .set(
                keys::body(t, &n.id),
                json,
                Some(fred::types::Expiration::PX(body_ttl)),
                Some(fred::types::SetOptions::NX),
                false,
            )
            .await
            .map_err(unavailable)?;
        // Insert order kept: µs of the creation time plus the old position.
        let score = created.max(0) as u64 * 1000 + (position as u64 % 1000);
        args.extend([n.id.to_string(), score.to_string(), code]);
        report.entries += 1;
    }
    let _: Value = store
        .eval(
            MERGE_INBOX,
            RedisStore::user_keys(t, u),
            [ms(store.limits.inbox_idle_ttl()).to_string()]
                .into_iter()
                .chain(args)
                .collect(),
        )
        .await?;
    report.inboxes += 1;
    if delete_old {
        let parts = ["inbox", "entries", "status", "unread", "seq"].map(old);
        let _: () = store
            .client
            .del(parts.to_vec())
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}
