//! One status line per second on stderr, so a person watching a run sees it move (and sees a
//! stall, a refusal storm or a loss as it happens); stdout stays for the JSON result alone.

use crate::proto::StreamKind;
use crate::stats::{AckKind, Stats};
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Starts the printer; abort the handle to stop it.
pub fn spawn(
    scenario: &'static str,
    stats: Arc<Stats>,
    phase: Arc<Mutex<&'static str>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let t0 = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let mut last_sent = [0u64; 3];
        let mut last_recv = [0u64; 3];
        let mut last_events = 0u64;
        let mut last_acks = 0u64;
        loop {
            tick.tick().await;
            let p = *phase.lock().unwrap_or_else(|e| e.into_inner());
            let mut line = format!(
                "[{:>4}s] {scenario}:{p} conns={} ok={} refused={} failed={} dropped={}",
                t0.elapsed().as_secs(),
                stats.connected.load(Relaxed),
                stats.accepted.load(Relaxed),
                stats.refused.total(),
                stats.failed.total(),
                stats.unexpected_disconnects.total(),
            );
            for k in StreamKind::ALL {
                let s = stats.stream(k);
                let sent = s.sent.load(Relaxed);
                let recv = s.ledger.received_so_far();
                if sent > 0 {
                    let _ = write!(
                        line,
                        " | {} {}/s sent, {}/s recv, {} err",
                        k.name(),
                        sent - last_sent[k.index()],
                        recv.saturating_sub(last_recv[k.index()]),
                        s.errors.total()
                    );
                }
                last_sent[k.index()] = sent;
                last_recv[k.index()] = recv;
            }
            let acks: u64 = AckKind::ALL
                .iter()
                .map(|k| stats.ack(*k).sent.load(Relaxed))
                .sum();
            if acks > 0 {
                let _ = write!(line, " | acks {}/s", acks - last_acks);
            }
            last_acks = acks;
            let events = stats.events_received.load(Relaxed);
            let _ = write!(line, " | events {}/s", events - last_events);
            last_events = events;
            eprintln!("{line}");
        }
    })
}
