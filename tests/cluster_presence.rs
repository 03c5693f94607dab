//! Presence across a cluster (§10) against a real `redis-server`: join and leave reach a
//! course's instructors on another node, a tab on a second node is not a new user, a
//! crashed node's users drop (a killed node process), and the Redis engine passes the
//! shared presence suite with one and with two node processes.

#[allow(dead_code)]
#[path = "gateway/helpers.rs"]
mod helpers;

#[allow(dead_code)]
mod cluster_support;

use std::sync::Arc;
use std::time::Duration;

use lms_realtime::auth::Role;
use lms_realtime::config::Secret;
use lms_realtime::presence::conformance;
use lms_realtime::presence::redis::RedisPresence;
use serde_json::Value;

use cluster_support::*;
use helpers::*;

/// Presence settings of the node processes: no debounce, a crashed node forgotten fast.
const PRESENCE_ENV: &[(&str, &str)] = &[("PRESENCE_DEBOUNCE_MS", "0"), ("PRESENCE_TTL_MS", "1500")];

#[tokio::test]
async fn the_redis_presence_passes_the_presence_suite() {
    let redis = RedisServer::start();
    let client = redis_client(&redis.url()).await;
    let ttl = Duration::from_secs(15);
    let one = Arc::new(RedisPresence::new(client.clone(), "solo#1".into(), ttl));
    conformance::run_single(one).await;
    let a = Arc::new(RedisPresence::new(client.clone(), "node-a#1".into(), ttl));
    let b = Arc::new(RedisPresence::new(client, "node-b#1".into(), ttl));
    conformance::run_two_nodes(a, b, ttl.as_millis() as u64).await;
}

async fn spawn(url: &str, id: &str) -> TestNode {
    let (url, id) = (url.to_owned(), id.to_owned());
    spawn_node_with(move |c| {
        c.redis_url = Some(Secret(url));
        c.node_id = Some(id);
        c.presence_debounce_ms = 0;
        c.presence_ttl_ms = 1_500;
    })
    .await
}

async fn spawn_keeping_lists(url: &str, id: &str, list_cache_ms: u64) -> TestNode {
    let (url, id) = (url.to_owned(), id.to_owned());
    spawn_node_with(move |c| {
        c.redis_url = Some(Secret(url));
        c.node_id = Some(id);
        c.presence_debounce_ms = 0;
        c.presence_list_cache_ms = list_cache_ms;
    })
    .await
}

/// The users of course c1 as `node` lists them (the service route: the same list as
/// `presence:list`).
async fn listed(node: &TestNode, t: &str) -> Vec<String> {
    let mut users: Vec<String> = node.course_presence(t, "c1").await["users"]
        .as_array()
        .expect("a list of users")
        .iter()
        .map(|u| u["userId"].as_str().unwrap().to_owned())
        .collect();
    users.sort();
    users
}

#[tokio::test]
async fn a_course_list_serves_the_lists_after_it_and_follows_changes_within_its_bound() {
    let redis = RedisServer::start();
    let prefix = format!("pk{}", fastrand::u32(..));
    // `a` keeps a list longer than this test runs, `c` for 300 ms; `b` is where the changes
    // other nodes do not see are made.
    let a = spawn_keeping_lists(&redis.url(), &format!("{prefix}-a"), 600_000).await;
    let b = spawn_keeping_lists(&redis.url(), &format!("{prefix}-b"), 600_000).await;
    let c = spawn_keeping_lists(&redis.url(), &format!("{prefix}-c"), 300).await;
    let t = tenant();
    a.enroll(&t, "c1", "s1", "student").await;
    a.enroll(&t, "c1", "s2", "student").await;
    assert!(listed(&a, &t).await.is_empty());
    assert!(listed(&c, &t).await.is_empty());

    // A change through `a` drops a's list as soon as the store has it.
    let s1 = connect(&a, &token("s1", Some(&t), Role::Student)).await;
    eventually("a lists s1, who joined through a", || async {
        listed(&a, &t).await == ["s1"]
    })
    .await;

    // The lists after it are served without reading Redis again.
    let reads = redis.calls("hscan");
    assert!(reads > 0);
    for _ in 0..3 {
        assert_eq!(listed(&a, &t).await, ["s1"]);
    }
    assert_eq!(redis.calls("hscan"), reads, "three lists, no read");

    // A change through another node is not seen by a list kept before it...
    let _s2 = connect(&b, &token("s2", Some(&t), Role::Student)).await;
    eventually("b lists s2, who joined through b", || async {
        listed(&b, &t).await == ["s1", "s2"]
    })
    .await;
    assert_eq!(listed(&a, &t).await, ["s1"], "a's list was kept");
    // ...for longer than PRESENCE_LIST_CACHE_MS after the store had it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(listed(&c, &t).await, ["s1", "s2"]);

    // A leave through `a` drops a's list too.
    s1.disconnect().await;
    eventually("a no longer lists s1, who left through a", || async {
        listed(&a, &t).await == ["s2"]
    })
    .await;
}

async fn course_count(node: &TestNode, t: &str) -> Value {
    node.course_presence(t, "c1").await["count"].clone()
}

#[tokio::test]
async fn join_and_leave_reach_instructors_on_another_node_once_per_user() {
    let redis = RedisServer::start();
    let prefix = format!("pr{}", fastrand::u32(..));
    let a = spawn(&redis.url(), &format!("{prefix}-a")).await;
    let b = spawn(&redis.url(), &format!("{prefix}-b")).await;
    let t = tenant();
    a.enroll(&t, "c1", "i1", "instructor").await;
    a.enroll(&t, "c1", "s1", "student").await;
    let instructor = connect(&a, &token("i1", Some(&t), Role::Instructor)).await;

    let on_b = connect(&b, &token("s1", Some(&t), Role::Student)).await;
    let joined = instructor
        .inbox
        .wait_for("presence:join", |v| v["userId"] == "s1")
        .await;
    assert_eq!(joined["role"], "student");
    let on_a = connect(&a, &token("s1", Some(&t), Role::Student)).await;
    eventually("both nodes count s1 once", || async {
        course_count(&a, &t).await == 2 && course_count(&b, &t).await == 2
    })
    .await;

    on_b.disconnect().await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        about(&instructor, "presence:join", "s1"),
        1,
        "a second tab is not a new user"
    );
    assert_eq!(
        about(&instructor, "presence:leave", "s1"),
        0,
        "s1 is still online on a"
    );

    on_a.disconnect().await;
    instructor
        .inbox
        .wait_for("presence:leave", |v| v["userId"] == "s1")
        .await;
    assert_eq!(course_count(&b, &t).await, 1, "only the instructor is left");
}

#[tokio::test]
async fn a_crashed_nodes_users_drop_and_their_instructors_hear_it() {
    let redis = RedisServer::start();
    let prefix = format!("pc{}", fastrand::u32(..));
    let live = spawn(&redis.url(), &format!("{prefix}-live")).await;
    let mut doomed = spawn_process(&redis.url(), &format!("{prefix}-doomed"), PRESENCE_ENV).await;
    let t = tenant();
    live.enroll(&t, "c1", "i1", "instructor").await;
    live.enroll(&t, "c1", "s1", "student").await;
    let instructor = connect(&live, &token("i1", Some(&t), Role::Instructor)).await;
    let _s1 = connect(&doomed.node, &token("s1", Some(&t), Role::Student)).await;
    instructor
        .inbox
        .wait_for("presence:join", |v| v["userId"] == "s1")
        .await;
    assert_eq!(course_count(&live, &t).await, 2);

    doomed.child.kill().expect("kill -9 the node process");
    doomed.child.wait().unwrap();
    instructor
        .inbox
        .wait_for("presence:leave", |v| v["userId"] == "s1")
        .await;
    assert_eq!(course_count(&live, &t).await, 1);
    let (_, tenant_wide) = live
        .get(&format!("/tenants/{t}/presence"), &service_token(&t))
        .await;
    assert_eq!(tenant_wide["count"], 1);
}

#[tokio::test]
async fn enrolling_and_unenrolling_through_one_node_changes_presence_of_sockets_on_another() {
    let redis = RedisServer::start();
    let prefix = format!("pm{}", fastrand::u32(..));
    let a = spawn(&redis.url(), &format!("{prefix}-a")).await;
    let b = spawn(&redis.url(), &format!("{prefix}-b")).await;
    let t = tenant();
    a.enroll(&t, "c1", "i1", "instructor").await;
    let instructor = connect(&a, &token("i1", Some(&t), Role::Instructor)).await;
    // s1 is online on b only, and not yet a member.
    let _s1 = connect(&b, &token("s1", Some(&t), Role::Student)).await;
    eventually("only the instructor is present", || async {
        course_count(&b, &t).await == 1
    })
    .await;

    a.enroll(&t, "c1", "s1", "student").await;
    let joined = instructor
        .inbox
        .wait_for("presence:join", |v| v["userId"] == "s1")
        .await;
    assert_eq!(joined["role"], "student");
    eventually("both nodes count s1", || async {
        course_count(&a, &t).await == 2 && course_count(&b, &t).await == 2
    })
    .await;

    let (status, body) = a
        .delete(
            &format!("/tenants/{t}/courses/c1/members/s1"),
            &service_token(&t),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    instructor
        .inbox
        .wait_for("presence:leave", |v| v["userId"] == "s1")
        .await;
    eventually("s1 is gone on both nodes", || async {
        course_count(&a, &t).await == 1 && course_count(&b, &t).await == 1
    })
    .await;
    assert_eq!(about(&instructor, "presence:join", "s1"), 1);
}
