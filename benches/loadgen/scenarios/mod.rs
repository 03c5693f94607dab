//! The five scenarios of the benchmark issue, `noisy` (fair sharing, issue 10), `presence`
//! (issue 13) and `recovery` (issue 12), one module
//! each; they share `run` for ramping, pacing and metering, and each returns its own JSON
//! section for the result line.

pub mod churn;
pub mod connect;
pub mod fanout;
pub mod mixed;
pub mod noise_child;
pub mod noisy;
pub mod notify;
pub mod presence;
pub mod recovery;

use crate::proto::{StreamKind, marker};
use crate::run::{Ctx, Spec};
use crate::stats::Stats;
use std::sync::atomic::Ordering::Relaxed;

/// Client `i` of a population of `tenants` tenants: its tenant index and its user id there.
pub fn identity(i: usize, tenants: usize) -> (usize, String) {
    (i % tenants, format!("u{}", i / tenants))
}

/// Specs for plain accounted sockets 0..n with `role`, spread over tenants and nodes.
pub fn plain_specs(ctx: &Ctx, n: usize, tenants: usize, role: &str) -> anyhow::Result<Vec<Spec>> {
    (0..n)
        .map(|i| {
            let (t, user) = identity(i, tenants);
            Ok(Spec {
                index: i,
                node: ctx.node_for_client(i, tenants),
                token: ctx.minter.mint(&user, Some(&ctx.tenant(t)), role)?,
                accounted: true,
                outgoing: None,
            })
        })
        .collect()
}

/// Connected accounted sockets per tenant, from a ramp's outcome.
pub fn per_tenant(connected: &[bool], tenants: usize) -> Vec<u32> {
    let mut counts = vec![0u32; tenants];
    for (i, ok) in connected.iter().enumerate() {
        if *ok {
            counts[i % tenants] += 1;
        }
    }
    counts
}

/// Ledger capacity for `rate` messages per second over `secs` seconds, with headroom.
pub fn capacity(rate: f64, secs: u64) -> usize {
    ((rate * secs as f64 * 1.05) as usize + 64).min(20_000_000)
}

/// The `k`-th tenant broadcast of a run: its ledger sequence, its tenant index (round-robin
/// over `tenants`) and the marker text to send; counted as sent. `None` once the ledger is
/// full.
pub fn next_broadcast(stats: &Stats, k: u64, tenants: usize) -> Option<(u64, usize, String)> {
    let s = stats.stream(StreamKind::Broadcast);
    let seq = s.ledger.next_seq()?;
    let text = marker(StreamKind::Broadcast, seq, stats.now_us());
    s.sent.fetch_add(1, Relaxed);
    Some((seq, (k as usize) % tenants, text))
}
