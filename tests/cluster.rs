//! Cluster mode against real Redis: several gateway nodes in this process on port 0, each
//! test with its own `redis-server` (or 3-master Redis Cluster) on free ports, real
//! Socket.IO clients and real HTTP. Needs `redis-server` and `redis-cli` (Redis ≥ 7) on PATH.

#[allow(dead_code)]
#[path = "gateway/helpers.rs"]
mod helpers;

#[allow(dead_code)]
mod cluster_support;

use std::time::Duration;

use fred::interfaces::ClientLike;
use futures::future::join_all;
use lms_realtime::auth::Role;
use lms_realtime::cluster;
use lms_realtime::store::redis::RedisStore;
use lms_realtime::store::{StoreLimits, conformance};
use serde_json::{Value, json};

use cluster_support::*;
use helpers::*;

async fn redis_store(url: &str, limits: StoreLimits) -> RedisStore {
    RedisStore::new(redis_client(url).await, limits)
}

/// The whole store suite.
async fn redis_conformance(url: &str, limits: StoreLimits) {
    let store = redis_store(url, limits).await;
    conformance::run_all(&store, limits).await;
}

const SMALL: StoreLimits = StoreLimits {
    inbox_cap: 5,
    ..StoreLimits::DEFAULT
};

const ROOMY: StoreLimits = StoreLimits {
    inbox_cap: 100,
    ..StoreLimits::DEFAULT
};

fn student(t: &str, u: &str) -> String {
    token(u, Some(t), Role::Student)
}

async fn unread_via(node: &TestNode, t: &str, u: &str) -> u64 {
    let (status, body) = node
        .get(&format!("/tenants/{t}/users/{u}/unread"), &service_token(t))
        .await;
    assert_eq!(status, 200, "{body}");
    body["unread"].as_u64().unwrap()
}

async fn ready(node: &TestNode) -> u16 {
    send(node.http.get(format!("{}/readyz", node.url())))
        .await
        .0
}

fn has_id(id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |v| v["id"] == id
}

// ---------------------------------------------------------------- the store

#[tokio::test]
async fn the_redis_store_passes_the_conformance_suite_and_stays_exact_across_two_instances() {
    let redis = RedisServer::start();
    redis_conformance(&redis.url(), SMALL).await;
    // Two clients, as two nodes would hold.
    let (a, b) = (
        redis_store(&redis.url(), ROOMY).await,
        redis_store(&redis.url(), ROOMY).await,
    );
    conformance::concurrent_writers_keep_the_count_exact(&a, &b, ROOMY).await;
}

// ---------------------------------------------------------------- delivery across nodes

#[tokio::test]
async fn a_user_notification_reaches_the_users_sockets_on_every_node_and_no_one_else() {
    let redis = RedisServer::start();
    let nodes = spawn_cluster(&redis.url(), 3).await;
    let (t, other) = (tenant(), tenant());
    let mut tabs = vec![];
    for node in &nodes {
        tabs.push(connect(node, &student(&t, "u1")).await);
    }
    let classmate = connect(&nodes[1], &student(&t, "u2")).await;
    let namesake = connect(&nodes[2], &student(&other, "u1")).await;

    let (status, body) = nodes[0].notify(&t, "u1", "n-1").await;
    assert_eq!(status, 202, "{body}");
    for tab in &tabs {
        let n = tab.inbox.wait_for("notification:new", has_id("n-1")).await;
        assert_eq!(n["tenantId"], t.as_str());
        assert_eq!(n["userId"], "u1");
        let count = tab.inbox.next("notification:count").await;
        assert_eq!(count["unread"], 1);
    }
    classmate.inbox.assert_none("notification:new").await;
    namesake.inbox.assert_none("notification:new").await;
    for node in &nodes {
        assert_eq!(unread_via(node, &t, "u1").await, 1);
        assert_eq!(unread_via(node, &other, "u1").await, 0);
    }
}

#[tokio::test]
async fn broadcasts_alerts_course_updates_and_progress_reach_exactly_the_right_sockets_on_every_node()
 {
    let redis = RedisServer::start();
    let nodes = spawn_cluster(&redis.url(), 3).await;
    let (t, x) = (tenant(), tenant());
    nodes[0].enroll(&t, "c1", "s1", "student").await;
    nodes[1].enroll(&t, "c1", "s2", "student").await;
    nodes[2].enroll(&t, "c1", "i1", "instructor").await;
    // The other tenant reuses the same user and course ids.
    nodes[0].enroll(&x, "c1", "s1", "student").await;
    nodes[0].enroll(&x, "c1", "i1", "instructor").await;

    let s1 = connect(&nodes[0], &student(&t, "s1")).await;
    let s2 = connect(&nodes[1], &student(&t, "s2")).await;
    let i1 = connect(&nodes[2], &token("i1", Some(&t), Role::Instructor)).await;
    let outsider = connect(&nodes[2], &student(&t, "s3")).await;
    let x_s1 = connect(&nodes[1], &student(&x, "s1")).await;
    let x_i1 = connect(&nodes[0], &token("i1", Some(&x), Role::Instructor)).await;
    let tenant_t = [&s1, &s2, &i1, &outsider];
    let tenant_x = [&x_s1, &x_i1];

    // Tenant broadcast: every socket of t, none of x.
    let (status, body) = nodes[0]
        .post(
            &format!("/tenants/{t}/broadcast"),
            &service_token(&t),
            json!({ "title": "b", "message": "hello t" }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    for c in tenant_t {
        assert_eq!(c.inbox.next("notification:new").await["message"], "hello t");
    }
    for c in tenant_x {
        c.inbox.assert_none("notification:new").await;
    }

    // System alert: every socket of every tenant.
    let (status, body) = nodes[1]
        .post(
            "/system/alerts",
            &super_token(),
            json!({ "title": "a", "message": "maintenance" }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    for c in tenant_t.iter().chain(tenant_x.iter()) {
        assert_eq!(c.inbox.next("system:alert").await["message"], "maintenance");
    }

    // Course update: members of t's c1 only.
    assert_eq!(course_event(&nodes[2], &t, "c1", "m1").await, 202);
    for c in [&s1, &s2, &i1] {
        let u = c.inbox.next("course:updated").await;
        assert_eq!(u["changes"]["marker"], "m1");
        assert_eq!(u["courseId"], "c1");
    }
    outsider.inbox.assert_none("course:updated").await;
    for c in tenant_x {
        c.inbox.assert_none("course:updated").await;
    }

    // Progress from a student on node 1: the instructor on node 3, nobody else.
    let ack = s1
        .ack(
            "progress:content",
            json!({ "courseId": "c1", "contentId": "lesson-1", "progress": 0.25 }),
        )
        .await;
    ok(&ack);
    let p = i1.inbox.next("progress:content").await;
    assert_eq!(p["userId"], "s1");
    assert_eq!(p["progress"], 0.25);
    for c in [&s2, &outsider, &x_s1, &x_i1] {
        c.inbox.assert_none("progress:content").await;
    }
}

#[tokio::test]
async fn membership_changes_move_live_sockets_on_other_nodes() {
    let redis = RedisServer::start();
    let nodes = spawn_cluster(&redis.url(), 3).await;
    let t = tenant();
    let on_two = connect(&nodes[1], &student(&t, "s1")).await;
    let on_three = connect(&nodes[2], &student(&t, "s1")).await;

    // Enrolled through node 1: the sockets on nodes 2 and 3 join the course room.
    nodes[0].enroll(&t, "c1", "s1", "student").await;
    for c in [&on_two, &on_three] {
        let e = c.inbox.next("course:enrollment").await;
        assert_eq!(e["action"], "enrolled");
    }
    assert_eq!(course_event(&nodes[0], &t, "c1", "after-join").await, 202);
    for c in [&on_two, &on_three] {
        c.inbox
            .wait_for("course:updated", |u| u["changes"]["marker"] == "after-join")
            .await;
    }

    // Removed through node 1: they leave it everywhere.
    let (status, body) = nodes[0]
        .delete(
            &format!("/tenants/{t}/courses/c1/members/s1"),
            &service_token(&t),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    for c in [&on_two, &on_three] {
        c.inbox
            .wait_for("course:enrollment", |e| e["action"] == "unenrolled")
            .await;
    }
    assert_eq!(course_event(&nodes[0], &t, "c1", "after-leave").await, 202);
    tokio::time::sleep(QUIET).await;
    for c in [&on_two, &on_three] {
        assert_eq!(
            c.inbox.all("course:updated").len(),
            1,
            "only the first update"
        );
    }

    // A whole-membership replacement through node 3 makes s1 an instructor of c2: the
    // socket on node 2 now gets c2's instructor traffic.
    let (status, body) = nodes[2]
        .put(
            &format!("/tenants/{t}/courses/c2/members"),
            &service_token(&t),
            json!({ "members": [{ "userId": "s1", "role": "instructor" }, { "userId": "s9", "role": "student" }] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    nodes[0].enroll(&t, "c2", "s9", "student").await;
    let s9 = connect(&nodes[0], &student(&t, "s9")).await;
    ok(&s9
        .ack(
            "progress:content",
            json!({ "courseId": "c2", "contentId": "x", "progress": 1 }),
        )
        .await);
    on_two.inbox.next("progress:content").await;
    on_three.inbox.next("progress:content").await;
}

// ---------------------------------------------------------------- state across nodes

#[tokio::test]
async fn the_unread_count_stays_exact_when_reads_and_inserts_race_from_different_nodes() {
    let redis = RedisServer::start();
    let nodes = spawn_cluster(&redis.url(), 3).await;
    let t = tenant();
    let mut tabs = vec![];
    for node in &nodes {
        tabs.push(connect(node, &student(&t, "u1")).await);
    }
    // 30 notifications, posted through the three nodes at once.
    let posts = (0..30).map(|i| {
        let node = &nodes[i % 3];
        let t = t.clone();
        async move {
            let (status, body) = node.notify(&t, "u1", &format!("k{i}")).await;
            assert_eq!(status, 202, "{body}");
        }
    });
    join_all(posts).await;
    for node in &nodes {
        assert_eq!(unread_via(node, &t, "u1").await, 30);
    }
    // Reads of k0..k14, each sent from two nodes at once, race with 15 new inserts.
    let reads = (0..15)
        .flat_map(|i| [(i, i % 3), (i, (i + 1) % 3)])
        .map(|(i, tab)| {
            let tab = &tabs[tab];
            async move {
                let ack = tab
                    .ack(
                        "notification:read",
                        json!({ "notificationId": format!("k{i}") }),
                    )
                    .await;
                ok(&ack);
            }
        });
    let inserts = (30..45).map(|i| {
        let node = &nodes[i % 3];
        let t = t.clone();
        async move {
            let (status, body) = node.notify(&t, "u1", &format!("k{i}")).await;
            assert_eq!(status, 202, "{body}");
        }
    });
    futures::join!(join_all(reads), join_all(inserts));
    for (node, tab) in nodes.iter().zip(&tabs) {
        assert_eq!(unread_via(node, &t, "u1").await, 30);
        assert_eq!(
            ok(&tab.ack("notification:count", json!({})).await)["unread"],
            30
        );
    }
    // read_all on one node is seen by all.
    ok(&tabs[2].ack("notification:read_all", json!({})).await);
    for node in &nodes {
        assert_eq!(unread_via(node, &t, "u1").await, 0);
    }
}

#[tokio::test]
async fn a_notification_id_is_stored_and_delivered_once_across_nodes() {
    let redis = RedisServer::start();
    let nodes = spawn_cluster(&redis.url(), 3).await;
    let t = tenant();
    let tab = connect(&nodes[1], &student(&t, "u1")).await;
    let results = join_all(nodes.iter().map(|n| n.notify(&t, "u1", "same-id"))).await;
    for (status, body) in results {
        assert_eq!(status, 202, "{body}");
    }
    tab.inbox.next("notification:new").await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(tab.inbox.all("notification:new").len(), 1);
    for node in &nodes {
        assert_eq!(unread_via(node, &t, "u1").await, 1);
    }
    let list = ok(&tab.ack("notification:list", json!({})).await).clone();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn stats_sum_over_the_nodes_and_name_them() {
    let redis = RedisServer::start();
    let nodes = spawn_cluster(&redis.url(), 3).await;
    let t = tenant();
    let mut clients = vec![];
    for (i, count) in [2, 1, 3].into_iter().enumerate() {
        for k in 0..count {
            clients.push(connect(&nodes[i], &student(&t, &format!("u{i}-{k}"))).await);
        }
    }
    eventually("stats show 6 connections over 3 nodes", || async {
        let (status, stats) = nodes[1].get("/stats", &super_token()).await;
        assert_eq!(status, 200, "{stats}");
        stats["connections"] == 6
            && stats["nodes"].as_array().map(Vec::len) == Some(3)
            && stats["partial"] == false
    })
    .await;
    let (_, last) = nodes[2].get("/stats", &super_token()).await;
    // Sums over nodes: the tenant's room exists once on each of the three nodes.
    assert_eq!(last["rooms"]["tenant"], json!({ "rooms": 3, "members": 6 }));
    assert_eq!(last["rooms"]["user"], json!({ "rooms": 6, "members": 6 }));
    let mut per_node: Vec<u64> = last["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["connections"].as_u64().unwrap())
        .collect();
    per_node.sort();
    assert_eq!(per_node, [1, 2, 3]);
    let tenants: Vec<u64> = last["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["tenants"][t.as_str()].as_u64().unwrap())
        .collect();
    assert_eq!(
        tenants.iter().sum::<u64>(),
        6,
        "each node counts its sockets per tenant"
    );
    // The operator console shows the tenant's sockets on every node, from any node.
    for node in &nodes {
        let (status, overview) = node.get("/console/overview", &super_token()).await;
        assert_eq!(status, 200, "{overview}");
        let row = overview["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["tenantId"] == t.as_str())
            .cloned();
        assert_eq!(
            row.map(|r| r["connections"].clone()),
            Some(json!(6)),
            "{overview}"
        );
    }

    // A node that dies without deregistering (a crash: its heartbeats just stop) leaves
    // the stats when its last heartbeat expires.
    let (config, perf, connection, policy) = cluster::client_config(&redis.url()).unwrap();
    let client = fred::clients::Client::new(config, Some(perf), Some(connection), Some(policy));
    client.init().await.unwrap();
    let ghost = cluster::RedisPeers::new(
        client,
        "crashed-node".into(),
        "crashed-node#0".into(),
        Default::default(),
    );
    let mut ghost_stats = nodes[0].get("/stats", &super_token()).await.1["nodes"][0].clone();
    ghost_stats["node"] = json!("crashed-node");
    ghost
        .heartbeat(&serde_json::from_value(ghost_stats).unwrap())
        .await
        .unwrap();
    let names = |stats: &Value| -> Vec<String> {
        stats["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["node"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, stats) = nodes[0].get("/stats", &super_token()).await;
    assert!(
        names(&stats).contains(&"crashed-node".to_owned()),
        "{stats}"
    );
    eventually("a crashed node's heartbeat expires", || async {
        let (_, stats) = nodes[0].get("/stats", &super_token()).await;
        names(&stats).len() == 3 && !names(&stats).contains(&"crashed-node".to_owned())
    })
    .await;
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn while_redis_is_down_writes_fail_with_503_and_after_its_restart_everything_recovers() {
    // This one server persists every write (AOF, fsync always), so the test can also show
    // that what was accepted before the outage is still there after it.
    let mut redis = RedisServer::start_persistent();
    let nodes = spawn_cluster(&redis.url(), 2).await;
    let t = tenant();
    nodes[0].enroll(&t, "c1", "u1", "student").await;
    let on_one = connect(&nodes[0], &student(&t, "u1")).await;
    let on_two = connect(&nodes[1], &student(&t, "u1")).await;
    assert_eq!(nodes[1].notify(&t, "u1", "before").await.0, 202);
    on_one
        .inbox
        .wait_for("notification:new", has_id("before"))
        .await;

    redis.stop();
    let (status, body) = nodes[0].notify(&t, "u1", "during").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "UNAVAILABLE");
    let (status, body) = nodes[1]
        .put(
            &format!("/tenants/{t}/courses/c2/members/u1"),
            &service_token(&t),
            json!({ "role": "student" }),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    // A live-only broadcast that cannot be published is not reported as sent.
    let (status, body) = nodes[0]
        .post(
            &format!("/tenants/{t}/broadcast"),
            &service_token(&t),
            json!({ "title": "x", "message": "y" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("UNAVAILABLE")),
        "{body}"
    );
    assert_eq!(course_event(&nodes[1], &t, "c1", "during").await, 503);
    for tab in [&on_one, &on_two] {
        assert_eq!(
            code(&tab.ack("notification:count", json!({})).await),
            "UNAVAILABLE"
        );
        assert_eq!(
            code(
                &tab.ack("notification:read", json!({ "notificationId": "before" }))
                    .await
            ),
            "UNAVAILABLE"
        );
    }
    for node in &nodes {
        eventually("/readyz is 503 while Redis is down", || async {
            ready(node).await == 503
        })
        .await;
    }
    assert!(
        on_one.inbox.all("close").is_empty(),
        "sockets stay connected"
    );
    assert!(
        on_two.inbox.all("close").is_empty(),
        "sockets stay connected"
    );

    redis.restart();
    for node in &nodes {
        eventually("/readyz recovers", || async { ready(node).await == 200 }).await;
    }
    // Nothing accepted was lost; nothing refused was stored.
    assert_eq!(unread_via(&nodes[0], &t, "u1").await, 1);
    // Cross-node delivery works again without restarting a node: this needs the adapter's
    // subscriptions restored on the new Redis connection.
    let mut attempt = 0;
    eventually(
        "a notification posted on node 2 reaches the socket on node 1",
        || {
            attempt += 1;
            let id = format!("after-{attempt}");
            let (node, tab) = (&nodes[1], &on_one);
            let t = t.clone();
            async move {
                assert_eq!(node.notify(&t, "u1", &id).await.0, 202);
                tokio::time::sleep(Duration::from_millis(300)).await;
                tab.inbox
                    .all("notification:new")
                    .iter()
                    .any(|n| n["id"] == id)
            }
        },
    )
    .await;
    // And the other way round, for rooms too.
    assert_eq!(course_event(&nodes[0], &t, "c1", "back").await, 202);
    on_two
        .inbox
        .wait_for("course:updated", |u| u["changes"]["marker"] == "back")
        .await;
    assert!(on_one.inbox.all("close").is_empty() && on_two.inbox.all("close").is_empty());
    // The recovery shows in the node's metrics.
    let (_, metrics) = send(nodes[0].http.get(format!("{}/metrics", nodes[0].url()))).await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    for series in [
        "lms_adapter_resubscribes_total{outcome=\"ok\"}",
        "lms_redis_reconnects_total{client=\"pubsub\"}",
        "lms_redis_reconnects_total{client=\"store\"}",
        "lms_adapter_messages_total{direction=\"in\"}",
        "lms_adapter_messages_total{direction=\"out\"}",
    ] {
        assert!(counter(&metrics, series) >= 1.0, "{series} in\n{metrics}");
    }
}

#[tokio::test]
async fn a_node_refuses_to_start_without_redis_and_says_why() {
    let port = free_port(false);
    let mut config = lms_realtime::Config::for_tests(SECRET);
    config.redis_url = Some(lms_realtime::config::Secret(format!(
        "redis://user:hunter2@127.0.0.1:{port}"
    )));
    let started = tokio::time::timeout(
        Duration::from_secs(30),
        lms_realtime::Application::build(config),
    )
    .await
    .expect("fails in bounded time");
    let err = format!("{:#}", started.err().expect("no Redis, no node"));
    assert!(
        err.contains(&format!(
            "cannot connect to Redis at redis://127.0.0.1:{port}"
        )),
        "{err}"
    );
    assert!(
        !err.contains("hunter2"),
        "the password must not leak: {err}"
    );
}

#[tokio::test]
async fn a_killed_nodes_users_find_their_state_on_another_node_and_it_leaves_the_stats() {
    let redis = RedisServer::start();
    let mut nodes = spawn_cluster(&redis.url(), 3).await;
    let t = tenant();
    nodes[0].enroll(&t, "c1", "u1", "student").await;
    let tab = connect(&nodes[2], &student(&t, "u1")).await;
    for id in ["a", "b", "c"] {
        assert_eq!(nodes[0].notify(&t, "u1", id).await.0, 202);
    }
    tab.inbox.wait_for("notification:new", has_id("c")).await;
    ok(&tab
        .ack("notification:read", json!({ "notificationId": "a" }))
        .await);
    eventually("stats see three nodes", || async {
        nodes[0].get("/stats", &super_token()).await.1["nodes"]
            .as_array()
            .map(Vec::len)
            == Some(3)
    })
    .await;

    let dead = nodes.pop().unwrap();
    // Nodes are named <prefix>-1..3: the popped one sorts last.
    let dead_name = nodes[0].get("/stats", &super_token()).await.1["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap().to_owned())
        .max()
        .unwrap();
    dead.shutdown.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(30), dead.task).await;

    // The client comes back through the load balancer on another node.
    let back = connect(&nodes[0], &student(&t, "u1")).await;
    assert_eq!(
        ok(&back.ack("notification:count", json!({})).await)["unread"],
        2
    );
    let list = ok(&back.ack("notification:list", json!({})).await).clone();
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c", "b", "a"]);
    assert_eq!(course_event(&nodes[1], &t, "c1", "still-here").await, 202);
    back.inbox
        .wait_for("course:updated", |u| u["changes"]["marker"] == "still-here")
        .await;

    eventually("the killed node leaves the stats", || async {
        let (_, stats) = nodes[1].get("/stats", &super_token()).await;
        let names: Vec<String> = stats["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["node"].as_str().unwrap().to_owned())
            .collect();
        names.len() == 2 && !names.contains(&dead_name) && stats["partial"] == false
    })
    .await;
}

// ---------------------------------------------------------------- Redis Cluster

#[tokio::test]
async fn on_a_redis_cluster_the_store_conforms_and_nodes_deliver_to_each_other() {
    let redis = RedisCluster::start();
    let url = redis.url();
    redis_conformance(&url, SMALL).await;
    let (a, b) = (
        redis_store(&url, ROOMY).await,
        redis_store(&url, ROOMY).await,
    );
    conformance::concurrent_writers_keep_the_count_exact(&a, &b, ROOMY).await;

    let nodes = spawn_cluster(&url, 2).await;
    let t = tenant();
    let tab = connect(&nodes[1], &student(&t, "u1")).await;
    assert_eq!(nodes[0].notify(&t, "u1", "over-the-cluster").await.0, 202);
    tab.inbox
        .wait_for("notification:new", has_id("over-the-cluster"))
        .await;
    nodes[0].enroll(&t, "c1", "u1", "student").await;
    tab.inbox.next("course:enrollment").await;
    assert_eq!(course_event(&nodes[0], &t, "c1", "sharded").await, 202);
    tab.inbox
        .wait_for("course:updated", |u| u["changes"]["marker"] == "sharded")
        .await;
    eventually("stats see both nodes", || async {
        nodes[0].get("/stats", &super_token()).await.1["connections"] == 1
    })
    .await;
}

#[tokio::test]
async fn after_every_redis_cluster_master_restarts_nodes_deliver_to_each_other_again() {
    let mut redis = RedisCluster::start();
    let nodes = spawn_cluster(&redis.url(), 2).await;
    let t = tenant();
    let tab = connect(&nodes[1], &student(&t, "u1")).await;
    assert_eq!(nodes[0].notify(&t, "u1", "before").await.0, 202);
    tab.inbox
        .wait_for("notification:new", has_id("before"))
        .await;

    redis.restart_all();
    for node in &nodes {
        eventually("/readyz recovers", || async { ready(node).await == 200 }).await;
    }
    let mut attempt = 0;
    eventually("delivery across nodes resumes on the cluster", || {
        attempt += 1;
        let id = format!("after-{attempt}");
        let (node, tab) = (&nodes[0], &tab);
        let t = t.clone();
        async move {
            if node.notify(&t, "u1", &id).await.0 != 202 {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            tab.inbox
                .all("notification:new")
                .iter()
                .any(|n| n["id"] == id)
        }
    })
    .await;
    assert!(
        tab.inbox.all("close").is_empty(),
        "the socket stayed connected"
    );
}
