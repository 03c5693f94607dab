//! What every scenario shares: the run context, the paced connection ramp, the paced publisher,
//! and the meter that turns two /proc samples into server cost.
//!
//! Pacing is by schedule (the n-th action is due at n / rate seconds), not by sleeping between
//! actions, so a slow server shows up as a lower achieved rate and higher latency rather than as
//! a silently slower load.

use crate::api::Api;
use crate::cli::Common;
use crate::client::{self, Connect, Driver, End, Outgoing};
use crate::procfs;
use crate::stats::Stats;
use crate::target::Target;
use crate::token::Minter;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

pub struct Ctx {
    pub common: Common,
    pub targets: Vec<Target>,
    pub minter: Minter,
    pub api: Arc<Api>,
    pub stats: Arc<Stats>,
    pub run_id: String,
    pub stop: watch::Sender<bool>,
    pub phase: Arc<Mutex<&'static str>>,
}

impl Ctx {
    /// Tenant ids carry the run id, so runs against one Redis never see each other's state.
    pub fn tenant(&self, t: usize) -> String {
        format!("{}-t{t}", self.run_id)
    }

    /// Node of client `i` in tenant-major order: each tenant's sockets land on every node.
    pub fn node_for_client(&self, i: usize, tenants: usize) -> usize {
        (i / tenants) % self.targets.len()
    }

    pub fn set_phase(&self, p: &'static str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.common.connect_timeout_ms)
    }
}

/// One socket to open during a ramp.
pub struct Spec {
    pub index: usize,
    pub node: usize,
    pub token: String,
    pub accounted: bool,
    pub outgoing: Option<mpsc::Receiver<Outgoing>>,
}

/// What a ramp did.
pub struct Ramp {
    pub wall: Duration,
    /// Per spec index: whether it connected.
    pub connected: Vec<bool>,
    pub handles: Vec<JoinHandle<End>>,
}

/// Opens every spec at `rate` per second with at most `concurrency` handshakes in flight; each
/// connected socket is then driven until the run stops. Returns once every attempt resolved.
pub async fn ramp(ctx: &Ctx, specs: Vec<Spec>, rate: f64, concurrency: usize) -> Ramp {
    let t0 = Instant::now();
    let n = specs.len();
    let gate = Arc::new(Semaphore::new(concurrency));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(usize, bool)>();
    let mut handles = Vec::with_capacity(n);
    for (k, spec) in specs.into_iter().enumerate() {
        if *ctx.stop.borrow() {
            break;
        }
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(k as f64 / rate)).into()).await;
        let Ok(permit) = gate.clone().acquire_owned().await else {
            break;
        };
        let target = ctx.targets[spec.node].clone();
        let stats = ctx.stats.clone();
        let stop = ctx.stop.subscribe();
        let timeout = ctx.connect_timeout();
        let done = done_tx.clone();
        handles.push(tokio::spawn(async move {
            let outcome = client::connect(&target, &spec.token, timeout, &stats).await;
            drop(permit);
            let _ = done.send((spec.index, matches!(outcome, Connect::Connected(_))));
            drop(done);
            match outcome {
                Connect::Connected(ws) => {
                    let driver = Driver {
                        stats,
                        shard: spec.index,
                        accounted: spec.accounted,
                        stop,
                        storm: None,
                        until: None,
                        outgoing: spec.outgoing,
                    };
                    client::drive(ws, driver).await
                }
                _ => End::Lost("not connected"),
            }
        }));
    }
    drop(done_tx);
    let mut connected = vec![false; n];
    while let Some((i, ok)) = done_rx.recv().await {
        if let Some(c) = connected.get_mut(i) {
            *c = ok;
        }
    }
    Ramp {
        wall: t0.elapsed(),
        connected,
        handles,
    }
}

/// Calls `act(seq_index)` `rate` times per second for `duration` (or until `act` returns None),
/// each call's future running concurrently with at most `max_inflight` at once; waits for the
/// stragglers (30 s at most). Returns how many were started and the wall time of the phase.
pub async fn pace<F, Fut>(ctx: &Ctx, rate: f64, duration: Duration, mut act: F) -> (u64, Duration)
where
    F: FnMut(u64) -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    let t0 = Instant::now();
    if rate <= 0.0 {
        tokio::time::sleep(duration).await;
        return (0, t0.elapsed());
    }
    let max = ctx.common.max_inflight;
    let gate = Arc::new(Semaphore::new(max));
    let started = Arc::new(AtomicU64::new(0));
    let mut k = 0u64;
    'outer: while t0.elapsed() < duration && !*ctx.stop.borrow() {
        let due = (t0.elapsed().as_secs_f64() * rate).floor() as u64 + 1;
        while k < due {
            let Ok(permit) = gate.clone().acquire_owned().await else {
                break 'outer;
            };
            let Some(fut) = act(k) else { break 'outer };
            k += 1;
            started.fetch_add(1, Relaxed);
            tokio::spawn(async move {
                fut.await;
                drop(permit);
            });
            if t0.elapsed() >= duration {
                break 'outer;
            }
        }
        let next = t0 + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(next.into()).await;
    }
    let wall = t0.elapsed();
    let _ = tokio::time::timeout(Duration::from_secs(30), gate.acquire_many(max as u32)).await;
    (started.load(Relaxed), wall)
}

/// Server CPU and RSS around a phase (and the load generator's own CPU).
pub struct Meter {
    pids: Vec<u32>,
    before: procfs::Sample,
    self_cpu: f64,
    t0: Instant,
}

/// The difference of two samples.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Cost {
    pub wall_s: f64,
    /// Server CPU seconds spent in the phase (all pids together).
    pub cpu_s: f64,
    /// Server RSS at the start and the end of the phase.
    pub rss_before_bytes: u64,
    pub rss_after_bytes: u64,
    /// Per pid: (cpu_s spent, rss at end).
    pub per_pid: Vec<(u32, f64, u64)>,
    /// Pids that could not be read at the end.
    pub missing_pids: Vec<u32>,
    /// This process's CPU seconds in the phase: when it nears the core count × wall time, the
    /// load generator, not the server, is the limit.
    pub loadgen_cpu_s: f64,
    /// This process's RSS at the end of the phase.
    pub loadgen_rss_bytes: u64,
}

impl Meter {
    pub fn start(pids: &[u32]) -> Self {
        Meter {
            pids: pids.to_vec(),
            before: procfs::sample(pids),
            self_cpu: procfs::self_cpu_s(),
            t0: Instant::now(),
        }
    }

    pub fn finish(&self) -> Cost {
        let after = procfs::sample(&self.pids);
        let per_pid = after
            .per_pid
            .iter()
            .map(|(pid, a)| {
                let b = self.before.per_pid.get(pid).copied().unwrap_or_default();
                (*pid, a.cpu_s - b.cpu_s, a.rss_bytes)
            })
            .collect();
        Cost {
            wall_s: self.t0.elapsed().as_secs_f64(),
            cpu_s: after.total().cpu_s - self.before.total().cpu_s,
            rss_before_bytes: self.before.total().rss_bytes,
            rss_after_bytes: after.total().rss_bytes,
            per_pid,
            missing_pids: after.missing,
            loadgen_cpu_s: procfs::self_cpu_s() - self.self_cpu,
            loadgen_rss_bytes: procfs::read(std::process::id()).map_or(0, |s| s.rss_bytes),
        }
    }
}

/// Waits up to `max` for `done()` to hold, checking every 50 ms; returns the time waited.
pub async fn drain(max: Duration, done: impl Fn() -> bool) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < max && !done() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t0.elapsed()
}

/// Ends the run: every socket closes, and their tasks are awaited (10 s at most).
pub async fn shutdown(ctx: &Ctx, handles: Vec<JoinHandle<End>>) {
    ctx.set_phase("closing");
    let _ = ctx.stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(handles)).await;
}

/// `x / y`, or null in JSON when y is 0 (a figure that could not be measured).
pub fn per(x: f64, y: f64) -> Option<f64> {
    if y > 0.0 && x.is_finite() {
        Some(x / y)
    } else {
        None
    }
}
