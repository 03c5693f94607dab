//! Real Redis for the cluster tests: each test starts its own `redis-server` (or a 3-master
//! Redis Cluster) on free ports, can stop and restart it on the same port, and kills it on
//! drop. Never the machine's shared 6379, never a fake.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lms_realtime::Config;

use crate::helpers::{SECRET, TestNode, service_token, spawn_node_with};

/// How long to wait for something that should happen "within seconds".
pub const SOON: Duration = Duration::from_secs(20);

/// Ports other engineers' tests use; never ours.
fn reserved(port: u16) -> bool {
    port == 6379 || (6400..=6419).contains(&port)
}

fn bindable(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A free port (and, for a cluster node, its bus port +10000 free too).
pub fn free_port(with_bus: bool) -> u16 {
    for _ in 0..1_000 {
        let port = if with_bus {
            20_000 + fastrand::u16(..25_000)
        } else {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
            l.local_addr().unwrap().port()
        };
        if reserved(port) || !bindable(port) || (with_bus && !bindable(port + 10_000)) {
            continue;
        }
        return port;
    }
    panic!("no free port found");
}

/// Sends one inline command and returns the raw reply, or None if nothing answers.
fn raw(port: u16, cmd: &str) -> Option<String> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.write_all(format!("{cmd}\r\n").as_bytes()).ok()?;
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One `redis-server` process on a fixed port, restartable.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(free_port(false), vec![])
    }

    /// A server that persists every acknowledged write (AOF, fsync always), so a killed
    /// and restarted server still holds what it acknowledged.
    pub fn start_persistent() -> Self {
        let extra = ["--appendonly", "yes", "--appendfsync", "always"];
        Self::start_with(free_port(false), extra.map(String::from).to_vec())
    }

    fn start_with(port: u16, extra: Vec<String>) -> Self {
        let mut server = Self {
            port,
            dir: tempfile::tempdir().expect("temp dir"),
            extra,
            child: None,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the process again on the same port (after [`Self::stop`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--dir", &self.dir.path().display().to_string()])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (apt-get install redis-server)");
        self.child = Some(child);
        let port = self.port;
        wait_until(
            "redis-server to answer PING",
            Duration::from_secs(10),
            || raw(port, "PING").is_some_and(|r| r.starts_with("+PONG")),
        );
    }

    /// Kills the process (like a crash: no save, connections cut).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let port = self.port;
        wait_until("redis-server to stop", Duration::from_secs(10), || {
            raw(port, "PING").is_none()
        });
    }

    /// Freezes the process (SIGSTOP): connections stay open, nothing answers, every
    /// command waits out its timeout. [`Self::resume`] thaws it with its data.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill {sig} {pid}");
    }

    /// The keys matching `pattern` (`KEYS`: test servers are small and private).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw", "keys", pattern])
            .output()
            .expect("redis-cli on PATH");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// A key's time to live in ms (`PTTL`: -2 when it is gone, -1 without one).
    pub fn pttl(&self, key: &str) -> i64 {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "pttl", key])
            .output()
            .expect("redis-cli on PATH");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("PTTL answers a number")
    }

    /// How many keys this server holds (`DBSIZE`).
    pub fn dbsize(&self) -> u64 {
        raw(self.port, "DBSIZE")
            .and_then(|r| r.trim().trim_start_matches(':').parse().ok())
            .expect("DBSIZE answers")
    }

    /// How many times this server has run `command` (`INFO commandstats`).
    pub fn calls(&self, command: &str) -> u64 {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "info", "commandstats"])
            .output()
            .expect("redis-cli on PATH");
        let prefix = format!("cmdstat_{}:calls=", command.to_lowercase());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next()?.parse().ok())
            .unwrap_or(0)
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A local Redis Cluster of three masters, no replicas.
pub struct RedisCluster {
    pub masters: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> Self {
        let masters: Vec<RedisServer> = (0..3)
            .map(|_| {
                let port = free_port(true);
                RedisServer::start_with(
                    port,
                    vec![
                        "--cluster-enabled".into(),
                        "yes".into(),
                        "--cluster-config-file".into(),
                        format!("nodes-{port}.conf"),
                        "--cluster-node-timeout".into(),
                        "2000".into(),
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = masters
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .current_dir(masters[0].dir())
            .output()
            .expect("redis-cli on PATH");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self { masters };
        cluster.wait_ok();
        cluster
    }

    /// Kills every master and starts it again on the same port; each keeps its
    /// `nodes.conf`, so the cluster re-forms with the same slots (and no data).
    pub fn restart_all(&mut self) {
        for m in &mut self.masters {
            m.stop();
        }
        for m in &mut self.masters {
            m.restart();
        }
        self.wait_ok();
    }

    fn wait_ok(&self) {
        for m in &self.masters {
            let port = m.port;
            wait_until("the cluster to be ok", Duration::from_secs(30), || {
                raw(port, "CLUSTER INFO").is_some_and(|r| r.contains("cluster_state:ok"))
            });
        }
    }

    /// The URL scheme fred reads as a cluster: one seed node, the others as `node=`.
    pub fn url(&self) -> String {
        let first = self.masters[0].port;
        let others: Vec<String> = self.masters[1..]
            .iter()
            .map(|m| format!("node=127.0.0.1:{}", m.port))
            .collect();
        format!("redis-cluster://127.0.0.1:{first}?{}", others.join("&"))
    }
}

/// Starts one gateway node of a cluster.
pub async fn spawn_cluster_node(url: &str, node_id: &str) -> TestNode {
    let (url, id) = (url.to_owned(), node_id.to_owned());
    spawn_node_with(move |c: &mut Config| {
        c.redis_url = Some(lms_realtime::config::Secret(url));
        c.node_id = Some(id);
    })
    .await
}

/// Starts `n` nodes against the same Redis, named `node-1`..`node-n` plus a test prefix
/// so concurrent tests never share a registry entry.
pub async fn spawn_cluster(url: &str, n: usize) -> Vec<TestNode> {
    let prefix = format!("n{}", fastrand::u32(..));
    let mut nodes = Vec::with_capacity(n);
    for i in 1..=n {
        nodes.push(spawn_cluster_node(url, &format!("{prefix}-{i}")).await);
    }
    nodes
}

/// A course event (`course:updated` to the course room) through the service API, marked
/// with `marker`; the HTTP status.
pub async fn course_event(node: &TestNode, t: &str, c: &str, marker: &str) -> u16 {
    node.post(
        &format!("/tenants/{t}/courses/{c}/events"),
        &service_token(t),
        serde_json::json!({ "changes": { "marker": marker } }),
    )
    .await
    .0
}

/// Polls `check` until it returns true or [`SOON`] passes.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(start.elapsed() < SOON, "not within {SOON:?}: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A fresh tenant id, so tests that share a Redis never meet.
pub fn tenant() -> String {
    format!("t{}", fastrand::u64(..))
}

/// A connected fred client with the gateway's settings, for engine-level tests.
pub async fn redis_client(url: &str) -> fred::clients::Client {
    use fred::interfaces::ClientLike;
    let (config, perf, connection, policy) = lms_realtime::cluster::client_config(url).unwrap();
    let client = fred::clients::Client::new(config, Some(perf), Some(connection), Some(policy));
    client.init().await.expect("connects to the test redis");
    client
}

/// A node process of the real binary, to be killed without a chance to clean up (and
/// killed on drop).
pub struct ChildNode {
    pub child: Child,
    pub node: TestNode,
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary as a cluster node on a free port, with `envs` on top of the basics,
/// and waits until it serves.
pub async fn spawn_process(url: &str, id: &str, envs: &[(&str, &str)]) -> ChildNode {
    let port = free_port(false);
    let child = Command::new(env!("CARGO_BIN_EXE_lms-realtime"))
        .env("JWT_SECRET", SECRET)
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .env("REDIS_URL", url)
        .env("NODE_ID", id)
        .env("RUST_LOG", "warn")
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn lms-realtime");
    let node = TestNode {
        port,
        metrics_addr: None,
        shutdown: Default::default(),
        task: tokio::spawn(async { Ok(()) }),
        http: reqwest::Client::new(),
    };
    let mut child = ChildNode { child, node };
    let health = format!("{}/healthz", child.node.url());
    eventually("the node process serves", || {
        let (http, url) = (child.node.http.clone(), health.clone());
        async move { http.get(&url).send().await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    assert!(
        child.child.try_wait().unwrap().is_none(),
        "the node process exited"
    );
    child
}
