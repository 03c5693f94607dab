//! Redis bytes per recipient and per user, for the store as it is and for the layout before
//! it (a full JSON copy per recipient, every key under the tenant's tag), on a private
//! `redis-server` this bench starts on a free port. Redis memory does not depend on how the
//! gateway was compiled, so a debug build measures the same:
//! `cargo bench --profile dev --bench storage_bytes` (figures in docs/benchmarks.md).

use fred::clients::Client;
use fred::interfaces::{
    ClientLike, HashesInterface, KeysInterface, SetsInterface, SortedSetsInterface,
};
use fred::types::{InfoKind, Value};
use lms_realtime::ids::{TenantId, UserId};
use lms_realtime::store::conformance::{fresh_tenant, notification};
use lms_realtime::store::redis::RedisStore;
use lms_realtime::store::{InboxStore, StoreLimits, keys};

#[path = "support/redis.rs"]
mod redis;

use redis::start_redis;

const RECIPIENTS: usize = 1_000;
const DATA_BYTES: usize = 2_048;
const INBOX_FILL: usize = 500;

async fn used_memory(c: &Client) -> i64 {
    let info: String = c.info(Some(InfoKind::Memory)).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

fn users(n: usize) -> Vec<UserId> {
    (0..n)
        .map(|i| UserId::parse(format!("user-{i:06}")).unwrap())
        .collect()
}

fn big_notification(t: &TenantId, id: &str) -> lms_realtime::types::Notification {
    let mut n = notification(t, &users(1)[0], id);
    n.data = Some(std::sync::Arc::new(
        serde_json::json!({ "blob": "x".repeat(DATA_BYTES) }).into(),
    ));
    n
}

/// One notification with 2 KB of data to 1000 users, through the store: users whose
/// inboxes already exist (the steady state), and users notified for the first time (their
/// inbox key is created; the status key only comes with a first read). Also the
/// idempotency record's share, per recipient.
async fn current_per_recipient(c: &Client, store: &RedisStore) -> (f64, f64, f64) {
    let t = fresh_tenant();
    let send = async |id: &str| {
        let before = used_memory(c).await;
        let fanout = store.open_fanout(&big_notification(&t, id)).await.unwrap();
        for u in users(RECIPIENTS) {
            store.insert(&u, &fanout.body).await.unwrap();
            store
                .mark_delivered(&t, &fanout.body.id, std::slice::from_ref(&u))
                .await
                .unwrap();
        }
        (used_memory(c).await - before) as f64 / RECIPIENTS as f64
    };
    let first = send("n-0").await;
    let steady = send("n-1").await;
    let usage = fred::types::CustomCommand::new_static("MEMORY", None, false);
    let id = lms_realtime::ids::NotificationId::parse("n-1").unwrap();
    let sent: Option<i64> = c
        .custom(
            usage,
            vec![
                "USAGE".to_owned(),
                keys::sent(&t, &id),
                "SAMPLES".into(),
                "0".into(),
            ],
        )
        .await
        .unwrap();
    (steady, first, sent.unwrap_or(0) as f64 / RECIPIENTS as f64)
}

/// One send to one user of another tenant first, so that what the server allocates once
/// (the script cache, the connection's buffers) is not charged to the first recipients.
async fn warm_up(c: &Client, store: &RedisStore) {
    let t = fresh_tenant();
    let before = used_memory(c).await;
    let fanout = store
        .open_fanout(&big_notification(&t, "warm-up"))
        .await
        .unwrap();
    let u = &users(1)[0];
    store.insert(u, &fanout.body).await.unwrap();
    store
        .mark_delivered(&t, &fanout.body.id, std::slice::from_ref(u))
        .await
        .unwrap();
    store.mark_all_read(&t, u).await.unwrap();
    println!(
        "warm-up (one-time server allocations, one recipient): {} B",
        used_memory(c).await - before
    );
}

/// The same, written the way the old layout stored it.
async fn old_per_recipient(c: &Client) -> f64 {
    let t = fresh_tenant();
    let before = used_memory(c).await;
    for (seq, u) in users(RECIPIENTS).into_iter().enumerate() {
        write_old(c, &t, &u, "n-1", seq as f64).await;
    }
    (used_memory(c).await - before) as f64 / RECIPIENTS as f64
}

async fn write_old(c: &Client, t: &TenantId, u: &UserId, id: &str, seq: f64) {
    let mut n = big_notification(t, id);
    n.user_id = Some(u.clone());
    let json = serde_json::to_string(&n).unwrap();
    let old = |part| keys::legacy::user_key(t.as_str(), u.as_str(), part);
    let _: Value = c
        .zadd(old("inbox"), None, None, false, false, (seq, id))
        .await
        .unwrap();
    let _: Value = c.hset(old("entries"), (id, json)).await.unwrap();
    let _: Value = c.hset(old("status"), (id, "UNREAD")).await.unwrap();
    let _: Value = c.sadd(old("unread"), id).await.unwrap();
    let _: Value = c.incr(old("seq")).await.unwrap();
}

/// `MEMORY USAGE` of a user's inbox keys (order and statuses).
async fn inbox_key_bytes(c: &Client, t: &TenantId, u: &UserId) -> i64 {
    let mut bytes = 0;
    for key in [keys::inbox(t, u), keys::inbox_state(t, u)] {
        let usage = fred::types::CustomCommand::new_static("MEMORY", None, false);
        let v: Option<i64> = c
            .custom(
                usage,
                vec!["USAGE".to_owned(), key, "SAMPLES".into(), "0".into()],
            )
            .await
            .unwrap();
        bytes += v.unwrap_or(0);
    }
    bytes
}

/// One user with a full inbox (500 entries, each a notification of its own to 1 user):
/// total bytes, and the references' bytes per entry while unread and once all are read.
async fn current_per_full_user(c: &Client, store: &RedisStore) -> (f64, f64, f64) {
    let t = fresh_tenant();
    let u = &users(1)[0];
    let before = used_memory(c).await;
    for i in 0..INBOX_FILL {
        let fanout = store
            .open_fanout(&big_notification(&t, &format!("n-{i}")))
            .await
            .unwrap();
        store.insert(u, &fanout.body).await.unwrap();
    }
    let total = (used_memory(c).await - before) as f64;
    let unread = inbox_key_bytes(c, &t, u).await as f64;
    store.mark_all_read(&t, u).await.unwrap();
    let read = inbox_key_bytes(c, &t, u).await as f64;
    (total, unread, read)
}

async fn old_per_full_user(c: &Client) -> f64 {
    let t = fresh_tenant();
    let u = &users(1)[0];
    let before = used_memory(c).await;
    for i in 0..INBOX_FILL {
        write_old(c, &t, u, &format!("n-{i}"), i as f64).await;
    }
    (used_memory(c).await - before) as f64
}

fn main() {
    // A test runner listing the targets (`cargo nextest run --all-targets` passes `--list`)
    // finds no tests here: this bench measures only when run as `cargo bench`.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let redis = start_redis();
        let c = redis::client(&redis).await;
        let store = RedisStore::new(c.clone(), StoreLimits::DEFAULT);
        let version: String = c.info(Some(InfoKind::Server)).await.unwrap();
        let version = version
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("?")
            .trim()
            .to_owned();
        println!("redis {version}; {RECIPIENTS} recipients, {DATA_BYTES} B of data");
        warm_up(&c, &store).await;
        let (steady, first, sent) = current_per_recipient(&c, &store).await;
        let old = old_per_recipient(&c).await;
        println!(
            "per recipient, one notification: now {steady:.0} B to existing inboxes \
             ({sent:.0} B of it the idempotency record, gone after IDEMPOTENCY_WINDOW), \
             {first:.0} B to users notified for the first time; old layout {old:.0} B"
        );
        let (user_now, unread, read) = current_per_full_user(&c, &store).await;
        let user_old = old_per_full_user(&c).await;
        println!(
            "one user with {INBOX_FILL} entries (each its own notification): now {:.0} KiB \
             ({:.0} B per entry of references while unread, {:.0} B once read; the rest the \
             bodies), old layout {:.0} KiB",
            user_now / 1024.0,
            unread / INBOX_FILL as f64,
            read / INBOX_FILL as f64,
            user_old / 1024.0
        );
    });
}
