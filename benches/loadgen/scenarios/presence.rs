//! `presence` (issue 13): what presence costs. One course of `--connections` students (one
//! tenant, enrolled through the service API before anyone connects) and its instructor:
//! - ramp: server CPU per connect, each connect writing the user's tenant and course presence;
//! - updates: students leave and rejoin the course room (`course:leave` + `course:join`,
//!   two presence updates per pair) at `--rate` pairs/s: achieved updates/s and CPU each;
//! - list: the instructor asks `presence:list` for the whole course at `--list-rate`/s: the
//!   ack latency (p50/p99 in `acks`);
//! - close: every socket disconnects at once: server CPU per disconnect.
//!
//! Run it twice, against nodes with `PRESENCE_ENABLED=true` and `=false`, to read what
//! presence adds (docs/benchmarks.md). Redis memory per online user is read outside, with
//! `redis-cli info memory` before the run and while the list phase runs.

use crate::cli::PresenceArgs;
use crate::client::Outgoing;
use crate::report;
use crate::run::{self, Ctx, Meter, Spec, per};
use crate::stats::AckKind;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::mpsc;

const COURSE: &str = "c0";
const INSTRUCTOR: &str = "instructor0";

fn queue(tx: &mpsc::Sender<Outgoing>, kind: AckKind) -> bool {
    tx.try_send(Outgoing {
        kind,
        payload: json!({ "courseId": COURSE }),
    })
    .is_ok()
}

pub async fn run(ctx: &Ctx, a: &PresenceArgs) -> anyhow::Result<Value> {
    let n = a.pop.connections;
    let tenant = ctx.tenant(0);
    let mut roster: Vec<(String, &str)> = (0..n).map(|i| (format!("u{i}"), "student")).collect();
    roster.push((INSTRUCTOR.to_owned(), "instructor"));
    ctx.set_phase("enroll");
    ctx.api
        .put_members(&ctx.targets[0], &tenant, COURSE, &roster)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "enrolling {n} students (nodes need MAX_HTTP_BODY_BYTES >= {} for one call): {e}",
                n * 40 + 1024
            )
        })?;

    let mut specs = Vec::with_capacity(n + 1);
    let mut senders = Vec::with_capacity(n + 1);
    for i in 0..=n {
        let (user, role) = if i == n {
            (INSTRUCTOR.to_owned(), "instructor")
        } else {
            (format!("u{i}"), "student")
        };
        let (tx, rx) = mpsc::channel(64);
        senders.push(tx);
        specs.push(Spec {
            index: i,
            node: i % ctx.targets.len(),
            token: ctx.minter.mint(&user, Some(&tenant), role)?,
            accounted: false,
            outgoing: Some(rx),
        });
    }
    ctx.set_phase("ramp");
    let ramp_meter = Meter::start(&ctx.common.pids);
    let ramp = run::ramp(ctx, specs, a.pop.connect_rate, a.pop.connect_concurrency).await;
    // Let the presence queues write what the connects queued before the phase is metered.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ramp_cost = ramp_meter.finish();
    let connected = ramp.connected.iter().filter(|c| **c).count();
    let students: Arc<Vec<usize>> = Arc::new((0..n).filter(|i| ramp.connected[*i]).collect());
    anyhow::ensure!(!students.is_empty(), "no student connected");
    anyhow::ensure!(ramp.connected[n], "the instructor did not connect");
    let senders = Arc::new(senders);
    let dur = Duration::from_secs(ctx.common.duration);

    ctx.set_phase("updates");
    let meter = Meter::start(&ctx.common.pids);
    let (pairs, updates_wall) = run::pace(ctx, a.rate, dur, |_| {
        let i = students[fastrand::usize(..students.len())];
        // Leave then join: two presence updates, in order on the one socket.
        if queue(&senders[i], AckKind::CourseLeave) {
            queue(&senders[i], AckKind::CourseJoin);
        }
        Some(std::future::ready(()))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let updates_cost = meter.finish();
    let acked = |k: AckKind| ctx.stats.ack(k).ok.load(Relaxed) as f64;
    let updates = acked(AckKind::CourseLeave) + acked(AckKind::CourseJoin);

    ctx.set_phase("list");
    let (lists, _) = run::pace(ctx, a.list_rate, dur, |_| {
        queue(&senders[n], AckKind::PresenceList);
        Some(std::future::ready(()))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    ctx.set_phase("close");
    let close_meter = Meter::start(&ctx.common.pids);
    run::shutdown(ctx, ramp.handles).await;
    // Disconnects queue presence leaves; give them time to reach the store.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let close_cost = close_meter.finish();
    let connects = connected as f64;
    Ok(json!({
        "course_size": n,
        "connected": connected,
        "ramp": report::cost_json(&ramp_cost, &[("cpu_ms_per_connect", ramp_cost.cpu_s * 1000.0, connects)]),
        "update_pairs_started": pairs,
        "updates_acked": updates,
        "updates_per_s": per(updates, updates_wall.as_secs_f64()),
        "updates": report::cost_json(&updates_cost, &[("cpu_ms_per_update_incl_event", updates_cost.cpu_s * 1000.0, updates)]),
        "lists_started": lists,
        "close": report::cost_json(&close_cost, &[("cpu_ms_per_disconnect", close_cost.cpu_s * 1000.0, connects)]),
    }))
}
