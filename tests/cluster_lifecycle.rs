//! Bounded data on real Redis and a real 3-master Redis Cluster: retention with second-scale
//! limits, a user's keys expiring together, lists that survive a lost key, one tenant
//! spread over every master, and `lms-realtime migrate-keys` from the old layout.

#[allow(dead_code)]
#[path = "gateway/helpers.rs"]
mod helpers;

#[allow(dead_code)]
mod cluster_support;

use fred::clients::Client;
use fred::interfaces::{ClientLike, HashesInterface, KeysInterface, SortedSetsInterface};
use lms_realtime::cluster;
use lms_realtime::ids::{CourseId, NotificationId, TenantId, UserId};
use lms_realtime::store::conformance::{self, deliver, fresh_tenant, lifecycle, notification};
use lms_realtime::store::redis::RedisStore;
use lms_realtime::store::{InboxStore, ListQuery, MembershipStore, StoreLimits, keys};

use cluster_support::*;

async fn client(url: &str) -> Client {
    let (config, perf, connection, policy) = cluster::client_config(url).unwrap();
    let client = Client::new(config, Some(perf), Some(connection), Some(policy));
    client.init().await.expect("connects to the test redis");
    client
}

async fn keys_exist(c: &Client, t: &TenantId, u: &UserId) -> u64 {
    let mut n = 0;
    for key in [keys::inbox(t, u), keys::inbox_state(t, u)] {
        n += c.exists::<u64, _>(key).await.unwrap();
    }
    n
}

/// Retention, idle expiry of all of a user's keys together, and robust listing.
async fn lifecycle_on(url: &str) {
    let c = client(url).await;
    let store = RedisStore::new(c.clone(), lifecycle::SHORT);
    let retention =
        lifecycle::retention_rules_hold(&store, async |t, u| keys_exist(&c, t, u).await == 0);
    let robust = a_lost_key_never_breaks_a_list(&c);
    let memberships = lifecycle::idle_memberships_expire(&store, async |t, course, u| {
        // One key per call: the two are on different slots.
        let course_left: u64 = c.exists(keys::course_members(t, course)).await.unwrap();
        let index_left: u64 = c.exists(keys::user_courses(t, u)).await.unwrap();
        course_left + index_left == 0
    });
    futures::join!(retention, robust, memberships);
}

async fn a_lost_key_never_breaks_a_list(c: &Client) {
    let store = RedisStore::new(c.clone(), StoreLimits::DEFAULT);
    let t = fresh_tenant();
    let u = UserId::parse("u1").unwrap();
    let id = |s: &str| NotificationId::parse(s).unwrap();
    for n in ["a", "b", "c", "d"] {
        deliver(&store, &notification(&t, &u, n)).await.unwrap();
    }
    assert_eq!(
        c.exists::<u64, _>(keys::inbox_state(&t, &u)).await.unwrap(),
        0,
        "one key until a read"
    );
    store.mark_read(&t, &u, &id("c")).await.unwrap();
    assert_eq!(store.unread_count(&t, &u).await.unwrap(), 3);
    // A body evicted, and the state lost (a partial inbox): c reads as unread again.
    let _: () = c.del(keys::body(&t, &id("b"))).await.unwrap();
    let _: () = c.del(keys::inbox_state(&t, &u)).await.unwrap();
    let all = ListQuery {
        limit: 10,
        before: None,
        status: None,
    };
    let page = store.list(&t, &u, &all).await.unwrap();
    let ids: Vec<_> = page.items.iter().map(|n| n.id.to_string()).collect();
    assert_eq!(ids, ["d", "c", "a"], "the rest is listed");
    assert_eq!(page.skipped, 1);
    // The reference to the lost body is dropped, so the count heals.
    let again = store.list(&t, &u, &all).await.unwrap();
    assert_eq!(again.skipped, 0);
    assert_eq!(store.unread_count(&t, &u).await.unwrap(), 3);
    // Losing the order leaves an empty, working inbox; the orphaned state goes with it.
    store.mark_read(&t, &u, &id("a")).await.unwrap();
    let _: () = c.del(keys::inbox(&t, &u)).await.unwrap();
    assert!(store.list(&t, &u, &all).await.unwrap().items.is_empty());
    assert_eq!(store.unread_count(&t, &u).await.unwrap(), 0);
    assert_eq!(keys_exist(c, &t, &u).await, 0);
    deliver(&store, &notification(&t, &u, "e")).await.unwrap();
    let after = store.list(&t, &u, &all).await.unwrap();
    assert_eq!(after.items[0].id.to_string(), "e");
    assert_eq!(store.unread_count(&t, &u).await.unwrap(), 1);
}

#[tokio::test]
async fn on_redis_entries_expire_by_age_users_expire_whole_and_lists_survive_lost_keys() {
    let redis = RedisServer::start();
    lifecycle_on(&redis.url()).await;
}

#[tokio::test]
async fn on_a_redis_cluster_the_lifecycle_rules_hold_and_a_tenant_spreads_over_every_master() {
    let redis = RedisCluster::start();
    let url = redis.url();
    let c = client(&url).await;
    let limits = StoreLimits {
        inbox_cap: 5,
        ..StoreLimits::DEFAULT
    };
    conformance::run_all(&RedisStore::new(c.clone(), limits), limits).await;
    lifecycle_on(&url).await;

    // One tenant, 1000 users, a notification and a course each: every master holds keys.
    for m in &redis.masters {
        let _ = m.dbsize();
    }
    let before: Vec<u64> = redis.masters.iter().map(|m| m.dbsize()).collect();
    let store = RedisStore::new(c.clone(), StoreLimits::DEFAULT);
    let t = fresh_tenant();
    let users: Vec<UserId> = (0..1000)
        .map(|i| UserId::parse(format!("user-{i}")).unwrap())
        .collect();
    let n = notification(&t, &users[0], "welcome");
    let fanout = store.open_fanout(&n).await.unwrap();
    futures::future::join_all(users.iter().enumerate().map(|(i, u)| {
        let (store, body) = (&store, &fanout.body);
        let course = CourseId::parse(format!("course-{}", i % 50)).unwrap();
        let t = &t;
        async move {
            store.insert(u, body).await.unwrap();
            store
                .set_member(t, &course, u, lms_realtime::types::CourseRole::Student)
                .await
                .unwrap();
        }
    }))
    .await;
    let after: Vec<u64> = redis.masters.iter().map(|m| m.dbsize()).collect();
    let added: Vec<u64> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    // 1000 users × 2 keys (an inbox, a course index; no status key before a first read)
    // + 50 courses + 2 keys of the notification (less what the lifecycle checks above let
    // expire meanwhile): about 680 per master.
    assert!(added.iter().sum::<u64>() >= 2_000, "{added:?}");
    for (i, n) in added.iter().enumerate() {
        assert!(
            *n > 450,
            "master {i} got only {n} of the tenant's keys: {added:?}"
        );
    }
}

/// Writes one user's inbox and one course in the layout before per-user tags.
async fn write_old_layout(c: &Client, t: &str) {
    let old = |part: &str| keys::legacy::user_key(t, "u1", part);
    let (tenant, user) = (TenantId::parse(t).unwrap(), UserId::parse("u1").unwrap());
    for (seq, id, status) in [(1, "a", "UNREAD"), (2, "b", "READ"), (3, "c", "UNREAD")] {
        // What the old engine wrote: the whole notification, recipient included.
        let mut json = serde_json::to_value(notification(&tenant, &user, id)).unwrap();
        json["status"] = status.into();
        json["createdAt"] = format!("2026-11-25T12:00:0{seq}.000Z").into();
        let _: () = c
            .zadd(old("inbox"), None, None, false, false, (seq as f64, id))
            .await
            .unwrap();
        let _: () = c
            .hset(old("entries"), (id, json.to_string()))
            .await
            .unwrap();
        let _: () = c.hset(old("status"), (id, status)).await.unwrap();
    }
    let _: () = c.hset(old("courses"), ("c1", "student")).await.unwrap();
    let _: () = c
        .hset(format!("lms:{{{t}}}:course:c1:members"), ("u1", "student"))
        .await
        .unwrap();
}

/// Writes user `u2`'s inbox as the first per-user layout did: `U` entries and a stored
/// `:unread` in the state hash.
async fn write_first_per_user_layout(c: &Client, t: &TenantId) {
    let store = RedisStore::new(c.clone(), StoreLimits::DEFAULT);
    let u = UserId::parse("u2").unwrap();
    let now_us = chrono::Utc::now().timestamp_micros() as f64;
    for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
        store.open_fanout(&notification(t, &u, id)).await.unwrap();
        let _: () = c
            .zadd(
                keys::inbox(t, &u),
                None,
                None,
                false,
                false,
                (now_us + i as f64, id),
            )
            .await
            .unwrap();
    }
    let state = [("a", "U"), ("b", "R"), ("c", "U"), (":unread", "2")];
    let _: () = c
        .hset(keys::inbox_state(t, &u), state.to_vec())
        .await
        .unwrap();
    // Membership without a TTL, as it was before it expired with inactivity.
    let course = CourseId::parse("c2").unwrap();
    let _: () = c
        .hset(keys::course_members(t, &course), ("u2", "student"))
        .await
        .unwrap();
    let _: () = c
        .hset(keys::user_courses(t, &u), ("c2", "student"))
        .await
        .unwrap();
}

#[tokio::test]
async fn migrate_keys_copies_the_old_layout_and_is_safe_to_repeat() {
    let redis = RedisServer::start();
    let c = client(&redis.url()).await;
    let t = fresh_tenant();
    write_old_layout(&c, t.as_str()).await;
    write_first_per_user_layout(&c, &t).await;
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_lms-realtime"))
            .arg("migrate-keys")
            .env("REDIS_URL", redis.url())
            .output()
            .expect("runs the binary")
    };
    let first = run();
    assert!(first.status.success(), "{first:?}");
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(
        out.contains("migrated 1 inboxes (3 entries) and 1 courses (1 memberships)"),
        "{out}"
    );
    let second = run();
    assert!(second.status.success(), "{second:?}");

    let store = RedisStore::new(c.clone(), StoreLimits::DEFAULT);
    let u = UserId::parse("u1").unwrap();
    let page = store
        .list(
            &t,
            &u,
            &ListQuery {
                limit: 10,
                before: None,
                status: None,
            },
        )
        .await
        .unwrap();
    let got: Vec<_> = page
        .items
        .iter()
        .map(|n| (n.id.to_string(), n.status, n.title.to_string()))
        .collect();
    use lms_realtime::types::NotificationStatus::{Read, Unread};
    assert_eq!(
        got,
        [
            ("c".into(), Unread, "title c".into()),
            ("b".into(), Read, "title b".into()),
            ("a".into(), Unread, "title a".into())
        ]
    );
    assert_eq!(
        store.unread_count(&t, &u).await.unwrap(),
        2,
        "not counted twice"
    );
    let courses = store.user_courses(&t, &u).await.unwrap();
    assert_eq!(courses.len(), 1);
    // The first per-user layout's inbox is upgraded: only what is not unread has a state.
    let u2 = UserId::parse("u2").unwrap();
    let state: std::collections::HashMap<String, String> =
        c.hgetall(keys::inbox_state(&t, &u2)).await.unwrap();
    assert_eq!(
        state,
        [("b".to_owned(), "R".to_owned())].into_iter().collect()
    );
    assert_eq!(store.unread_count(&t, &u2).await.unwrap(), 2);
    let course = CourseId::parse("c2").unwrap();
    for key in [
        keys::course_members(&t, &course),
        keys::user_courses(&t, &u2),
    ] {
        let ttl: i64 = c.pttl(&key).await.unwrap();
        assert!(ttl > 0, "{key} got its idle TTL: {ttl}");
    }

    let delete = std::process::Command::new(env!("CARGO_BIN_EXE_lms-realtime"))
        .args(["migrate-keys", "--delete-old"])
        .env("REDIS_URL", redis.url())
        .output()
        .unwrap();
    assert!(delete.status.success(), "{delete:?}");
    let old_left: u64 = c
        .exists::<u64, _>(vec![
            keys::legacy::user_key(t.as_str(), "u1", "inbox"),
            keys::legacy::user_key(t.as_str(), "u1", "entries"),
            keys::legacy::user_key(t.as_str(), "u1", "courses"),
        ])
        .await
        .unwrap();
    assert_eq!(old_left, 0);
    assert_eq!(store.unread_count(&t, &u).await.unwrap(), 2);
}
