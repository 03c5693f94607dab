//! The live counters every socket task and publisher writes to, read by the progress line and
//! the final report.
//!
//! Everything is an atomic, a sharded histogram or a rarely-touched map, so a delivery costs a
//! few uncontended atomic adds. Time is microseconds since the run's start on one monotonic
//! clock: sender and receivers live in this process, so a latency needs no clock sync.

use crate::latency::Latency;
use crate::ledger::Ledger;
use crate::proto::{Marker, StreamKind};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// One measured stream of messages (broadcasts, notifications, progress events).
pub struct StreamStats {
    pub ledger: Ledger,
    pub latency: Latency,
    /// Publish attempts.
    pub sent: AtomicU64,
    /// Publishes the server accepted (HTTP 202 / ack ok).
    pub accepted: AtomicU64,
    /// Publishes refused or failed, by reason.
    pub errors: Counts,
}

impl StreamStats {
    /// Records what the server said to publish `seq`: accepted, it is owed `recipients`
    /// deliveries; refused, the reason is counted. Returns whether it was accepted.
    pub fn record_publish(&self, seq: u64, recipients: u32, outcome: Result<(), String>) -> bool {
        match outcome {
            Ok(()) => {
                self.ledger.expect(seq, recipients);
                self.accepted
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.errors.add(&e);
                false
            }
        }
    }
}

/// Events the clients send and time by their ack.
#[derive(Clone, Copy, Debug)]
pub enum AckKind {
    CourseJoin,
    CourseLeave,
    PresenceList,
    Progress,
    Count,
    AdminBroadcast,
}

impl AckKind {
    pub const ALL: [AckKind; 6] = [
        AckKind::CourseJoin,
        AckKind::CourseLeave,
        AckKind::PresenceList,
        AckKind::Progress,
        AckKind::Count,
        AckKind::AdminBroadcast,
    ];

    pub fn event(self) -> &'static str {
        match self {
            AckKind::CourseJoin => "course:join",
            AckKind::CourseLeave => "course:leave",
            AckKind::PresenceList => "presence:list",
            AckKind::Progress => "progress:content",
            AckKind::Count => "notification:count",
            AckKind::AdminBroadcast => "admin:broadcast",
        }
    }
}

#[derive(Default)]
pub struct AckStats {
    pub sent: AtomicU64,
    pub ok: AtomicU64,
    pub refused: Counts,
    pub latency: Latency,
}

/// A small map of reason -> count (refusal codes, error kinds): rare events only.
#[derive(Default)]
pub struct Counts(Mutex<BTreeMap<String, u64>>);

impl Counts {
    pub fn add(&self, reason: &str) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(reason.to_string()).or_default() += 1;
    }
    pub fn total(&self) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

pub struct Stats {
    start: Instant,
    pub attempts: AtomicU64,
    pub accepted: AtomicU64,
    pub refused: Counts,
    pub failed: Counts,
    pub connected: AtomicI64,
    /// Sockets the server closed (or whose transport broke) while the run still wanted them.
    pub unexpected_disconnects: Counts,
    /// Sockets this process closed on purpose (churn, end of run).
    pub closed: AtomicU64,
    pub connect_latency: Latency,
    pub streams: [StreamStats; 3],
    pub acks: [AckStats; AckKind::ALL.len()],
    /// Every event frame received, measured or not.
    pub events_received: AtomicU64,
    /// Deliveries seen by sockets that are not accounted (churning clients).
    pub unaccounted_deliveries: AtomicU64,
    drop_every: u64,
    drop_counter: AtomicU64,
    pub debug_dropped: AtomicU64,
}

impl Stats {
    /// `capacity[i]`: the most messages stream i may publish in this run.
    pub fn new(capacity: [usize; 3], drop_every: u64) -> Self {
        let stream = |c: usize| StreamStats {
            ledger: Ledger::new(c),
            latency: Latency::default(),
            sent: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            errors: Counts::default(),
        };
        Stats {
            start: Instant::now(),
            attempts: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            refused: Counts::default(),
            failed: Counts::default(),
            connected: AtomicI64::new(0),
            unexpected_disconnects: Counts::default(),
            closed: AtomicU64::new(0),
            connect_latency: Latency::default(),
            streams: capacity.map(stream),
            acks: Default::default(),
            events_received: AtomicU64::new(0),
            unaccounted_deliveries: AtomicU64::new(0),
            drop_every,
            drop_counter: AtomicU64::new(0),
            debug_dropped: AtomicU64::new(0),
        }
    }

    /// Microseconds since the run started.
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    pub fn stream(&self, kind: StreamKind) -> &StreamStats {
        &self.streams[kind.index()]
    }

    pub fn ack(&self, kind: AckKind) -> &AckStats {
        &self.acks[kind as usize]
    }

    /// An accounted socket (`shard` = its index) received the message a marker names.
    pub fn delivered(&self, shard: usize, m: Marker) {
        if self.drop_every > 0
            && (self.drop_counter.fetch_add(1, Relaxed) + 1).is_multiple_of(self.drop_every)
        {
            self.debug_dropped.fetch_add(1, Relaxed);
            return;
        }
        let s = self.stream(m.stream);
        s.ledger.receive(m.seq);
        s.latency
            .record(shard, self.now_us().saturating_sub(m.sent_us));
    }
}
