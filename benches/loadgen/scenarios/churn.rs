//! `churn`: clients connecting and disconnecting all the time while broadcasts flow. Churning
//! clients live for a jittered lifetime, pause a jittered delay and come back; every
//! `--storm-every` seconds all of them drop at once and reconnect within the jittered delay (a
//! reconnection storm, as after a deploy or a network blip). A stable subset stays connected
//! throughout, and loss is measured on it: churn must not cost the steady sockets anything.

use crate::cli::ChurnArgs;
use crate::client::{self, Connect, Driver, End};
use crate::proto::{StreamKind, marker};
use crate::report;
use crate::run::{self, Ctx, Meter, per};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::watch;

fn jittered(mean_ms: u64, jitter: f64) -> Duration {
    let j = jitter.clamp(0.0, 1.0);
    let f = 1.0 - j + 2.0 * j * fastrand::f64();
    Duration::from_secs_f64(mean_ms as f64 * f / 1000.0)
}

pub async fn run(ctx: &Ctx, a: &ChurnArgs) -> anyhow::Result<Value> {
    let p = &a.pop;
    let stable = ((p.connections as f64 * a.stable_fraction.clamp(0.0, 1.0)).ceil() as usize)
        .clamp(p.tenants.min(p.connections), p.connections);
    let specs = super::plain_specs(ctx, stable, p.tenants, "student")?;
    ctx.set_phase("ramp-stable");
    let ramp = run::ramp(ctx, specs, p.connect_rate, p.connect_concurrency).await;
    let members = Arc::new(super::per_tenant(&ramp.connected, p.tenants));
    let mut handles = ramp.handles;

    ctx.set_phase("churn");
    let meter = Meter::start(&ctx.common.pids);
    let accepted_before = ctx.stats.accepted.load(Relaxed);
    let closed_before = ctx.stats.closed.load(Relaxed);
    let (storm_tx, storm_rx) = watch::channel(0u64);
    let mut churners = Vec::new();
    for i in stable..p.connections {
        let (t, user) = super::identity(i, p.tenants);
        let token = ctx.minter.mint(&user, Some(&ctx.tenant(t)), "student")?;
        let target = ctx.targets[ctx.node_for_client(i, p.tenants)].clone();
        let (stats, mut stop, storm) = (ctx.stats.clone(), ctx.stop.subscribe(), storm_rx.clone());
        let (lifetime, delay, jitter, timeout) = (
            a.lifetime_ms,
            a.reconnect_delay_ms,
            a.jitter,
            ctx.connect_timeout(),
        );
        churners.push(tokio::spawn(async move {
            // Spread the first connects over one lifetime so the churn starts steady, not as a storm.
            let first = Duration::from_secs_f64(fastrand::f64() * lifetime as f64 / 1000.0);
            if tokio::time::timeout(first, crate::stop::stopped(&mut stop))
                .await
                .is_ok()
            {
                return End::Closed;
            }
            loop {
                if let Connect::Connected(ws) =
                    client::connect(&target, &token, timeout, &stats).await
                {
                    let mut storm = storm.clone();
                    storm.mark_unchanged();
                    let d = Driver {
                        stats: stats.clone(),
                        shard: i,
                        accounted: false,
                        stop: stop.clone(),
                        storm: Some(storm),
                        until: Some(tokio::time::Instant::now() + jittered(lifetime, jitter)),
                        outgoing: None,
                    };
                    client::drive(ws, d).await;
                }
                if *stop.borrow() {
                    return End::Closed;
                }
                if tokio::time::timeout(jittered(delay, jitter), crate::stop::stopped(&mut stop))
                    .await
                    .is_ok()
                {
                    return End::Closed;
                }
            }
        }));
    }
    let storms = {
        let (every, mut stop) = (a.storm_every, ctx.stop.subscribe());
        tokio::spawn(async move {
            let mut n = 0u64;
            if every == 0 {
                return 0;
            }
            loop {
                if tokio::time::timeout(Duration::from_secs(every), crate::stop::stopped(&mut stop))
                    .await
                    .is_ok()
                {
                    break;
                }
                n += 1;
                let _ = storm_tx.send(n);
            }
            n
        })
    };

    let stats = ctx.stats.clone();
    let nodes = ctx.targets.len();
    let (started, wall) = run::pace(ctx, a.rate, Duration::from_secs(ctx.common.duration), |k| {
        let s = stats.stream(StreamKind::Broadcast);
        let seq = s.ledger.next_seq()?;
        let t = k as usize % p.tenants;
        let text = marker(StreamKind::Broadcast, seq, stats.now_us());
        s.sent.fetch_add(1, Relaxed);
        let (stats, members, api, tenant) = (
            stats.clone(),
            members.clone(),
            ctx.api.clone(),
            ctx.tenant(t),
        );
        let node = ctx.targets[(k as usize / p.tenants) % nodes].clone();
        Some(async move {
            let s = stats.stream(StreamKind::Broadcast);
            s.record_publish(seq, members[t], api.broadcast(&node, &tenant, &text).await);
        })
    })
    .await;
    ctx.set_phase("drain");
    let ledger = &ctx.stats.stream(StreamKind::Broadcast).ledger;
    let drained = run::drain(Duration::from_secs(ctx.common.drain), || ledger.complete()).await;
    let cost = meter.finish();
    let connects = (ctx.stats.accepted.load(Relaxed) - accepted_before) as f64;
    let closes = ctx.stats.closed.load(Relaxed) - closed_before;
    handles.extend(churners);
    run::shutdown(ctx, handles).await;
    let storm_count = storms.await.unwrap_or(0);
    Ok(json!({
        "stable_sockets": members.iter().sum::<u32>(),
        "churning_clients": p.connections - stable,
        "storms": storm_count,
        "connects_during_churn": connects,
        "connects_per_s": per(connects, cost.wall_s),
        "closes_during_churn": closes,
        "target_rate": a.rate,
        "broadcasts_started": started,
        "broadcasts_per_s": per(started as f64, wall.as_secs_f64()),
        "drain_s": drained.as_secs_f64(),
        "cost": report::cost_json(&cost, &[("cpu_ms_per_connect_incl_traffic", cost.cpu_s * 1000.0, connects)]),
    }))
}
