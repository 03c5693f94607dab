use lms_realtime::auth::Role;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_students_progress_reaches_the_instructors_and_their_other_sockets_only() {
    let node = spawn_node().await;
    node.enroll("t1", "c1", "s1", "student").await;
    node.enroll("t1", "c1", "s2", "student").await;
    node.enroll("t1", "c1", "i1", "instructor").await;
    let s1 = token("s1", Some("t1"), Role::Student);
    let (student, student_tab) = (connect(&node, &s1).await, connect(&node, &s1).await);
    let classmate = connect(&node, &token("s2", Some("t1"), Role::Student)).await;
    let instructor = connect(&node, &token("i1", Some("t1"), Role::Instructor)).await;
    let ack = student
        .ack(
            "progress:content",
            json!({ "courseId": "c1", "contentId": "lesson-1", "progress": 0.5 }),
        )
        .await;
    ok(&ack);
    let p = instructor.inbox.next("progress:content").await;
    assert_eq!(p["userId"], "s1");
    assert_eq!(p["contentId"], "lesson-1");
    assert_eq!(p["progress"], 0.5);
    assert!(p["at"].is_string());
    student_tab.inbox.next("progress:content").await;
    classmate.inbox.assert_none("progress:content").await;
    assert!(student.inbox.all("progress:content").is_empty());
    let bad = student
        .ack(
            "progress:content",
            json!({ "courseId": "c1", "contentId": "x", "progress": 2 }),
        )
        .await;
    assert_eq!(code(&bad), "INVALID_PAYLOAD");
    let not_enrolled = student
        .ack(
            "progress:content",
            json!({ "courseId": "c9", "contentId": "x", "progress": 1 }),
        )
        .await;
    assert_eq!(code(&not_enrolled), "FORBIDDEN");
    let from_instructor = instructor
        .ack(
            "progress:content",
            json!({ "courseId": "c1", "contentId": "x", "progress": 1 }),
        )
        .await;
    assert_eq!(code(&from_instructor), "FORBIDDEN");
}

#[tokio::test]
async fn video_progress_is_throttled_per_video() {
    let node = spawn_node_with(|c| c.progress_video_interval_ms = 60_000).await;
    node.enroll("t1", "c1", "s1", "student").await;
    node.enroll("t1", "c1", "i1", "instructor").await;
    let student = connect(&node, &token("s1", Some("t1"), Role::Student)).await;
    let instructor = connect(&node, &token("i1", Some("t1"), Role::Instructor)).await;
    let p = |v: &str, pos: f64| json!({ "courseId": "c1", "videoId": v, "positionSeconds": pos, "durationSeconds": 600 });
    assert_eq!(
        ok(&student.ack("progress:video", p("v1", 1.0)).await)["throttled"],
        false
    );
    assert_eq!(
        ok(&student.ack("progress:video", p("v1", 2.0)).await)["throttled"],
        true
    );
    assert_eq!(
        ok(&student.ack("progress:video", p("v2", 1.0)).await)["throttled"],
        false
    );
    instructor
        .inbox
        .wait_for("progress:video", |v| v["videoId"] == "v2")
        .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(instructor.inbox.all("progress:video").len(), 2);
}

#[tokio::test]
async fn an_admin_broadcasts_to_its_own_tenant_only() {
    let node = spawn_node().await;
    let admin = connect(&node, &token("a1", Some("t1"), Role::Admin)).await;
    let member = connect(&node, &token("u1", Some("t1"), Role::Student)).await;
    let stranger = connect(&node, &token("u1", Some("t2"), Role::Student)).await;
    let ack = admin
        .ack(
            "admin:broadcast",
            json!({ "title": "Closed", "message": "Snow day", "priority": "URGENT" }),
        )
        .await;
    assert_eq!(ok(&ack)["tenantId"], "t1");
    let n = member.inbox.next("notification:new").await;
    assert_eq!(
        (
            n["title"].as_str(),
            n["priority"].as_str(),
            n["type"].as_str()
        ),
        (Some("Closed"), Some("URGENT"), Some("ANNOUNCEMENT"))
    );
    stranger.inbox.assert_none("notification:new").await;
    let cross = admin
        .ack(
            "admin:broadcast",
            json!({ "title": "x", "message": "y", "tenantId": "t2" }),
        )
        .await;
    assert_eq!(code(&cross), "TENANT_MISMATCH");
    assert_eq!(
        code(
            &member
                .ack("admin:broadcast", json!({ "title": "x", "message": "y" }))
                .await
        ),
        "FORBIDDEN"
    );
    assert_eq!(
        code(
            &admin
                .ack("admin:broadcast", json!({ "title": "", "message": "y" }))
                .await
        ),
        "INVALID_PAYLOAD"
    );
}

#[tokio::test]
async fn a_super_admin_broadcasts_to_any_tenant_and_alerts_everyone() {
    let node = spawn_node().await;
    let root = connect(&node, &super_token()).await;
    let a = connect(&node, &token("u1", Some("t1"), Role::Student)).await;
    let b = connect(&node, &token("u1", Some("t2"), Role::Instructor)).await;
    ok(&root
        .ack(
            "admin:broadcast",
            json!({ "title": "x", "message": "y", "tenantId": "t2" }),
        )
        .await);
    b.inbox.next("notification:new").await;
    a.inbox.assert_none("notification:new").await;
    let alert = root
        .ack(
            "admin:system_alert",
            json!({ "title": "Maintenance", "message": "at 22:00" }),
        )
        .await;
    ok(&alert);
    for c in [&a, &b] {
        let s = c.inbox.next("system:alert").await;
        assert_eq!(s["title"], "Maintenance");
        assert!(s["at"].is_string());
    }
    let admin = connect(&node, &token("a", Some("t1"), Role::Admin)).await;
    assert_eq!(
        code(
            &admin
                .ack(
                    "admin:system_alert",
                    json!({ "title": "x", "message": "y" })
                )
                .await
        ),
        "FORBIDDEN"
    );
}
