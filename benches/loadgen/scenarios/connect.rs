//! `connect`: ramp N authenticated sockets at a rate and hold them. What it answers: how long a
//! connect takes (p50/p95/p99), how many are refused, and what one connection costs the server
//! in CPU (JWT check + room joins) and in resident memory.

use crate::cli::ConnectArgs;
use crate::report;
use crate::run::{self, Ctx, Meter, per};
use serde_json::{Value, json};
use std::time::Duration;

pub async fn run(ctx: &Ctx, a: &ConnectArgs) -> anyhow::Result<Value> {
    let p = &a.pop;
    let specs = super::plain_specs(ctx, p.connections, p.tenants, "student")?;
    let meter = Meter::start(&ctx.common.pids);
    ctx.set_phase("ramp");
    let ramp = run::ramp(ctx, specs, p.connect_rate, p.connect_concurrency).await;
    // Room joins and bookkeeping may finish just after the CONNECT answer.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let connect_cost = meter.finish();
    let connected = ramp.connected.iter().filter(|c| **c).count() as f64;
    ctx.set_phase("hold");
    tokio::time::sleep(Duration::from_secs(ctx.common.duration)).await;
    let hold_cost = meter.finish();
    run::shutdown(ctx, ramp.handles).await;
    let rss_growth = hold_cost.rss_after_bytes as f64 - hold_cost.rss_before_bytes as f64;
    Ok(json!({
        "ramp_s": ramp.wall.as_secs_f64(),
        "connected": connected,
        "connects_per_s": per(connected, ramp.wall.as_secs_f64()),
        "ramp_cost": report::cost_json(&connect_cost, &[("cpu_ms_per_connect", connect_cost.cpu_s * 1000.0, connected)]),
        "hold_cost": report::cost_json(&hold_cost, &[("rss_bytes_per_connection", rss_growth, connected)]),
        "cpu_ms_per_connect": per(connect_cost.cpu_s * 1000.0, connected),
        "rss_bytes_per_connection": per(rss_growth, connected),
    }))
}
