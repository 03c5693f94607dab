//! The behaviour every presence engine shares, run by each engine's tests: the memory
//! engine with [`run_single`], the Redis engine with both (two node processes on one
//! Redis for [`run_two_nodes`]). Time is passed in ([`Rules`]), so the debounce is tested
//! without sleeping.

use std::sync::Arc;

use super::{Change, PresenceStore, Rules, Scope, Verdict};
use crate::ids::UserId;

const DEBOUNCE: u64 = 2_000;

fn at(now_ms: u64) -> Rules {
    Rules {
        now_ms,
        debounce_ms: DEBOUNCE,
    }
}

fn user(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

fn course(t: &str, c: &str) -> Scope {
    Scope::Course(t.parse().unwrap(), c.parse().unwrap())
}

fn announced() -> Change {
    Change {
        flipped: true,
        verdict: Verdict::Announce,
    }
}

/// One node: counting, listing, the debounce and tenant isolation.
pub async fn run_single(p: Arc<dyn PresenceStore>) {
    let c = course("conf-a", "c1");
    let u1 = user("u1");
    let t0 = 1_000_000;

    assert_eq!(
        p.join(&c, &u1, "student", at(t0)).await.unwrap(),
        announced()
    );
    assert_eq!(
        p.join(&c, &u1, "student", at(t0)).await.unwrap(),
        Change::NONE,
        "a repeated join of one node changes nothing"
    );
    assert_eq!(p.count(&c).await.unwrap(), 1);
    let listed = p.list(&c, 100).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].user.as_str(),
            listed[0].role.as_str(),
            listed[0].since_ms
        ),
        ("u1", "student", t0)
    );

    // A membership change while online: the role changes and `since` stays; a user who is
    // not present is not made present by it.
    p.set_role(&c, &u1, "instructor").await.unwrap();
    p.set_role(&c, &user("absent"), "instructor").await.unwrap();
    let listed = p.list(&c, 100).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].role.as_str(), listed[0].since_ms),
        ("instructor", t0)
    );
    p.set_role(&c, &u1, "student").await.unwrap();

    // A flap inside the window: the leave waits, the rejoin finds nothing to tell.
    let leave = p.leave(&c, &u1, at(t0 + 300)).await.unwrap();
    assert_eq!(
        leave,
        Change {
            flipped: true,
            verdict: Verdict::Suppressed {
                recheck_at_ms: t0 + DEBOUNCE
            }
        }
    );
    assert_eq!(p.count(&c).await.unwrap(), 0);
    let rejoin = p.join(&c, &u1, "student", at(t0 + 600)).await.unwrap();
    assert_eq!(rejoin.verdict, Verdict::Quiet);
    let settled = p.settle(&c, &u1, at(t0 + DEBOUNCE)).await.unwrap();
    assert_eq!((settled.online, settled.verdict), (true, Verdict::Quiet));

    // A leave inside the window that stays a leave is announced when it closes.
    p.leave(&c, &u1, at(t0 + 900)).await.unwrap();
    let settled = p.settle(&c, &u1, at(t0 + DEBOUNCE + 1)).await.unwrap();
    assert_eq!(
        (settled.online, settled.verdict),
        (false, Verdict::Announce)
    );
    // And a join right after that announcement waits in turn.
    let back = p
        .join(&c, &u1, "student", at(t0 + DEBOUNCE + 10))
        .await
        .unwrap();
    assert!(
        matches!(back.verdict, Verdict::Suppressed { .. }),
        "{back:?}"
    );
    p.leave(&c, &u1, at(t0 + DEBOUNCE + 20)).await.unwrap();

    // A leave well after the join is announced at once.
    let c2 = course("conf-a", "c2");
    p.join(&c2, &u1, "instructor", at(t0)).await.unwrap();
    assert_eq!(
        p.leave(&c2, &u1, at(t0 + 10 * DEBOUNCE)).await.unwrap(),
        announced()
    );

    // Tenant scopes count and list but never announce.
    let tenant = Scope::Tenant("conf-a".parse().unwrap());
    for i in 0..5 {
        let change = p
            .join(&tenant, &user(&format!("t{i}")), "student", at(t0))
            .await
            .unwrap();
        assert_eq!(change.verdict, Verdict::Quiet);
        assert!(change.flipped);
    }
    assert_eq!(p.count(&tenant).await.unwrap(), 5);
    assert_eq!(
        p.list(&tenant, 3).await.unwrap().len(),
        3,
        "the list stops at its limit"
    );

    // No cross-tenant view: the same course and user ids in another tenant are apart.
    let other = course("conf-b", "c1");
    assert_eq!(p.count(&other).await.unwrap(), 0);
    p.join(&other, &u1, "student", at(t0)).await.unwrap();
    assert_eq!(p.count(&course("conf-a", "c1")).await.unwrap(), 0);
    assert_eq!(
        p.count(&Scope::Tenant("conf-b".parse().unwrap()))
            .await
            .unwrap(),
        0
    );
    assert_eq!(p.list(&other, 10).await.unwrap()[0].user.as_str(), "u1");
}

/// Two node processes: a user is online while either holds it, and a dead process's
/// users go away (announced) when a live one's upkeep finds its heartbeat lapsed.
/// `ttl_ms` is the engines' entry lifetime.
pub async fn run_two_nodes(a: Arc<dyn PresenceStore>, b: Arc<dyn PresenceStore>, ttl_ms: u64) {
    let c = course("conf-n", "c1");
    let (u1, u2) = (user("u1"), user("u2"));
    let t0 = 2_000_000;
    a.upkeep(at(t0)).await.unwrap();
    b.upkeep(at(t0)).await.unwrap();

    assert!(a.join(&c, &u1, "student", at(t0)).await.unwrap().flipped);
    assert_eq!(
        b.join(&c, &u1, "student", at(t0)).await.unwrap(),
        Change::NONE,
        "a second node's tab is not a new user"
    );
    assert_eq!(a.count(&c).await.unwrap(), 1);
    assert_eq!(
        a.leave(&c, &u1, at(t0 + 5 * DEBOUNCE)).await.unwrap(),
        Change::NONE
    );
    assert_eq!(b.count(&c).await.unwrap(), 1, "still online through node b");
    assert_eq!(
        b.leave(&c, &u1, at(t0 + 5 * DEBOUNCE)).await.unwrap(),
        announced()
    );

    // Node a holds u2 and dies; b holds u1 and lives on.
    let t1 = t0 + 10 * DEBOUNCE;
    a.upkeep(at(t1)).await.unwrap();
    b.upkeep(at(t1)).await.unwrap();
    a.join(&c, &u2, "student", at(t1)).await.unwrap();
    b.join(&c, &u1, "student", at(t1)).await.unwrap();
    assert_eq!(b.count(&c).await.unwrap(), 2);
    assert!(
        b.upkeep(at(t1 + ttl_ms - 1))
            .await
            .unwrap()
            .departed
            .is_empty(),
        "a is alive until its TTL"
    );
    let later = t1 + ttl_ms + 1;
    let found = b.upkeep(at(later)).await.unwrap();
    let gone: Vec<_> = found
        .departed
        .iter()
        .filter(|d| d.scope == c)
        .map(|d| (d.user.as_str(), d.verdict))
        .collect();
    assert_eq!(gone, vec![("u2", Verdict::Announce)]);
    assert_eq!(b.count(&c).await.unwrap(), 1);
    assert!(
        b.upkeep(at(later)).await.unwrap().departed.is_empty(),
        "purged once"
    );
    // The dead process comes back (a long pause, not a crash): it must write again.
    assert!(a.upkeep(at(later)).await.unwrap().resync);
}
