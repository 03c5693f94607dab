//! Sharded fan-out (issue 17) against real Redis: a room's emits travel on its own sharded
//! channel, held only by the nodes with sockets in the room, subscribed before a join
//! counts as done, released after `ROOM_UNSUBSCRIBE_DELAY_MS`, restored after a Redis
//! restart, and spread over a Redis Cluster's masters. A user's room has no channel: its
//! emits go to the nodes the connection ledger names (`cluster::user_servers`). Real
//! nodes, real Socket.IO clients.

#[allow(dead_code)]
#[path = "gateway/helpers.rs"]
mod helpers;

#[allow(dead_code)]
mod cluster_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fred::interfaces::PubsubInterface;
use lms_realtime::Config;
use lms_realtime::auth::Role;
use serde_json::{Value, json};

use cluster_support::*;
use helpers::*;

/// A room's sharded channel, as the adapter names it (vendor/socketioxide-redis `rooms`).
fn channel(t: &str, room: &str) -> String {
    format!("lms-room#/#{{{t}}}#{room}#")
}

fn user_channel(t: &str, u: &str) -> String {
    channel(t, &format!("tenant:{t}:user:{u}"))
}

/// A node's own request channel (vendor/socketioxide-redis `get_req_chan`).
fn server_channel(server: &str) -> String {
    format!("lms-request#/#{server}#")
}

/// The servers the connection ledger names for user `u`: its fields are
/// `<node>#<server id>` (a count) and `<node>#<server id>:t` (when last touched).
async fn ledger_servers(redis: &fred::clients::Client, t: &str, u: &str) -> BTreeSet<String> {
    use fred::interfaces::HashesInterface;
    let fields: Vec<String> = redis
        .hkeys(format!("lms:{{{t}}}:user:{u}:conns"))
        .await
        .expect("HKEYS");
    fields
        .iter()
        .filter(|f| !f.ends_with(":t"))
        .map(|f| f.rsplit_once('#').expect("<node>#<server>").1.to_owned())
        .collect()
}

fn course_channel(t: &str, c: &str) -> String {
    channel(t, &format!("tenant:{t}:course:{c}"))
}

/// How many nodes hold `chan` subscribed (`PUBSUB SHARDNUMSUB`).
async fn holders(redis: &fred::clients::Client, chan: &str) -> u64 {
    let (_, n): (String, u64) = redis.pubsub_shardnumsub(chan).await.expect("SHARDNUMSUB");
    n
}

fn marker_of(v: &Value) -> Option<u64> {
    v["changes"]["marker"].as_str()?.parse().ok()
}

/// Nodes on one Redis with the test defaults adjusted by `tweak`.
async fn nodes_with(url: &str, n: usize, tweak: impl Fn(&mut Config)) -> Vec<TestNode> {
    let prefix = format!("s{}", fastrand::u32(..));
    let mut nodes = Vec::new();
    for i in 1..=n {
        let (url, id) = (url.to_owned(), format!("{prefix}-{i}"));
        nodes.push(
            spawn_node_with(|c| {
                c.redis_url = Some(lms_realtime::config::Secret(url));
                c.node_id = Some(id);
                tweak(c);
            })
            .await,
        );
    }
    nodes
}

/// The race, not the rate limits, is under test.
fn unlimited(c: &mut Config) {
    (c.api_rate_per_sec, c.api_burst) = (100_000, 100_000);
    (c.event_rate_per_sec, c.event_burst) = (100_000, 100_000);
}

fn adapter_in(metrics: &str) -> f64 {
    counter(metrics, "lms_adapter_messages_total{direction=\"in\"} ")
}

/// A user with tabs on two nodes, notified from a third: both tabs get every emit, and a
/// node without the user receives none of them, though the user's room has no channel.
#[tokio::test]
async fn a_node_without_members_of_a_room_receives_none_of_its_emits() {
    let redis = RedisServer::start();
    let url = redis.url();
    let nodes = spawn_cluster(&url, 3).await;
    // A process of its own, so its metrics are its alone.
    let idle = spawn_process(&url, &format!("idle-{}", fastrand::u32(..)), &[]).await;
    let t = tenant();
    let tab = connect(&nodes[0], &token("u1", Some(&t), Role::Student)).await;
    let other = connect(&nodes[1], &token("u1", Some(&t), Role::Student)).await;
    let probe = redis_client(&url).await;
    assert_eq!(
        holders(&probe, &user_channel(&t, "u1")).await,
        0,
        "a user's room has no channel of its own"
    );
    assert_eq!(ledger_servers(&probe, &t, "u1").await.len(), 2);

    let before = adapter_in(&idle.node.metrics_text().await);
    for i in 0..50 {
        assert_eq!(nodes[2].notify(&t, "u1", &format!("n{i}")).await.0, 202);
    }
    for tab in [&tab, &other] {
        tab.inbox
            .wait_for("notification:new", |n| n["id"] == "n49")
            .await;
        assert_eq!(tab.inbox.all("notification:new").len(), 50);
    }
    // The emits on their way to node 1 would have reached the idle node by now on the
    // shared channel; one more shared-channel request (a system alert, no room) is the
    // marker that everything before it was delivered to the idle node.
    let (status, body) = nodes[2]
        .post(
            "/system/alerts",
            &super_token(),
            json!({ "title": "marker", "message": "m" }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    tab.inbox.next("system:alert").await;
    eventually(
        "the idle node received the shared-channel marker",
        || async { adapter_in(&idle.node.metrics_text().await) > before },
    )
    .await;
    let after = adapter_in(&idle.node.metrics_text().await);
    assert_eq!(
        after - before,
        1.0,
        "the idle node received only the system alert, none of the 50 user-room emits"
    );
}

/// A user whose ledger names a node of an older version (an 8-hex boot id, no server id):
/// its emits go to every node, as before room channels, and are counted so.
#[tokio::test]
async fn a_ledger_naming_an_older_node_sends_the_users_emits_everywhere() {
    use fred::interfaces::HashesInterface;
    let redis = RedisServer::start();
    let url = redis.url();
    let nodes = spawn_cluster(&url, 2).await;
    let sender = spawn_process(&url, &format!("sender-{}", fastrand::u32(..)), &[]).await;
    let t = tenant();
    let tab = connect(&nodes[0], &token("u1", Some(&t), Role::Student)).await;
    let probe = redis_client(&url).await;
    let routes = |m: &str, route: &str| {
        counter(
            m,
            &format!("lms_adapter_user_routes_total{{route=\"{route}\"}} "),
        )
    };

    assert_eq!(sender.node.notify(&t, "u1", "routed").await.0, 202);
    tab.inbox
        .wait_for("notification:new", |n| n["id"] == "routed")
        .await;
    let m = sender.node.metrics_text().await;
    assert!(routes(&m, "ledger") >= 1.0, "{m}");
    assert_eq!(routes(&m, "everywhere"), 0.0);

    let idle_before = adapter_in(&nodes[1].metrics_text().await);
    let _: i64 = probe
        .hset(
            format!("lms:{{{t}}}:user:u1:conns"),
            ("old-node#1a2b3c4d", 1),
        )
        .await
        .expect("HSET");
    assert_eq!(sender.node.notify(&t, "u1", "everywhere").await.0, 202);
    tab.inbox
        .wait_for("notification:new", |n| n["id"] == "everywhere")
        .await;
    let m = sender.node.metrics_text().await;
    assert!(routes(&m, "everywhere") >= 1.0, "{m}");
    // Nodes 1 and 2 share a process (and its metrics): both received the shared request.
    eventually("the other nodes received the emit too", || async {
        adapter_in(&nodes[1].metrics_text().await) >= idle_before + 2.0
    })
    .await;
}

/// A kick from another node: the notice (an emit to the user's room) and the disconnect of
/// that room both travel the same way (the user's node's own request channel, named by the
/// connection ledger), notice first. Redis orders messages per channel only: when the
/// disconnect took the shared request channel, the receiving node could handle it first
/// and the socket closed without its `error` (seen once in CI, the e2e revocation test in
/// cluster mode).
#[tokio::test]
async fn a_kick_sends_its_notice_and_its_disconnect_on_the_rooms_channel_in_that_order() {
    use fred::interfaces::EventInterface;
    let redis = RedisServer::start();
    let nodes = spawn_cluster(&redis.url(), 2).await;
    let t = tenant();
    let tab = connect(&nodes[0], &token("u1", Some(&t), Role::Student)).await;
    let probe = redis_client(&redis.url()).await;
    let servers = ledger_servers(&probe, &t, "u1").await;
    assert_eq!(servers.len(), 1, "{servers:?}");
    let mut seen = probe.message_rx();
    probe
        .ssubscribe(server_channel(servers.first().unwrap()))
        .await
        .expect("SSUBSCRIBE");

    let (status, body) = nodes[1]
        .delete(
            &format!("/tenants/{t}/users/u1/sockets"),
            &service_token(&t),
        )
        .await;
    assert_eq!((status, &body), (200, &json!({ "disconnected": 1 })));
    assert_eq!(tab.inbox.next("error").await["code"], "UNAUTHORIZED");
    tab.inbox.next("close").await;

    // A request is a msgpack array whose third item is its type: 0 a broadcast, 2 a
    // disconnect (socketioxide-core `RequestTypeOut::to_u8`).
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Item {
        Number(u64),
        Other(serde::de::IgnoredAny),
    }
    let mut types = Vec::new();
    while types.len() < 2 {
        let Ok(Ok(msg)) = tokio::time::timeout(Duration::from_secs(2), seen.recv()).await else {
            break;
        };
        let bytes = msg.value.as_bytes().expect("a binary request").to_vec();
        let req: Vec<Item> = rmp_serde::from_slice(&bytes).expect("a msgpack request");
        match req.get(2) {
            Some(Item::Number(t)) => types.push(*t),
            _ => panic!("a request without its type"),
        }
    }
    assert_eq!(
        types,
        [0, 2],
        "the notice, then the disconnect, on the user's node's channel"
    );
}

#[tokio::test]
async fn a_room_channel_is_shared_by_its_sockets_and_released_after_the_last_one_leaves() {
    let redis = RedisServer::start();
    let url = redis.url();
    let nodes = nodes_with(&url, 2, |c| c.room_unsubscribe_delay_ms = 300).await;
    let probe = redis_client(&url).await;
    let t = tenant();
    let chan = course_channel(&t, "c1");
    for u in ["u1", "u2"] {
        nodes[1].enroll(&t, "c1", u, "student").await;
    }
    let first = connect(&nodes[0], &token("u1", Some(&t), Role::Student)).await;
    let second = connect(&nodes[0], &token("u2", Some(&t), Role::Student)).await;
    assert_eq!(holders(&probe, &chan).await, 1, "one subscription for both");

    first.disconnect().await;
    assert_eq!(course_event(&nodes[1], &t, "c1", "kept").await, 202);
    second
        .inbox
        .wait_for("course:updated", |u| u["changes"]["marker"] == "kept")
        .await;
    assert_eq!(holders(&probe, &chan).await, 1, "a member is left");

    second.disconnect().await;
    eventually("the channel is released after the delay", || async {
        holders(&probe, &chan).await == 0
    })
    .await;

    // Joining again subscribes again before CONNECT is answered.
    let again = connect(&nodes[0], &token("u1", Some(&t), Role::Student)).await;
    assert_eq!(holders(&probe, &chan).await, 1);
    assert_eq!(course_event(&nodes[1], &t, "c1", "again").await, 202);
    again
        .inbox
        .wait_for("course:updated", |u| u["changes"]["marker"] == "again")
        .await;
}

#[tokio::test]
async fn after_redis_restarts_every_held_room_channel_is_subscribed_again() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let nodes = spawn_cluster(&url, 2).await;
    let t = tenant();
    nodes[1].enroll(&t, "c1", "u1", "student").await;
    let tab = connect(&nodes[0], &token("u1", Some(&t), Role::Student)).await;
    let servers = ledger_servers(&redis_client(&url).await, &t, "u1").await;
    // The course's channel, and node 1's own request channel (a user's emits come on it).
    let channels = [
        course_channel(&t, "c1"),
        server_channel(servers.first().expect("u1 in the ledger")),
    ];

    redis.stop();
    redis.restart();
    let probe = redis_client(&url).await;
    for chan in &channels {
        eventually("the node holds the room channel again", || async {
            holders(&probe, chan).await == 1
        })
        .await;
    }
    let mut attempt = 0;
    eventually("a course emit from node 2 reaches node 1 again", || {
        attempt += 1;
        let marker = format!("{attempt}");
        let (node, tab, t) = (&nodes[1], &tab, t.clone());
        async move {
            if course_event(node, &t, "c1", &marker).await != 202 {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            tab.inbox
                .all("course:updated")
                .iter()
                .any(|u| u["changes"]["marker"] == marker)
        }
    })
    .await;
    assert_eq!(nodes[1].notify(&t, "u1", "after").await.0, 202);
    tab.inbox
        .wait_for("notification:new", |n| n["id"] == "after")
        .await;
}

/// Joins race emits: node 2 publishes to a course without pause while a socket on node 1
/// joins it (`course:join`, a fresh course each time, so each join subscribes a new
/// channel). Every emit whose publication started after the join's ack must arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_emit_published_after_a_course_join_is_acked_arrives() {
    let redis = RedisServer::start();
    let nodes = nodes_with(&redis.url(), 2, unlimited).await;
    join_race(nodes, Duration::from_secs(25), 100).await;
}

/// The same race with node 1 talking to Redis over a link that adds 20 ms each way: a join
/// that did not wait for its `SSUBSCRIBE` to be confirmed would be acked long before it
/// is, and the emits published in between would be lost. Recovery is off on node 1: its
/// save of the joined course, over the same slow link, would delay the ack as much.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_emit_published_after_a_course_join_is_acked_arrives_over_a_slow_link() {
    let redis = RedisServer::start();
    let slow = SlowLink::start(redis.port, Duration::from_millis(20)).await;
    let mut nodes = nodes_with(&slow.url(), 1, |c| {
        unlimited(c);
        c.recovery_enabled = false;
    })
    .await;
    nodes.extend(nodes_with(&redis.url(), 1, unlimited).await);
    join_race(nodes, Duration::from_secs(20), 30).await;
}

async fn join_race(nodes: Vec<TestNode>, bound: Duration, at_least: u32) {
    let nodes = Arc::new(nodes);
    let t = tenant();
    // An admin may enter any course of the tenant without being enrolled.
    let tab = connect(&nodes[0], &token("a1", Some(&t), Role::Admin)).await;
    let started = Instant::now();
    let mut rounds = 0;
    while rounds < 2_000 && started.elapsed() < bound {
        rounds += 1;
        let course = format!("race{rounds}");
        let acked = Arc::new(AtomicBool::new(false));
        let must_arrive = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
        let next = Arc::new(AtomicU64::new(0));
        let publisher = {
            let (nodes, t, course) = (nodes.clone(), t.clone(), course.clone());
            let (acked, must_arrive, next) = (acked.clone(), must_arrive.clone(), next.clone());
            tokio::spawn(async move {
                // Until three emits started after the ack were published.
                while must_arrive.lock().unwrap().len() < 3 {
                    let after_ack = acked.load(Ordering::SeqCst);
                    let m = next.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(
                        course_event(&nodes[1], &t, &course, &m.to_string()).await,
                        202
                    );
                    if after_ack {
                        must_arrive.lock().unwrap().insert(m);
                    }
                }
            })
        };
        // Let some emits go out before the join.
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..3))).await;
        ok(&tab.ack("course:join", json!({ "courseId": course })).await);
        acked.store(true, Ordering::SeqCst);
        publisher.await.expect("publisher");
        let wanted: Vec<u64> = must_arrive.lock().unwrap().iter().copied().collect();
        let last = *wanted.last().unwrap();
        tab.inbox
            .wait_for("course:updated", |u| {
                u["courseId"] == course.as_str() && marker_of(u) == Some(last)
            })
            .await;
        let got: BTreeSet<u64> = tab
            .inbox
            .all("course:updated")
            .iter()
            .filter(|u| u["courseId"] == course.as_str())
            .filter_map(marker_of)
            .collect();
        let missing: Vec<&u64> = wanted.iter().filter(|m| !got.contains(m)).collect();
        assert!(
            missing.is_empty(),
            "round {rounds}: emits published after the join's ack never arrived: {missing:?}"
        );
        ok(&tab.ack("course:leave", json!({ "courseId": course })).await);
    }
    eprintln!("{rounds} join rounds, no emit lost");
    assert!(rounds >= at_least, "only {rounds} rounds ran");
}

/// An enrollment applied on another node moves the user's live sockets into the course
/// room; the API call returns once they are in it, channel subscribed, so an emit right
/// after it reaches them. Node 1 talks to Redis over a slow link, so that its subscription
/// is confirmed well after node 2 published the join request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_right_after_an_enrollment_on_another_node_reaches_the_enrolled_socket() {
    let redis = RedisServer::start();
    let slow = SlowLink::start(redis.port, Duration::from_millis(20)).await;
    let mut nodes = nodes_with(&slow.url(), 1, unlimited).await;
    nodes.extend(nodes_with(&redis.url(), 1, unlimited).await);
    let t = tenant();
    let tab = connect(&nodes[0], &token("u1", Some(&t), Role::Student)).await;
    for i in 0..100 {
        let course = format!("e{i}");
        nodes[1].enroll(&t, &course, "u1", "student").await;
        assert_eq!(course_event(&nodes[1], &t, &course, "first").await, 202);
        tab.inbox
            .wait_for("course:updated", |u| {
                u["courseId"] == course.as_str() && u["changes"]["marker"] == "first"
            })
            .await;
    }
}

#[tokio::test]
async fn on_a_redis_cluster_room_channels_follow_their_tenant_and_spread_over_the_masters() {
    let redis = RedisCluster::start();
    let url = redis.url();
    let nodes = spawn_cluster(&url, 2).await;
    let tenants: Vec<String> = (0..40).map(|_| tenant()).collect();
    let mut tabs = Vec::new();
    for t in &tenants {
        tabs.push(connect(&nodes[0], &token("u1", Some(t), Role::Student)).await);
    }
    // Which master holds each tenant's channels.
    let mut held_by = vec![BTreeSet::new(); redis.masters.len()];
    for (i, m) in redis.masters.iter().enumerate() {
        let master = redis_client(&format!("redis://127.0.0.1:{}", m.port)).await;
        let chans: Vec<String> = master
            .pubsub_shardchannels("lms-room#*")
            .await
            .expect("SHARDCHANNELS");
        // Platform role rooms (`lms-room#/##role:student#`) have no tag.
        for chan in chans.iter().filter(|c| c.contains('{')) {
            let t = chan.split('{').nth(1).and_then(|r| r.split('}').next());
            held_by[i].insert(t.expect("a tagged channel").to_owned());
        }
    }
    for (i, tenants) in held_by.iter().enumerate() {
        assert!(!tenants.is_empty(), "master {i} holds no room channel");
    }
    for t in &tenants {
        let masters = held_by.iter().filter(|h| h.contains(t)).count();
        assert_eq!(masters, 1, "tenant {t}'s channels are on one master");
    }
    // And delivery across nodes works through them.
    for (t, tab) in tenants.iter().zip(&tabs).take(5) {
        assert_eq!(nodes[1].notify(t, "u1", "over").await.0, 202);
        tab.inbox
            .wait_for("notification:new", |n| n["id"] == "over")
            .await;
    }
}

/// A TCP relay to Redis that delays every byte by `delay` in each direction, in order.
struct SlowLink {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl SlowLink {
    async fn start(redis_port: u16, delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", redis_port)).await
                else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(delayed(cr, sw, delay));
                tokio::spawn(delayed(sr, cw, delay));
            }
        });
        Self { port, task }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
async fn delayed(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    tokio::spawn(async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0
            || tx
                .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
        {
            return;
        }
    }
}
