use lms_realtime::auth::Role;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_notification_reaches_every_socket_of_the_user_with_its_count() {
    let node = spawn_node().await;
    let t = token("u1", Some("t1"), Role::Student);
    let (phone, laptop) = (connect(&node, &t).await, connect(&node, &t).await);
    let other = connect(&node, &token("u2", Some("t1"), Role::Student)).await;
    let (status, body) = node.notify("t1", "u1", "n1").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body, json!({ "id": "n1", "recipients": 1 }));
    for c in [&phone, &laptop] {
        let n = c.inbox.next("notification:new").await;
        assert_eq!(n["id"], "n1");
        assert_eq!(n["tenantId"], "t1");
        assert_eq!(n["userId"], "u1");
        assert_eq!(n["status"], "UNREAD");
        assert!(n["createdAt"].as_str().unwrap().contains('T'));
        assert_eq!(
            c.inbox.next("notification:count").await,
            json!({ "unread": 1 })
        );
    }
    other.inbox.assert_none("notification:new").await;
}

#[tokio::test]
async fn every_socket_is_told_its_count_on_connect_zero_included() {
    let node = spawn_node().await;
    assert_eq!(node.notify("t1", "u1", "while-away").await.0, 202);
    let t = token("u1", Some("t1"), Role::Student);
    let c = connect(&node, &t).await;
    assert_eq!(c.connect_count, Some(json!({ "unread": 1 })));
    let fresh = connect(&node, &token("u2", Some("t1"), Role::Student)).await;
    assert_eq!(fresh.connect_count, Some(json!({ "unread": 0 })));
    // A count that went to zero while a socket was away (its push lost) is corrected.
    ok(&c.ack("notification:read_all", json!({})).await);
    let back = connect(&node, &t).await;
    assert_eq!(back.connect_count, Some(json!({ "unread": 0 })));
    let platform = connect(&node, &super_token()).await;
    assert_eq!(platform.connect_count, None, "no tenant, no inbox");
    platform.inbox.assert_none("notification:count").await;
}

#[tokio::test]
async fn a_repeated_notification_id_is_stored_and_counted_once() {
    let node = spawn_node().await;
    let c = connect(&node, &token("u1", Some("t1"), Role::Student)).await;
    assert_eq!(node.notify("t1", "u1", "same").await.0, 202);
    assert_eq!(node.notify("t1", "u1", "same").await.0, 202);
    c.inbox.next("notification:new").await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(c.inbox.all("notification:new").len(), 1);
    assert_eq!(
        ok(&c.ack("notification:count", json!(null)).await)["unread"],
        1
    );
    let no_argument = c.ack_without_payload("notification:count").await;
    assert_eq!(ok(&no_argument)["unread"], 1);
    let (_, unread) = node
        .get("/tenants/t1/users/u1/unread", &service_token("t1"))
        .await;
    assert_eq!(unread, json!({ "unread": 1 }));
}

#[tokio::test]
async fn reading_is_idempotent_and_syncs_the_users_other_sockets() {
    let node = spawn_node().await;
    let t = token("u1", Some("t1"), Role::Student);
    let (a, b) = (connect(&node, &t).await, connect(&node, &t).await);
    node.notify("t1", "u1", "n1").await;
    node.notify("t1", "u1", "n2").await;
    b.inbox
        .wait_for("notification:count", |v| v["unread"] == 2)
        .await;
    let ack = a
        .ack("notification:read", json!({ "notificationId": "n1" }))
        .await;
    assert_eq!(ok(&ack)["unread"], 1);
    assert_eq!(
        b.inbox.next("notification:read").await,
        json!({ "notificationId": "n1" })
    );
    b.inbox
        .wait_for("notification:count", |v| v["unread"] == 1)
        .await;
    a.inbox
        .wait_for("notification:count", |v| v["unread"] == 1)
        .await;
    assert!(
        a.inbox.all("notification:read").is_empty(),
        "the reader itself gets no notification:read"
    );
    let again = a
        .ack(
            "notification:read",
            json!({ "notificationId": "n1", "tenantId": "t1", "userId": "u1" }),
        )
        .await;
    assert_eq!(ok(&again)["unread"], 1);
    assert_eq!(
        code(
            &a.ack("notification:read", json!({ "notificationId": "missing" }))
                .await
        ),
        "NOT_FOUND"
    );
    assert_eq!(
        ok(&a.ack("notification:read_all", json!({})).await)["unread"],
        0
    );
    b.inbox
        .wait_for("notification:count", |v| v["unread"] == 0)
        .await;
}

#[tokio::test]
async fn dismissing_leaves_unread_and_tells_every_socket() {
    let node = spawn_node().await;
    let t = token("u1", Some("t1"), Role::Student);
    let (a, b) = (connect(&node, &t).await, connect(&node, &t).await);
    node.notify("t1", "u1", "n1").await;
    a.inbox.next("notification:new").await;
    assert_eq!(
        ok(&a
            .ack("notification:dismiss", json!({ "notificationId": "n1" }))
            .await)["unread"],
        0
    );
    for c in [&a, &b] {
        assert_eq!(
            c.inbox.next("notification:dismissed").await,
            json!({ "notificationId": "n1" })
        );
    }
    let list = a
        .ack("notification:list", json!({ "status": "DISMISSED" }))
        .await;
    assert_eq!(ok(&list)["items"][0]["status"], "DISMISSED");
}

#[tokio::test]
async fn reading_with_status_dismissed_is_a_dismissal_for_every_socket() {
    let node = spawn_node().await;
    let t = token("u1", Some("t1"), Role::Student);
    let (a, b) = (connect(&node, &t).await, connect(&node, &t).await);
    node.notify("t1", "u1", "n1").await;
    a.inbox.next("notification:new").await;
    let ack = a
        .ack(
            "notification:read",
            json!({ "notificationId": "n1", "status": "DISMISSED" }),
        )
        .await;
    assert_eq!(ok(&ack)["unread"], 0);
    for c in [&a, &b] {
        assert_eq!(
            c.inbox.next("notification:dismissed").await,
            json!({ "notificationId": "n1" })
        );
    }
    let unread = a
        .ack(
            "notification:read",
            json!({ "notificationId": "n1", "status": "UNREAD" }),
        )
        .await;
    assert_eq!(code(&unread), "INVALID_PAYLOAD");
}

#[tokio::test]
async fn the_inbox_lists_newest_first_in_pages() {
    let node = spawn_node().await;
    let c = connect(&node, &token("u1", Some("t1"), Role::Student)).await;
    for i in 0..5 {
        node.notify("t1", "u1", &format!("n{i}")).await;
    }
    let ids = |v: &serde_json::Value| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let p1 = c.ack("notification:list", json!({ "limit": 2 })).await;
    assert_eq!(ids(ok(&p1)), ["n4", "n3"]);
    let p2 = c
        .ack(
            "notification:list",
            json!({ "limit": 2, "before": p1["nextCursor"] }),
        )
        .await;
    assert_eq!(ids(ok(&p2)), ["n2", "n1"]);
    let p3 = c
        .ack(
            "notification:list",
            json!({ "limit": 2, "before": p2["nextCursor"] }),
        )
        .await;
    assert_eq!(ids(ok(&p3)), ["n0"]);
    assert!(p3["nextCursor"].is_null());
    assert_eq!(
        code(&c.ack("notification:list", json!({ "limit": 0 })).await),
        "INVALID_PAYLOAD"
    );
    assert_eq!(
        code(&c.ack("notification:list", json!({ "limit": 101 })).await),
        "INVALID_PAYLOAD"
    );
    assert_eq!(
        code(&c.ack("notification:list", json!({ "before": "x" })).await),
        "INVALID_PAYLOAD"
    );
}

#[tokio::test]
async fn an_array_where_an_object_payload_belongs_is_an_invalid_payload() {
    let node = spawn_node().await;
    let c = connect(&node, &token("u1", Some("t1"), Role::Student)).await;
    for (event, payload) in [
        ("notification:list", json!([])),
        ("notification:list", json!([5])),
        ("notification:read", json!(["n1"])),
        ("notification:read_all", json!([])),
        ("course:join", json!(["c1"])),
    ] {
        let ack = c.ack(event, payload.clone()).await;
        assert_eq!(code(&ack), "INVALID_PAYLOAD", "{event} {payload}: {ack}");
    }
    // No payload, or an object, is still fine.
    ok(&c.ack_without_payload("notification:count").await);
    ok(&c.ack("notification:list", json!({})).await);
}

#[tokio::test]
async fn an_invalid_payload_message_quotes_little_of_the_clients_text_and_no_control_characters() {
    let node = spawn_node().await;
    let c = connect(&node, &token("u1", Some("t1"), Role::Student)).await;
    let hostile = format!("\u{1b}[2J{}\r\n", "A".repeat(20_000));
    let ack = c
        .ack("notification:list", json!({ "status": hostile }))
        .await;
    assert_eq!(code(&ack), "INVALID_PAYLOAD");
    let message = ack["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("status"), "{message}");
    assert!(message.chars().count() < 300, "{message}");
    assert!(!message.chars().any(char::is_control), "{message:?}");
}

#[tokio::test]
async fn a_payload_naming_another_tenant_or_user_is_refused_and_counted() {
    let node = spawn_node().await;
    let c = connect(&node, &token("u1", Some("t1"), Role::Student)).await;
    node.notify("t1", "u1", "n1").await;
    let ack = c
        .ack(
            "notification:read",
            json!({ "notificationId": "n1", "tenantId": "t2" }),
        )
        .await;
    assert_eq!(code(&ack), "TENANT_MISMATCH");
    let ack = c
        .ack(
            "notification:read",
            json!({ "notificationId": "n1", "userId": "u2" }),
        )
        .await;
    assert_eq!(code(&ack), "FORBIDDEN");
    let metrics = node.metrics_text().await;
    assert!(metrics.contains("lms_security_events_total{kind=\"tenant_mismatch\"}"));
    assert!(metrics.contains(
        "lms_events_received_total{event=\"notification:read\",outcome=\"TENANT_MISMATCH\"}"
    ));
}

#[tokio::test]
async fn two_tenants_with_the_same_user_id_never_see_each_others_notifications() {
    let node = spawn_node().await;
    let a = connect(&node, &token("7", Some("tenant-a"), Role::Student)).await;
    let b = connect(&node, &token("7", Some("tenant-b"), Role::Student)).await;
    node.notify("tenant-a", "7", "n1").await;
    a.inbox.next("notification:new").await;
    b.inbox.assert_none("notification:new").await;
    assert_eq!(
        ok(&b.ack("notification:count", json!({})).await)["unread"],
        0
    );
    assert_eq!(
        code(
            &b.ack("notification:read", json!({ "notificationId": "n1" }))
                .await
        ),
        "NOT_FOUND"
    );
}

#[tokio::test]
async fn a_failed_event_without_an_ack_callback_gets_an_error_event() {
    let node = spawn_node().await;
    let c = connect(&node, &token("u1", Some("t1"), Role::Student)).await;
    c.emit("notification:read", json!({})).await;
    let err = c.inbox.wait_for("error", |v| v.get("code").is_some()).await;
    assert_eq!(err["code"], "INVALID_PAYLOAD");
    assert_eq!(err["event"], "notification:read");
    assert!(err["message"].as_str().unwrap().contains("notificationId"));
}

#[tokio::test]
async fn numeric_ids_on_the_wire_count_as_their_decimal_strings() {
    let node = spawn_node().await;
    let c = connect(&node, &token("42", Some("t1"), Role::Student)).await;
    let body = json!({ "tenantId": "t1", "target": { "userId": 42 }, "notification": { "id": 9, "title": "x", "message": "y", "type": "MESSAGE", "priority": "LOW" } });
    let (status, res) = node
        .post("/notifications", &service_token("t1"), body)
        .await;
    assert_eq!(status, 202, "{res}");
    assert_eq!(c.inbox.next("notification:new").await["id"], "9");
    assert_eq!(
        ok(&c
            .ack("notification:read", json!({ "notificationId": 9 }))
            .await)["unread"],
        0
    );
}
