//! The per-socket event rate (§13), one keyed limiter for the node's sockets.
//!
//! A socket has a bucket here only while it sends events: a full bucket is the same as
//! none, so the buckets of sockets that went quiet are dropped at the next sweep and an
//! idle socket costs nothing. A limiter in each socket's session cost ~90 bytes per socket
//! (its clock, quota and state), idle or not.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use socketioxide::socket::Sid;

/// Buckets kept before the first sweep of quiet sockets' buckets.
const SWEEP_MIN: usize = 1024;

/// Events between two looks at the bucket count: counting them reads every shard of the
/// map, which is not work for every event.
const LOOK_EVERY: usize = 1024;

pub struct EventRate {
    limiter: DefaultKeyedRateLimiter<Sid>,
    /// The bucket count at which quiet sockets' buckets are dropped (twice what a sweep
    /// left, at least [`SWEEP_MIN`]): amortized, however many sockets send events.
    sweep_at: AtomicUsize,
    /// Events checked, for [`LOOK_EVERY`].
    checked: AtomicUsize,
}

impl EventRate {
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(rate_per_sec.max(1)).expect("max(1)");
        let burst = NonZeroU32::new(burst.max(1)).expect("max(1)");
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            sweep_at: AtomicUsize::new(SWEEP_MIN),
            checked: AtomicUsize::new(0),
        }
    }

    /// Whether socket `sid` may send one more event now.
    pub fn allows(&self, sid: &Sid) -> bool {
        let nth = self.checked.fetch_add(1, Ordering::Relaxed);
        if nth % LOOK_EVERY == LOOK_EVERY - 1
            && self.limiter.len() >= self.sweep_at.load(Ordering::Relaxed)
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
            let next = (self.limiter.len() * 2).max(SWEEP_MIN);
            self.sweep_at.store(next, Ordering::Relaxed);
        }
        self.limiter.check_key(sid).is_ok()
    }

    /// Buckets held (sockets that sent events lately).
    pub fn held(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_socket_has_its_own_bucket() {
        let rate = EventRate::new(1, 2);
        let (a, b) = (Sid::new(), Sid::new());
        assert!(rate.allows(&a) && rate.allows(&a));
        assert!(!rate.allows(&a), "a's burst is spent");
        assert!(rate.allows(&b), "b's is not");
    }

    #[test]
    fn quiet_sockets_buckets_are_dropped_at_the_sweep() {
        let rate = EventRate::new(1_000_000, 1);
        for _ in 0..SWEEP_MIN {
            assert!(rate.allows(&Sid::new()));
        }
        assert_eq!(rate.held(), SWEEP_MIN);
        // At a million events per second each bucket is full again within a microsecond.
        std::thread::sleep(std::time::Duration::from_millis(5));
        let busy = Sid::new();
        for _ in 0..LOOK_EVERY {
            rate.allows(&busy);
        }
        assert!(rate.held() <= 1, "the quiet buckets went at the sweep");
    }
}
