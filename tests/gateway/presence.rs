//! Presence on one node (§10): join and leave to the course's instructors, once per user
//! and not per tab, debounced; the list for instructors and admins, the count for any
//! member; the service API routes; no view across tenants.

use std::time::Duration;

use lms_realtime::auth::Role;
use serde_json::{Value, json};

use crate::helpers::*;

async fn node_with_debounce(ms: u64) -> TestNode {
    spawn_node_with(|c| {
        c.presence_debounce_ms = ms;
        c.max_pending_sessions_per_ip = 1_000;
    })
    .await
}

fn users_of(v: &Value) -> Vec<String> {
    let mut users: Vec<String> = v["users"]
        .as_array()
        .unwrap_or_else(|| panic!("no users in {v}"))
        .iter()
        .map(|u| u["userId"].as_str().unwrap().to_owned())
        .collect();
    users.sort();
    users
}

/// A tenant with course c1: instructor i1 and students s1, s2.
async fn course(node: &TestNode) -> String {
    let t = format!("t{}", fastrand::u32(..));
    node.enroll(&t, "c1", "i1", "instructor").await;
    node.enroll(&t, "c1", "s1", "student").await;
    node.enroll(&t, "c1", "s2", "student").await;
    t
}

#[tokio::test]
async fn instructors_hear_a_users_first_tab_and_last_tab_and_nothing_in_between() {
    let node = node_with_debounce(300).await;
    let t = course(&node).await;
    let instructor = connect(&node, &token("i1", Some(&t), Role::Instructor)).await;

    let tab1 = connect(&node, &token("s1", Some(&t), Role::Student)).await;
    let joined = instructor
        .inbox
        .wait_for("presence:join", |v| v["userId"] == "s1")
        .await;
    assert_eq!(
        (&joined["courseId"], &joined["userId"], &joined["role"]),
        (&json!("c1"), &json!("s1"), &json!("student"))
    );
    assert!(joined["at"].as_str().unwrap().ends_with('Z'));

    let tab2 = connect(&node, &token("s1", Some(&t), Role::Student)).await;
    tab1.disconnect().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        about(&instructor, "presence:join", "s1"),
        1,
        "the second tab is not announced"
    );
    assert_eq!(
        about(&instructor, "presence:leave", "s1"),
        0,
        "one tab left, one is still there"
    );

    tab2.disconnect().await;
    let left = instructor
        .inbox
        .wait_for("presence:leave", |v| v["userId"] == "s1")
        .await;
    assert_eq!(
        (&left["userId"], &left["role"]),
        (&json!("s1"), &json!("student"))
    );
}

#[tokio::test]
async fn a_flapping_connection_is_announced_once_and_its_final_state_once() {
    let node = node_with_debounce(3_000).await;
    let t = course(&node).await;
    let instructor = connect(&node, &token("i1", Some(&t), Role::Instructor)).await;
    let student = token("s1", Some(&t), Role::Student);

    let mut tab = connect(&node, &student).await;
    instructor
        .inbox
        .wait_for("presence:join", |v| v["userId"] == "s1")
        .await;
    for _ in 0..5 {
        tab.disconnect().await;
        // Gone before it comes back: a real flap, not two overlapping tabs.
        tokio::time::sleep(Duration::from_millis(100)).await;
        tab = connect(&node, &student).await;
    }
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert_eq!(about(&instructor, "presence:join", "s1"), 1);
    assert_eq!(
        about(&instructor, "presence:leave", "s1"),
        0,
        "the flap ended online: instructors hear nothing more"
    );
    let metrics = node.metrics_text().await;
    assert!(
        counter(
            &metrics,
            "lms_presence_events_total{event=\"leave\",outcome=\"debounced\"}"
        ) >= 5.0,
        "{metrics}"
    );

    // Gone for good: the leave is sent, once, when the window allows.
    tab.disconnect().await;
    instructor
        .inbox
        .wait_for("presence:leave", |v| v["userId"] == "s1")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(about(&instructor, "presence:leave", "s1"), 1);
}

#[tokio::test]
async fn students_get_the_count_and_instructors_and_admins_the_list() {
    let node = node_with_debounce(0).await;
    let t = course(&node).await;
    let s1 = connect(&node, &token("s1", Some(&t), Role::Student)).await;
    let _s1_tab = connect(&node, &token("s1", Some(&t), Role::Student)).await;
    let _s2 = connect(&node, &token("s2", Some(&t), Role::Student)).await;
    let instructor = connect(&node, &token("i1", Some(&t), Role::Instructor)).await;
    let admin = connect(&node, &token("a1", Some(&t), Role::Admin)).await;
    let outsider = connect(&node, &token("x1", Some(&t), Role::Student)).await;

    let mut count = json!(0);
    for _ in 0..50 {
        count = ok(&s1.ack("presence:count", json!({ "courseId": "c1" })).await)["count"].clone();
        if count == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count, 3, "s1 (two tabs), s2, i1: three users");

    assert_eq!(
        code(&s1.ack("presence:list", json!({ "courseId": "c1" })).await),
        "FORBIDDEN"
    );
    assert_eq!(
        code(
            &outsider
                .ack("presence:count", json!({ "courseId": "c1" }))
                .await
        ),
        "FORBIDDEN"
    );

    let list = instructor
        .ack("presence:list", json!({ "courseId": "c1" }))
        .await;
    assert_eq!(users_of(ok(&list)), ["i1", "s1", "s2"]);
    assert_eq!(list["count"], 3);
    let roles: Vec<_> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["role"].clone())
        .collect();
    assert!(roles.contains(&json!("instructor")) && roles.contains(&json!("student")));
    // An admin who is no member is not present in the course until it joins the room.
    let list = admin
        .ack("presence:list", json!({ "courseId": "c1" }))
        .await;
    assert_eq!(users_of(ok(&list)), ["i1", "s1", "s2"]);
    ok(&admin.ack("course:join", json!({ "courseId": "c1" })).await);
    let mut users = vec![];
    for _ in 0..50 {
        users = users_of(ok(&admin
            .ack("presence:list", json!({ "courseId": "c1" }))
            .await));
        if users.contains(&"a1".to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(users.contains(&"a1".to_owned()), "{users:?}");
}

#[tokio::test]
async fn the_service_api_answers_for_its_own_tenant_only() {
    let node = node_with_debounce(0).await;
    let t = course(&node).await;
    let other = course(&node).await;
    let _s1 = connect(&node, &token("s1", Some(&t), Role::Student)).await;
    let _s2 = connect(&node, &token("s2", Some(&t), Role::Student)).await;
    let _o1 = connect(&node, &token("s1", Some(&other), Role::Student)).await;

    let path = format!("/tenants/{t}/courses/c1/presence");
    let mut body = json!(null);
    for _ in 0..50 {
        body = node.get(&path, &service_token(&t)).await.1;
        if body["count"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(body["courseId"], "c1");
    assert_eq!(users_of(&body), ["s1", "s2"]);

    let (status, refused) = node.get(&path, &service_token(&other)).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("TENANT_MISMATCH"))
    );
    let (status, refused) = node.get(&path, &token("s1", Some(&t), Role::Student)).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );

    let (status, tenant) = node
        .get(&format!("/tenants/{t}/presence"), &super_token())
        .await;
    assert_eq!((status, &tenant), (200, &json!({ "count": 2 })));
    let (_, listed) = node
        .get(&format!("/tenants/{t}/presence?list=1"), &service_token(&t))
        .await;
    assert_eq!(users_of(&listed), ["s1", "s2"]);
    let (_, theirs) = node
        .get(
            &format!("/tenants/{other}/presence?list=1"),
            &service_token(&other),
        )
        .await;
    assert_eq!(
        users_of(&theirs),
        ["s1"],
        "the same user id in another tenant is another user"
    );
    let (status, bad) = node
        .get(
            &format!("/tenants/{t}/presence?list=yes"),
            &service_token(&t),
        )
        .await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (422, Some("INVALID_PAYLOAD"))
    );
}

#[tokio::test]
async fn leaving_a_course_room_live_leaves_its_presence() {
    let node = node_with_debounce(0).await;
    let t = course(&node).await;
    let instructor = connect(&node, &token("i1", Some(&t), Role::Instructor)).await;
    let s1 = connect(&node, &token("s1", Some(&t), Role::Student)).await;
    instructor
        .inbox
        .wait_for("presence:join", |v| v["userId"] == "s1")
        .await;
    ok(&s1.ack("course:leave", json!({ "courseId": "c1" })).await);
    instructor
        .inbox
        .wait_for("presence:leave", |v| v["userId"] == "s1")
        .await;
    ok(&s1.ack("course:join", json!({ "courseId": "c1" })).await);
    let joins = || {
        instructor
            .inbox
            .all("presence:join")
            .into_iter()
            .filter(|v| v["userId"] == "s1")
            .count()
    };
    for _ in 0..50 {
        if joins() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(joins(), 2);
}

/// Polls the course's presence list until it is `want` (sorted).
async fn wait_for_users(node: &TestNode, t: &str, want: &[&str]) {
    let mut users = vec![];
    for _ in 0..100 {
        users = users_of(&node.course_presence(t, "c1").await);
        if users == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(users, want);
}

#[tokio::test]
async fn the_service_api_enrolling_or_unenrolling_an_online_user_changes_presence_at_once() {
    let node = node_with_debounce(0).await;
    let t = course(&node).await;
    let instructor = connect(&node, &token("i1", Some(&t), Role::Instructor)).await;
    // Online before they are a member: not present in c1.
    let _s3 = connect(&node, &token("s3", Some(&t), Role::Student)).await;
    let _s3_tab = connect(&node, &token("s3", Some(&t), Role::Student)).await;
    let _s1 = connect(&node, &token("s1", Some(&t), Role::Student)).await;
    wait_for_users(&node, &t, &["i1", "s1"]).await;

    node.enroll(&t, "c1", "s3", "student").await;
    let joined = instructor
        .inbox
        .wait_for("presence:join", |v| v["userId"] == "s3")
        .await;
    assert_eq!(
        (&joined["courseId"], &joined["role"]),
        (&json!("c1"), &json!("student"))
    );
    wait_for_users(&node, &t, &["i1", "s1", "s3"]).await;
    // Enrolled again (same role): still one user, nothing new announced.
    node.enroll(&t, "c1", "s3", "student").await;

    let (status, _) = node
        .delete(
            &format!("/tenants/{t}/courses/c1/members/s3"),
            &service_token(&t),
        )
        .await;
    assert_eq!(status, 204);
    instructor
        .inbox
        .wait_for("presence:leave", |v| v["userId"] == "s3")
        .await;
    wait_for_users(&node, &t, &["i1", "s1"]).await;
    assert_eq!(about(&instructor, "presence:join", "s3"), 1);

    // A whole-course replacement applies its difference the same way.
    let (status, body) = node
        .put(
            &format!("/tenants/{t}/courses/c1/members"),
            &service_token(&t),
            json!({ "members": [
                { "userId": "i1", "role": "instructor" },
                { "userId": "s3", "role": "student" },
            ] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    instructor
        .inbox
        .wait_for("presence:leave", |v| v["userId"] == "s1")
        .await;
    wait_for_users(&node, &t, &["i1", "s3"]).await;
}

#[tokio::test]
async fn a_role_changed_through_the_service_api_shows_in_the_list_at_once() {
    let node = node_with_debounce(0).await;
    let t = course(&node).await;
    let _s1 = connect(&node, &token("s1", Some(&t), Role::Student)).await;
    let _s1_tab = connect(&node, &token("s1", Some(&t), Role::Student)).await;
    let role_of_s1 = || async {
        let list = node.course_presence(&t, "c1").await;
        list["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["userId"] == "s1")
            .map(|u| (u["role"].clone(), u["since"].clone()))
    };
    let mut first = None;
    for _ in 0..100 {
        first = role_of_s1().await;
        if first.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (role, since) = first.expect("s1 is present");
    assert_eq!(role, "student");

    node.enroll(&t, "c1", "s1", "instructor").await;
    let mut now = None;
    for _ in 0..100 {
        now = role_of_s1().await;
        if now.as_ref().is_some_and(|(r, _)| r == "instructor") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        now,
        Some((json!("instructor"), since)),
        "same since, new role"
    );
}
