//! Bounded data: exact idempotency per notification id, completion of a partial fan-out,
//! and retention by age (with second-scale limits: [`SHORT`]).

use std::time::Duration;

use super::*;

/// Limits for [`retention_rules_hold`]: everything expires within seconds.
pub const SHORT: StoreLimits = StoreLimits {
    inbox_cap: 50,
    inbox_retention: Duration::from_millis(3_000),
    inactive_user_retention: Duration::from_millis(4_000),
    dismissed_retention: Duration::from_millis(1_000),
    idempotency_window: Duration::from_millis(2_000),
};

fn all() -> ListQuery {
    ListQuery {
        limit: 100,
        before: None,
        status: None,
    }
}

async fn ids(store: &dyn Store, t: &TenantId, u: &UserId) -> Vec<String> {
    let page = store.list(t, u, &all()).await.unwrap();
    page.items.iter().map(|n| n.id.to_string()).collect()
}

/// `order-1`, then more than a full inbox of others, then `order-1` again: the id is still
/// known (its record is independent of the inbox), with who already got it.
pub async fn a_repeated_id_is_recognised_beyond_the_inbox_cap(
    store: &dyn Store,
    limits: StoreLimits,
) {
    let t = fresh_tenant();
    let u = uid("u1");
    let first = notification(&t, &u, "order-1");
    deliver(store, &first).await.unwrap();
    assert!(store.claim_delivery(&t, &first.id, &u).await.unwrap());
    store
        .mark_delivered(&t, &first.id, std::slice::from_ref(&u))
        .await
        .unwrap();
    for i in 0..limits.inbox_cap + 2 {
        deliver(store, &notification(&t, &u, &format!("other-{i}")))
            .await
            .unwrap();
    }
    assert!(!ids(store, &t, &u).await.contains(&"order-1".to_string()));
    let again = store.open_fanout(&first).await.unwrap();
    assert!(again.retry, "the id is remembered past the inbox cap");
    assert!(again.delivered.contains(&u));
}

/// A send that stored some recipients and pushed fewer (its node died) is finished by the
/// retry: the body stays the first one, the already pushed are known, the stored-but-not-
/// pushed insert as duplicates (and are pushed by the caller), the rest are inserted.
pub async fn a_retry_completes_a_partial_fanout(store: &dyn Store) {
    let t = fresh_tenant();
    let (pushed, stored, missing) = (uid("pushed"), uid("stored"), uid("missing"));
    let n = notification(&t, &pushed, "partial");
    let open = store.open_fanout(&n).await.unwrap();
    assert!(!open.retry && open.delivered.is_empty());
    store.insert(&pushed, &open.body).await.unwrap();
    assert!(store.claim_delivery(&t, &n.id, &pushed).await.unwrap());
    store
        .mark_delivered(&t, &n.id, std::slice::from_ref(&pushed))
        .await
        .unwrap();
    store.insert(&stored, &open.body).await.unwrap();
    // Two concurrent sends of the id both find `in_flight` stored: one of them pushes.
    let in_flight = uid("in-flight");
    store.insert(&in_flight, &open.body).await.unwrap();
    let (a, b) = futures::join!(
        store.claim_delivery(&t, &n.id, &in_flight),
        store.claim_delivery(&t, &n.id, &in_flight)
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one claim wins");

    let mut changed = n.clone();
    changed.title = "a retry with another title".into();
    let retry = store.open_fanout(&changed).await.unwrap();
    assert!(retry.retry);
    assert_eq!(
        retry.body.title, n.title,
        "every recipient sees the first body"
    );
    assert_eq!(
        retry.delivered,
        [pushed.clone(), in_flight.clone()].into_iter().collect(),
        "pushed, or being pushed within the lease"
    );
    assert!(matches!(
        store.insert(&stored, &retry.body).await.unwrap(),
        InsertOutcome::Duplicate { unread: 1 }
    ));
    assert!(matches!(
        store.insert(&missing, &retry.body).await.unwrap(),
        InsertOutcome::Inserted { unread: 1 }
    ));
    assert!(store.claim_delivery(&t, &n.id, &stored).await.unwrap());
    assert!(!store.claim_delivery(&t, &n.id, &pushed).await.unwrap());
    for u in [&pushed, &stored, &missing, &in_flight] {
        assert_eq!(ids(store, &t, u).await, ["partial"]);
        assert_eq!(store.unread_count(&t, u).await.unwrap(), 1);
    }
}

/// Reads and status changes by a user who was never notified store nothing.
pub async fn reads_never_create_an_inbox(store: &dyn Store) {
    let t = fresh_tenant();
    let u = uid("never-notified");
    assert!(matches!(
        store.mark_read(&t, &u, &nid("x")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.dismiss(&t, &u, &nid("x")).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.mark_all_read(&t, &u).await.unwrap(), 0);
    assert_eq!(store.unread_count(&t, &u).await.unwrap(), 0);
    assert!(ids(store, &t, &u).await.is_empty());
}

/// With [`SHORT`] limits: entries go by age, dismissed entries sooner, an idle user's inbox
/// goes whole, an id is new again after its window, and the sweep trims what no insert
/// touches. `gone` says whether every key of a user's inbox is gone from the engine.
pub async fn retention_rules_hold(
    store: &dyn Store,
    gone: impl AsyncFn(&TenantId, &UserId) -> bool,
) {
    let t = fresh_tenant();
    let (active, idle, swept) = (uid("active"), uid("idle"), uid("swept"));
    for (u, id) in [(&active, "a"), (&active, "b"), (&idle, "x"), (&swept, "s")] {
        let n = notification(&t, u, id);
        deliver(store, &n).await.unwrap();
        store
            .mark_delivered(&t, &n.id, std::slice::from_ref(u))
            .await
            .unwrap();
    }
    store.dismiss(&t, &active, &nid("b")).await.unwrap();

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let a_again = store
        .open_fanout(&notification(&t, &active, "a"))
        .await
        .unwrap();
    assert!(a_again.retry, "within the window");
    deliver(store, &notification(&t, &active, "c"))
        .await
        .unwrap();
    assert_eq!(
        ids(store, &t, &active).await,
        ["c", "a"],
        "dismissed b purged"
    );

    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(
        ids(store, &t, &active).await,
        ["c"],
        "a is older than retention"
    );
    assert_eq!(store.unread_count(&t, &active).await.unwrap(), 1);
    let a_later = store
        .open_fanout(&notification(&t, &active, "a"))
        .await
        .unwrap();
    assert!(!a_later.retry, "the window is over: the id is new again");
    let report = store.sweep().await.unwrap();
    assert!(
        report.trimmed >= 1,
        "the sweep trimmed the swept user: {report:?}"
    );
    assert_eq!(store.unread_count(&t, &swept).await.unwrap(), 0);

    tokio::time::sleep(Duration::from_millis(1_000)).await;
    store.sweep().await.unwrap();
    assert!(gone(&t, &idle).await, "an idle user's keys expire together");
    assert!(ids(store, &t, &idle).await.is_empty());
}

/// With [`SHORT`] limits: a course's membership and a user's course index that nobody uses
/// for `inactive_user_retention` are gone, while use (a fan-out's read of the members, a
/// connect's read of the index) keeps them. A user's index also lives as long as their
/// inbox is active: all of a user's keys expire together. `gone` says whether the engine
/// still holds the course's or the user's membership at all.
pub async fn idle_memberships_expire(
    store: &dyn Store,
    gone: impl AsyncFn(&TenantId, &CourseId, &UserId) -> bool,
) {
    let t = fresh_tenant();
    let (idle_course, busy_course) = (cid("idle-course"), cid("busy-course"));
    let (idle_user, busy_user) = (uid("idle-user"), uid("busy-user"));
    let student = CourseRole::Student;
    store
        .set_member(&t, &idle_course, &idle_user, student)
        .await
        .unwrap();
    store
        .set_member(&t, &busy_course, &busy_user, CourseRole::Instructor)
        .await
        .unwrap();
    // Never connects, but is notified: their inbox activity keeps their index.
    let notified = uid("notified-user");
    store
        .set_member(&t, &busy_course, &notified, student)
        .await
        .unwrap();
    for i in 0..3 {
        tokio::time::sleep(SHORT.inactive_user_retention / 2).await;
        let members = store.course_members(&t, &busy_course).await.unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(store.user_courses(&t, &busy_user).await.unwrap().len(), 1);
        let n = notification(&t, &notified, &format!("n{i}"));
        deliver(store, &n).await.unwrap();
    }
    store.sweep().await.unwrap();
    assert!(
        gone(&t, &idle_course, &idle_user).await,
        "an unused course and an unused course index expire"
    );
    assert!(!gone(&t, &busy_course, &busy_user).await, "used ones stay");
    assert!(
        store
            .course_members(&t, &idle_course)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.user_courses(&t, &idle_user).await.unwrap().is_empty());
    assert_eq!(
        store
            .member_role(&t, &idle_course, &idle_user)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .member_role(&t, &busy_course, &busy_user)
            .await
            .unwrap(),
        Some(CourseRole::Instructor)
    );
    assert_eq!(
        store.user_courses(&t, &notified).await.unwrap(),
        [(busy_course, student)],
        "a user's index expires with their inbox, not apart"
    );
}
