//! Connection state recovery on one node (§9), with a client that speaks the protocol the
//! way socket.io-client 4.8 does (`recovering.rs`).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;
use crate::recovering::Recovering;

fn ids(range: std::ops::Range<u32>, prefix: &str) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

async fn notify_all(node: &TestNode, t: &str, user: &str, ids: &[String]) {
    for id in ids {
        let (status, body) = node.notify(t, user, id).await;
        assert_eq!(status, 202, "{body}");
    }
}

#[tokio::test]
async fn a_socket_recovers_what_it_missed_in_order_and_once_then_live_traffic() {
    let node = spawn_node().await;
    let tok = token("u1", Some("rt1"), lms_realtime::auth::Role::Student);
    let mut c = Recovering::new(&node, &tok).await;
    assert!(
        c.pid.as_deref().is_some_and(|p| p.len() == 32),
        "CONNECT carries a pid"
    );

    notify_all(&node, "rt1", "u1", &ids(0..3, "a")).await;
    assert_eq!(c.notifications(3).await, ids(0..3, "a"));
    assert!(c.offset.is_some(), "every event carries an offset");

    let away = c.session;
    drop(away);
    let c = Recovering {
        session: crate::raw::open(&node).await,
        pid: c.pid,
        offset: c.offset,
    };
    notify_all(&node, "rt1", "u1", &ids(3..6, "a")).await;
    let (mut c, recovered) = c.reconnect(&node, &tok).await;
    assert!(recovered, "same pid back");
    assert_eq!(c.notifications(3).await, ids(3..6, "a"), "missed, in order");
    notify_all(&node, "rt1", "u1", &ids(6..7, "a")).await;
    assert_eq!(
        c.drain_notifications().await,
        ids(6..7, "a"),
        "then live, nothing twice"
    );
}

#[tokio::test]
async fn a_zero_event_reconnect_recovers_and_recovery_works_again_and_again() {
    let node = spawn_node().await;
    let tok = token("u2", Some("rt2"), lms_realtime::auth::Role::Student);
    let c = Recovering::new(&node, &tok).await;
    assert!(c.offset.is_none());
    // Gone before any event: the client has a pid and no offset.
    let (c, recovered) = {
        let pid = c.pid.clone();
        drop(c);
        notify_all(&node, "rt2", "u2", &ids(0..2, "z")).await;
        let (c, _) = Recovering::connect(&node, json!({ "token": tok, "pid": pid })).await;
        let recovered = c.pid == pid;
        (c, recovered)
    };
    assert!(recovered, "a zero-event reconnect recovers");
    let mut c = c;
    assert_eq!(c.notifications(2).await, ids(0..2, "z"));
    for round in 0..3 {
        let prefix = format!("r{round}-");
        notify_all(&node, "rt2", "u2", &ids(0..2, &prefix)).await;
        assert_eq!(c.notifications(2).await, ids(0..2, &prefix));
        drop(std::mem::replace(
            &mut c.session,
            crate::raw::open(&node).await,
        ));
        notify_all(&node, "rt2", "u2", &ids(2..4, &prefix)).await;
        let (next, recovered) = c.reconnect(&node, &tok).await;
        assert!(recovered, "round {round}");
        c = next;
        assert_eq!(
            c.notifications(2).await,
            ids(2..4, &prefix),
            "round {round}"
        );
    }
}

#[tokio::test]
async fn what_cannot_be_recovered_is_a_plain_new_connection() {
    let node = spawn_node_with(|c| c.recovery_stream_max_len = 3).await;
    let tok = token("u3", Some("rt3"), lms_realtime::auth::Role::Student);
    let other = token("u4", Some("rt3"), lms_realtime::auth::Role::Student);
    let mut c = Recovering::new(&node, &tok).await;
    notify_all(&node, "rt3", "u3", &ids(0..1, "x")).await;
    assert_eq!(c.notifications(1).await.len(), 1);
    let (pid, offset) = (c.pid.clone().unwrap(), c.offset.clone().unwrap());
    drop(c);

    // Another user's token with this pid: a new session, nothing of u3's replayed.
    let (mut thief, data) = Recovering::connect(
        &node,
        json!({ "token": other, "pid": pid, "offset": offset }),
    )
    .await;
    assert_ne!(data["pid"], json!(pid));
    assert!(thief.drain_notifications().await.is_empty());

    // Unknown pid, and an offset that is not ours.
    for auth in [
        json!({ "token": tok, "pid": "0123456789abcdef0123456789abcdef", "offset": offset }),
        json!({ "token": tok, "pid": pid, "offset": "garbage" }),
    ] {
        let (_c, data) = Recovering::connect(&node, auth).await;
        assert!(data["pid"].is_string());
        assert_ne!(data["pid"], json!(pid));
    }

    // Too old: more events than a stream keeps went by.
    notify_all(&node, "rt3", "u3", &ids(1..9, "x")).await;
    let (mut c, data) =
        Recovering::connect(&node, json!({ "token": tok, "pid": pid, "offset": offset })).await;
    assert_ne!(data["pid"], json!(pid), "not recovered");
    assert!(c.drain_notifications().await.is_empty(), "nothing replayed");
}

#[tokio::test]
async fn an_opted_out_client_gets_no_pid_and_no_offset_argument() {
    let node = spawn_node().await;
    let tok = token("u5", Some("rt5"), lms_realtime::auth::Role::Student);
    let (mut plain, data) =
        Recovering::connect(&node, json!({ "token": tok, "recovery": false })).await;
    assert_eq!(data.get("pid"), None);
    let mut with = Recovering::new(&node, &tok).await;
    notify_all(&node, "rt5", "u5", &ids(0..1, "o")).await;
    let got = loop {
        let g = plain.next_event(Duration::from_secs(5)).await.unwrap();
        if g.event == "notification:new" {
            break g;
        }
    };
    assert_eq!(
        (got.args, got.offset),
        (1, None),
        "one argument, the payload"
    );
    let got = loop {
        let g = with.next_event(Duration::from_secs(5)).await.unwrap();
        if g.event == "notification:new" {
            break g;
        }
    };
    assert_eq!(
        got.args, 2,
        "the same broadcast carries the offset for the others"
    );
}

#[tokio::test]
async fn a_recovered_socket_is_back_in_its_course_join_rooms_with_membership_applied() {
    let node = spawn_node().await;
    let t = "rt6";
    let admin = token("adm", Some(t), lms_realtime::auth::Role::Admin);
    let student = token("st", Some(t), lms_realtime::auth::Role::Student);
    // The admin joins c1 by hand; the student is enrolled in c2 while away.
    let a = connect(&node, &admin).await;
    let mut s = Recovering::new(&node, &student).await;
    let mut joiner = Recovering::new(&node, &admin).await;
    joiner
        .session
        .send(r#"420["course:join",{"courseId":"c1"}]"#)
        .await;
    // Events (the count every connect gets) may come before the ack.
    let ack = loop {
        let text = joiner
            .session
            .next_text(Duration::from_secs(5))
            .await
            .unwrap();
        if !text.starts_with("42") {
            break text;
        }
    };
    assert!(ack.starts_with("430"), "{ack}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(std::mem::replace(
        &mut joiner.session,
        crate::raw::open(&node).await,
    ));
    drop(std::mem::replace(
        &mut s.session,
        crate::raw::open(&node).await,
    ));

    node.enroll(t, "c2", "st", "student").await;
    for c in ["c1", "c2"] {
        let ack = a
            .ack(
                "course:update",
                json!({ "courseId": c, "changes": { "title": c } }),
            )
            .await;
        assert_eq!(ack["ok"], json!(true), "{ack}");
    }
    let (mut joiner, recovered) = joiner.reconnect(&node, &admin).await;
    assert!(recovered);
    let got = joiner.next_event(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        (got.event.as_str(), &got.data["courseId"]),
        ("course:updated", &json!("c1"))
    );
    let (mut s, recovered) = s.reconnect(&node, &student).await;
    assert!(recovered);
    let mut courses = Vec::new();
    while let Some(g) = s.next_event(Duration::from_millis(500)).await {
        if g.event == "course:updated" {
            courses.push(g.data["courseId"].clone());
        }
    }
    assert_eq!(
        courses,
        vec![Value::from("c2")],
        "the new course's events, c1's not"
    );
}

#[tokio::test]
async fn a_slow_consumer_is_cut_off_counted_and_recovers_what_it_missed() {
    let node = spawn_node_with(|c| {
        c.socket_buffer_packets = 8;
        c.recovery_stream_max_len = 100_000;
        c.api_rate_per_sec = 100_000;
        c.api_burst = 100_000;
        c.max_notification_data_bytes = 2 * crate::recovering::FILL_BYTES;
        c.max_http_body_bytes = 4 * crate::recovering::FILL_BYTES;
    })
    .await;
    let tok = token("slow", Some("rt7"), lms_realtime::auth::Role::Student);
    // Reads nothing while the broadcasts pile up.
    let mut c = Recovering::new(&node, &tok).await;
    let sent = crate::recovering::flood(&node, "rt7").await;
    // What reached the client before the cut (the close completes once it reads).
    let mut got = c.titles_until_closed().await;
    assert!(got.len() < sent.len(), "it was cut off");
    crate::recovering::cut_off_and_counted(&node).await;
    // Then a recovery for the rest.
    let (mut c, recovered) = c.reconnect(&node, &tok).await;
    assert!(recovered);
    got.extend(c.titles_until_closed().await);
    assert_eq!(got, sent, "everything, in order, once");
}
