//! Hostile HTTP clients (PROTOCOL.md §13, docs/security.md "HTTP and the service API"):
//! silent and slow connections are closed by their timeouts while the node keeps
//! answering, framework rejections carry the error envelope, `/metrics` moves to its own
//! port, one tenant's quota never touches another's, and a large fan-out holds its body
//! once.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Whether the server has closed `stream` (EOF or reset), reading away what it sent.
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Reads until the server closes the connection or `limit` passes.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn connect(node: &TestNode) -> TcpStream {
    TcpStream::connect(("127.0.0.1", node.port))
        .await
        .expect("connect")
}

#[tokio::test]
async fn idle_and_slowloris_connections_are_closed_after_the_header_timeout_while_healthz_answers()
{
    let node = spawn_node_with(|c| c.http_header_timeout_ms = 300).await;
    const N: usize = 20;
    let mut idle = Vec::new();
    for _ in 0..N {
        idle.push(connect(&node).await);
    }
    let mut slow = Vec::new();
    for _ in 0..N {
        let (mut read, mut write) = connect(&node).await.into_split();
        let drip = tokio::spawn(async move {
            if write.write_all(b"GET /healthz HTTP/1.1\r\n").await.is_err() {
                return;
            }
            for i in 0.. {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if write
                    .write_all(format!("X-{i}: a\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        let closed = tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            tokio::time::timeout(Duration::from_secs(3), async {
                loop {
                    match read.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            })
            .await
            .is_ok()
        });
        slow.push((drip, closed));
    }
    // Held connections do not stop the node from answering.
    let health = node
        .http
        .get(format!("{}/healthz", node.url()))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);

    tokio::time::sleep(Duration::from_millis(900)).await;
    let mut idle_open = 0;
    for s in &mut idle {
        if !closed(s).await {
            idle_open += 1;
        }
    }
    let mut slow_open = 0;
    for (drip, closed) in slow {
        if !closed.await.unwrap() {
            slow_open += 1;
        }
        drip.abort();
    }
    assert_eq!(
        (idle_open, slow_open),
        (0, 0),
        "connections left open after the header timeout"
    );
}

#[tokio::test]
async fn a_keep_alive_connection_lives_by_the_idle_timeout_not_the_header_timeout() {
    let node = spawn_node_with(|c| {
        c.http_header_timeout_ms = 300;
        c.http_idle_timeout_ms = 1_500;
    })
    .await;
    let mut s = connect(&node).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(request).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    // Idle longer than the header timeout: still open, and serves the next request.
    tokio::time::sleep(Duration::from_millis(800)).await;
    s.write_all(request).await.unwrap();
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "closed while idle");

    // Idle past the idle timeout: closed.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert!(closed(&mut s).await, "open after the idle timeout");
}

/// A polling POST or an API call whose body never finishes gets 408 and is closed.
#[tokio::test]
async fn a_request_body_sent_too_slowly_gets_408_with_the_envelope_and_the_connection_closes() {
    let node = spawn_node_with(|c| c.http_body_timeout_ms = 400).await;

    // An Engine.IO long-polling session, then a POST to it with 1 of 1000 bytes.
    let handshake = node
        .http
        .get(format!("{}/socket.io/?EIO=4&transport=polling", node.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let open: Value = serde_json::from_str(handshake.trim_start_matches('0')).unwrap();
    let sid = open["sid"].as_str().unwrap();
    let mut s = connect(&node).await;
    let head = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n4"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"INVALID_PAYLOAD\""), "{answer}");

    // The service API: the envelope with 408.
    let token = service_token("t1");
    let mut s = connect(&node).await;
    let head = format!(
        "POST /api/v1/notifications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"]["code"], "INVALID_PAYLOAD");

    let text = node.metrics_text().await;
    assert!(
        text.contains("lms_http_timeouts_total{phase=\"body\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn wrong_methods_and_unknown_routes_answer_the_error_envelope() {
    let node = spawn_node().await;
    let res = node
        .http
        .delete(format!("{}/healthz", node.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "INVALID_PAYLOAD", "{body}");

    let (status, body) = node.delete("/notifications", &service_token("t1")).await;
    assert_eq!(status, 405);
    assert!(body["error"]["message"].is_string(), "{body}");

    let (status, body) = send(node.http.get(format!("{}/nope", node.url()))).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "NOT_FOUND", "{body}");
}

#[tokio::test]
async fn with_a_metrics_port_the_public_port_serves_no_metrics() {
    let node = spawn_node_with(|c| c.metrics_port = Some(0)).await;
    let addr = node.metrics_addr.expect("an internal listener");
    assert_ne!(addr.port(), node.port);

    // Some per-tenant series exist...
    node.notify("tenant-secret", "u1", "n1").await;
    let (status, body) = send(node.http.get(format!("{}/metrics", node.url()))).await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.to_string().contains("lms_"), "{body}");

    let internal = node
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(internal.status(), 200);
    assert!(
        internal
            .text()
            .await
            .unwrap()
            .contains("lms_http_requests_total")
    );
    let (status, _) = send(node.http.get(format!("http://{addr}/healthz"))).await;
    assert_eq!(status, 404, "the internal port serves metrics only");
}

#[tokio::test]
async fn a_tenant_past_its_rate_gets_429_with_retry_after_and_another_tenant_is_unaffected() {
    let node = spawn_node_with(|c| {
        c.api_rate_per_sec = 1;
        c.api_burst = 3;
    })
    .await;
    let (a, b) = (service_token("busy"), service_token("quiet"));
    for _ in 0..3 {
        let (status, body) = node.get("/tenants/busy/users/u1/unread", &a).await;
        assert_eq!(status, 200, "{body}");
    }
    let res = node
        .call(reqwest::Method::GET, "/tenants/busy/users/u1/unread", &a)
        .send()
        .await
        .unwrap();
    let retry = rate_limited_retry_after(res).await;
    assert!((1..=2).contains(&retry), "Retry-After {retry}");

    let (status, body) = node.get("/tenants/quiet/users/u1/unread", &b).await;
    assert_eq!(status, 200, "the other tenant: {body}");

    // A super admin is charged to the tenant it names.
    let (status, _) = node
        .get("/tenants/busy/users/u1/unread", &super_token())
        .await;
    assert_eq!(status, 429);

    let text = node.metrics_text().await;
    assert!(
        text.contains("lms_api_refusals_total{reason=\"rate\"}"),
        "{text}"
    );
    assert!(text.contains("lms_security_events_total{kind=\"rate_limited\"}"));
    assert!(
        !text.contains("busy"),
        "no tenant id in the refusal metrics"
    );
}

#[tokio::test]
async fn a_tenant_at_its_in_flight_cap_gets_429_and_another_tenant_is_served() {
    let node = spawn_node_with(|c| {
        c.api_max_in_flight = 2;
        c.http_body_timeout_ms = 5_000;
    })
    .await;
    let token = service_token("hog");
    // Two calls in flight: admitted, bodies still on their way.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect(&node).await;
        let head = format!(
            "POST /api/v1/tenants/hog/broadcast HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = node.get("/tenants/hog/users/u1/unread", &token).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    let (status, body) = node
        .get("/tenants/other/users/u1/unread", &service_token("other"))
        .await;
    assert_eq!(status, 200, "{body}");

    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = node.get("/tenants/hog/users/u1/unread", &token).await;
    assert_eq!(status, 200, "a slot frees when a call ends: {body}");
}

fn notification(tenant: &str, users: &[String], data: Value) -> Value {
    json!({
        "tenantId": tenant,
        "target": { "userIds": users },
        "notification": { "title": "t", "message": "m", "type": "GENERAL", "priority": "NORMAL", "data": data }
    })
}

#[tokio::test]
async fn notification_data_over_the_cap_is_413_and_at_the_cap_is_stored() {
    let node = spawn_node_with(|c| c.max_notification_data_bytes = 1_024).await;
    let token = service_token("t1");
    let users = vec!["u1".to_owned()];
    let (status, body) = node
        .post(
            "/notifications",
            &token,
            notification("t1", &users, json!({ "blob": "x".repeat(2_000) })),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_PAYLOAD");

    // {"blob":"..."} is 11 bytes of JSON around the string.
    let (status, body) = node
        .post(
            "/notifications",
            &token,
            notification("t1", &users, json!({ "blob": "x".repeat(1_024 - 11) })),
        )
        .await;
    assert_eq!(status, 202, "{body}");
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A thousand recipients of a notification at the data cap: the body is held once.
/// Measured: 11.2 MiB of growth when every inbox entry had its own copy, 2.1 MiB shared.
#[tokio::test]
async fn a_fan_out_to_a_thousand_users_at_the_data_cap_holds_the_body_once() {
    // The inbox's own cost. Recovery keeps each pushed event for its window on top of it
    // (docs/cluster.md, "Connection state recovery": bytes per kept event), so it is off.
    let node = spawn_node_with(|c| c.recovery_enabled = false).await;
    let token = service_token("t1");
    let cap = 8 * 1024;
    let users: Vec<String> = (0..1_000).map(|i| format!("user-{i}")).collect();
    let data = json!({ "blob": "x".repeat(cap - 11) });
    // Warm up allocator pools and lazy statics with a small fan-out first.
    let (status, _) = node
        .post(
            "/notifications",
            &token,
            notification("t1", &users[..10], data.clone()),
        )
        .await;
    assert_eq!(status, 202);

    let before = rss_kib();
    let (status, body) = node
        .post("/notifications", &token, notification("t1", &users, data))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["recipients"], 1_000);
    let grown = rss_kib().saturating_sub(before);
    eprintln!("RSS growth for 1000 recipients at {cap} bytes of data: {grown} KiB");
    assert!(grown < 5 * 1024, "RSS grew {grown} KiB");
}

/// A backend that retries as fast as it is answered: each quota refusal is held before it
/// is answered, so the flood slows to its own concurrency divided by the hold; past the
/// node's cap of held refusals, they are answered at once and the connection is closed.
#[tokio::test]
async fn quota_refusals_are_held_and_past_the_cap_answered_at_once_closing() {
    let hold = Duration::from_millis(300);
    let node = spawn_node_with(|c| {
        c.api_rate_per_sec = 1;
        c.api_burst = 1;
        c.api_refusal_hold_ms = 300;
        c.api_max_held_refusals = 3;
    })
    .await;
    let busy = service_token("busy");
    let (status, body) = node.get("/tenants/busy/users/u1/unread", &busy).await;
    assert_eq!(status, 200, "{body}");
    let calls = (0..6).map(|_| async {
        let started = std::time::Instant::now();
        let res = node
            .call(reqwest::Method::GET, "/tenants/busy/users/u1/unread", &busy)
            .send()
            .await
            .unwrap();
        let closing = res
            .headers()
            .get("connection")
            .is_some_and(|v| v == "close");
        (res.status().as_u16(), closing, started.elapsed())
    });
    let answers = futures::future::join_all(calls).await;
    assert!(
        answers.iter().all(|(status, ..)| *status == 429),
        "{answers:?}"
    );
    let held: Vec<_> = answers.iter().filter(|(_, closing, _)| !closing).collect();
    assert_eq!(held.len(), 3, "three held, three closing: {answers:?}");
    assert!(held.iter().all(|(.., took)| *took >= hold), "{answers:?}");

    let quiet = service_token("quiet");
    let (status, body) = node.get("/tenants/quiet/users/u1/unread", &quiet).await;
    assert_eq!(status, 200, "another tenant is not held: {body}");
}

/// Fair sharing: a call is cheap to make but may store for a thousand users; each tenant's
/// stored recipients per second are budgeted, so its flood is refused before anything is
/// stored and another tenant's notifications go through.
#[tokio::test]
async fn a_tenant_over_its_recipient_budget_gets_429_with_retry_after_and_nothing_is_stored() {
    let node = spawn_node_with(|c| {
        c.tenant_notify_recipients_per_sec = 1;
        c.tenant_notify_recipients_burst = 20;
    })
    .await;
    let many = |tenant: &str, id: &str| {
        let users: Vec<String> = (0..15).map(|i| format!("u{i}")).collect();
        json!({
            "tenantId": tenant,
            "target": { "userIds": users },
            "notification": { "id": id, "title": "t", "message": "m", "type": "GENERAL", "priority": "LOW" }
        })
    };
    let busy = service_token("busy");
    let (status, body) = node.post("/notifications", &busy, many("busy", "n1")).await;
    assert_eq!(status, 202, "{body}");
    let res = node
        .call(reqwest::Method::POST, "/notifications", &busy)
        .json(&many("busy", "n2"))
        .send()
        .await
        .unwrap();
    let retry = rate_limited_retry_after(res).await;
    // 15 recipients at 1/s with 5 left in the bucket: 10 s to wait.
    assert!((9..=11).contains(&retry), "Retry-After {retry}");
    let (_, unread) = node.get("/tenants/busy/users/u0/unread", &busy).await;
    assert_eq!(unread["unread"], 1, "the refused call stored nothing");
    let quiet = service_token("quiet");
    let (status, body) = node
        .post("/notifications", &quiet, many("quiet", "n2"))
        .await;
    assert_eq!(status, 202, "another tenant: {body}");
}

/// Checks a `429 RATE_LIMITED` answer and returns its `Retry-After`, in seconds.
async fn rate_limited_retry_after(res: reqwest::Response) -> u64 {
    assert_eq!(res.status(), 429);
    let retry = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    retry
}
