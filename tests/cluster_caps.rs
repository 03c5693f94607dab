//! Cluster-wide connection caps against a real `redis-server` (issue 10, §13): exact when
//! connects race on several nodes, and a crashed node's share released once its heartbeat
//! has expired.

#[allow(dead_code)]
#[path = "gateway/helpers.rs"]
mod helpers;

#[allow(dead_code)]
#[path = "gateway/raw.rs"]
mod raw;

#[allow(dead_code)]
mod cluster_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fred::interfaces::{ClientLike, HashesInterface, SortedSetsInterface};
use lms_realtime::auth::Role;
use lms_realtime::cluster;
use lms_realtime::config::Secret;
use lms_realtime::ids::{TenantId, UserId};
use lms_realtime::store::connections::conformance;
use lms_realtime::store::keys;
use lms_realtime::store::redis_connections::{LiveInstances, RedisLedger};

use cluster_support::*;
use helpers::*;

async fn spawn_capped(url: &str, id: &str, per_user: usize, per_tenant: usize) -> TestNode {
    let url = url.to_owned();
    let id = id.to_owned();
    spawn_node_with(move |c| {
        c.redis_url = Some(Secret(url));
        c.node_id = Some(id);
        c.max_connections_per_user = per_user;
        c.max_connections_per_tenant = per_tenant;
        c.max_pending_sessions_per_ip = 500;
    })
    .await
}

async fn client(url: &str) -> fred::clients::Client {
    let (config, perf, connection, policy) = cluster::client_config(url).unwrap();
    let client = fred::clients::Client::new(config, Some(perf), Some(connection), Some(policy));
    client.init().await.expect("connects to the test redis");
    client
}

/// Writes a node process's heartbeat entry, as `cluster::stats` does, expiring at `until`.
async fn heartbeat(client: &fred::clients::Client, instance: &str, until: i64) {
    let _: () = client
        .zadd(
            keys::instance_registry(),
            None,
            None,
            false,
            false,
            (until as f64, instance),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn the_redis_ledger_passes_the_conformance_suite() {
    let redis = RedisServer::start();
    let ledger = RedisLedger::new(
        client(&redis.url()).await,
        "conformance#1".into(),
        LiveInstances::default(),
    );
    conformance::caps_are_exact_under_concurrency(std::sync::Arc::new(ledger)).await;
}

/// Case 3: 100 sessions sending CONNECT for one user at once were 100 of 100 accepted on a
/// cluster node (the cap is 20).
#[tokio::test]
async fn per_user_and_per_tenant_caps_are_exact_across_nodes_when_connects_race() {
    let redis = RedisServer::start();
    let url = redis.url();
    let prefix = format!("caps{}", fastrand::u32(..));
    let nodes = vec![
        spawn_capped(&url, &format!("{prefix}-1"), 20, 30).await,
        spawn_capped(&url, &format!("{prefix}-2"), 20, 30).await,
    ];
    let t = tenant();
    let same_user = vec![token("u1", Some(&t), Role::Student); 100];
    let (accepted, _held) = raw::race(&nodes, &same_user).await;
    assert_eq!(accepted, 20, "per-user cap, cluster-wide");

    let many: Vec<_> = (0..60)
        .map(|i| token(&format!("v{i}"), Some(&t), Role::Student))
        .collect();
    let (accepted, _more) = raw::race(&nodes, &many).await;
    assert_eq!(accepted, 10, "per-tenant cap (30) less the 20 held");
}

#[tokio::test]
async fn a_crashed_nodes_share_stops_counting_once_its_heartbeat_is_gone() {
    let redis = RedisServer::start();
    let url = redis.url();
    let node = spawn_capped(&url, &format!("crash{}", fastrand::u32(..)), 2, 0).await;
    let t = tenant();
    let redis_client = client(&url).await;
    let key = keys::user_connections(
        Some(&TenantId::parse(&t).unwrap()),
        &UserId::parse("u1").unwrap(),
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;

    // A node that crashed long ago, holding two of u1's sockets: not counted.
    let _: () = redis_client
        .hset(&key, [("dead#1", "2"), ("dead#1:t", "0")])
        .await
        .unwrap();
    let mut a = raw::open(&node).await;
    let tok = token("u1", Some(&t), Role::Student);
    assert!(a.connect(&tok).await.unwrap().starts_with("40"));
    let held: Option<String> = redis_client.hget(&key, "dead#1").await.unwrap();
    assert_eq!(held, None, "the dead share was pruned");

    // A live node (its heartbeat in the registry) holding one: counted.
    heartbeat(&redis_client, "alive#1", now + 60_000).await;
    let _: () = redis_client
        .hset(&key, [("alive#1", "1"), ("alive#1:t", "0")])
        .await
        .unwrap();
    // The node reads the registry with each heartbeat (every second).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let mut b = raw::open(&node).await;
    let answer = b.connect(&tok).await.unwrap();
    assert!(answer.contains("RATE_LIMITED"), "{answer}");

    // Its heartbeat expires: its share is released.
    heartbeat(&redis_client, "alive#1", now - 1).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let mut c = raw::open(&node).await;
    assert!(c.connect(&tok).await.unwrap().starts_with("40"));
}
