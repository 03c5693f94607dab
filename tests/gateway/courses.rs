use lms_realtime::auth::Role;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn joining_a_course_needs_enrollment_teaching_or_tenant_admin() {
    let node = spawn_node().await;
    let student = connect(&node, &token("s1", Some("t1"), Role::Student)).await;
    assert_eq!(
        code(&student.ack("course:join", json!("c1")).await),
        "FORBIDDEN"
    );
    node.enroll("t1", "c1", "s1", "student").await;
    assert_eq!(
        ok(&student
            .ack("course:join", json!({ "courseId": "c1" }))
            .await)["courseId"],
        "c1"
    );
    let admin = connect(&node, &token("a1", Some("t1"), Role::Admin)).await;
    ok(&admin.ack("course:join", json!("c1")).await);
    let outsider = connect(&node, &token("x", Some("t1"), Role::Instructor)).await;
    assert_eq!(
        code(&outsider.ack("course:join", json!("c1")).await),
        "FORBIDDEN"
    );
    assert_eq!(
        code(&outsider.ack("course:join", json!({ "course": "c1" })).await),
        "INVALID_PAYLOAD"
    );
}

#[tokio::test]
async fn an_enrollment_moves_live_sockets_into_the_course_room_and_removal_takes_them_out() {
    let node = spawn_node().await;
    let s = connect(&node, &token("s1", Some("t1"), Role::Student)).await;
    node.enroll("t1", "c1", "s1", "student").await;
    let e = s.inbox.next("course:enrollment").await;
    assert_eq!(
        e,
        json!({ "courseId": "c1", "userId": "s1", "action": "enrolled", "role": "student" })
    );
    let svc = service_token("t1");
    let (status, _) = node
        .post(
            "/tenants/t1/courses/c1/events",
            &svc,
            json!({ "changes": { "title": "New" } }),
        )
        .await;
    assert_eq!(status, 202);
    let u = s.inbox.next("course:updated").await;
    assert_eq!(u["courseId"], "c1");
    assert_eq!(u["changes"]["title"], "New");
    let (status, _) = node.delete("/tenants/t1/courses/c1/members/s1", &svc).await;
    assert_eq!(status, 204);
    s.inbox
        .wait_for("course:enrollment", |v| v["action"] == "unenrolled")
        .await;
    node.post(
        "/tenants/t1/courses/c1/events",
        &svc,
        json!({ "changes": { "title": "Newer" } }),
    )
    .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(s.inbox.all("course:updated").len(), 1);
    let (status, body) = node.delete("/tenants/t1/courses/c1/members/s1", &svc).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
}

#[tokio::test]
async fn a_socket_joins_its_course_rooms_at_connect_from_the_membership_cache() {
    let node = spawn_node().await;
    node.enroll("t1", "c1", "s1", "student").await;
    let s = connect(&node, &token("s1", Some("t1"), Role::Student)).await;
    node.post(
        "/tenants/t1/courses/c1/events",
        &service_token("t1"),
        json!({ "changes": { "x": 1 } }),
    )
    .await;
    s.inbox.next("course:updated").await;
}

#[tokio::test]
async fn only_the_courses_instructors_and_admins_may_update_it() {
    let node = spawn_node().await;
    node.enroll("t1", "c1", "s1", "student").await;
    node.enroll("t1", "c1", "i1", "instructor").await;
    let s = connect(&node, &token("s1", Some("t1"), Role::Student)).await;
    let i = connect(&node, &token("i1", Some("t1"), Role::Instructor)).await;
    let other_instructor = connect(&node, &token("i2", Some("t1"), Role::Instructor)).await;
    assert_eq!(
        code(
            &s.ack("course:update", json!({ "courseId": "c1", "changes": {} }))
                .await
        ),
        "FORBIDDEN"
    );
    assert_eq!(
        code(
            &other_instructor
                .ack("course:update", json!({ "courseId": "c1", "changes": {} }))
                .await
        ),
        "FORBIDDEN"
    );
    ok(&i
        .ack(
            "course:update",
            json!({ "courseId": "c1", "changes": { "due": "friday" } }),
        )
        .await);
    let u = s.inbox.next("course:updated").await;
    assert_eq!(u["updatedBy"], "i1");
    assert_eq!(
        code(
            &i.ack(
                "course:update",
                json!({ "courseId": "c1", "changes": "nope" })
            )
            .await
        ),
        "INVALID_PAYLOAD"
    );
}

#[tokio::test]
async fn leaving_a_course_stops_its_updates() {
    let node = spawn_node().await;
    node.enroll("t1", "c1", "s1", "student").await;
    let s = connect(&node, &token("s1", Some("t1"), Role::Student)).await;
    ok(&s.ack("course:leave", json!("c1")).await);
    node.post(
        "/tenants/t1/courses/c1/events",
        &service_token("t1"),
        json!({ "changes": { "x": 1 } }),
    )
    .await;
    s.inbox.assert_none("course:updated").await;
}

#[tokio::test]
async fn two_tenants_with_the_same_course_id_never_share_its_room() {
    let node = spawn_node().await;
    node.enroll("ta", "101", "7", "student").await;
    node.enroll("tb", "101", "7", "student").await;
    let a = connect(&node, &token("7", Some("ta"), Role::Student)).await;
    let b = connect(&node, &token("7", Some("tb"), Role::Student)).await;
    node.post(
        "/tenants/ta/courses/101/events",
        &service_token("ta"),
        json!({ "changes": { "x": 1 } }),
    )
    .await;
    a.inbox.next("course:updated").await;
    b.inbox.assert_none("course:updated").await;
}

#[tokio::test]
async fn replacing_the_membership_applies_the_difference_live() {
    let node = spawn_node().await;
    node.enroll("t1", "c1", "old", "student").await;
    let old = connect(&node, &token("old", Some("t1"), Role::Student)).await;
    let new = connect(&node, &token("new", Some("t1"), Role::Student)).await;
    let (status, body) = node
        .put(
            "/tenants/t1/courses/c1/members",
            &service_token("t1"),
            json!({ "members": [{ "userId": "new", "role": "student" }] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "members": 1, "added": 1, "removed": 1 }));
    old.inbox
        .wait_for("course:enrollment", |v| v["action"] == "unenrolled")
        .await;
    new.inbox
        .wait_for("course:enrollment", |v| v["action"] == "enrolled")
        .await;
    node.post(
        "/tenants/t1/courses/c1/events",
        &service_token("t1"),
        json!({ "changes": { "x": 1 } }),
    )
    .await;
    new.inbox.next("course:updated").await;
    old.inbox.assert_none("course:updated").await;
}
