//! The behaviour every store engine must show, as a suite any engine's tests can run.
//!
//! Each check uses fresh random tenants, so engines backed by a shared server can run the
//! suite without cleaning up. Panics (assertions) are the failure signal.

pub mod lifecycle;
pub mod usage;

use super::*;
use crate::types::{NotificationType, Priority};

/// Runs every check against `store`, configured with `limits`.
pub async fn run_all(store: &dyn Store, limits: StoreLimits) {
    insert_is_idempotent_and_counts_unread_once(store).await;
    read_and_dismiss_never_double_count(store).await;
    read_all_zeroes_the_count(store).await;
    list_pages_newest_first_with_a_cursor(store).await;
    the_inbox_is_capped_and_the_count_follows(store, limits).await;
    tenants_never_share_an_inbox_or_a_course(store).await;
    membership_set_remove_and_replace(store).await;
    concurrent_writers_keep_the_count_exact(store, store, limits).await;
    lifecycle::a_repeated_id_is_recognised_beyond_the_inbox_cap(store, limits).await;
    lifecycle::a_retry_completes_a_partial_fanout(store).await;
    lifecycle::reads_never_create_an_inbox(store).await;
    usage::tenant_usage_is_estimated_and_measured(store).await;
    store.ping().await.expect("ping");
}

pub fn fresh_tenant() -> TenantId {
    TenantId::parse(format!("t{}", uuid::Uuid::new_v4().simple())).unwrap()
}

pub(crate) fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn cid(s: &str) -> CourseId {
    CourseId::parse(s).unwrap()
}

pub(crate) fn nid(s: &str) -> NotificationId {
    NotificationId::parse(s).unwrap()
}

pub fn notification(t: &TenantId, u: &UserId, id: &str) -> Notification {
    Notification {
        id: nid(id),
        tenant_id: t.clone(),
        user_id: Some(u.clone()),
        title: format!("title {id}").into(),
        message: "message".into(),
        kind: NotificationType::General,
        priority: Priority::Normal,
        status: NotificationStatus::Unread,
        data: Some(std::sync::Arc::new(serde_json::json!({ "k": id }).into())),
        created_at: "2026-11-25T12:00:00Z".into(),
    }
}

/// One send to one recipient, as the gateway does it: open the body, insert a reference.
pub async fn deliver(store: &dyn Store, n: &Notification) -> StoreResult<InsertOutcome> {
    let fanout = store.open_fanout(n).await?;
    store
        .insert(n.user_id.as_ref().unwrap(), &fanout.body)
        .await
}

pub async fn insert_is_idempotent_and_counts_unread_once(store: &dyn Store) {
    let t = fresh_tenant();
    let u = uid("u1");
    let n = notification(&t, &u, "n1");
    assert_eq!(
        deliver(store, &n).await.unwrap(),
        InsertOutcome::Inserted { unread: 1 }
    );
    assert_eq!(
        deliver(store, &n).await.unwrap(),
        InsertOutcome::Duplicate { unread: 1 }
    );
    assert_eq!(store.unread_count(&t, &u).await.unwrap(), 1);
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
    assert_eq!(page.items, vec![n]);
}

pub async fn read_and_dismiss_never_double_count(store: &dyn Store) {
    let t = fresh_tenant();
    let u = uid("u1");
    for id in ["a", "b"] {
        deliver(store, &notification(&t, &u, id)).await.unwrap();
    }
    let first = store.mark_read(&t, &u, &nid("a")).await.unwrap();
    assert_eq!(
        first,
        StatusChange {
            changed: true,
            unread: 1
        }
    );
    let again = store.mark_read(&t, &u, &nid("a")).await.unwrap();
    assert_eq!(
        again,
        StatusChange {
            changed: false,
            unread: 1
        }
    );
    let dismissed = store.dismiss(&t, &u, &nid("b")).await.unwrap();
    assert_eq!(
        dismissed,
        StatusChange {
            changed: true,
            unread: 0
        }
    );
    let read_dismissed = store.mark_read(&t, &u, &nid("b")).await.unwrap();
    assert_eq!(
        read_dismissed,
        StatusChange {
            changed: false,
            unread: 0
        }
    );
    let dismiss_read = store.dismiss(&t, &u, &nid("a")).await.unwrap();
    assert_eq!(
        dismiss_read,
        StatusChange {
            changed: true,
            unread: 0
        }
    );
    assert!(matches!(
        store.mark_read(&t, &u, &nid("missing")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.dismiss(&t, &u, &nid("missing")).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.unread_count(&t, &u).await.unwrap(), 0);
    let dismissed = store
        .list(
            &t,
            &u,
            &ListQuery {
                limit: 10,
                before: None,
                status: Some(NotificationStatus::Dismissed),
            },
        )
        .await
        .unwrap();
    assert_eq!(dismissed.items.len(), 2);
}

pub async fn read_all_zeroes_the_count(store: &dyn Store) {
    let t = fresh_tenant();
    let u = uid("u1");
    for id in ["a", "b", "c"] {
        deliver(store, &notification(&t, &u, id)).await.unwrap();
    }
    store.dismiss(&t, &u, &nid("c")).await.unwrap();
    assert_eq!(store.mark_all_read(&t, &u).await.unwrap(), 2);
    assert_eq!(store.unread_count(&t, &u).await.unwrap(), 0);
    assert_eq!(store.mark_all_read(&t, &u).await.unwrap(), 0);
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
    let statuses: Vec<_> = page.items.iter().map(|n| n.status).collect();
    assert_eq!(
        statuses,
        [
            NotificationStatus::Dismissed,
            NotificationStatus::Read,
            NotificationStatus::Read
        ]
    );
}

pub async fn list_pages_newest_first_with_a_cursor(store: &dyn Store) {
    let t = fresh_tenant();
    let u = uid("u1");
    for i in 0..5 {
        deliver(store, &notification(&t, &u, &format!("n{i}")))
            .await
            .unwrap();
    }
    let q = |before| ListQuery {
        limit: 2,
        before,
        status: None,
    };
    let p1 = store.list(&t, &u, &q(None)).await.unwrap();
    let ids = |p: &Page| p.items.iter().map(|n| n.id.to_string()).collect::<Vec<_>>();
    assert_eq!(ids(&p1), ["n4", "n3"]);
    let p2 = store.list(&t, &u, &q(p1.next_cursor)).await.unwrap();
    assert_eq!(ids(&p2), ["n2", "n1"]);
    let p3 = store.list(&t, &u, &q(p2.next_cursor)).await.unwrap();
    assert_eq!(ids(&p3), ["n0"]);
    assert_eq!(p3.next_cursor, None);
    store.mark_read(&t, &u, &nid("n3")).await.unwrap();
    let unread = store
        .list(
            &t,
            &u,
            &ListQuery {
                limit: 10,
                before: None,
                status: Some(NotificationStatus::Unread),
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&unread), ["n4", "n2", "n1", "n0"]);
    let empty = store.list(&t, &uid("nobody"), &q(None)).await.unwrap();
    assert!(empty.items.is_empty() && empty.next_cursor.is_none());
}

pub async fn the_inbox_is_capped_and_the_count_follows(store: &dyn Store, limits: StoreLimits) {
    let t = fresh_tenant();
    let u = uid("u1");
    let total = limits.inbox_cap + 3;
    for i in 0..total {
        deliver(store, &notification(&t, &u, &format!("n{i}")))
            .await
            .unwrap();
    }
    assert_eq!(
        store.unread_count(&t, &u).await.unwrap(),
        limits.inbox_cap as u64
    );
    let page = store
        .list(
            &t,
            &u,
            &ListQuery {
                limit: 100,
                before: None,
                status: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), limits.inbox_cap);
    assert_eq!(page.items[0].id.to_string(), format!("n{}", total - 1));
    assert!(matches!(
        store.mark_read(&t, &u, &nid("n0")).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn tenants_never_share_an_inbox_or_a_course(store: &dyn Store) {
    let (a, b) = (fresh_tenant(), fresh_tenant());
    let u = uid("same-user");
    let c = cid("same-course");
    deliver(store, &notification(&a, &u, "n1")).await.unwrap();
    assert_eq!(store.unread_count(&b, &u).await.unwrap(), 0);
    assert!(matches!(
        store.mark_read(&b, &u, &nid("n1")).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        deliver(store, &notification(&b, &u, "n1")).await.unwrap(),
        InsertOutcome::Inserted { unread: 1 }
    );
    store
        .set_member(&a, &c, &u, CourseRole::Instructor)
        .await
        .unwrap();
    assert_eq!(store.member_role(&b, &c, &u).await.unwrap(), None);
    assert!(store.course_members(&b, &c).await.unwrap().is_empty());
    assert!(store.user_courses(&b, &u).await.unwrap().is_empty());
}

pub async fn membership_set_remove_and_replace(store: &dyn Store) {
    let t = fresh_tenant();
    let c = cid("c1");
    let (s, i) = (uid("s"), uid("i"));
    assert_eq!(
        store
            .set_member(&t, &c, &s, CourseRole::Student)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .set_member(&t, &c, &i, CourseRole::Instructor)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .set_member(&t, &c, &s, CourseRole::Student)
            .await
            .unwrap(),
        Some(CourseRole::Student)
    );
    assert_eq!(
        store.member_role(&t, &c, &i).await.unwrap(),
        Some(CourseRole::Instructor)
    );
    assert_eq!(
        store.user_courses(&t, &s).await.unwrap(),
        vec![(c.clone(), CourseRole::Student)]
    );
    assert!(!store.course_members(&t, &c).await.unwrap().is_empty());
    assert_eq!(
        store.remove_member(&t, &c, &s).await.unwrap(),
        Some(CourseRole::Student)
    );
    assert_eq!(store.remove_member(&t, &c, &s).await.unwrap(), None);
    assert!(store.user_courses(&t, &s).await.unwrap().is_empty());

    let new = uid("n");
    let diff = store
        .replace_members(
            &t,
            &c,
            &[
                Member {
                    user_id: new.clone(),
                    role: CourseRole::Student,
                },
                Member {
                    user_id: s.clone(),
                    role: CourseRole::Instructor,
                },
            ],
        )
        .await
        .unwrap();
    let mut upserted: Vec<_> = diff
        .upserted
        .iter()
        .map(|m| m.user_id.to_string())
        .collect();
    upserted.sort();
    assert_eq!(upserted, ["n", "s"]);
    assert_eq!(
        diff.removed,
        vec![Member {
            user_id: i.clone(),
            role: CourseRole::Instructor
        }]
    );
    let mut members: Vec<_> = store
        .course_members(&t, &c)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.user_id.to_string(), m.role))
        .collect();
    members.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        members,
        [
            ("n".to_string(), CourseRole::Student),
            ("s".to_string(), CourseRole::Instructor)
        ]
    );
    assert!(store.user_courses(&t, &i).await.unwrap().is_empty());
    let empty = store.replace_members(&t, &c, &[]).await.unwrap();
    assert_eq!(empty.removed.len(), 2);
    assert!(store.course_members(&t, &c).await.unwrap().is_empty());
}

/// Two handles on the same data (two nodes of a cluster, or one engine twice) insert the
/// same ids, read and dismiss at the same time: nothing is stored or counted twice and the
/// unread count ends exact.
pub async fn concurrent_writers_keep_the_count_exact(
    a: &dyn Store,
    b: &dyn Store,
    limits: StoreLimits,
) {
    use futures::future::join_all;
    let t = fresh_tenant();
    let u = uid("u1");
    // Stay under the inbox cap: trimming is checked elsewhere.
    let extra = 1;
    let total = limits.inbox_cap.saturating_sub(extra).clamp(1, 40);
    // Every id is inserted through both handles at once.
    let inserts = (0..total).flat_map(|i| {
        let n = notification(&t, &u, &format!("n{i}"));
        [(a, n.clone()), (b, n)]
    });
    let outcomes =
        join_all(inserts.map(|(s, n)| async move { deliver(s, &n).await.unwrap() })).await;
    let inserted = outcomes
        .iter()
        .filter(|o| matches!(o, InsertOutcome::Inserted { .. }))
        .count();
    assert_eq!(inserted, total, "each id stored exactly once");
    assert_eq!(a.unread_count(&t, &u).await.unwrap(), total as u64);
    // Reads of the even ids through both handles race with dismissals of every third id
    // and with new inserts.
    let reads = (0..total)
        .step_by(2)
        .flat_map(|i| [(a, i), (b, i)])
        .map(|(s, i)| {
            let (t, u) = (t.clone(), u.clone());
            async move {
                s.mark_read(&t, &u, &nid(&format!("n{i}"))).await.unwrap();
            }
        });
    let dismissals = (0..total).step_by(3).map(|i| {
        let (t, u, s) = (t.clone(), u.clone(), if i % 2 == 0 { b } else { a });
        async move {
            s.dismiss(&t, &u, &nid(&format!("n{i}"))).await.unwrap();
        }
    });
    let more = (total..total + extra).map(|i| {
        let n = notification(&t, &u, &format!("n{i}"));
        let s = if i % 2 == 0 { a } else { b };
        async move {
            deliver(s, &n).await.unwrap();
        }
    });
    futures::join!(join_all(reads), join_all(dismissals), join_all(more));
    let still_unread = (0..total + extra)
        .filter(|i| i % 2 == 1 && i % 3 != 0 || *i >= total)
        .count() as u64;
    assert_eq!(a.unread_count(&t, &u).await.unwrap(), still_unread);
    assert_eq!(b.unread_count(&t, &u).await.unwrap(), still_unread);
    let unread = b
        .list(
            &t,
            &u,
            &ListQuery {
                limit: 100,
                before: None,
                status: Some(NotificationStatus::Unread),
            },
        )
        .await
        .unwrap();
    assert_eq!(unread.items.len() as u64, still_unread);
}
