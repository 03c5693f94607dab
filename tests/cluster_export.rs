//! Event export (§12) in a cluster against a real `redis-server`: the Redis queue passes
//! the shared export suite; a node killed (SIGKILL) in the middle of a webhook batch loses
//! nothing, since another node takes the tenant over when the lease expires and delivers
//! from the cursor; and a webhook change with Redis down is a 503, never a 200.

#[allow(dead_code)]
#[path = "gateway/helpers.rs"]
mod helpers;

#[allow(dead_code)]
mod cluster_support;

#[allow(dead_code)]
mod export_support;

use std::sync::Arc;

use lms_realtime::auth::Role;
use lms_realtime::config::Secret;
use lms_realtime::export::redis::RedisExport;
use lms_realtime::export::{ExportQueue, conformance};
use serde_json::{Value, json};

use cluster_support::*;
use export_support::{HOOK_SECRET, Receiver, Refuse};
use helpers::*;

#[tokio::test]
async fn the_redis_export_queue_passes_the_export_suite() {
    let redis = RedisServer::start();
    let url = redis.url();
    conformance::run_all(|bounds| {
        let url = url.clone();
        async move {
            Arc::new(RedisExport::new(redis_client(&url).await, bounds)) as Arc<dyn ExportQueue>
        }
    })
    .await;
}

/// Short delivery timings, the same on every node of the test.
const TIMINGS: &[(&str, &str)] = &[
    ("WEBHOOK_TIMEOUT_MS", "1000"),
    ("WEBHOOK_LEASE_MS", "3000"),
    ("WEBHOOK_POLL_INTERVAL_MS", "100"),
    ("WEBHOOK_BACKOFF_BASE_MS", "50"),
    ("WEBHOOK_BACKOFF_MAX_MS", "200"),
];

async fn spawn_live(url: &str, id: &str) -> TestNode {
    let (url, id) = (url.to_owned(), id.to_owned());
    spawn_node_with(move |c| {
        c.redis_url = Some(Secret(url));
        c.node_id = Some(id);
        c.webhook_timeout_ms = 1_000;
        c.webhook_lease_ms = 3_000;
        c.webhook_poll_interval_ms = 100;
        c.webhook_backoff_base_ms = 50;
        c.webhook_backoff_max_ms = 200;
    })
    .await
}

fn progress_values(events: &[Value]) -> Vec<f64> {
    events
        .iter()
        .filter(|e| e["type"] == "progress:content")
        .map(|e| e["data"]["progress"].as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_node_killed_mid_batch_loses_nothing_another_node_delivers_from_the_cursor() {
    let redis = RedisServer::start();
    let prefix = format!("ex{}", fastrand::u32(..));
    // The receiver holds the first batch without answering: the node is killed while it
    // waits, so that batch was sent but never acknowledged.
    let receiver = Receiver::start(HOOK_SECRET, 1, Refuse::Hold).await;
    let mut doomed = spawn_process(&redis.url(), &format!("{prefix}-doomed"), TIMINGS).await;
    let t = tenant();
    let st = service_token(&t);
    let (code, res) = doomed
        .node
        .put(
            &format!("/tenants/{t}/webhook"),
            &st,
            json!({ "url": receiver.url, "secret": HOOK_SECRET, "events": ["progress"] }),
        )
        .await;
    assert_eq!(code, 200, "{res}");
    doomed.node.enroll(&t, "c1", "s1", "student").await;
    let s1 = connect(&doomed.node, &token("s1", Some(&t), Role::Student)).await;
    for i in 1..=6 {
        let ack = s1
            .ack(
                "progress:content",
                json!({ "courseId": "c1", "contentId": "l1", "progress": f64::from(i) / 10.0 }),
            )
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
    }
    eventually("the doomed node sends its first batch", || async {
        receiver.requests() >= 1
    })
    .await;
    doomed.child.kill().expect("kill -9 the delivering node");
    doomed.child.wait().unwrap();
    assert!(receiver.events().is_empty(), "nothing was acknowledged");

    let live = spawn_live(&redis.url(), &format!("{prefix}-live")).await;
    let got = receiver
        .wait_until("all six reports from the other node", |e| {
            progress_values(e).len() >= 6
        })
        .await;
    assert_eq!(progress_values(&got), [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
    assert_eq!(receiver.bad_signatures(), 0);
    let path = format!("/tenants/{t}/webhook/status");
    eventually("the status shows nothing pending", || async {
        live.get(&path, &st).await.1["pending"] == 0
    })
    .await;
    let (_, status) = live.get(&path, &st).await;
    assert_eq!(status["configured"], true);
    assert_eq!(status["deadLetters"], 0);
}

#[tokio::test]
async fn with_redis_down_a_webhook_change_is_a_503_and_the_pull_api_too() {
    let mut redis = RedisServer::start_persistent();
    let node = spawn_live(&redis.url(), &format!("ex{}-down", fastrand::u32(..))).await;
    let t = tenant();
    let st = service_token(&t);
    let body =
        json!({ "url": "https://lms.example/hook", "secret": HOOK_SECRET, "events": ["presence"] });
    let path = format!("/tenants/{t}/webhook");
    assert_eq!(node.put(&path, &st, body.clone()).await.0, 200);
    redis.stop();
    let (code, res) = node.put(&path, &st, body.clone()).await;
    assert_eq!(
        (code, res["error"]["code"].clone()),
        (503, json!("UNAVAILABLE")),
        "{res}"
    );
    let (code, _) = node.delete(&path, &st).await;
    assert_eq!(code, 503);
    let (code, _) = node
        .post(&format!("{path}/dead-letters/replay"), &st, json!({}))
        .await;
    assert_eq!(code, 503);
    let (code, _) = node.get(&format!("/tenants/{t}/events"), &st).await;
    assert_eq!(code, 503);
    redis.restart();
    eventually("the webhook is readable again", || async {
        let (code, hook) = node.get(&path, &st).await;
        code == 200 && hook["events"] == json!(["presence"])
    })
    .await;
}
