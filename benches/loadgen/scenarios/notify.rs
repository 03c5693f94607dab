//! `notify`: one socket per user; stored notifications to single users through
//! `POST /api/v1/notifications` at R/s. What it answers: latency from the POST to the user's
//! socket, loss, server CPU per stored-and-delivered notification, and whether the unread
//! counts the store keeps match what was sent.

use crate::cli::NotifyArgs;
use crate::proto::{StreamKind, marker};
use crate::report;
use crate::run::{self, Ctx, Meter, per};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;

pub async fn run(ctx: &Ctx, a: &NotifyArgs) -> anyhow::Result<Value> {
    let p = &a.pop;
    let specs = super::plain_specs(ctx, p.connections, p.tenants, "student")?;
    ctx.set_phase("ramp");
    let ramp = run::ramp(ctx, specs, p.connect_rate, p.connect_concurrency).await;
    let users: Arc<Vec<usize>> =
        Arc::new((0..p.connections).filter(|i| ramp.connected[*i]).collect());
    anyhow::ensure!(!users.is_empty(), "no socket connected; nothing to notify");
    let sent_to: Arc<Vec<AtomicU32>> =
        Arc::new((0..p.connections).map(|_| AtomicU32::new(0)).collect());
    tokio::time::sleep(Duration::from_secs(1)).await;

    ctx.set_phase("notify");
    let meter = Meter::start(&ctx.common.pids);
    let (started, wall) = publish(ctx, &users, p.tenants, &sent_to, a.rate).await;
    ctx.set_phase("drain");
    let ledger = &ctx.stats.stream(StreamKind::Notify).ledger;
    let drained = run::drain(Duration::from_secs(ctx.common.drain), || ledger.complete()).await;
    let cost = meter.finish();

    ctx.set_phase("check-unread");
    let (mut checked, mut mismatched, mut examples, mut check_errors) =
        (0u64, 0u64, Vec::new(), 0u64);
    for &i in users
        .iter()
        .filter(|i| sent_to[**i].load(Relaxed) > 0)
        .take(a.check_unread)
    {
        let (t, user) = super::identity(i, p.tenants);
        match ctx.api.unread(&ctx.targets[0], &ctx.tenant(t), &user).await {
            Ok(n) => {
                checked += 1;
                let want = u64::from(sent_to[i].load(Relaxed));
                mismatched += u64::from(n != want);
                if n != want && examples.len() < 10 {
                    examples.push(
                        json!({ "tenant": ctx.tenant(t), "user": user, "unread": n, "sent": want }),
                    );
                }
            }
            Err(_) => check_errors += 1,
        }
    }
    run::shutdown(ctx, ramp.handles).await;

    let accepted = ctx.stats.stream(StreamKind::Notify).accepted.load(Relaxed) as f64;
    let delivered = ledger.tally().delivered as f64;
    Ok(json!({
        "connected": users.len(),
        "target_rate": a.rate,
        "notifications_started": started,
        "notifications_per_s": per(started as f64, wall.as_secs_f64()),
        "publish_s": wall.as_secs_f64(),
        "drain_s": drained.as_secs_f64(),
        "cost": report::cost_json(&cost, &[
            ("cpu_ms_per_notification", cost.cpu_s * 1000.0, accepted),
            ("cpu_s_per_1m_deliveries", cost.cpu_s * 1e6, delivered),
        ]),
        "cpu_ms_per_notification": per(cost.cpu_s * 1000.0, accepted),
        "unread_check": { "users_checked": checked, "mismatches": mismatched, "examples": examples, "errors": check_errors },
    }))
}

/// Stored notifications to single users at `rate` per second for the run's duration, one after
/// another over `users` (sockets of a population of `tenants` tenants), each marked for the
/// ledger; `sent_to[i]` counts those accepted for socket i. Returns how many were started and
/// the wall time, as [`run::pace`] does.
pub async fn publish(
    ctx: &Ctx,
    users: &Arc<Vec<usize>>,
    tenants: usize,
    sent_to: &Arc<Vec<AtomicU32>>,
    rate: f64,
) -> (u64, Duration) {
    let stats = ctx.stats.clone();
    let nodes = ctx.targets.len();
    run::pace(ctx, rate, Duration::from_secs(ctx.common.duration), |k| {
        let s = stats.stream(StreamKind::Notify);
        let seq = s.ledger.next_seq()?;
        let i = users[k as usize % users.len()];
        let (t, user) = super::identity(i, tenants);
        let tenant = ctx.tenant(t);
        let id = format!("{}-n{seq}", ctx.run_id);
        let text = marker(StreamKind::Notify, seq, stats.now_us());
        s.sent.fetch_add(1, Relaxed);
        // Posted to a node other than the user's when there are several: the delivery crosses nodes.
        let node = ctx.targets[(ctx.node_for_client(i, tenants) + 1) % nodes].clone();
        let (stats, api, sent_to) = (stats.clone(), ctx.api.clone(), sent_to.clone());
        Some(async move {
            let s = stats.stream(StreamKind::Notify);
            if s.record_publish(seq, 1, api.notify(&node, &tenant, &user, &id, &text).await) {
                sent_to[i].fetch_add(1, Relaxed);
            }
        })
    })
    .await
}
