use std::time::Duration;

use lms_realtime::auth::Role;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn shutdown_tells_and_closes_sockets_and_exits_within_the_drain_timeout() {
    let node = spawn_node_with(|c| c.drain_timeout_secs = 5).await;
    let c = connect(&node, &token("u1", Some("t1"), Role::Student)).await;
    ok(&c.ack("notification:count", json!({})).await);
    let url = node.url();
    node.shutdown.trigger();
    let notice = c.inbox.wait_for("error", |v| v.get("code").is_some()).await;
    assert_eq!(notice["code"], "UNAVAILABLE");
    let finished = tokio::time::timeout(Duration::from_secs(6), node.task).await;
    finished
        .expect("the node stops within the drain timeout")
        .unwrap()
        .unwrap();
    let after = reqwest::Client::new()
        .get(format!("{url}/healthz"))
        .send()
        .await;
    assert!(after.is_err(), "the listener is closed after shutdown");
}
