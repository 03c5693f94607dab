//! `noisy`: fair sharing between tenants (issue 10). Victim tenants' sockets receive stored
//! notifications at a modest rate, measured end to end exactly as `notify` measures them, in two
//! phases of `--duration` each: first alone ("quiet"), then while one noisy tenant's backend
//! floods the service API (many `userIds`, a big `data`, as fast as it can or at a set rate) and
//! its sockets flood events. What it answers: how much the noisy tenant raises the victims'
//! notification latency (p50, p99 and the p99 ratio; the target is at most 2x), whether the
//! victims lose anything, and what the noise achieved (calls by status, events acked or refused).
//!
//! The victims' notifications are sent with the run's super-admin token, as `notify` sends them;
//! the noise is sent with a service token of the noisy tenant, so per-tenant limits apply to it.
//! The noise comes from a child process (`noise_child`) unless `--noise-in-process` is given.

use super::noise_child::{self, NoiseChild};
use crate::api::Api;
use crate::cli::NoisyArgs;
use crate::client::Outgoing;
use crate::latency::summarize;
use crate::ledger::Tally;
use crate::proto::StreamKind;
use crate::report;
use crate::run::{self, Ctx, Meter, Spec, per};
use crate::stats::{AckKind, Counts};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The victims' notify stream at the end of a phase.
struct Mark {
    latency: Histogram<u64>,
    tally: Tally,
    accepted: u64,
    errors: BTreeMap<String, u64>,
}

fn mark(ctx: &Ctx) -> Mark {
    let s = ctx.stats.stream(StreamKind::Notify);
    Mark {
        latency: s.latency.merged(),
        tally: s.ledger.tally(),
        accepted: s.accepted.load(Relaxed),
        errors: s.errors.snapshot(),
    }
}

/// One phase's figures: what happened between `before` and `after`.
fn phase_json(
    before: Option<&Mark>,
    after: &Mark,
    started: u64,
    wall: Duration,
    cost: &run::Cost,
) -> Value {
    let mut latency = after.latency.clone();
    let mut errors = after.errors.clone();
    let (mut accepted, mut delivered, mut lost) =
        (after.accepted, after.tally.delivered, after.tally.lost);
    if let Some(b) = before {
        // Both marks hold the same bounds, and `after` counts everything `before` does.
        let _ = latency.subtract(&b.latency);
        for (k, v) in &b.errors {
            if let Some(e) = errors.get_mut(k) {
                *e = e.saturating_sub(*v);
            }
        }
        errors.retain(|_, v| *v > 0);
        accepted = accepted.saturating_sub(b.accepted);
        delivered = delivered.saturating_sub(b.tally.delivered);
        lost = lost.saturating_sub(b.tally.lost);
    }
    json!({
        "notifications_started": started,
        "notifications_per_s": per(started as f64, wall.as_secs_f64()),
        "accepted": accepted,
        "errors": errors,
        "delivered": delivered,
        "lost": lost,
        "latency": summarize(&latency),
        "cost": report::cost_json(cost, &[]),
    })
}

/// The noisy tenant at work until stopped.
struct Noise {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    calls: Arc<AtomicU64>,
    outcomes: Arc<Counts>,
    events_offered: Arc<AtomicU64>,
    events_not_queued: Arc<AtomicU64>,
    t0: Instant,
}

fn start_noise(
    ctx: &Ctx,
    a: &NoisyArgs,
    api: Arc<Api>,
    tenant: String,
    feeds: Vec<mpsc::Sender<Outgoing>>,
) -> Noise {
    let (stop, _) = watch::channel(false);
    let calls = Arc::new(AtomicU64::new(0));
    let outcomes = Arc::new(Counts::default());
    let events_offered = Arc::new(AtomicU64::new(0));
    let events_not_queued = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    // However fast the server answers (a 429 is cheap), the noise stays finite.
    let max_calls = (crate::cli::MAX_RATE as u64) * ctx.common.duration;
    let users: Arc<Vec<String>> = Arc::new((0..a.noise_users).map(|u| format!("nu{u}")).collect());
    let ticket = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..a.noise_concurrency {
        let (api, tenant, users, ticket) =
            (api.clone(), tenant.clone(), users.clone(), ticket.clone());
        let (calls, outcomes, targets) = (calls.clone(), outcomes.clone(), ctx.targets.clone());
        let (rate, data_bytes, mut stop_rx) = (a.noise_rate, a.noise_data_bytes, stop.subscribe());
        tasks.push(tokio::spawn(async move {
            loop {
                let k = ticket.fetch_add(1, Relaxed);
                if k >= max_calls || *stop_rx.borrow() {
                    break;
                }
                if rate > 0.0 {
                    let due = t0 + Duration::from_secs_f64(k as f64 / rate);
                    tokio::select! {
                        _ = tokio::time::sleep_until(due.into()) => {}
                        _ = crate::stop::stopped(&mut stop_rx) => break,
                    }
                }
                let node = &targets[k as usize % targets.len()];
                let outcome = api.notify_many(node, &tenant, &users, data_bytes).await;
                calls.fetch_add(1, Relaxed);
                outcomes.add(match &outcome {
                    Ok(()) => "HTTP 202",
                    Err(e) => e,
                });
            }
        }));
    }
    if a.noise_event_rate > 0.0 {
        let every = Duration::from_secs_f64(1.0 / a.noise_event_rate);
        for tx in feeds {
            let (offered, not_queued, mut stop_rx) = (
                events_offered.clone(),
                events_not_queued.clone(),
                stop.subscribe(),
            );
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = crate::stop::stopped(&mut stop_rx) => break,
                    }
                    offered.fetch_add(1, Relaxed);
                    let ev = Outgoing {
                        kind: AckKind::Count,
                        payload: json!({}),
                    };
                    match tx.try_send(ev) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            not_queued.fetch_add(1, Relaxed);
                        }
                        // The socket is gone (the server cut it off): nothing left to flood with.
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                    }
                }
            }));
        }
    }
    Noise {
        stop,
        tasks,
        calls,
        outcomes,
        events_offered,
        events_not_queued,
        t0,
    }
}

impl Noise {
    async fn finish(self, a: &NoisyArgs) -> Value {
        let _ = self.stop.send(true);
        let wall = self.t0.elapsed();
        let _ = tokio::time::timeout(
            Duration::from_secs(30),
            futures::future::join_all(self.tasks),
        )
        .await;
        let calls = self.calls.load(Relaxed);
        json!({
            "api_calls": calls,
            "api_calls_per_s": per(calls as f64, wall.as_secs_f64()),
            "api_outcomes": self.outcomes.snapshot(),
            "recipients_per_call": a.noise_users,
            "data_bytes_per_call": a.noise_data_bytes,
            "target_rate": a.noise_rate,
            "concurrency": a.noise_concurrency,
            "sockets": a.noise_sockets,
            "events_offered": self.events_offered.load(Relaxed),
            "events_not_queued": self.events_not_queued.load(Relaxed),
        })
    }
}

/// The noisy tenant's sockets (users `nu0`, `nu1`, … among its calls' recipients), with the
/// feeds their floods are offered through; `first` is the index of the first spec.
fn noisy_specs(
    ctx: &Ctx,
    a: &NoisyArgs,
    tenant: &str,
    first: usize,
) -> anyhow::Result<(Vec<Spec>, Vec<mpsc::Sender<Outgoing>>)> {
    let mut specs = Vec::with_capacity(a.noise_sockets);
    let mut feeds = Vec::with_capacity(a.noise_sockets);
    for j in 0..a.noise_sockets {
        let (tx, rx) = mpsc::channel(256);
        feeds.push(tx);
        specs.push(Spec {
            index: first + j,
            node: j % ctx.targets.len(),
            token: ctx
                .minter
                .mint(&format!("nu{j}"), Some(tenant), "student")?,
            accounted: false,
            outgoing: Some(rx),
        });
    }
    Ok((specs, feeds))
}

/// The noisy tenant's backend: a service token of its own, so per-tenant limits apply.
fn noisy_api(ctx: &Ctx, a: &NoisyArgs, tenant: &str) -> anyhow::Result<Arc<Api>> {
    Ok(Arc::new(Api::new(
        &ctx.minter.mint("noisy-backend", Some(tenant), "service")?,
        a.noise_concurrency,
    )?))
}

/// Where the noise of the noisy phase comes from.
enum Source {
    InProcess(Noise),
    Child(Box<NoiseChild>),
}

impl Source {
    async fn finish(self, a: &NoisyArgs) -> Value {
        match self {
            Source::InProcess(noise) => noise.finish(a).await,
            Source::Child(child) => child.finish().await,
        }
    }
}

/// The child's whole run (`--noise-only`): connect the noisy sockets, say so, make noise for
/// `--duration` seconds, report.
async fn noise_only(ctx: &Ctx, a: &NoisyArgs) -> anyhow::Result<Value> {
    let p = &a.pop;
    let tenant = ctx.tenant(p.tenants);
    let (specs, feeds) = noisy_specs(ctx, a, &tenant, 0)?;
    let api = noisy_api(ctx, a, &tenant)?;
    ctx.set_phase("ramp");
    let ramp = run::ramp(ctx, specs, p.connect_rate, p.connect_concurrency).await;
    let connected = ramp.connected.iter().filter(|c| **c).count();
    ctx.set_phase("noisy");
    let noise = start_noise(ctx, a, api, tenant, feeds);
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", noise_child::READY)?;
        out.flush()?;
    }
    tokio::time::sleep(Duration::from_secs(ctx.common.duration)).await;
    let mut report = noise.finish(a).await;
    report["sockets_connected"] = json!(connected);
    run::shutdown(ctx, ramp.handles).await;
    Ok(json!({ "noise": report }))
}

pub async fn run(ctx: &Ctx, a: &NoisyArgs) -> anyhow::Result<Value> {
    if a.noise_only {
        return noise_only(ctx, a).await;
    }
    let p = &a.pop;
    let noisy_tenant = ctx.tenant(p.tenants);
    let mut specs = super::plain_specs(ctx, p.connections, p.tenants, "student")?;
    // In process, the noisy sockets connect with the victims; a child connects its own.
    let feeds = if a.noise_in_process {
        let (noisy, feeds) = noisy_specs(ctx, a, &noisy_tenant, p.connections)?;
        specs.extend(noisy);
        feeds
    } else {
        Vec::new()
    };
    let backend = noisy_api(ctx, a, &noisy_tenant)?;
    ctx.set_phase("ramp");
    let ramp = run::ramp(ctx, specs, p.connect_rate, p.connect_concurrency).await;
    let users: Arc<Vec<usize>> =
        Arc::new((0..p.connections).filter(|i| ramp.connected[*i]).collect());
    anyhow::ensure!(
        !users.is_empty(),
        "no victim socket connected; nothing to measure"
    );
    let noisy_connected = ramp.connected[p.connections..]
        .iter()
        .filter(|c| **c)
        .count();
    let sent_to: Arc<Vec<AtomicU32>> =
        Arc::new((0..p.connections).map(|_| AtomicU32::new(0)).collect());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ledger = &ctx.stats.stream(StreamKind::Notify).ledger;
    let drain = Duration::from_secs(ctx.common.drain);

    ctx.set_phase("quiet");
    let meter = Meter::start(&ctx.common.pids);
    let (quiet_started, quiet_wall) =
        super::notify::publish(ctx, &users, p.tenants, &sent_to, a.rate).await;
    run::drain(drain, || ledger.complete()).await;
    let quiet_cost = meter.finish();
    let quiet = mark(ctx);

    ctx.set_phase("noisy");
    let noise = if a.noise_in_process {
        Source::InProcess(start_noise(ctx, a, backend, noisy_tenant.clone(), feeds))
    } else {
        Source::Child(Box::new(
            NoiseChild::start(
                &ctx.run_id,
                &noise_child::Placement {
                    cpus: a.noise_cpus.clone(),
                    nice: a.noise_nice,
                    idle: a.noise_idle,
                },
            )
            .await?,
        ))
    };
    // After the child's sockets have connected: the phase's cost is the noise's and the victims'.
    let meter = Meter::start(&ctx.common.pids);
    let (noisy_started, noisy_wall) =
        super::notify::publish(ctx, &users, p.tenants, &sent_to, a.rate).await;
    let noise = noise.finish(a).await;
    ctx.set_phase("drain");
    run::drain(drain, || ledger.complete()).await;
    let noisy_cost = meter.finish();
    let noisy = mark(ctx);
    run::shutdown(ctx, ramp.handles).await;

    let quiet_json = phase_json(None, &quiet, quiet_started, quiet_wall, &quiet_cost);
    let noisy_json = phase_json(Some(&quiet), &noisy, noisy_started, noisy_wall, &noisy_cost);
    let p99 = |v: &Value| v["latency"]["p99_ms"].as_f64().unwrap_or(0.0);
    let p50 = |v: &Value| v["latency"]["p50_ms"].as_f64().unwrap_or(0.0);
    let ratio = per(p99(&noisy_json), p99(&quiet_json));
    Ok(json!({
        "victim_connected": users.len(),
        "victim_tenants": p.tenants,
        "noisy_tenant": noisy_tenant,
        "noisy_connected": if a.noise_in_process {
            json!(noisy_connected)
        } else {
            noise["sockets_connected"].clone()
        },
        "target_rate": a.rate,
        "quiet_p50_ms": p50(&quiet_json),
        "quiet_p99_ms": p99(&quiet_json),
        "noisy_p50_ms": p50(&noisy_json),
        "noisy_p99_ms": p99(&noisy_json),
        "p99_ratio": ratio,
        "target_max_p99_ratio": 2.0,
        "within_target": ratio.is_some_and(|r| r <= 2.0),
        "quiet": quiet_json,
        "noisy": noisy_json,
        "noise": noise,
    }))
}
