use lms_realtime::auth::Role;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn the_service_api_needs_a_service_token_of_the_same_tenant() {
    let node = spawn_node().await;
    let body = json!({ "tenantId": "t1", "target": { "userId": "u1" }, "notification": { "title": "x", "message": "y" } });
    let (status, res) = send(node.http.post(node.api("/notifications")).json(&body)).await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );
    let (status, res) = node.post("/notifications", "not-a-jwt", body.clone()).await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (401, Some("INVALID_TOKEN"))
    );
    let expired =
        lms_realtime::auth::mint_hs256(SECRET, "svc", Some("t1"), Role::Service, -3600).unwrap();
    let (status, res) = node.post("/notifications", &expired, body.clone()).await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (401, Some("TOKEN_EXPIRED"))
    );
    let (status, res) = node
        .post(
            "/notifications",
            &token("u1", Some("t1"), Role::Admin),
            body.clone(),
        )
        .await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    let (status, res) = node
        .post("/notifications", &service_token("t2"), body.clone())
        .await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (403, Some("TENANT_MISMATCH"))
    );
    let (status, _) = node.post("/notifications", &super_token(), body).await;
    assert_eq!(status, 202);
    let (status, res) = node
        .post(
            "/system/alerts",
            &service_token("t1"),
            json!({ "title": "x", "message": "y" }),
        )
        .await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
}

#[tokio::test]
async fn bad_bodies_get_clear_errors_with_the_right_status() {
    let node = spawn_node_with(|c| c.max_http_body_bytes = 1024).await;
    let svc = service_token("t1");
    let url = node.api("/notifications");
    let (status, res) = send(
        node.http
            .post(&url)
            .bearer_auth(&svc)
            .body("{\"tenantId\":"),
    )
    .await;
    assert_eq!(status, 415, "{res}");
    let (status, res) = send(
        node.http
            .post(&url)
            .bearer_auth(&svc)
            .header("content-type", "application/json")
            .body("{\"tenantId\":"),
    )
    .await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (400, Some("INVALID_PAYLOAD"))
    );
    let (status, res) = node
        .post(
            "/notifications",
            &svc,
            json!({ "tenantId": "t1", "target": { "userId": "u1" } }),
        )
        .await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (422, Some("INVALID_PAYLOAD"))
    );
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("notification"),
        "{res}"
    );
    let (status, res) = node.post("/notifications", &svc, json!({ "tenantId": "t1", "target": { "userId": "u1", "role": "student" }, "notification": { "title": "x", "message": "y" } })).await;
    assert_eq!(status, 422, "{res}");
    let (status, res) = node.post("/notifications", &svc, json!({ "tenantId": "t1", "target": { "userId": "u:1" }, "notification": { "title": "x", "message": "y" } })).await;
    assert_eq!(status, 422, "{res}");
    let big = "x".repeat(4096);
    let (status, res) = node.post("/notifications", &svc, json!({ "tenantId": "t1", "target": { "userId": "u1" }, "notification": { "title": "x", "message": big } })).await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (413, Some("INVALID_PAYLOAD"))
    );
    let (status, res) = node.get("/tenants/t1/users/a:b/unread", &svc).await;
    assert_eq!(status, 400, "{res}");
    let (status, res) = node.get("/nope", &svc).await;
    assert_eq!(
        (status, res["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (status, _) = node
        .put(
            "/tenants/t1/courses/c1/members/u1",
            &svc,
            json!({ "role": "dean" }),
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn a_course_target_stores_for_every_member_and_a_role_target_delivers_live() {
    let node = spawn_node().await;
    node.enroll("t1", "c1", "s1", "student").await;
    node.enroll("t1", "c1", "s2", "student").await;
    let s1 = connect(&node, &token("s1", Some("t1"), Role::Student)).await;
    let body = json!({ "tenantId": "t1", "target": { "courseId": "c1" }, "notification": { "title": "Quiz", "message": "Friday", "type": "ASSIGNMENT_DUE" } });
    let (status, res) = node
        .post("/notifications", &service_token("t1"), body)
        .await;
    assert_eq!((status, res["recipients"].as_u64()), (202, Some(2)));
    s1.inbox.next("notification:new").await;
    let (_, unread) = node
        .get("/tenants/t1/users/s2/unread", &service_token("t1"))
        .await;
    assert_eq!(unread["unread"], 1);

    let instructor = connect(&node, &token("i1", Some("t1"), Role::Instructor)).await;
    let body = json!({ "tenantId": "t1", "target": { "role": "instructor" }, "notification": { "title": "Staff", "message": "meeting" } });
    let (status, res) = node
        .post("/notifications", &service_token("t1"), body)
        .await;
    assert_eq!((status, res["recipients"].as_u64()), (202, Some(0)));
    instructor.inbox.next("notification:new").await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(s1.inbox.all("notification:new").len(), 1);
}

#[tokio::test]
async fn tenant_broadcasts_and_system_alerts_through_the_api() {
    let node = spawn_node().await;
    let a = connect(&node, &token("u1", Some("t1"), Role::Student)).await;
    let b = connect(&node, &token("u1", Some("t2"), Role::Student)).await;
    let data = json!({ "k": 1, "s": "a \"quoted\"\nline, ünïcode \u{1F600}", "n": [1, 2.5, null, { "x": [] }] });
    let (status, _) = node
        .post(
            "/tenants/t1/broadcast",
            &service_token("t1"),
            json!({ "title": "x", "message": "y", "data": data.clone() }),
        )
        .await;
    assert_eq!(status, 202);
    // `data` is serialised once for all recipients (`JsonData`): it arrives whole.
    assert_eq!(a.inbox.next("notification:new").await["data"], data);
    b.inbox.assert_none("notification:new").await;
    let (status, _) = node
        .post(
            "/system/alerts",
            &super_token(),
            json!({ "title": "x", "message": "y", "priority": "URGENT" }),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(b.inbox.next("system:alert").await["priority"], "URGENT");
    a.inbox.next("system:alert").await;
}

#[tokio::test]
async fn stats_health_readiness_and_metrics() {
    let node = spawn_node().await;
    node.enroll("t1", "c1", "u1", "student").await;
    let _a = connect(&node, &token("u1", Some("t1"), Role::Student)).await;
    let _b = connect(&node, &token("u2", Some("t1"), Role::Admin)).await;
    let (status, stats) = node.get("/stats", &super_token()).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["connections"], 2);
    assert_eq!(stats["partial"], false);
    assert_eq!(stats["nodes"][0]["node"], "test-node");
    assert_eq!(
        stats["rooms"]["tenant"],
        json!({ "rooms": 1, "members": 2 })
    );
    assert_eq!(stats["rooms"]["user"], json!({ "rooms": 2, "members": 2 }));
    assert_eq!(
        stats["rooms"]["course"],
        json!({ "rooms": 1, "members": 1 })
    );
    assert_eq!(
        stats["rooms"]["admins"],
        json!({ "rooms": 1, "members": 1 })
    );
    let (status, _) = node.get("/stats", &service_token("t1")).await;
    assert_eq!(status, 403);
    let health = node
        .http
        .get(format!("{}/healthz", node.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = node
        .http
        .get(format!("{}/readyz", node.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = node.metrics_text().await;
    for name in [
        "lms_socket_connections{node=\"test-node\"}",
        "lms_socket_connects_total{outcome=\"accepted\"}",
        "lms_room_members{kind=\"course\"}",
        "lms_rooms{kind=\"tenant\"}",
        "lms_tenant_connections{tenant=\"t1\"}",
        "lms_http_requests_total{route=\"/api/v1/stats\",status=\"200\"}",
        "lms_store_operation_duration_seconds_bucket{op=\"user_courses\"",
    ] {
        assert!(metrics.contains(name), "missing {name} in\n{metrics}");
    }
    assert!(
        !metrics.contains("u1"),
        "a user id leaked into a metric label"
    );
    assert!(
        !metrics.contains("\"c1\""),
        "a course id leaked into a metric label"
    );
}
