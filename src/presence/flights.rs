//! Single flight: concurrent callers asking the same question share one answer.
//!
//! A `presence:list` of a 10,000-user course is a Redis read of ~10,000 fields and a list
//! of 10,000 entries to build; when many instructors (or one impatient one) ask at once,
//! one read and one list serve them all. Only calls that overlap share: a call that starts
//! after an answer came back asks again, so an answer is never older than its call.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

/// The calls in flight, by key.
pub struct Flights<K, V: Clone> {
    running: Mutex<HashMap<K, Shared<BoxFuture<'static, V>>>>,
}

impl<K, V: Clone> Flights<K, V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Shared<BoxFuture<'static, V>>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<K, V: Clone> Default for Flights<K, V> {
    fn default() -> Self {
        Self {
            running: Mutex::default(),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone + Send + Sync + 'static> Flights<K, V> {
    /// The answer of the call for `key` in flight, or of `call()` started now.
    pub async fn run(&self, key: K, call: impl FnOnce() -> BoxFuture<'static, V>) -> V {
        let flight = self
            .lock()
            .entry(key.clone())
            .or_insert_with(|| call().shared())
            .clone();
        let _landing = Landing {
            flights: self,
            key,
            flight: flight.clone(),
        };
        flight.await
    }
}

/// Ends a flight for new callers as soon as one of its callers has the answer or gives
/// up (it is dropped): a later call asks again rather than join an answer that may be old,
/// even when every caller of a flight gave up half-way. Callers already waiting keep it.
struct Landing<'a, K: Hash + Eq, V: Clone> {
    flights: &'a Flights<K, V>,
    key: K,
    flight: Shared<BoxFuture<'static, V>>,
}

impl<K: Hash + Eq, V: Clone> Drop for Landing<'_, K, V> {
    fn drop(&mut self) {
        let mut running = self.flights.lock();
        if running
            .get(&self.key)
            .is_some_and(|f| f.ptr_eq(&self.flight))
        {
            running.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn slow_call(calls: &Arc<AtomicUsize>) -> impl FnOnce() -> BoxFuture<'static, usize> {
        let calls = calls.clone();
        move || {
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                calls.fetch_add(1, Ordering::SeqCst) + 1
            }
            .boxed()
        }
    }

    #[tokio::test]
    async fn overlapping_calls_share_one_answer_and_a_later_call_asks_again() {
        let flights = Flights::<&str, usize>::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let (a, b) = tokio::join!(
            flights.run("c1", slow_call(&calls)),
            flights.run("c1", slow_call(&calls))
        );
        assert_eq!((a, b, calls.load(Ordering::SeqCst)), (1, 1, 1));
        assert_eq!(flights.run("c1", slow_call(&calls)).await, 2);
    }

    #[tokio::test]
    async fn different_keys_do_not_share() {
        let flights = Flights::<&str, usize>::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let (a, b) = tokio::join!(
            flights.run("c1", slow_call(&calls)),
            flights.run("c2", slow_call(&calls))
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_leaves_the_others_their_answer_and_no_old_answer_behind() {
        let flights = Flights::<&str, usize>::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let impatient = tokio::time::timeout(
            Duration::from_millis(10),
            flights.run("c1", slow_call(&calls)),
        );
        let (gave_up, patient) = tokio::join!(impatient, flights.run("c1", slow_call(&calls)));
        assert!(gave_up.is_err());
        assert_eq!(patient, 1, "the caller still waiting got the shared answer");

        // Every caller of a flight gives up: the next call must not resume that old flight.
        let started = Arc::new(AtomicUsize::new(0));
        let call = |started: &Arc<AtomicUsize>| {
            let started = started.clone();
            move || {
                async move {
                    let n = started.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    n
                }
                .boxed()
            }
        };
        let abandoned =
            tokio::time::timeout(Duration::from_millis(10), flights.run("c2", call(&started)))
                .await;
        assert!(abandoned.is_err());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(flights.run("c2", call(&started)).await, 2, "a new call");
    }
}
