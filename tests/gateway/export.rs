//! Event export (§12) on one node: progress, reads, dismissals and presence from real
//! Socket.IO clients reach a real webhook receiver signed, in order, after retries; the
//! `events` filter, dead letters and their replay, the pull API's paging, and tenant
//! isolation of every export route.

use lms_realtime::Config;
use lms_realtime::auth::Role;
use serde_json::{Value, json};

use crate::export_support::{HOOK_SECRET, Receiver, Refuse};
use crate::helpers::*;

const T: &str = "acme";

/// A node that retries fast, so the tests see several attempts within a second.
async fn node_with(tweak: impl FnOnce(&mut Config)) -> TestNode {
    spawn_node_with(|c: &mut Config| {
        c.webhook_backoff_base_ms = 20;
        c.webhook_backoff_max_ms = 100;
        c.webhook_poll_interval_ms = 50;
        c.presence_debounce_ms = 0;
        tweak(c);
    })
    .await
}

async fn node() -> TestNode {
    node_with(|_| {}).await
}

async fn set_hook(node: &TestNode, t: &str, url: &str, events: Value) -> (u16, Value) {
    node.put(
        &format!("/tenants/{t}/webhook"),
        &service_token(t),
        json!({ "url": url, "secret": HOOK_SECRET, "events": events }),
    )
    .await
}

/// A student enrolled in `c1`, connected.
async fn student(node: &TestNode, t: &str, user: &str) -> TestClient {
    node.enroll(t, "c1", user, "student").await;
    connect(node, &token(user, Some(t), Role::Student)).await
}

async fn progress(client: &TestClient, value: f64) {
    let ack = client
        .ack(
            "progress:content",
            json!({ "courseId": "c1", "contentId": "lesson-1", "progress": value }),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
}

fn progress_values(events: &[Value], user: &str) -> Vec<f64> {
    events
        .iter()
        .filter(|e| e["type"] == "progress:content" && e["data"]["userId"] == user)
        .map(|e| e["data"]["progress"].as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn progress_reads_dismissals_and_presence_reach_the_webhook_signed_in_order_after_failures() {
    let node = node().await;
    let receiver = Receiver::start(HOOK_SECRET, 2, Refuse::Fail).await;
    let (status, view) = set_hook(
        &node,
        T,
        &receiver.url,
        json!(["progress", "notification", "presence"]),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    node.enroll(T, "c1", "i1", "instructor").await;
    let _instructor = connect(&node, &token("i1", Some(T), Role::Instructor)).await;
    let s1 = student(&node, T, "s1").await;
    let s2 = student(&node, T, "s2").await;
    for i in 1..=5 {
        progress(&s1, f64::from(i) / 10.0).await;
        progress(&s2, f64::from(i) / 100.0).await;
    }
    assert_eq!(node.notify(T, "s1", "n1").await.0, 202);
    assert_eq!(node.notify(T, "s1", "n2").await.0, 202);
    let read = s1
        .ack("notification:read", json!({ "notificationId": "n1" }))
        .await;
    assert_eq!(read["ok"], true, "{read}");
    let dismissed = s1
        .ack("notification:dismiss", json!({ "notificationId": "n2" }))
        .await;
    assert_eq!(dismissed["ok"], true, "{dismissed}");
    s2.client.disconnect().await.unwrap();

    let events = receiver
        .wait_until("every exported type", |e| {
            let has = |kind: &str, user: &str| {
                e.iter()
                    .any(|x| x["type"] == kind && x["data"]["userId"] == user)
            };
            progress_values(e, "s1").len() >= 5
                && progress_values(e, "s2").len() >= 5
                && has("notification:read", "s1")
                && has("notification:dismissed", "s1")
                && has("presence:join", "s1")
                && has("presence:leave", "s2")
        })
        .await;
    assert_eq!(receiver.bad_signatures(), 0);
    assert!(receiver.requests() >= 3, "two refused, then accepted");
    // In order per user; a batch refused twice was sent again whole, never half.
    assert_eq!(progress_values(&events, "s1"), [0.1, 0.2, 0.3, 0.4, 0.5]);
    assert_eq!(
        progress_values(&events, "s2"),
        [0.01, 0.02, 0.03, 0.04, 0.05]
    );
    let read = events
        .iter()
        .find(|e| e["type"] == "notification:read")
        .unwrap();
    assert_eq!(read["tenantId"], T);
    assert_eq!(read["data"]["notificationId"], "n1");
    assert!(read["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(read["at"].as_str().is_some());
    let dismissed = events
        .iter()
        .find(|e| e["type"] == "notification:dismissed")
        .unwrap();
    assert_eq!(dismissed["data"]["notificationId"], "n2");
    let join = events
        .iter()
        .find(|e| e["type"] == "presence:join" && e["data"]["userId"] == "s1")
        .unwrap();
    assert_eq!(join["data"]["courseId"], "c1");
    let mut ids: Vec<_> = events.iter().map(|e| e["id"].clone()).collect();
    ids.sort_by_key(|v| v.to_string());
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "each event accepted once");

    let metrics = node.metrics_text().await;
    assert!(
        counter(
            &metrics,
            "lms_webhook_deliveries_total{outcome=\"http_error\"}"
        ) >= 2.0
    );
    assert!(counter(&metrics, "lms_webhook_deliveries_total{outcome=\"ok\"}") >= 1.0);
    let (_, status) = node
        .get(&format!("/tenants/{T}/webhook/status"), &service_token(T))
        .await;
    assert_eq!(status["configured"], true);
}

#[tokio::test]
async fn a_webhook_gets_only_the_types_and_prefixes_it_lists() {
    let node = node().await;
    let receiver = Receiver::start(HOOK_SECRET, 0, Refuse::Fail).await;
    let (status, _) = set_hook(
        &node,
        T,
        &receiver.url,
        json!(["progress:video", "presence"]),
    )
    .await;
    assert_eq!(status, 200);
    let s1 = student(&node, T, "s1").await;
    progress(&s1, 0.5).await;
    let video = s1
        .ack(
            "progress:video",
            json!({ "courseId": "c1", "videoId": "v1", "positionSeconds": 3, "durationSeconds": 60 }),
        )
        .await;
    assert_eq!(video["ok"], true, "{video}");
    node.notify(T, "s1", "n1").await;
    s1.ack("notification:read", json!({ "notificationId": "n1" }))
        .await;
    receiver
        .wait_until("the video report and the join", |e| {
            e.iter().any(|x| x["type"] == "progress:video")
                && e.iter().any(|x| x["type"] == "presence:join")
        })
        .await;
    // The pull API has everything; by the time it shows the read, delivery has passed it.
    let (_, page) = node
        .get(&format!("/tenants/{T}/events?limit=100"), &service_token(T))
        .await;
    let kinds: Vec<_> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(kinds.contains(&"progress:content".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"notification:read".to_owned()), "{kinds:?}");
    tokio::time::sleep(QUIET).await;
    for e in receiver.events() {
        let kind = e["type"].as_str().unwrap();
        assert!(
            kind == "progress:video" || kind.starts_with("presence:"),
            "{kind} is not subscribed"
        );
    }
}

#[tokio::test]
async fn after_the_last_attempt_a_batch_is_a_dead_letter_and_a_replay_delivers_it() {
    let node = node_with(|c| c.webhook_max_attempts = 3).await;
    let receiver = Receiver::start(HOOK_SECRET, usize::MAX, Refuse::Fail).await;
    set_hook(&node, T, &receiver.url, json!(["progress"])).await;
    let s1 = student(&node, T, "s1").await;
    progress(&s1, 0.1).await;
    progress(&s1, 0.2).await;
    let st = service_token(T);
    let dead = eventually(|| async {
        let (_, d) = node
            .get(&format!("/tenants/{T}/webhook/dead-letters"), &st)
            .await;
        (d["count"] == 2).then_some(d)
    })
    .await;
    assert!(receiver.requests() >= 3, "retried up to the last attempt");
    let values = progress_values(dead["events"].as_array().unwrap(), "s1");
    assert_eq!(values, [0.1, 0.2]);
    let (_, status) = node.get(&format!("/tenants/{T}/webhook/status"), &st).await;
    assert_eq!(status["deadLetters"], 2);
    assert_eq!(status["pending"], 0, "delivery moved past them");
    let metrics = node.metrics_text().await;
    assert!(counter(&metrics, "lms_webhook_dead_letters_total") >= 2.0);

    receiver.accept_all();
    let (code, replayed) = node
        .post(
            &format!("/tenants/{T}/webhook/dead-letters/replay"),
            &st,
            json!({}),
        )
        .await;
    assert_eq!((code, replayed["replayed"].clone()), (200, json!(2)));
    let got = receiver
        .wait_until("the replayed events", |e| {
            progress_values(e, "s1").len() == 2
        })
        .await;
    let dead_ids: Vec<_> = dead["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["id"])
        .collect();
    let got_ids: Vec<_> = got.iter().map(|e| &e["id"]).collect();
    assert_eq!(got_ids, dead_ids, "same ids, same order");
    let (_, after) = node
        .get(&format!("/tenants/{T}/webhook/dead-letters"), &st)
        .await;
    assert_eq!(after["count"], 0);
    assert_eq!(after["events"], json!([]));
}

/// Polls until `check` gives a value (10 s).
async fn eventually<F, Fut>(check: F) -> Value
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < WAIT, "not within {WAIT:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_pull_api_pages_with_a_cursor_and_refuses_a_bad_one() {
    let node = node().await;
    let s1 = student(&node, T, "s1").await;
    for i in 1..=5 {
        progress(&s1, f64::from(i) / 10.0).await;
    }
    let st = service_token(T);
    let mut after = String::new();
    let mut seen = vec![];
    let mut pages = 0;
    loop {
        let q = if after.is_empty() {
            "limit=2".to_owned()
        } else {
            format!("after={after}&limit=2")
        };
        let (code, page) = node.get(&format!("/tenants/{T}/events?{q}"), &st).await;
        assert_eq!(code, 200, "{page}");
        let events = page["events"].as_array().unwrap().clone();
        assert!(events.len() <= 2);
        let next = page["next"].as_str().unwrap().to_owned();
        if events.is_empty() {
            assert_eq!(next, after, "an empty page keeps the cursor");
            break;
        }
        pages += 1;
        seen.extend(events);
        after = next;
    }
    assert_eq!(pages, 3);
    assert_eq!(progress_values(&seen, "s1"), [0.1, 0.2, 0.3, 0.4, 0.5]);
    assert!(
        seen.iter()
            .all(|e| e["tenantId"] == T && e["data"]["courseId"] == "c1")
    );
    // New events show up after the last cursor.
    progress(&s1, 0.6).await;
    let (_, page) = node
        .get(&format!("/tenants/{T}/events?after={after}"), &st)
        .await;
    assert_eq!(
        progress_values(page["events"].as_array().unwrap(), "s1"),
        [0.6]
    );
    for bad in ["after=nope", "after=1-2-3", "limit=0", "limit=5000"] {
        let (code, body) = node.get(&format!("/tenants/{T}/events?{bad}"), &st).await;
        assert_eq!(code, 422, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "INVALID_PAYLOAD");
    }
}

#[tokio::test]
async fn another_tenants_token_reaches_none_of_the_export_routes() {
    let node = node().await;
    let receiver = Receiver::start(HOOK_SECRET, 0, Refuse::Fail).await;
    set_hook(&node, "b", &receiver.url, json!(["progress"])).await;
    let sb = student(&node, "b", "s1").await;
    progress(&sb, 0.9).await;
    let a = service_token("a");
    let calls = [
        (reqwest::Method::GET, "/tenants/b/events"),
        (reqwest::Method::GET, "/tenants/b/webhook"),
        (reqwest::Method::PUT, "/tenants/b/webhook"),
        (reqwest::Method::DELETE, "/tenants/b/webhook"),
        (reqwest::Method::GET, "/tenants/b/webhook/status"),
        (reqwest::Method::GET, "/tenants/b/webhook/dead-letters"),
        (
            reqwest::Method::POST,
            "/tenants/b/webhook/dead-letters/replay",
        ),
    ];
    let body =
        json!({ "url": "http://127.0.0.1:9/x", "secret": HOOK_SECRET, "events": ["progress"] });
    for (method, path) in &calls {
        let (code, res) = send(node.call(method.clone(), path, &a).json(&body)).await;
        assert_eq!(code, 403, "{method} {path}: {res}");
        assert_eq!(res["error"]["code"], "TENANT_MISMATCH");
        let student = token("s1", Some("b"), Role::Student);
        let (code, _) = send(node.call(method.clone(), path, &student).json(&body)).await;
        assert_eq!(code, 403, "{method} {path} with a student token");
        let (code, _) = send(
            node.http
                .request(method.clone(), node.api(path))
                .json(&body),
        )
        .await;
        assert_eq!(code, 401, "{method} {path} without a token");
    }
    // B's webhook is untouched and A sees nothing of B.
    let (code, hook) = node.get("/tenants/b/webhook", &service_token("b")).await;
    assert_eq!((code, hook["url"].clone()), (200, json!(receiver.url)));
    let (_, page) = node.get("/tenants/a/events", &a).await;
    assert_eq!(page["events"], json!([]));
    let (code, page) = node.get("/tenants/b/events", &super_token()).await;
    assert_eq!(code, 200, "a super admin reads any tenant");
    assert_eq!(
        progress_values(page["events"].as_array().unwrap(), "s1"),
        [0.9]
    );
}

#[tokio::test]
async fn the_secret_is_never_returned_and_bad_configurations_are_refused() {
    let node = node().await;
    let st = service_token(T);
    let path = format!("/tenants/{T}/webhook");
    let (code, missing) = node.get(&path, &st).await;
    assert_eq!(
        (code, missing["error"]["code"].clone()),
        (404, json!("NOT_FOUND"))
    );
    let (_, status) = node.get(&format!("{path}/status"), &st).await;
    assert_eq!(
        status,
        json!({ "configured": false, "lagSeconds": 0.0, "pending": 0, "deadLetters": 0 })
    );
    let (code, put) = set_hook(&node, T, "https://lms.example/hook", json!(["progress"])).await;
    assert_eq!(code, 200);
    let (_, got) = node.get(&path, &st).await;
    for body in [&put, &got] {
        assert!(!body.to_string().contains(HOOK_SECRET), "{body}");
        assert_eq!(
            *body,
            json!({ "url": "https://lms.example/hook", "events": ["progress"] })
        );
    }
    for (bad, field) in [
        (
            json!({ "url": "ftp://x/y", "secret": HOOK_SECRET, "events": ["progress"] }),
            "url",
        ),
        (
            json!({ "url": "https://x/y", "secret": "short", "events": ["progress"] }),
            "secret",
        ),
        (
            json!({ "url": "https://x/y", "secret": HOOK_SECRET, "events": ["grades"] }),
            "events",
        ),
        (
            json!({ "url": "https://x/y", "secret": HOOK_SECRET, "events": [] }),
            "events",
        ),
        (
            json!({ "url": "https://x/y", "secret": HOOK_SECRET }),
            "events",
        ),
    ] {
        let (code, res) = node.put(&path, &st, bad.clone()).await;
        assert_eq!(code, 422, "{bad}: {res}");
        assert_eq!(res["error"]["code"], "INVALID_PAYLOAD");
        let message = res["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{message}");
        assert!(!message.contains(HOOK_SECRET));
    }
    let (code, _) = node.delete(&path, &st).await;
    assert_eq!(code, 204);
    let (code, _) = node.delete(&path, &st).await;
    assert_eq!(code, 404);
}

/// The old setting names still bound the queue when the new ones are not set.
#[test]
fn the_progress_log_settings_still_bound_the_export_queue() {
    let mut c = Config::for_tests(SECRET);
    c.progress_log_cap = 7;
    assert_eq!(c.export_bounds().cap, 7);
    c.export_queue_cap = Some(9);
    assert_eq!(c.export_bounds().cap, 9);
}
