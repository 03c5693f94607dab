//! The load generator's own accounting, checked on small runs against a real gateway node.
//!
//! A load tester must be able to trust `lost`, `expected_deliveries` and the latency
//! percentiles that `lms-loadgen` prints, so these tests run a real gateway node (single node,
//! in-memory, inside the test process: the gateway is another workspace member, so its binary
//! is not ours to spawn), run the built `lms-loadgen` against it, and check that the numbers
//! add up: every expected delivery is counted, a delivery the generator deliberately ignores
//! shows up as exactly that much loss, refusals are counted by reason. No assertion depends on
//! timing (latencies are only checked for order and count).

use lms_realtime::{Application, Config, ShutdownHandle};
use serde_json::Value;
use std::process::Command;

const SECRET: &str = "loadgen-accounting-secret-0123456789";

/// One gateway node on its own runtime, stopped when dropped.
struct Node {
    runtime: tokio::runtime::Runtime,
    shutdown: ShutdownHandle,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    url: String,
    /// The process the node runs in, for `--pids` (this test process).
    pid: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.task.take() {
            let _ = self.runtime.block_on(task);
        }
    }
}

fn spawn_node() -> Node {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for the node");
    let app = runtime
        .block_on(Application::build(Config::for_tests(SECRET)))
        .expect("the gateway builds");
    let url = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_handle();
    let task = runtime.spawn(app.run_until_stopped());
    Node {
        runtime,
        shutdown,
        task: Some(task),
        url,
        pid: std::process::id().to_string(),
    }
}

/// Runs `lms-loadgen <args>` to completion; returns its exit code and the JSON result line.
fn loadgen(args: &[&str]) -> (i32, Option<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lms-loadgen"))
        .args(args)
        .env_remove("JWT_SECRET")
        .output()
        .expect("run lms-loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok());
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn u(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}

fn f(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}

fn assert_latency_consistent(lat: &Value, count: u64) {
    assert_eq!(
        u(lat, "/count"),
        count,
        "one latency sample per counted delivery: {lat}"
    );
    let (p50, p95, p99, max) = (
        f(lat, "/p50_ms"),
        f(lat, "/p95_ms"),
        f(lat, "/p99_ms"),
        f(lat, "/max_ms"),
    );
    assert!(
        p50 > 0.0 && p50 <= p95 && p95 <= p99 && p99 <= max,
        "percentiles out of order: {lat}"
    );
}

#[test]
fn a_fanout_run_expects_one_delivery_per_tenant_member_and_counts_each() {
    let node = spawn_node();
    let pid = node.pid.clone();
    let (code, json, err) = loadgen(&[
        "fanout",
        "--url",
        &node.url,
        "--jwt-secret",
        SECRET,
        "--pids",
        &pid,
        "-n",
        "60",
        "-t",
        "3",
        "--duration",
        "2",
        "-r",
        "15",
        "--drain",
        "20",
        "--quiet",
    ]);
    let r = json.unwrap_or_else(|| panic!("no JSON result (exit {code}): {err}"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(u(&r, "/connections/accepted"), 60);
    let b = &r["streams"]["broadcast"];
    let accepted = u(b, "/accepted");
    assert!(accepted > 0, "{r}");
    // 60 sockets over 3 tenants: each broadcast is owed to the 20 sockets of its tenant.
    assert_eq!(u(b, "/expected_deliveries"), accepted * 20);
    assert_eq!(
        u(b, "/received_deliveries"),
        u(b, "/delivered") + u(b, "/duplicates")
    );
    assert_eq!(
        u(b, "/delivered") + u(b, "/lost"),
        u(b, "/expected_deliveries")
    );
    assert_eq!(u(b, "/lost"), 0, "a quiet single node loses nothing: {b}");
    assert_eq!(u(b, "/unknown"), 0);
    assert_latency_consistent(&b["latency"], u(b, "/received_deliveries"));
    assert!(
        f(&r, "/fanout/cost/server_cpu_s") >= 0.0,
        "server CPU read from /proc"
    );
}

#[test]
fn deliveries_the_generator_ignores_show_up_as_exactly_that_much_loss() {
    let node = spawn_node();
    let (code, json, err) = loadgen(&[
        "fanout",
        "--url",
        &node.url,
        "--jwt-secret",
        SECRET,
        "-n",
        "40",
        "-t",
        "4",
        "--duration",
        "2",
        "-r",
        "20",
        "--drain",
        "3",
        "--quiet",
        "--debug-drop-every",
        "7",
    ]);
    let r = json.unwrap_or_else(|| panic!("no JSON result (exit {code}): {err}"));
    let b = &r["streams"]["broadcast"];
    let dropped = u(&r, "/debug_dropped");
    assert!(dropped > 0, "{r}");
    assert_eq!(
        u(b, "/lost"),
        dropped,
        "ignored deliveries are counted as lost, no more, no less: {b}"
    );
    assert_eq!(
        u(b, "/delivered") + u(b, "/lost"),
        u(b, "/expected_deliveries")
    );
    assert!(f(b, "/loss_ratio") > 0.0);
    assert_latency_consistent(&b["latency"], u(b, "/delivered"));
}

#[test]
fn a_notify_run_accounts_each_notification_and_the_unread_counts_match() {
    let node = spawn_node();
    let (code, json, err) = loadgen(&[
        "notify",
        "--url",
        &node.url,
        "--jwt-secret",
        SECRET,
        "-n",
        "20",
        "-t",
        "2",
        "--duration",
        "2",
        "-r",
        "15",
        "--drain",
        "20",
        "--quiet",
    ]);
    let r = json.unwrap_or_else(|| panic!("no JSON result (exit {code}): {err}"));
    let n = &r["streams"]["notify"];
    let accepted = u(n, "/accepted");
    assert!(accepted > 0, "{r}");
    assert_eq!(
        u(n, "/expected_deliveries"),
        accepted,
        "one socket per user"
    );
    assert_eq!(u(n, "/lost"), 0, "{n}");
    assert_latency_consistent(&n["latency"], accepted);
    assert!(u(&r, "/notify/unread_check/users_checked") > 0);
    assert_eq!(u(&r, "/notify/unread_check/mismatches"), 0, "{r}");
}

#[test]
fn a_noisy_run_measures_the_victims_in_both_phases_and_each_notification_once() {
    let node = spawn_node();
    let (code, json, err) = loadgen(&[
        "noisy",
        "--url",
        &node.url,
        "--jwt-secret",
        SECRET,
        "-n",
        "10",
        "-t",
        "2",
        "--duration",
        "2",
        "-r",
        "10",
        "--noise-rate",
        "20",
        "--noise-concurrency",
        "2",
        "--noise-users",
        "5",
        "--noise-data-bytes",
        "256",
        "--noise-sockets",
        "2",
        "--noise-event-rate",
        "10",
        "--drain",
        "20",
        "--quiet",
    ]);
    let r = json.unwrap_or_else(|| panic!("no JSON result (exit {code}): {err}"));
    assert_eq!(code, 0, "{err}");
    let n = &r["streams"]["notify"];
    let accepted = u(n, "/accepted");
    let (quiet, noisy) = (&r["noisy"]["quiet"], &r["noisy"]["noisy"]);
    assert!(
        u(quiet, "/accepted") > 0 && u(noisy, "/accepted") > 0,
        "{r}"
    );
    assert_eq!(
        u(quiet, "/accepted") + u(noisy, "/accepted"),
        accepted,
        "every victim notification belongs to exactly one phase: {r}"
    );
    assert_eq!(u(n, "/lost"), 0, "{n}");
    assert_eq!(u(quiet, "/lost") + u(noisy, "/lost"), 0, "{r}");
    // One socket per user: one delivery, hence one latency sample, per accepted notification.
    assert_latency_consistent(&quiet["latency"], u(quiet, "/accepted"));
    assert_latency_consistent(&noisy["latency"], u(noisy, "/accepted"));
    assert_eq!(
        f(&r, "/noisy/quiet_p99_ms"),
        f(quiet, "/latency/p99_ms"),
        "the headline is the phase's figure"
    );
    assert!(f(&r, "/noisy/p99_ratio") > 0.0, "{r}");
    // The noise ran, and is not counted as the victims' traffic.
    assert!(u(&r, "/noisy/noise/api_calls") > 0, "{r}");
    assert!(u(&r, "/noisy/noise/events_offered") > 0, "{r}");
    assert_eq!(u(&r, "/noisy/victim_connected"), 10);
    assert_eq!(u(&r, "/noisy/noisy_connected"), 2);
}

#[test]
fn refused_connections_are_counted_by_reason() {
    let node = spawn_node();
    let (code, json, err) = loadgen(&[
        "connect",
        "--url",
        &node.url,
        "--jwt-secret",
        "not-the-secret",
        "-n",
        "10",
        "-t",
        "2",
        "--duration",
        "1",
        "--quiet",
    ]);
    let r = json.unwrap_or_else(|| panic!("no JSON result (exit {code}): {err}"));
    assert_eq!(u(&r, "/connections/attempts"), 10);
    assert_eq!(u(&r, "/connections/accepted"), 0);
    assert_eq!(u(&r, "/connections/refused"), 10);
    let reasons = r["connections"]["refusals"]
        .as_object()
        .expect("refusals map");
    assert_eq!(reasons.values().filter_map(Value::as_u64).sum::<u64>(), 10);
    assert!(
        reasons
            .keys()
            .all(|k| ["UNAUTHORIZED", "INVALID_TOKEN"].contains(&k.as_str())),
        "{reasons:?}"
    );
    assert_eq!(
        u(&r, "/connect_latency/count"),
        0,
        "refusals are not connect latencies"
    );
}

#[test]
fn non_loopback_targets_are_refused_before_any_traffic() {
    let (code, json, err) = loadgen(&[
        "connect",
        "--url",
        "http://10.1.2.3:80",
        "--jwt-secret",
        SECRET,
        "-n",
        "1",
        "-t",
        "1",
        "--quiet",
    ]);
    assert_eq!(code, 2);
    assert!(json.is_none());
    assert!(err.contains("non-loopback"), "{err}");
}
