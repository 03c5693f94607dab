//! The behaviour every recovery engine shares, run by each engine's tests: the memory
//! engine in its unit tests, the Redis engine in `tests/cluster_recovery.rs` against a
//! real redis-server. Engines are built with [`BOUNDS`] except for the age test.

use std::sync::Arc;
use std::time::Duration;

use super::{Clock, Entry, Missed, Offset, RecoveryStore, SavedSession, StreamBounds};

/// What the suite expects an engine to be built with.
pub const BOUNDS: StreamBounds = StreamBounds {
    max_len: 50,
    max_age: Duration::from_secs(60),
};

fn entry(clock: &Clock, n: usize, except: Option<&str>) -> Entry {
    Entry {
        offset: clock.next(),
        event: "test:event".into(),
        data: format!("{{\"n\":{n}}}"),
        except: except.map(str::to_owned),
    }
}

fn events(m: Missed) -> Vec<Entry> {
    match m {
        Missed::Events(e) => e,
        Missed::TooOld => panic!("expected events, got TooOld"),
    }
}

fn room(tenant: &str, user: &str) -> String {
    format!("tenant:{tenant}:user:{user}")
}

/// Order, once across rooms, only the rooms asked for, sessions; then the count bound.
pub async fn run_all(r: Arc<dyn RecoveryStore>) {
    let clock = Clock::new();
    let (a, b, other) = (
        room("conf", "a"),
        "tenant:conf".to_string(),
        room("conf2", "a"),
    );
    let start = clock.next();
    let e1 = entry(&clock, 1, None);
    r.append(std::slice::from_ref(&a), std::slice::from_ref(&e1))
        .await
        .unwrap();
    // One event sent to two of the socket's rooms.
    let e2 = entry(&clock, 2, Some("0123456789abcdef0123456789abcdef"));
    r.append(&[a.clone(), b.clone()], std::slice::from_ref(&e2))
        .await
        .unwrap();
    let e3 = entry(&clock, 3, None);
    r.append(std::slice::from_ref(&b), std::slice::from_ref(&e3))
        .await
        .unwrap();
    r.append(std::slice::from_ref(&other), &[entry(&clock, 4, None)])
        .await
        .unwrap();
    let rooms = [a.clone(), b.clone()];

    let all = events(r.since(&rooms, start).await.unwrap());
    assert_eq!(
        all,
        vec![e1.clone(), e2.clone(), e3.clone()],
        "in order, once"
    );
    let rest = events(r.since(&rooms, e1.offset).await.unwrap());
    assert_eq!(rest, vec![e2.clone(), e3.clone()]);
    assert!(events(r.since(&rooms, e3.offset).await.unwrap()).is_empty());
    let unknown = ["tenant:conf:user:nobody".to_string()];
    assert!(events(r.since(&unknown, start).await.unwrap()).is_empty());

    several_at_once(&r, &clock).await;
    sessions(&r).await;
    count_bound(&r, &clock).await;
}

/// Events appended in one call (a notification and its count) are kept in their order, in
/// every room named, as if appended one by one.
async fn several_at_once(r: &Arc<dyn RecoveryStore>, clock: &Clock) {
    let (a, b) = (room("conf3", "a"), "tenant:conf3".to_string());
    let start = clock.next();
    let pair = [entry(clock, 1, None), entry(clock, 2, None)];
    r.append(&[a.clone(), b.clone()], &pair).await.unwrap();
    let third = entry(clock, 3, None);
    r.append(std::slice::from_ref(&a), std::slice::from_ref(&third))
        .await
        .unwrap();
    let expected = vec![pair[0].clone(), pair[1].clone(), third];
    assert_eq!(
        events(r.since(&[a.clone(), b], start).await.unwrap()),
        expected
    );
    assert_eq!(events(r.since(&[a], start).await.unwrap()), expected);
    let after_first = events(
        r.since(std::slice::from_ref(&room("conf3", "a")), pair[0].offset)
            .await
            .unwrap(),
    );
    assert_eq!(after_first, expected[1..].to_vec());
}

async fn sessions(r: &Arc<dyn RecoveryStore>) {
    let key = "lms:{conf:u:a}:rs:pid:0123456789abcdef0123456789abcdef";
    assert_eq!(r.get_session(key).await.unwrap(), None);
    let s = SavedSession {
        start: Offset::at_ms(1).to_string(),
        joined: vec!["c1".into()],
        sid: "sid-1".into(),
    };
    r.put_session(key, &s, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(r.get_session(key).await.unwrap(), Some(s.clone()));
    // Another socket leaving does not shorten the session.
    r.release_session(key, "sid-2", Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(r.get_session(key).await.unwrap(), Some(s));
    r.release_session(key, "sid-1", Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(r.get_session(key).await.unwrap(), None, "expired");
}

/// A stream keeps about `max_len` entries; an offset whose successors were dropped is
/// too old, a recent one still recovers.
async fn count_bound(r: &Arc<dyn RecoveryStore>, clock: &Clock) {
    let s = room("conf", "bounded");
    let before = clock.next();
    let mut last = Vec::new();
    for n in 0..BOUNDS.max_len * 4 {
        let e = entry(clock, n, None);
        r.append(std::slice::from_ref(&s), std::slice::from_ref(&e))
            .await
            .unwrap();
        last.push(e);
    }
    assert_eq!(
        r.since(std::slice::from_ref(&s), before).await.unwrap(),
        Missed::TooOld
    );
    let recent = &last[last.len() - 5];
    let got = events(
        r.since(std::slice::from_ref(&s), recent.offset)
            .await
            .unwrap(),
    );
    assert_eq!(got, last[last.len() - 4..].to_vec());
}

/// Run on an engine built with a `max_age` of [`AGE`]: an offset older than that is too
/// old, whatever the count.
pub async fn run_age_bound(r: Arc<dyn RecoveryStore>) {
    let clock = Clock::new();
    let s = room("conf", "aged");
    let first = entry(&clock, 1, None);
    r.append(std::slice::from_ref(&s), std::slice::from_ref(&first))
        .await
        .unwrap();
    assert!(matches!(
        r.since(std::slice::from_ref(&s), first.offset)
            .await
            .unwrap(),
        Missed::Events(_)
    ));
    tokio::time::sleep(AGE + Duration::from_millis(200)).await;
    let second = entry(&clock, 2, None);
    r.append(std::slice::from_ref(&s), std::slice::from_ref(&second))
        .await
        .unwrap();
    assert_eq!(
        r.since(std::slice::from_ref(&s), first.offset)
            .await
            .unwrap(),
        Missed::TooOld
    );
}

/// The age bound [`run_age_bound`] expects.
pub const AGE: Duration = Duration::from_millis(1_500);
