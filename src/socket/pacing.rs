//! Connect pacing: at most `CONNECT_CONCURRENCY` connects do their store work (caps
//! ledger, recovery, memberships, rooms) at once on a node; the rest wait their turn, in
//! arrival order, for up to `CONNECT_QUEUE_TIMEOUT_MS`.
//!
//! Why: when a node dies, its sockets reconnect to the others within a second or two. With
//! no gate, 10,000 connects each sent their store calls at once; the calls queued behind
//! each other in the Redis client past its command timeout, and about half the sockets lost
//! their recovery and got plain new sessions (docs/benchmarks.md). A queue in the node
//! keeps each store call fast; a connect that waits too long is refused `UNAVAILABLE`, and
//! the client retries after its backoff.

use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::metrics;

/// The gate every connect passes before its store work.
pub struct ConnectPacer {
    permits: Semaphore,
    max_wait: Duration,
}

/// The connect waited longer than the pacer allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl ConnectPacer {
    /// `concurrency` 0 means no gate.
    pub fn new(concurrency: usize, max_wait: Duration) -> Self {
        let permits = if concurrency == 0 {
            Semaphore::MAX_PERMITS
        } else {
            concurrency
        };
        Self {
            permits: Semaphore::new(permits),
            max_wait,
        }
    }

    /// Waits for a turn; the turn ends when the permit is dropped.
    pub async fn turn(&self) -> Result<SemaphorePermit<'_>, Busy> {
        if let Ok(permit) = self.permits.try_acquire() {
            return Ok(permit);
        }
        let _waiting = metrics::GaugeHeld::connect_waiting();
        match tokio::time::timeout(self.max_wait, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; a timeout is the only way out.
            _ => Err(Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn no_more_than_the_concurrency_run_at_once_and_the_rest_wait_their_turn() {
        let pacer = Arc::new(ConnectPacer::new(3, Duration::from_secs(10)));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (pacer, running, most) = (pacer.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    let _turn = pacer.turn().await.expect("a turn within 10 s");
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_connect_that_waits_too_long_is_told_the_node_is_busy() {
        let pacer = ConnectPacer::new(1, Duration::from_millis(50));
        let held = pacer.turn().await.unwrap();
        assert_eq!(pacer.turn().await.err(), Some(Busy));
        drop(held);
        assert!(pacer.turn().await.is_ok());
    }

    #[tokio::test]
    async fn zero_means_no_gate() {
        let pacer = ConnectPacer::new(0, Duration::from_millis(1));
        let turns: Vec<_> = futures::future::join_all((0..1000).map(|_| pacer.turn())).await;
        assert!(turns.iter().all(Result::is_ok));
    }
}
