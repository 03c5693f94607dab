//! The final result: one JSON object on one line, the same shape for every scenario plus the
//! scenario's own section, so that scripts (benches/cluster.sh) can pick fields with `jq`.

use crate::ledger::Tally;
use crate::proto::StreamKind;
use crate::run::{Cost, per};
use crate::stats::{AckKind, Stats};
use serde_json::{Map, Value, json};
use std::sync::atomic::Ordering::Relaxed;

/// Connections, connect latency, every stream that carried traffic and every ack kind used.
pub fn base(stats: &Stats) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "connections".into(),
        json!({
            "attempts": stats.attempts.load(Relaxed),
            "accepted": stats.accepted.load(Relaxed),
            "refused": stats.refused.total(),
            "refusals": stats.refused.snapshot(),
            "failed": stats.failed.total(),
            "failures": stats.failed.snapshot(),
            "unexpected_disconnects": stats.unexpected_disconnects.total(),
            "disconnect_reasons": stats.unexpected_disconnects.snapshot(),
            "closed_by_loadgen": stats.closed.load(Relaxed),
        }),
    );
    m.insert(
        "connect_latency".into(),
        json!(stats.connect_latency.summary()),
    );
    let mut streams = Map::new();
    for k in StreamKind::ALL {
        let s = stats.stream(k);
        if s.sent.load(Relaxed) == 0 {
            continue;
        }
        let t = s.ledger.tally();
        streams.insert(
            k.name().into(),
            stream_json(
                s.sent.load(Relaxed),
                s.accepted.load(Relaxed),
                &s.errors.snapshot(),
                &t,
                json!(s.latency.summary()),
            ),
        );
    }
    m.insert("streams".into(), Value::Object(streams));
    let mut acks = Map::new();
    for k in AckKind::ALL {
        let a = stats.ack(k);
        if a.sent.load(Relaxed) == 0 {
            continue;
        }
        acks.insert(
            k.event().into(),
            json!({
                "sent": a.sent.load(Relaxed),
                "ok": a.ok.load(Relaxed),
                "refused": a.refused.snapshot(),
                "unanswered": a.sent.load(Relaxed).saturating_sub(a.ok.load(Relaxed) + a.refused.total()),
                "latency": a.latency.summary(),
            }),
        );
    }
    m.insert("acks".into(), Value::Object(acks));
    m.insert(
        "events_received".into(),
        json!(stats.events_received.load(Relaxed)),
    );
    m.insert(
        "unaccounted_deliveries".into(),
        json!(stats.unaccounted_deliveries.load(Relaxed)),
    );
    m.insert(
        "debug_dropped".into(),
        json!(stats.debug_dropped.load(Relaxed)),
    );
    m
}

fn stream_json(
    sent: u64,
    accepted: u64,
    errors: &std::collections::BTreeMap<String, u64>,
    t: &Tally,
    latency: Value,
) -> Value {
    json!({
        "sent": sent,
        "accepted": accepted,
        "errors": errors,
        "messages": t.messages,
        "expected_deliveries": t.expected,
        "received_deliveries": t.received,
        "delivered": t.delivered,
        "duplicates": t.duplicates,
        "lost": t.lost,
        "loss_ratio": t.loss_ratio(),
        "messages_with_loss": t.messages_with_loss,
        "unknown": t.unknown,
        "latency": latency,
    })
}

/// Server cost of a phase, with the per-unit figures for `units` (deliveries, connects, ...).
pub fn cost_json(c: &Cost, units: &[(&str, f64, f64)]) -> Value {
    let mut m = Map::new();
    m.insert("wall_s".into(), json!(c.wall_s));
    m.insert("server_cpu_s".into(), json!(c.cpu_s));
    m.insert("server_cpu_util".into(), json!(per(c.cpu_s, c.wall_s)));
    m.insert("rss_before_bytes".into(), json!(c.rss_before_bytes));
    m.insert("rss_after_bytes".into(), json!(c.rss_after_bytes));
    m.insert(
        "per_pid".into(),
        json!(
            c.per_pid
                .iter()
                .map(|(p, cpu, rss)| json!({"pid": p, "cpu_s": cpu, "rss_bytes": rss}))
                .collect::<Vec<_>>()
        ),
    );
    if !c.missing_pids.is_empty() {
        m.insert("missing_pids".into(), json!(c.missing_pids));
    }
    m.insert("loadgen_cpu_s".into(), json!(c.loadgen_cpu_s));
    m.insert("loadgen_rss_bytes".into(), json!(c.loadgen_rss_bytes));
    for (name, numerator, denominator) in units {
        m.insert((*name).into(), json!(per(*numerator, *denominator)));
    }
    Value::Object(m)
}
