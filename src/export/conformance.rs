//! The behaviour every export queue engine must have, run on the memory engine (unit test)
//! and on a real `redis-server` (`tests/cluster_export.rs`). Each check uses fresh tenants,
//! so engines that share a server never meet.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::*;

/// What the suite builds engines with (the age check builds its own).
pub const BOUNDS: QueueBounds = QueueBounds {
    cap: 5,
    retention: Duration::from_secs(3600),
};

/// Runs every check; `make` builds an engine with the given bounds.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn(QueueBounds) -> Fut,
    Fut: Future<Output = Arc<dyn ExportQueue>>,
{
    let q = make(BOUNDS).await;
    events_come_back_in_order_after_a_cursor(&*q).await;
    the_queue_keeps_at_most_its_cap(&*q).await;
    a_webhook_starts_at_the_end_and_keeps_its_cursor_when_replaced(&*q).await;
    one_holder_at_a_time_and_a_lost_lease_cannot_move_the_cursor(&*q).await;
    the_backlog_counts_what_is_after_the_cursor(&*q).await;
    dead_letters_are_kept_and_replayed_with_their_ids(&*q).await;
    tenants_never_see_each_other(&*q).await;
    let aged = make(QueueBounds {
        cap: 100,
        retention: Duration::from_millis(800),
    })
    .await;
    old_events_are_not_served(&*aged).await;
}

fn tenant() -> TenantId {
    TenantId::parse(format!("x{}", uuid::Uuid::new_v4().simple())).unwrap()
}

fn event(t: &TenantId, i: u32) -> ExportEvent {
    ExportEvent {
        id: format!("e{i}"),
        kind: EventType::ProgressContent.as_str().to_owned(),
        tenant_id: t.clone(),
        at: "2026-01-01T00:00:00.000Z".into(),
        data: serde_json::json!({ "i": i }),
    }
}

fn ids(q: &[Queued]) -> Vec<String> {
    q.iter().map(|q| q.event.id.clone()).collect()
}

fn hook() -> Webhook {
    Webhook::parse(
        "http://127.0.0.1:9/hook",
        "0123456789abcdef",
        &["progress".to_owned()],
    )
    .unwrap()
}

async fn events_come_back_in_order_after_a_cursor(q: &dyn ExportQueue) {
    let t = tenant();
    for i in 0..4 {
        q.append(&event(&t, i)).await.unwrap();
    }
    let all = q.read(&t, "0-0", 10).await.unwrap();
    assert_eq!(ids(&all), ["e0", "e1", "e2", "e3"]);
    assert_eq!(all[0].event, event(&t, 0), "stored as appended");
    let page = q.read(&t, "0-0", 2).await.unwrap();
    assert_eq!(ids(&page), ["e0", "e1"]);
    let rest = q.read(&t, &page[1].pos.id, 10).await.unwrap();
    assert_eq!(ids(&rest), ["e2", "e3"]);
    assert!(q.read(&t, &rest[1].pos.id, 10).await.unwrap().is_empty());
    assert!(all.windows(2).all(|w| w[0].pos.n < w[1].pos.n));
}

async fn the_queue_keeps_at_most_its_cap(q: &dyn ExportQueue) {
    let t = tenant();
    for i in 0..(BOUNDS.cap as u32 + 3) {
        q.append(&event(&t, i)).await.unwrap();
    }
    let kept = q.read(&t, "0-0", 100).await.unwrap();
    assert_eq!(ids(&kept), ["e3", "e4", "e5", "e6", "e7"]);
}

async fn a_webhook_starts_at_the_end_and_keeps_its_cursor_when_replaced(q: &dyn ExportQueue) {
    let t = tenant();
    assert_eq!(q.webhook(&t).await.unwrap(), None);
    q.append(&event(&t, 0)).await.unwrap();
    q.set_webhook(&t, &hook()).await.unwrap();
    assert_eq!(q.webhook(&t).await.unwrap(), Some(hook()));
    assert!(q.webhook_tenants().await.unwrap().contains(&t));
    let start = q.cursor(&t).await.unwrap();
    assert!(
        q.read(&t, &start.id, 10).await.unwrap().is_empty(),
        "old events are not sent"
    );
    q.append(&event(&t, 1)).await.unwrap();
    assert!(q.lease(&t, "a", Duration::from_secs(5)).await.unwrap());
    let next = q.read(&t, &start.id, 10).await.unwrap();
    assert_eq!(ids(&next), ["e1"]);
    assert!(q.advance(&t, "a", &next[0].pos).await.unwrap());
    let mut other = hook();
    other.url = "https://lms.example/other".into();
    q.set_webhook(&t, &other).await.unwrap();
    assert_eq!(
        q.cursor(&t).await.unwrap(),
        next[0].pos,
        "a replaced webhook keeps its place"
    );
    assert_eq!(q.webhook(&t).await.unwrap(), Some(other));
    assert!(q.delete_webhook(&t).await.unwrap());
    assert!(!q.delete_webhook(&t).await.unwrap());
    assert_eq!(q.webhook(&t).await.unwrap(), None);
    assert!(!q.webhook_tenants().await.unwrap().contains(&t));
    assert!(
        !q.lease(&t, "a", Duration::from_secs(5)).await.unwrap(),
        "no webhook, no lease"
    );
}

async fn one_holder_at_a_time_and_a_lost_lease_cannot_move_the_cursor(q: &dyn ExportQueue) {
    let t = tenant();
    q.set_webhook(&t, &hook()).await.unwrap();
    q.append(&event(&t, 0)).await.unwrap();
    let ttl = Duration::from_millis(300);
    assert!(q.lease(&t, "a", ttl).await.unwrap());
    assert!(!q.lease(&t, "b", ttl).await.unwrap());
    assert!(q.lease(&t, "a", ttl).await.unwrap(), "the holder renews");
    let start = q.cursor(&t).await.unwrap();
    let batch = q.read(&t, &start.id, 10).await.unwrap();
    assert!(!q.advance(&t, "b", &batch[0].pos).await.unwrap());
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert!(
        q.lease(&t, "b", ttl).await.unwrap(),
        "an expired lease is taken over"
    );
    assert!(!q.advance(&t, "a", &batch[0].pos).await.unwrap(), "fenced");
    assert_eq!(
        q.cursor(&t).await.unwrap(),
        start,
        "the fenced holder moved nothing"
    );
    assert!(q.advance(&t, "b", &batch[0].pos).await.unwrap());
    q.release(&t, "a").await.unwrap();
    assert!(
        !q.lease(&t, "a", ttl).await.unwrap(),
        "releasing another's lease does nothing"
    );
    q.release(&t, "b").await.unwrap();
    assert!(q.lease(&t, "a", ttl).await.unwrap());
    q.delete_webhook(&t).await.unwrap();
}

async fn the_backlog_counts_what_is_after_the_cursor(q: &dyn ExportQueue) {
    let t = tenant();
    assert_eq!(q.backlog(&t).await.unwrap(), Backlog::default());
    q.set_webhook(&t, &hook()).await.unwrap();
    let before = now_ms();
    for i in 0..3 {
        q.append(&event(&t, i)).await.unwrap();
    }
    let b = q.backlog(&t).await.unwrap();
    assert_eq!(b.pending, 3);
    assert!(
        b.oldest_ms
            .is_some_and(|ms| ms >= before.saturating_sub(1000)),
        "{b:?}"
    );
    assert!(q.lease(&t, "a", Duration::from_secs(5)).await.unwrap());
    let all = q
        .read(&t, &q.cursor(&t).await.unwrap().id, 10)
        .await
        .unwrap();
    assert!(q.advance(&t, "a", &all[1].pos).await.unwrap());
    assert_eq!(q.backlog(&t).await.unwrap().pending, 1);
    assert!(q.advance(&t, "a", &all[2].pos).await.unwrap());
    let b = q.backlog(&t).await.unwrap();
    assert_eq!((b.pending, b.oldest_ms), (0, None));
    q.delete_webhook(&t).await.unwrap();
}

async fn dead_letters_are_kept_and_replayed_with_their_ids(q: &dyn ExportQueue) {
    let t = tenant();
    q.set_webhook(&t, &hook()).await.unwrap();
    for i in 0..3 {
        q.append(&event(&t, i)).await.unwrap();
    }
    assert!(q.lease(&t, "a", Duration::from_secs(5)).await.unwrap());
    let batch = q
        .read(&t, &q.cursor(&t).await.unwrap().id, 2)
        .await
        .unwrap();
    let events: Vec<_> = batch.iter().map(|q| q.event.clone()).collect();
    assert!(
        !q.dead_letter(&t, "b", &events, &batch[1].pos)
            .await
            .unwrap(),
        "fenced"
    );
    assert!(
        q.dead_letter(&t, "a", &events, &batch[1].pos)
            .await
            .unwrap()
    );
    assert_eq!(q.cursor(&t).await.unwrap(), batch[1].pos);
    assert_eq!(q.dead_letters(&t, 10).await.unwrap(), events);
    assert_eq!(q.dead_letters(&t, 1).await.unwrap(), events[..1]);
    assert_eq!(q.backlog(&t).await.unwrap().dead_letters, 2);
    assert_eq!(q.replay_dead_letters(&t, 1).await.unwrap(), 1);
    assert_eq!(q.dead_letters(&t, 10).await.unwrap(), events[1..]);
    assert_eq!(q.replay_dead_letters(&t, 10).await.unwrap(), 1);
    assert_eq!(q.replay_dead_letters(&t, 10).await.unwrap(), 0);
    let again = q
        .read(&t, &q.cursor(&t).await.unwrap().id, 10)
        .await
        .unwrap();
    assert_eq!(
        ids(&again),
        ["e2", "e0", "e1"],
        "replayed after what was waiting, same ids"
    );
    let b = q.backlog(&t).await.unwrap();
    assert_eq!((b.pending, b.dead_letters), (3, 0));
    q.delete_webhook(&t).await.unwrap();
}

async fn tenants_never_see_each_other(q: &dyn ExportQueue) {
    let (a, b) = (tenant(), tenant());
    q.set_webhook(&a, &hook()).await.unwrap();
    q.append(&event(&a, 0)).await.unwrap();
    assert!(q.read(&b, "0-0", 10).await.unwrap().is_empty());
    assert_eq!(q.webhook(&b).await.unwrap(), None);
    assert_eq!(q.backlog(&b).await.unwrap(), Backlog::default());
    assert!(!q.lease(&b, "a", Duration::from_secs(5)).await.unwrap());
    assert!(q.lease(&a, "a", Duration::from_secs(5)).await.unwrap());
    q.delete_webhook(&a).await.unwrap();
}

async fn old_events_are_not_served(q: &dyn ExportQueue) {
    let t = tenant();
    q.append(&event(&t, 0)).await.unwrap();
    assert_eq!(q.read(&t, "0-0", 10).await.unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    q.append(&event(&t, 1)).await.unwrap();
    assert_eq!(ids(&q.read(&t, "0-0", 10).await.unwrap()), ["e1"]);
}
