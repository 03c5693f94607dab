//! `fanout`: N sockets over T tenants on every node, tenant broadcasts at R/s. What it answers:
//! end-to-end delivery latency (the send time rides in the message), deliveries per second,
//! loss counted per message, and server CPU-seconds per million deliveries.

use crate::cli::{FanoutArgs, PublishVia};
use crate::client::Outgoing;
use crate::proto::StreamKind;
use crate::report;
use crate::run::{self, Ctx, Meter, Spec, per};
use crate::stats::AckKind;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub async fn run(ctx: &Ctx, a: &FanoutArgs) -> anyhow::Result<Value> {
    let p = &a.pop;
    let t_count = p.tenants;
    let mut specs = super::plain_specs(ctx, p.connections, t_count, "student")?;
    // With --via admin, one admin socket per tenant publishes; it is in the tenant room too.
    let mut admins = Vec::new();
    if a.via == PublishVia::Admin {
        for t in 0..t_count {
            let (tx, rx) = mpsc::channel(1024);
            admins.push(tx);
            let i = p.connections + t;
            specs.push(Spec {
                index: i,
                node: t % ctx.targets.len(),
                token: ctx
                    .minter
                    .mint(&format!("admin{t}"), Some(&ctx.tenant(t)), "admin")?,
                accounted: true,
                outgoing: Some(rx),
            });
        }
    }
    ctx.set_phase("ramp");
    let ramp_meter = Meter::start(&ctx.common.pids);
    let ramp = run::ramp(ctx, specs, p.connect_rate, p.connect_concurrency).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ramp_cost = ramp_meter.finish();
    let mut members = vec![0u32; t_count];
    for (i, ok) in ramp.connected.iter().enumerate() {
        if *ok {
            members[if i < p.connections {
                i % t_count
            } else {
                i - p.connections
            }] += 1;
        }
    }
    let members = Arc::new(members);

    ctx.set_phase("publish");
    let meter = Meter::start(&ctx.common.pids);
    let stats = ctx.stats.clone();
    let nodes = ctx.targets.len();
    let (started, wall) = run::pace(ctx, a.rate, Duration::from_secs(ctx.common.duration), |k| {
        let (seq, t, text) = super::next_broadcast(&stats, k, t_count)?;
        let (stats, members, api) = (stats.clone(), members.clone(), ctx.api.clone());
        let node = ctx.targets[(k as usize / t_count) % nodes].clone();
        let tenant = ctx.tenant(t);
        let admin = admins.get(t).cloned();
        Some(async move {
            let s = stats.stream(StreamKind::Broadcast);
            let outcome = match admin {
                None => api.broadcast(&node, &tenant, &text).await,
                Some(tx) => {
                    // The ack is timed by the admin socket; expectations are set at send time.
                    let payload = json!({ "title": "loadgen", "message": text });
                    tx.try_send(Outgoing {
                        kind: AckKind::AdminBroadcast,
                        payload,
                    })
                    .map_err(|_| "admin queue full".to_string())
                }
            };
            s.record_publish(seq, members[t], outcome);
        })
    })
    .await;
    ctx.set_phase("drain");
    let ledger = &ctx.stats.stream(StreamKind::Broadcast).ledger;
    let drained = run::drain(Duration::from_secs(ctx.common.drain), || ledger.complete()).await;
    let cost = meter.finish();
    run::shutdown(ctx, ramp.handles).await;

    let tally = ledger.tally();
    let delivered = tally.delivered as f64;
    let connected = ramp.connected.iter().filter(|c| **c).count() as f64;
    Ok(json!({
        "via": format!("{:?}", a.via).to_lowercase(),
        "connected": connected,
        "ramp_s": ramp.wall.as_secs_f64(),
        "ramp_cost": report::cost_json(&ramp_cost, &[("cpu_ms_per_connect", ramp_cost.cpu_s * 1000.0, connected)]),
        "target_rate": a.rate,
        "broadcasts_started": started,
        "broadcasts_per_s": per(started as f64, wall.as_secs_f64()),
        "publish_s": wall.as_secs_f64(),
        "drain_s": drained.as_secs_f64(),
        "deliveries_per_s": per(delivered, wall.as_secs_f64()),
        "cost": report::cost_json(&cost, &[("cpu_s_per_1m_deliveries", cost.cpu_s * 1e6, delivered)]),
        "cpu_s_per_1m_deliveries": per(cost.cpu_s * 1e6, delivered),
        "rss_bytes_per_connection": per(cost.rss_after_bytes as f64 - ramp_cost.rss_before_bytes as f64, connected),
    }))
}
