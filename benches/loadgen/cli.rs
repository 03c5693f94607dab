//! The command line: one subcommand per scenario, every flag documented for `--help`.
//!
//! Limits are enforced here, not in the scenarios: every run is bounded in time and count, so a
//! typo cannot turn a bench into an endless load.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Largest population one run may open.
pub const MAX_CONNECTIONS: usize = 200_000;
/// Longest measured phase of one run.
pub const MAX_DURATION_SECS: u64 = 1_800;
/// Highest rate of any one kind of traffic.
pub const MAX_RATE: f64 = 100_000.0;

/// Load generator for the lms-realtime Socket.IO gateway (and anything speaking the same
/// contract, e.g. the Node baseline). A raw Engine.IO v4 / Socket.IO v4 websocket client on
/// tokio: thousands of sockets in one process. Targets loopback URLs only. Prints a progress
/// line per second on stderr and one JSON result line on stdout, then exits.
#[derive(Parser, Debug)]
#[command(name = "lms-loadgen", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Subcommand, Debug)]
pub enum Scenario {
    /// Ramp N connections at a rate and hold them: connect latency p50/p95/p99, refusals, and
    /// server CPU per connect and RSS per connection (with --pids).
    Connect(ConnectArgs),
    /// N clients over T tenants spread over the nodes; tenant broadcasts at R/s through the
    /// service API (or the admin event): delivery latency, deliveries/s, loss, server CPU-s per
    /// 1M deliveries.
    Fanout(FanoutArgs),
    /// One socket per user; `POST /api/v1/notifications` to single users at R/s: latency to the
    /// user's socket, loss, CPU per stored notification, unread counts checked at the end.
    Notify(NotifyArgs),
    /// Clients connecting and disconnecting continuously (lifetimes with jitter, optional
    /// reconnection storms) while tenant broadcasts flow; loss is measured on a stable subset.
    Churn(ChurnArgs),
    /// A realistic LMS mix: mostly idle students, instructors and admins in courses, with course
    /// joins, progress events, notification counts, stored notifications and broadcasts.
    Mixed(MixedArgs),
    /// Fair sharing: victim tenants' sockets receive stored notifications at a modest rate, once
    /// alone ("quiet") and once while one noisy tenant floods the service API and its sockets
    /// flood events; the victims' notification p50/p99 of both phases and the p99 ratio.
    Noisy(NoisyArgs),
    /// Presence: one course of N students and its instructor; CPU per connect and per
    /// disconnect, presence updates/s (course leave + join), `presence:list` latency.
    Presence(PresenceArgs),
    /// Connection state recovery: N sockets on the first node, tenant broadcasts through the
    /// others; the first node is killed and every socket reconnects to a survivor with its
    /// pid and offset: how many recovered, how fast, events replayed, loss and duplicates.
    Recovery(RecoveryArgs),
}

/// Flags every scenario takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Gateway node base URL; repeat or comma-separate for several nodes. Clients are spread
    /// round-robin, and publishes go round-robin too, so most deliveries cross nodes. Only
    /// loopback hosts (127.0.0.0/8, localhost, [::1]) are accepted.
    #[arg(
        long = "url",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:3000"
    )]
    pub urls: Vec<String>,
    /// HS256 secret the nodes verify tokens with; client and service tokens are minted from it.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    /// Server process ids (nodes, and Redis if wanted), comma-separated: their CPU and RSS are
    /// read from /proc around each phase for the per-unit figures.
    #[arg(long, value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// Length of the measured traffic phase, seconds (connect: how long connections are held).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// After publishing stops, wait at most this long for outstanding deliveries, seconds.
    #[arg(long, default_value_t = 5)]
    pub drain: u64,
    /// Give up on one connection attempt (TCP + websocket + Socket.IO CONNECT) after this long.
    #[arg(long, default_value_t = 10_000)]
    pub connect_timeout_ms: u64,
    /// Lifetime of the minted tokens, seconds (must outlast the run).
    #[arg(long, default_value_t = 3_600)]
    pub token_ttl: u64,
    /// Service API requests in flight at most; when full the publisher waits (the achieved rate
    /// is reported).
    #[arg(long, default_value_t = 64)]
    pub max_inflight: usize,
    /// Tokio worker threads of the load generator (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Prefix of tenant ids, so that repeated runs against one Redis never share state
    /// (default: a random id per run).
    #[arg(long)]
    pub run_id: Option<String>,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Self-test only: do not count every K-th accounted delivery, so that the reported loss
    /// must equal the reported `debug_dropped` (checks the accounting, not the server).
    #[arg(long, default_value_t = 0, hide_short_help = true)]
    pub debug_drop_every: u64,
}

/// Who connects, and how fast.
#[derive(Args, Debug, Clone)]
pub struct Population {
    /// Number of client connections (sockets).
    #[arg(long, short = 'n', default_value_t = 1_000)]
    pub connections: usize,
    /// Number of tenants the clients are spread over (client i is in tenant i mod T).
    #[arg(long, short = 't', default_value_t = 10)]
    pub tenants: usize,
    /// Connection attempts started per second during the ramp.
    #[arg(long, default_value_t = 1_000.0)]
    pub connect_rate: f64,
    /// Connection handshakes in flight at most during the ramp.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub pop: Population,
}

/// How broadcasts are published.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishVia {
    /// `POST /api/v1/tenants/{t}/broadcast` with a service token.
    Http,
    /// The `admin:broadcast` event from one extra admin socket per tenant (acked).
    Admin,
}

#[derive(Args, Debug)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub pop: Population,
    /// Tenant broadcasts per second, over all tenants (round-robin).
    #[arg(long, short = 'r', default_value_t = 80.0)]
    pub rate: f64,
    /// Publish through the service API or the admin event.
    #[arg(long, value_enum, default_value_t = PublishVia::Http)]
    pub via: PublishVia,
}

#[derive(Args, Debug)]
pub struct NotifyArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub pop: Population,
    /// Stored notifications per second, each to one connected user (round-robin).
    #[arg(long, short = 'r', default_value_t = 100.0)]
    pub rate: f64,
    /// At the end, compare `GET .../unread` with what was sent for this many users (0: none).
    #[arg(long, default_value_t = 200)]
    pub check_unread: usize,
}

#[derive(Args, Debug)]
pub struct ChurnArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub pop: Population,
    /// Tenant broadcasts per second while the churn goes on.
    #[arg(long, short = 'r', default_value_t = 20.0)]
    pub rate: f64,
    /// Fraction of the clients that stay connected all along; loss is measured on them.
    #[arg(long, default_value_t = 0.1)]
    pub stable_fraction: f64,
    /// Mean time a churning client stays connected, milliseconds.
    #[arg(long, default_value_t = 3_000)]
    pub lifetime_ms: u64,
    /// Jitter of lifetimes and reconnect delays, as a fraction of their mean (0..1).
    #[arg(long, default_value_t = 0.5)]
    pub jitter: f64,
    /// Mean pause before a churning client reconnects, milliseconds.
    #[arg(long, default_value_t = 500)]
    pub reconnect_delay_ms: u64,
    /// Every this many seconds, all churning clients drop at once and reconnect within the
    /// jittered delay (a reconnection storm); 0: no storms.
    #[arg(long, default_value_t = 5)]
    pub storm_every: u64,
}

#[derive(Args, Debug)]
pub struct MixedArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub pop: Population,
    /// Courses per tenant (each has one instructor socket; the tenant also has one admin).
    #[arg(long, default_value_t = 5)]
    pub courses: usize,
    /// Courses each student is enrolled in (set through the service API before connecting).
    #[arg(long, default_value_t = 2)]
    pub courses_per_student: usize,
    /// `progress:content` events per second from random students (forwarded to instructors).
    #[arg(long, default_value_t = 50.0)]
    pub progress_rate: f64,
    /// `course:join` events per second from random students.
    #[arg(long, default_value_t = 10.0)]
    pub join_rate: f64,
    /// `notification:count` events per second from random students.
    #[arg(long, default_value_t = 20.0)]
    pub count_rate: f64,
    /// Stored notifications per second to random students, through the service API.
    #[arg(long, default_value_t = 20.0)]
    pub notify_rate: f64,
    /// Tenant broadcasts per second through the service API.
    #[arg(long, default_value_t = 1.0)]
    pub broadcast_rate: f64,
}

#[derive(Args, Debug)]
pub struct NoisyArgs {
    #[command(flatten)]
    pub common: Common,
    /// The victims: `--connections` sockets (one per user) over `--tenants` tenants.
    #[command(flatten)]
    pub pop: Population,
    /// Stored notifications per second to the victims, in each phase (`--duration` each).
    #[arg(long, short = 'r', default_value_t = 20.0)]
    pub rate: f64,
    /// Service API calls per second of the noisy tenant; 0: as fast as `--noise-concurrency`
    /// calls in flight allow.
    #[arg(long, default_value_t = 0.0)]
    pub noise_rate: f64,
    /// Service API calls of the noisy tenant in flight at once.
    #[arg(long, default_value_t = 32)]
    pub noise_concurrency: usize,
    /// Recipients (`userIds`) of each noisy call.
    #[arg(long, default_value_t = 100)]
    pub noise_users: usize,
    /// Bytes of `data` in each noisy notification.
    #[arg(long, default_value_t = 4_096)]
    pub noise_data_bytes: usize,
    /// Sockets of the noisy tenant (users among the noisy calls' recipients) flooding events.
    #[arg(long, default_value_t = 50)]
    pub noise_sockets: usize,
    /// `notification:count` events per second each noisy socket offers.
    #[arg(long, default_value_t = 100.0)]
    pub noise_event_rate: f64,
    /// Make the noise in this process, beside the victims' clients, instead of in a child
    /// process (the default). In one process the noise's own CPU delays the timestamps of the
    /// victims' deliveries, so the ratio measures the generator as much as the server.
    #[arg(long)]
    pub noise_in_process: bool,
    /// Niceness of the noise process, in the normal scheduling class (-20..=19; default: the
    /// generator's own class and niceness). On a box where the generator's victims and its
    /// noise share cores, 19 keeps the noise's CPU from delaying the victims' timestamps: in
    /// production the noisy backend is another machine.
    #[arg(long, allow_hyphen_values = true)]
    pub noise_nice: Option<i32>,
    /// Run the noise process in the idle scheduling class (`SCHED_IDLE`): a victim client that
    /// wakes on its core preempts it at once, where a niceness-19 process in the normal class
    /// can keep the core to the end of its slice first (EEVDF). Overrides `--noise-nice`.
    #[arg(long)]
    pub noise_idle: bool,
    /// CPUs of the noise process (`taskset -c` list; default: the generator's own). On a box
    /// too small to give the noise its own core, `--noise-cpus <the server's> --noise-idle`
    /// puts it where it only takes the server's idle time: beside the victims' clients, its
    /// CPU delays their receive timestamps, so the ratio measures the generator's core, not
    /// the server (docs/benchmarks.md, session 10).
    #[arg(long)]
    pub noise_cpus: Option<String>,
    /// Internal: this process is the noise child of a `noisy` run. It connects the noisy
    /// sockets, prints a ready line, makes noise for `--duration` seconds and reports it.
    #[arg(long, hide = true)]
    pub noise_only: bool,
}

#[derive(Args, Debug)]
pub struct PresenceArgs {
    #[command(flatten)]
    pub common: Common,
    /// `--connections` is the course size (one tenant; `--tenants` is ignored).
    #[command(flatten)]
    pub pop: Population,
    /// `course:leave` + `course:join` pairs per second from random students.
    #[arg(long, short = 'r', default_value_t = 200.0)]
    pub rate: f64,
    /// `presence:list` calls per second from the instructor.
    #[arg(long, default_value_t = 5.0)]
    pub list_rate: f64,
}

#[derive(Args, Debug)]
pub struct RecoveryArgs {
    #[command(flatten)]
    pub common: Common,
    /// `--connections` sockets over `--tenants` tenants, all on the first `--url`.
    #[command(flatten)]
    pub pop: Population,
    /// Tenant broadcasts per second, through the surviving nodes, for `--duration` seconds.
    #[arg(long, short = 'r', default_value_t = 20.0)]
    pub rate: f64,
    /// Pid of the first node's process: it gets SIGKILL (a crash, no drain).
    #[arg(long)]
    pub kill_pid: u32,
    /// Seconds into the publish phase at which the first node is killed.
    #[arg(long, default_value_t = 5.0)]
    pub kill_after: f64,
}

/// Checks the noisy scenario's own bounds.
pub fn validate_noisy(a: &NoisyArgs) -> Result<(), String> {
    if a.noise_nice.is_some_and(|n| !(-20..=19).contains(&n)) {
        return Err("--noise-nice must be -20..=19".into());
    }
    if a.noise_concurrency == 0 || a.noise_concurrency > 1_024 {
        return Err("--noise-concurrency must be 1..=1024".into());
    }
    if a.noise_users == 0 || a.noise_users > 10_000 {
        return Err("--noise-users must be 1..=10000".into());
    }
    if a.noise_data_bytes > 1_000_000 {
        return Err("--noise-data-bytes must be at most 1000000".into());
    }
    if a.noise_sockets > 10_000 {
        return Err("--noise-sockets must be at most 10000".into());
    }
    Ok(())
}

/// Checks the bounds that keep a run finite.
pub fn validate(common: &Common, pop: &Population, rates: &[f64]) -> Result<(), String> {
    if pop.connections == 0 || pop.connections > MAX_CONNECTIONS {
        return Err(format!("--connections must be 1..={MAX_CONNECTIONS}"));
    }
    if pop.tenants == 0 || pop.tenants > pop.connections {
        return Err("--tenants must be 1..=connections".into());
    }
    if common.duration == 0 || common.duration > MAX_DURATION_SECS {
        return Err(format!(
            "--duration must be 1..={MAX_DURATION_SECS} seconds"
        ));
    }
    if common.drain > 120 {
        return Err("--drain must be at most 120 seconds".into());
    }
    if !(pop.connect_rate > 0.0 && pop.connect_rate <= MAX_RATE) || pop.connect_concurrency == 0 {
        return Err(format!(
            "--connect-rate must be in (0, {MAX_RATE}] and --connect-concurrency > 0"
        ));
    }
    if rates.iter().any(|r| !(*r >= 0.0 && *r <= MAX_RATE)) {
        return Err(format!("rates must be in [0, {MAX_RATE}]"));
    }
    if common.token_ttl < common.duration + 600 {
        return Err("--token-ttl must outlast the run by 10 minutes".into());
    }
    if common.max_inflight == 0 {
        return Err("--max-inflight must be > 0".into());
    }
    Ok(())
}
