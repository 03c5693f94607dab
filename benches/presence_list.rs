//! What one `presence:list` of a 10,000-user course costs the node: the Redis read and its
//! parsing, building the list and serializing the ack body, counted in allocations and
//! bytes (which do not depend on the build profile or on the box's load) and timed; alone,
//! and as 10 overlapping calls of one course. Runs the gateway's own code
//! (`Presence::course_list` over the Redis engine, on a private `redis-server`, and the ack
//! envelope `ok_body`), so the same file measures any version of them. Run:
//! `cargo bench --bench presence_list` (or `--profile dev` for the counts alone).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use lms_realtime::ids::{CourseId, TenantId, UserId};
use lms_realtime::presence::redis::RedisPresence;
use lms_realtime::presence::tracker::PresenceSettings;
use lms_realtime::presence::{
    Announcement, Announcer, Presence, PresenceStore, Rules, Scope, now_ms,
};
use lms_realtime::socket::reply::ok_body;
use tokio_util::sync::CancellationToken;

#[path = "support/redis.rs"]
mod redis;

use redis::start_redis;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{ALLOCS, BYTES};

const USERS: usize = 10_000;
const OVERLAPPING: usize = 10;
const ROUNDS: u32 = 20;

/// Announcements are not what is measured.
struct Silent;

impl Announcer for Silent {
    fn announce(&self, _: Announcement) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// One round: `calls` overlapping lists, each serialized as its ack; returns the ack size.
async fn round(presence: &Presence, t: &TenantId, c: &CourseId, calls: usize) -> usize {
    let lists = futures::future::join_all((0..calls).map(|_| async {
        let list = presence.course_list(t, c).await.expect("listed");
        serde_json::to_vec(&ok_body(&list))
            .expect("serialized")
            .len()
    }))
    .await;
    assert!(lists.iter().all(|&n| n == lists[0]));
    lists[0]
}

async fn measure(presence: &Presence, t: &TenantId, c: &CourseId, calls: usize) {
    let bytes_out = round(presence, t, c, calls).await; // warm-up
    let (a0, b0, start) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
        Instant::now(),
    );
    for _ in 0..ROUNDS {
        round(presence, t, c, calls).await;
    }
    let per_round = start.elapsed() / ROUNDS;
    let allocs = (ALLOCS.load(Ordering::Relaxed) - a0) / u64::from(ROUNDS);
    let bytes = (BYTES.load(Ordering::Relaxed) - b0) / u64::from(ROUNDS);
    println!(
        "presence_list users={USERS} overlapping_calls={calls}: ack {bytes_out} B each; per round: {allocs} allocations, {} KiB allocated, {per_round:?}",
        bytes / 1024
    );
}

fn main() {
    // `cargo nextest run --all-targets` lists every target: nothing to list here.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let redis = start_redis();
        let client = redis::client(&redis).await;
        let store = Arc::new(RedisPresence::new(
            client,
            "bench#1".into(),
            Duration::from_secs(3600),
        ));
        let t = TenantId::parse("tenant-1").unwrap();
        let c = CourseId::parse("course-1").unwrap();
        let scope = Scope::Course(t.clone(), c.clone());
        let rules = Rules {
            now_ms: now_ms(),
            debounce_ms: 0,
        };
        for i in 0..USERS {
            let u = UserId::parse(format!("user-{i:06}")).unwrap();
            store.join(&scope, &u, "student", rules).await.unwrap();
        }
        let stop = CancellationToken::new();
        let presence = Presence::start(
            store,
            Arc::new(Silent),
            PresenceSettings {
                enabled: true,
                debounce: Duration::ZERO,
                upkeep_every: Duration::from_secs(3600),
                tenant_metric_cap: 10,
                list_cache: Duration::ZERO,
            },
            stop.clone(),
        );
        measure(&presence, &t, &c, 1).await;
        measure(&presence, &t, &c, OVERLAPPING).await;
        stop.cancel();
    });
}
