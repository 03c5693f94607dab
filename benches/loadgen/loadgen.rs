//! `lms-loadgen`: the load generator of lms-realtime, for load testers and for our own
//! benchmarks against the Node baseline (benches/cluster.sh, docs/benchmarks.md).
//!
//! This file only wires things: parse the command line, refuse non-loopback targets, mint the
//! service token, check the nodes answer, run one scenario under a hard deadline, and print the
//! result as one JSON line on stdout. Exit status: 0 when the run completed (whatever it
//! measured), 2 when it could not start or hit its deadline.

mod api;
mod cli;
mod client;
mod latency;
mod ledger;
mod procfs;
mod progress;
mod proto;
mod report;
mod run;
mod scenarios;
mod stats;
mod stop;
mod target;
mod token;

use clap::Parser;
use cli::{Cli, Common, Population, Scenario};
use proto::StreamKind;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn main() {
    let cli = Cli::parse();
    let (common, pop, rates) = parts(&cli.scenario);
    let noisy = match &cli.scenario {
        Scenario::Noisy(a) => cli::validate_noisy(a),
        _ => Ok(()),
    };
    if let Err(e) = cli::validate(common, pop, &rates).and(noisy) {
        eprintln!("lms-loadgen: {e}");
        std::process::exit(2);
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if common.threads > 0 {
        rt.worker_threads(common.threads);
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lms-loadgen: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = rt.block_on(async {
        match start(&cli.scenario).await {
            Ok(line) => {
                println!("{line}");
                if line.contains("\"aborted\":true") {
                    2
                } else {
                    0
                }
            }
            Err(e) => {
                eprintln!("lms-loadgen: {e:#}");
                2
            }
        }
    });
    // Socket tasks still closing are not waited for past this point.
    rt.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}

fn parts(s: &Scenario) -> (&Common, &Population, Vec<f64>) {
    match s {
        Scenario::Connect(a) => (&a.common, &a.pop, vec![]),
        Scenario::Fanout(a) => (&a.common, &a.pop, vec![a.rate]),
        Scenario::Notify(a) => (&a.common, &a.pop, vec![a.rate]),
        Scenario::Churn(a) => (&a.common, &a.pop, vec![a.rate]),
        Scenario::Mixed(a) => (
            &a.common,
            &a.pop,
            vec![
                a.progress_rate,
                a.join_rate,
                a.count_rate,
                a.notify_rate,
                a.broadcast_rate,
            ],
        ),
        Scenario::Presence(a) => (&a.common, &a.pop, vec![a.rate, a.list_rate]),
        Scenario::Recovery(a) => (&a.common, &a.pop, vec![a.rate]),
        // The victims' notify stream runs twice (quiet, then noisy): its ledger needs room
        // for both phases.
        Scenario::Noisy(a) => (
            &a.common,
            &a.pop,
            vec![a.rate * 2.0, a.noise_rate, a.noise_event_rate],
        ),
    }
}

fn name(s: &Scenario) -> &'static str {
    match s {
        Scenario::Connect(_) => "connect",
        Scenario::Fanout(_) => "fanout",
        Scenario::Notify(_) => "notify",
        Scenario::Churn(_) => "churn",
        Scenario::Mixed(_) => "mixed",
        Scenario::Noisy(_) => "noisy",
        Scenario::Presence(_) => "presence",
        Scenario::Recovery(_) => "recovery",
    }
}

async fn start(scenario: &Scenario) -> anyhow::Result<String> {
    let (common, pop, rates) = parts(scenario);
    let targets = common
        .urls
        .iter()
        .map(|u| target::Target::parse(u))
        .collect::<Result<Vec<_>, _>>()?;
    anyhow::ensure!(!targets.is_empty(), "no --url given");
    let minter = token::Minter::new(&common.jwt_secret, common.token_ttl);
    let api = Arc::new(api::Api::new(
        &minter.mint("lms-loadgen", None, "super_admin")?,
        common.max_inflight,
    )?);
    for t in &targets {
        anyhow::ensure!(
            api.healthy(t).await,
            "node {} does not answer GET /healthz",
            t.http
        );
    }
    let secs = common.duration;
    let max_rate = rates.iter().copied().fold(0.0, f64::max);
    let capacity = [
        super_cap(max_rate, secs),
        super_cap(max_rate, secs),
        super_cap(max_rate, secs),
    ];
    let stats = Arc::new(stats::Stats::new(capacity, common.debug_drop_every));
    let run_id = common
        .run_id
        .clone()
        .unwrap_or_else(|| format!("lg{:06x}", fastrand::u32(..0x100_0000)));
    let (stop, _) = tokio::sync::watch::channel(false);
    let ctx = run::Ctx {
        common: common.clone(),
        targets,
        minter,
        api,
        stats: stats.clone(),
        run_id,
        stop,
        phase: Arc::new(Mutex::new("setup")),
    };
    let printer =
        (!common.quiet).then(|| progress::spawn(name(scenario), stats.clone(), ctx.phase.clone()));

    // Hard deadline: the ramp at its rate, the phase, the drain, plus room for setup and closing.
    let ramp_s =
        pop.connections as f64 / pop.connect_rate + common.connect_timeout_ms as f64 / 1000.0;
    let phases = if matches!(scenario, Scenario::Noisy(_) | Scenario::Presence(_)) {
        2
    } else {
        1
    };
    let deadline =
        Duration::from_secs_f64(ramp_s + (phases * (secs + common.drain)) as f64 + 120.0);
    let outcome = tokio::time::timeout(deadline, async {
        match scenario {
            Scenario::Connect(a) => scenarios::connect::run(&ctx, a).await,
            Scenario::Fanout(a) => scenarios::fanout::run(&ctx, a).await,
            Scenario::Notify(a) => scenarios::notify::run(&ctx, a).await,
            Scenario::Churn(a) => scenarios::churn::run(&ctx, a).await,
            Scenario::Mixed(a) => scenarios::mixed::run(&ctx, a).await,
            Scenario::Noisy(a) => scenarios::noisy::run(&ctx, a).await,
            Scenario::Presence(a) => scenarios::presence::run(&ctx, a).await,
            Scenario::Recovery(a) => scenarios::recovery::run(&ctx, a).await,
        }
    })
    .await;
    if let Some(p) = printer {
        p.abort();
    }
    let _ = ctx.stop.send(true);
    let (section, aborted) = match outcome {
        Ok(r) => (r?, false),
        Err(_) => (
            json!({ "error": format!("hit the run deadline of {} s", deadline.as_secs()) }),
            true,
        ),
    };

    let mut out = serde_json::Map::new();
    out.insert("scenario".into(), json!(name(scenario)));
    out.insert("run_id".into(), json!(ctx.run_id));
    out.insert(
        "urls".into(),
        json!(
            ctx.targets
                .iter()
                .map(|t| t.http.clone())
                .collect::<Vec<_>>()
        ),
    );
    out.insert("pids".into(), json!(common.pids));
    out.insert("connections_target".into(), json!(pop.connections));
    out.insert("tenants".into(), json!(pop.tenants));
    out.insert("duration_s".into(), json!(secs));
    out.insert("aborted".into(), json!(aborted));
    out.extend(report::base(&stats));
    // A headline per stream measured, so scripts need not dig.
    for k in StreamKind::ALL {
        if stats
            .stream(k)
            .sent
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
        {
            let t = stats.stream(k).ledger.tally();
            out.insert(format!("{}_lost", k.name()), json!(t.lost));
        }
    }
    out.insert(name(scenario).into(), section);
    Ok(Value::Object(out).to_string())
}

/// Ledger size for the fastest stream of the run.
fn super_cap(rate: f64, secs: u64) -> usize {
    scenarios::capacity(rate.max(1.0), secs)
}
