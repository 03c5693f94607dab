use std::time::Duration;

use lms_realtime::auth::Role;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_socket_over_its_event_rate_is_limited_then_disconnected_when_it_keeps_flooding() {
    let node = spawn_node_with(|c| {
        c.event_rate_per_sec = 1;
        c.event_burst = 2;
        c.flood_disconnect_after = 5;
    })
    .await;
    let flooder = connect(&node, &token("u1", Some("t1"), Role::Student)).await;
    let bystander = connect(&node, &token("u2", Some("t1"), Role::Student)).await;
    ok(&flooder.ack("notification:count", json!({})).await);
    ok(&flooder.ack("notification:count", json!({})).await);
    assert_eq!(
        code(&flooder.ack("notification:count", json!({})).await),
        "RATE_LIMITED"
    );
    for _ in 0..6 {
        flooder.emit("notification:count", json!({})).await;
    }
    wait_for_connections(&node, 1).await;
    ok(&bystander.ack("notification:count", json!({})).await);
    let metrics = node.metrics_text().await;
    assert!(metrics.contains("lms_security_events_total{kind=\"rate_limited\"}"));
}

#[tokio::test]
async fn an_oversized_frame_closes_only_that_socket() {
    let node = spawn_node_with(|c| c.max_message_bytes = 2048).await;
    let big = connect(&node, &token("u1", Some("t1"), Role::Student)).await;
    let bystander = connect(&node, &token("u2", Some("t1"), Role::Student)).await;
    big.emit("notification:list", json!({ "before": "x".repeat(10_000) }))
        .await;
    // The server drops the transport: the client sees an engine.io error, and the node
    // counts one socket left.
    big.inbox
        .wait_for("error", |v| v.to_string().contains("EngineIO"))
        .await;
    wait_for_connections(&node, 1).await;
    ok(&bystander.ack("notification:count", json!({})).await);
}

#[tokio::test]
async fn malformed_packets_and_json_never_disturb_other_sockets() {
    let node = spawn_node().await;
    let bystander = connect(&node, &token("u2", Some("t1"), Role::Student)).await;
    let http = reqwest::Client::new();
    let base = format!("{}/socket.io/?EIO=4&transport=polling", node.url());
    let open = http.get(&base).send().await.unwrap().text().await.unwrap();
    let open: serde_json::Value = serde_json::from_str(&open[1..]).expect("engine.io open packet");
    let sid = open["sid"].as_str().unwrap();
    let url = format!("{base}&sid={sid}");
    let t = token("u1", Some("t1"), Role::Student);
    http.post(&url)
        .body(format!("40{{\"token\":\"{t}\"}}"))
        .send()
        .await
        .unwrap();
    for garbage in [
        "42[\"notification:read\",{bad json",
        "4",
        "9zzz",
        "42[]",
        "421[\"unknown:event\"]",
        "42[\"notification:read\",\"a\",\"b\"]",
    ] {
        let _ = http.post(&url).body(garbage).send().await;
    }
    ok(&bystander.ack("notification:count", json!({})).await);
    ok(&bystander.ack("notification:read_all", json!(null)).await);
    assert_eq!(
        code(&bystander.ack("notification:list", json!([1, 2])).await),
        "INVALID_PAYLOAD"
    );
    assert_eq!(
        code(&bystander.ack("no:such:event", json!({})).await),
        "INVALID_PAYLOAD"
    );
    let health = http
        .get(format!("{}/healthz", node.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn connection_caps_per_user_and_per_node_refuse_further_sockets() {
    let node = spawn_node_with(|c| {
        c.max_connections_per_user = 2;
        c.max_connections = 3;
    })
    .await;
    let t = token("u1", Some("t1"), Role::Student);
    let _a = connect(&node, &t).await;
    let _b = connect(&node, &t).await;
    assert_eq!(
        refused(&node, Some(&t), TokenIn::Auth).await,
        "RATE_LIMITED"
    );
    let _c = connect(&node, &token("u2", Some("t1"), Role::Student)).await;
    let t3 = token("u3", Some("t1"), Role::Student);
    assert_eq!(
        refused(&node, Some(&t3), TokenIn::Auth).await,
        "UNAVAILABLE"
    );
    _a.disconnect().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _d = connect(&node, &t3).await;
}
