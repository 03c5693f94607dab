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
        let answer = flight.clone().await;
        // Whoever gets the answer first ends the flight (unless a newer one took its place).
        let mut running = self.lock();
        if running.get(&key).is_some_and(|f| f.ptr_eq(&flight)) {
            running.remove(&key);
        }
        answer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Shared<BoxFuture<'static, V>>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
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
    async fn a_caller_that_gives_up_does_not_stop_the_others() {
        let flights = Flights::<&str, usize>::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let gave_up = tokio::time::timeout(
            Duration::from_millis(10),
            flights.run("c1", slow_call(&calls)),
        )
        .await;
        assert!(gave_up.is_err());
        assert_eq!(flights.run("c1", slow_call(&calls)).await, 1);
        assert_eq!(flights.run("c1", slow_call(&calls)).await, 2);
    }
}
