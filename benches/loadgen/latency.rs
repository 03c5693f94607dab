//! Latency histograms shared by thousands of socket tasks.
//!
//! One `hdrhistogram` per shard behind a plain mutex: a recording holds the lock for a few tens
//! of nanoseconds, and sockets are spread over the shards by their index, so contention stays
//! negligible on a couple of cores. Values are microseconds; summaries are in milliseconds.

use hdrhistogram::Histogram;
use std::sync::Mutex;

const SHARDS: usize = 16;
/// One hour in µs: anything slower is recorded as an hour (saturating), never dropped.
const MAX_US: u64 = 3_600_000_000;

pub struct Latency {
    shards: Vec<Mutex<Histogram<u64>>>,
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds are valid")
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            shards: (0..SHARDS).map(|_| Mutex::new(new_hist())).collect(),
        }
    }
}

impl Latency {
    /// Records one sample of `us` microseconds; `shard` is any number stable per recorder.
    pub fn record(&self, shard: usize, us: u64) {
        let mut h = self.shards[shard % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        h.saturating_record(us.max(1));
    }

    /// All shards merged.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = new_hist();
        for s in &self.shards {
            let h = s.lock().unwrap_or_else(|p| p.into_inner());
            all.add(&*h).expect("same bounds");
        }
        all
    }

    pub fn summary(&self) -> Summary {
        summarize(&self.merged())
    }
}

/// Percentiles of a histogram of microseconds, in milliseconds (zeros when empty).
pub fn summarize(h: &Histogram<u64>) -> Summary {
    if h.is_empty() {
        return Summary::default();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Summary {
        count: h.len(),
        p50_ms: ms(h.value_at_quantile(0.50)),
        p95_ms: ms(h.value_at_quantile(0.95)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
        mean_ms: h.mean() / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_every_shard() {
        let l = Latency::default();
        for i in 1..=100u64 {
            l.record(i as usize, i * 1000); // 1..=100 ms, spread over the shards
        }
        let s = l.summary();
        assert_eq!(s.count, 100);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.p95_ms - 95.0).abs() < 0.1, "{s:?}");
        assert!((s.p99_ms - 99.0).abs() < 0.1, "{s:?}");
        assert!((s.max_ms - 100.0).abs() < 0.1, "{s:?}");
        assert!((s.mean_ms - 50.5).abs() < 0.1, "{s:?}");
    }

    #[test]
    fn an_empty_histogram_summarizes_to_zeros() {
        assert_eq!(Latency::default().summary(), Summary::default());
    }

    #[test]
    fn absurd_values_saturate_instead_of_vanishing() {
        let l = Latency::default();
        l.record(0, u64::MAX);
        l.record(0, 0);
        assert_eq!(l.summary().count, 2);
    }
}
