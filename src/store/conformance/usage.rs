//! Per-tenant storage accounting: writes add to a tenant's estimate, the measure replaces
//! it with what is stored (bodies once, one reference per recipient), tenants apart.

use super::*;
use crate::store::usage::Usage;

pub async fn tenant_usage_is_estimated_and_measured(store: &dyn Store) {
    let (t, other) = (fresh_tenant(), fresh_tenant());
    assert_eq!(store.usage(&t).await.unwrap(), Usage::default());
    let n = notification(&t, &uid("u1"), "n1");
    let fanout = store.open_fanout(&n).await.unwrap();
    for u in ["u1", "u2", "u3"] {
        store.insert(&uid(u), &fanout.body).await.unwrap();
    }
    // What the gateway adds after this send: the body once, three references.
    let mut stored = Usage::of_body(&n);
    stored += Usage::references(3);
    store.add_usage(&t, stored).await.unwrap();
    assert_eq!(store.usage(&t).await.unwrap(), stored);
    assert_eq!(store.usage(&other).await.unwrap(), Usage::default());

    // An estimate that drifted (here: added twice) is replaced by the next measure.
    store.add_usage(&t, stored).await.unwrap();
    store.add_usage(&other, Usage::references(5)).await.unwrap();
    assert_eq!(store.usage(&t).await.unwrap().entries, 6);
    let measured = store.measure_usage().await.unwrap();
    assert_eq!(
        measured.get(&t),
        Some(&stored),
        "bodies once, references per recipient"
    );
    assert_eq!(store.usage(&t).await.unwrap(), stored);
    assert_eq!(
        store.usage(&other).await.unwrap(),
        Usage::default(),
        "a tenant with nothing stored drops to zero"
    );
}
