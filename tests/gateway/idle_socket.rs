//! What an idle authenticated socket holds on the node (issue 15): one task, engineioxide's
//! session task, which reads, writes and keeps the heartbeat (vendor/engineioxide, patch
//! "one task per websocket session"). Before it, every session ran three.

use std::time::Duration;

use lms_realtime::auth::Role;

use crate::helpers::*;
use crate::raw::{RawSession, open};

const SOCKETS: usize = 40;

/// [`SOCKETS`] raw sessions, each connected as a student of its own.
async fn connect_students(node: &TestNode) -> Vec<RawSession> {
    let mut sessions = Vec::new();
    for i in 0..SOCKETS {
        let mut s = open(node).await;
        let answer = s
            .connect(&token(&format!("u{i}"), Some("t1"), Role::Student))
            .await;
        assert!(answer.is_some_and(|a| a.starts_with("40")), "connected");
        sessions.push(s);
    }
    sessions
}

#[tokio::test]
async fn an_idle_authenticated_socket_runs_one_task_on_the_node() {
    let node = spawn_node().await;
    let metrics = tokio::runtime::Handle::current().metrics();
    // The test's own sessions are futures polled here, not tasks: every task counted below is
    // the node's.
    let before = metrics.num_alive_tasks();
    let sessions = connect_students(&node).await;
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

/// An admitted socket releases its handshake request (its header and extension maps, ~0.6 KB
/// per idle socket, vendor/engineioxide "the handshake's parts can be released"); a session
/// not yet admitted keeps it, since a CONNECT reads it.
#[tokio::test]
async fn an_admitted_socket_releases_its_handshake_request() {
    let node = spawn_node().await;
    let held = async || counter(&node.metrics_text().await, "lms_handshakes_held ");
    let _sessions = connect_students(&node).await;
    let _not_admitted = open(&node).await;
    wait_for_connections(&node, SOCKETS as u64).await;
    assert_eq!(
        held().await,
        1.0,
        "only the session without a CONNECT holds its handshake"
    );
}

/// The handshake is released at CONNECT, yet a refusal later in the socket's life still
/// names where it came from (the address and user agent are kept in its session).
#[tokio::test]
async fn refusals_after_the_release_still_name_the_client() {
    let lines = capture_logs();
    let node = spawn_node().await;
    let mut s = crate::raw::try_open(&node, &[("user-agent", "handshake-probe/1.0")])
        .await
        .expect("session admitted");
    let answer = s.connect(&token("u1", Some("t1"), Role::Student)).await;
    assert!(answer.is_some_and(|a| a.starts_with("40")), "connected");
    s.send(r#"421["notification:read_all",{"tenantId":"t2"}]"#)
        .await;
    let ack = loop {
        let frame = s.next_text(WAIT).await.expect("the ack");
        if frame.starts_with("431") {
            break frame;
        }
    };
    assert!(ack.contains("TENANT_MISMATCH"), "{ack}");
    let logged = lines.lock().unwrap().clone();
    let line = logged
        .iter()
        .find(|l| l.contains("TENANT_MISMATCH"))
        .unwrap_or_else(|| panic!("no refusal line in {logged:?}"));
    assert!(line.contains("handshake-probe/1.0"), "{line}");
    assert!(line.contains("127.0.0.1"), "{line}");
}
