//! The service API's quotas are one bucket per tenant for the whole cluster (§13, issue 10):
//! a backend that spreads its calls over several nodes gets the tenant's quota once, not
//! once per node. Real nodes on a real `redis-server`; with Redis down, each node charges
//! its own bucket of the same shape.

#[allow(dead_code)]
#[path = "gateway/helpers.rs"]
mod helpers;

#[allow(dead_code)]
mod cluster_support;

use lms_realtime::Config;
use lms_realtime::config::Secret;
use serde_json::{Value, json};

use cluster_support::*;
use helpers::*;

/// Two nodes on one Redis with quotas shaped by `tweak`, refusals answered at once.
async fn two_nodes(url: &str, tweak: impl Fn(&mut Config)) -> Vec<TestNode> {
    let prefix = format!("q{}", fastrand::u32(..));
    let mut nodes = Vec::new();
    for i in 1..=2 {
        let (url, id) = (url.to_owned(), format!("{prefix}-{i}"));
        nodes.push(
            spawn_node_with(|c| {
                c.redis_url = Some(Secret(url));
                c.node_id = Some(id);
                c.api_refusal_hold_ms = 0;
                tweak(c);
            })
            .await,
        );
    }
    nodes
}

/// A notification to `users` of tenant `t`: its status and body.
async fn notify_many(node: &TestNode, t: &str, users: &[&str], id: &str) -> (u16, Value) {
    let body = json!({
        "tenantId": t,
        "target": { "userIds": users },
        "notification": { "id": id, "title": "t", "message": "m" }
    });
    node.post("/notifications", &service_token(t), body).await
}

#[tokio::test]
async fn a_tenants_call_rate_is_one_bucket_for_the_whole_cluster() {
    let redis = RedisServer::start();
    let nodes = two_nodes(&redis.url(), |c| {
        (c.api_rate_per_sec, c.api_burst) = (1, 3);
    })
    .await;
    let (t, other) = (tenant(), tenant());
    for i in 0..3 {
        let (status, body) = nodes[0].notify(&t, "u1", &format!("a{i}")).await;
        assert_eq!(status, 202, "call {i} is within the burst: {body}");
    }
    // Node 1 has not seen this tenant yet: a bucket per node would admit the call.
    let (status, body) = nodes[1].notify(&t, "u1", "b0").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("retry in")),
        "{body}"
    );
    // Refused again on node 0, now from the refusal node 0 remembers or from Redis.
    assert_eq!(nodes[0].notify(&t, "u1", "a3").await.0, 429);
    assert_eq!(
        nodes[1].notify(&other, "u1", "c0").await.0,
        202,
        "another tenant's bucket is its own"
    );
    // The bucket refills at 1 a second, for the cluster.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(nodes[1].notify(&t, "u1", "b1").await.0, 202);
    assert_eq!(nodes[0].notify(&t, "u1", "a4").await.0, 429);
}

#[tokio::test]
async fn a_tenants_recipient_budget_is_one_for_the_whole_cluster() {
    let redis = RedisServer::start();
    let nodes = two_nodes(&redis.url(), |c| {
        (c.api_rate_per_sec, c.api_burst) = (1_000, 1_000);
        c.tenant_notify_recipients_per_sec = 1;
        c.tenant_notify_recipients_burst = 10;
    })
    .await;
    let t = tenant();
    let six = ["u1", "u2", "u3", "u4", "u5", "u6"];
    let (status, body) = notify_many(&nodes[0], &t, &six, "n0").await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = notify_many(&nodes[1], &t, &six, "n1").await;
    assert_eq!(
        status, 429,
        "4 of the tenant's 10 recipients are left: {body}"
    );
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    let (status, body) = notify_many(&nodes[1], &t, &six[..4], "n2").await;
    assert_eq!(status, 202, "4 fit: {body}");
}

#[tokio::test]
async fn with_redis_down_a_node_charges_its_own_bucket() {
    let mut redis = RedisServer::start();
    let nodes = two_nodes(&redis.url(), |c| {
        (c.api_rate_per_sec, c.api_burst) = (1, 3);
    })
    .await;
    let t = tenant();
    assert_eq!(nodes[0].notify(&t, "u1", "a0").await.0, 202);
    redis.stop();
    // At once, so that node 1's own bucket (3, refilled at 1 a second) cannot refill while
    // the store waits out its timeout.
    let ids: Vec<String> = (1..=5).map(|i| format!("b{i}")).collect();
    let calls = ids.iter().map(|id| nodes[1].notify(&t, "u1", id));
    let statuses: Vec<u16> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    let count = |s| statuses.iter().filter(|&&x| x == s).count();
    assert_eq!(
        (count(503), count(429)),
        (3, 2),
        "3 admitted by node 1's own bucket and refused by the store, 2 refused by the bucket: {statuses:?}"
    );
    let metrics = nodes[1].metrics_text().await;
    assert!(
        metrics.contains("lms_store_errors_total{op=\"quota\"}"),
        "the fallback is counted"
    );
}
