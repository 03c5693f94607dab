//! What an idle authenticated socket holds on the node (issue 15): one task, engineioxide's
//! session task, which reads, writes and keeps the heartbeat (vendor/engineioxide, patch
//! "one task per websocket session"). Before it, every session ran three.

use std::time::Duration;

use lms_realtime::auth::Role;

use crate::helpers::*;
use crate::raw::open;

const SOCKETS: usize = 40;

#[tokio::test]
async fn an_idle_authenticated_socket_runs_one_task_on_the_node() {
    let node = spawn_node().await;
    let metrics = tokio::runtime::Handle::current().metrics();
    // The test's own sessions are futures polled here, not tasks: every task counted below is
    // the node's.
    let before = metrics.num_alive_tasks();
    let mut sessions = Vec::new();
    for i in 0..SOCKETS {
        let mut s = open(&node).await;
        let answer = s
            .connect(&token(&format!("u{i}"), Some("t1"), Role::Student))
            .await;
        assert!(answer.is_some_and(|a| a.starts_with("40")), "connected");
        sessions.push(s);
    }
    // The connect handlers run in tasks of their own that end; wait for them.
    let mut per_socket = f64::MAX;
    for _ in 0..100 {
        let alive = metrics.num_alive_tasks().saturating_sub(before);
        per_socket = alive as f64 / SOCKETS as f64;
        if per_socket <= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        per_socket <= 1.0,
        "{per_socket} tasks per idle socket, expected one"
    );
    drop(sessions);
}
