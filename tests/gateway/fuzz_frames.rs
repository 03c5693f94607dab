//! A bounded, deterministic fuzz of the wire: random Engine.IO and Socket.IO frames fed to a
//! live node over raw websockets and over HTTP long-polling, then proof that the node shrugged
//! them off (PROTOCOL.md §13: hostile input gets a clear refusal, nothing else).
//!
//! Why a fuzz and not a list: the parser is socketioxide's and the limits are ours, and the
//! interesting inputs are the combinations nobody lists (an attachment announcement after a
//! refused CONNECT, a deep JSON array in a namespace that does not exist). The frames come from
//! one seeded generator, so a failure is replayed with the printed seed
//! (`FUZZ_SEED=<n> cargo test --test gateway fuzz_frames -- --nocapture`). The run is bounded
//! by a frame count and a wall-clock budget, whichever ends first.

use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use lms_realtime::auth::Role;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

const DEFAULT_SEED: u64 = 0x10_A77A_C4ED;
const MAX_FRAMES: usize = 2_000;
const MAX_TIME: Duration = Duration::from_secs(20);
/// The test process (node and fuzzer together) may grow by less than this.
const RSS_BOUND_BYTES: u64 = 64 * 1024 * 1024;
/// Any single write or read of the fuzzer gives up after this long.
const STEP: Duration = Duration::from_secs(2);

/// One frame as it goes on the wire.
#[derive(Debug)]
enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

/// Everything the generator draws from; one seed, one sequence.
struct Fuzzer {
    rng: fastrand::Rng,
    /// A token the node accepts, so that some sessions get past CONNECT.
    valid_token: String,
    /// Oversized frames are costly to build and send: a few are enough.
    oversized_left: u32,
}

const PREFIXES: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "2probe",
    "3probe",
    "40",
    "41",
    "42",
    "43",
    "44",
    "45",
    "46",
    "42/",
    "40/admin,",
    "42/admin,",
    "421",
    "4299",
    "451-",
    "4510000-",
    "b",
    "bAAAA",
];

const EVENTS: &[&str] = &[
    "notification:read",
    "notification:read_all",
    "notification:list",
    "notification:count",
    "course:join",
    "progress:video",
    "admin:broadcast",
    "admin:system_alert",
    "auth:refresh",
    "no:such:event",
    "",
];

impl Fuzzer {
    fn new(seed: u64, valid_token: String) -> Self {
        Fuzzer {
            rng: fastrand::Rng::with_seed(seed),
            valid_token,
            oversized_left: 3,
        }
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.rng.usize(..from.len())]
    }

    /// Printable junk with JSON's and Socket.IO's structural characters over-represented.
    fn tail(&mut self, max: usize) -> String {
        const STRUCTURE: &[char] = &[
            '[', ']', '{', '}', '"', ',', ':', '-', '/', '\\', '0', '9', '\u{1e}',
        ];
        let len = self.rng.usize(..=max);
        (0..len)
            .map(|_| match self.rng.u8(..10) {
                0..=3 => STRUCTURE[self.rng.usize(..STRUCTURE.len())],
                4..=7 => self.rng.alphanumeric(),
                8 => char::from_u32(self.rng.u32(0x80..0xD7FF)).unwrap_or('?'),
                _ => self.rng.char(..),
            })
            .collect()
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let mut b = vec![0u8; self.rng.usize(..=max)];
        self.rng.fill(&mut b);
        b
    }

    fn digits(&mut self, max: usize) -> String {
        let len = self.rng.usize(1..=max);
        (0..len).map(|_| self.rng.digit(10)).collect()
    }

    fn nested(&mut self, depth: usize) -> String {
        if self.rng.bool() {
            let close = if self.rng.u8(..4) == 0 {
                depth / 2
            } else {
                depth
            };
            format!("{}{}", "[".repeat(depth), "]".repeat(close))
        } else {
            format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
        }
    }

    /// A random Socket.IO auth object for CONNECT.
    fn auth(&mut self) -> String {
        match self.rng.u8(..8) {
            0 => format!("{{\"token\":\"{}\"}}", self.valid_token),
            1 => format!("{{\"token\":{}}}", self.digits(40)),
            2 => format!("{{\"token\":\"{}\"}}", self.tail(200).replace(['"', '\\'], "")),
            // alg none, with claims a tenant admin would like to have
            3 => "{\"token\":\"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4Iiwicm9sZSI6InN1cGVyX2FkbWluIiwiZXhwIjo5OTk5OTk5OTk5fQ.\"}".into(),
            4 => "[]".into(),
            5 => "\"token\"".into(),
            6 => {
                let depth = self.rng.usize(1..2_000);
                format!("{{\"token\":{}}}", self.nested(depth))
            }
            _ => String::new(),
        }
    }

    /// The next frame and, for attachment announcements, the binary frames that follow it.
    fn frame(&mut self) -> Vec<Frame> {
        let text = match self.rng.u8(..12) {
            // A valid-looking prefix with a random tail.
            0 | 1 => format!("{}{}", self.pick(PREFIXES), self.tail(200)),
            // A binary attachment announcement, then a few binary frames.
            2 => {
                let count = match self.rng.u8(..4) {
                    0 => "1".to_string(),
                    1 => "10000".to_string(),
                    2 => self.digits(30),
                    _ => self.rng.u8(0..5).to_string(),
                };
                let event = self.pick(EVENTS);
                let id = if self.rng.bool() {
                    self.digits(6)
                } else {
                    String::new()
                };
                let head = format!(
                    "45{count}-{id}[\"{event}\",{{\"_placeholder\":true,\"num\":{}}}]",
                    self.rng.u8(..3)
                );
                let mut frames = vec![Frame::Text(head)];
                for _ in 0..self.rng.usize(..4) {
                    frames.push(Frame::Binary(self.bytes(512)));
                }
                return frames;
            }
            // Random bytes, as binary or as lossy text.
            3 => {
                let b = self.bytes(1_024);
                if self.rng.bool() {
                    return vec![Frame::Binary(b)];
                }
                String::from_utf8_lossy(&b).into_owned()
            }
            // Huge numbers: packet types, ack ids, attachment counts and JSON values.
            4 => match self.rng.u8(..4) {
                0 => format!("4{}[\"notification:count\"]", self.digits(500)),
                1 => format!("42{}[\"notification:count\"]", self.digits(60)),
                2 => format!(
                    "42[\"notification:list\",{{\"limit\":1e{}}}]",
                    self.digits(8)
                ),
                _ => format!(
                    "42[\"notification:read\",{{\"notificationId\":{}}}]",
                    self.digits(400)
                ),
            },
            // Deep JSON nesting, balanced or not.
            5 => {
                let depth = self.rng.usize(1..20_000);
                format!("42[\"{}\",{}]", self.pick(EVENTS), self.nested(depth))
            }
            // Namespaces that do not exist, or are not namespaces.
            6 => {
                let nsp = match self.rng.u8(..4) {
                    0 => "/admin".to_string(),
                    1 => "/".repeat(self.rng.usize(1..1_000)),
                    2 => format!("/{}", self.tail(40).replace(',', "")),
                    _ => "/\u{0}".to_string(),
                };
                let kind = self.pick(&["0", "1", "2", "3", "5"]);
                format!("4{kind}{nsp},{}", self.auth())
            }
            // CONNECT with random auth (sometimes a valid one).
            7 | 8 => format!("40{}", self.auth()),
            // Events before (or after) CONNECT, with and without ack ids.
            9 | 10 => {
                let id = if self.rng.bool() {
                    self.rng.u32(..1_000).to_string()
                } else {
                    String::new()
                };
                format!(
                    "42{id}[\"{}\",{{\"notificationId\":\"{}\",\"tenantId\":\"other\",\"title\":\"x\",\"message\":\"y\"}}]",
                    self.pick(EVENTS),
                    self.rng.alphanumeric()
                )
            }
            // Now and then, a frame over the size limit.
            _ if self.oversized_left > 0 => {
                self.oversized_left -= 1;
                format!("42[\"notification:list\",\"{}\"]", "a".repeat(100_000))
            }
            _ => self.tail(50),
        };
        vec![Frame::Text(text)]
    }
}

/// What the fuzzer saw, for the summary line.
#[derive(Default, Debug)]
struct Tally {
    sessions_ws: u32,
    sessions_polling: u32,
    frames: usize,
    /// Frames the node refused to take (transport closed, HTTP error status).
    refused: usize,
    handshakes_refused: u32,
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kb * 1024
}

/// One websocket session: up to `n` frames, the server's answers drained meanwhile.
async fn websocket_session(node: &TestNode, fz: &mut Fuzzer, n: usize, tally: &mut Tally) {
    let url = format!(
        "ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket",
        node.port
    );
    let Ok(Ok((ws, _))) =
        tokio::time::timeout(STEP, tokio_tungstenite::connect_async(url.as_str())).await
    else {
        tally.handshakes_refused += 1;
        return;
    };
    tally.sessions_ws += 1;
    let (mut tx, mut rx) = ws.split();
    // The node's answers (open packet, connect errors, pings) are read and dropped, so that its
    // writes never back up behind an unread socket.
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
    let mut sent = 0;
    'session: while sent < n && tally.frames < MAX_FRAMES {
        for frame in fz.frame() {
            let msg = match frame {
                Frame::Text(t) => Message::text(t),
                Frame::Binary(b) => Message::binary(b),
            };
            tally.frames += 1;
            sent += 1;
            if !matches!(tokio::time::timeout(STEP, tx.send(msg)).await, Ok(Ok(()))) {
                tally.refused += 1;
                break 'session;
            }
        }
    }
    let _ = tokio::time::timeout(STEP, tx.close()).await;
    reader.abort();
}

/// One polling session: up to `n` frames in a few POST bodies joined by the record separator.
async fn polling_session(node: &TestNode, fz: &mut Fuzzer, n: usize, tally: &mut Tally) {
    let base = format!("{}/socket.io/?EIO=4&transport=polling", node.url());
    let http = &node.http;
    let open = async {
        let text = http.get(&base).send().await.ok()?.text().await.ok()?;
        let v: serde_json::Value = serde_json::from_str(text.get(1..)?).ok()?;
        Some(v["sid"].as_str()?.to_owned())
    };
    let Ok(Some(sid)) = tokio::time::timeout(STEP, open).await else {
        tally.handshakes_refused += 1;
        return;
    };
    tally.sessions_polling += 1;
    // Now and then the session id itself is the junk.
    let sid = if fz.rng.u8(..10) == 0 {
        fz.tail(30)
    } else {
        sid
    };
    let url = format!("{base}&sid={sid}");
    let mut sent = 0;
    while sent < n && tally.frames < MAX_FRAMES {
        let mut records = Vec::new();
        for _ in 0..fz.rng.usize(1..=4) {
            for frame in fz.frame() {
                records.push(match frame {
                    Frame::Text(t) => t,
                    Frame::Binary(b) => {
                        format!("b{}", base64::engine::general_purpose::STANDARD.encode(b))
                    }
                });
            }
        }
        tally.frames += records.len();
        sent += records.len();
        let body: Vec<u8> = if fz.rng.u8(..12) == 0 {
            fz.bytes(2_048)
        } else {
            records.join("\u{1e}").into_bytes()
        };
        let posted = tokio::time::timeout(STEP, http.post(&url).body(body).send()).await;
        if !matches!(posted, Ok(Ok(ref r)) if r.status().is_success()) {
            tally.refused += records.len();
            break;
        }
    }
    // Close the session, as a leaving browser would, so abandoned sessions do not pile up.
    let _ = tokio::time::timeout(STEP, http.post(&url).body("1").send()).await;
}

#[tokio::test]
async fn random_engine_io_and_socket_io_frames_never_take_the_node_down_or_grow_it_without_bound() {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    println!("fuzz_frames: seed {seed} (replay with FUZZ_SEED={seed})");
    // Every fuzz session comes from 127.0.0.1 and most never authenticate: lift the per-IP
    // cap on pending sessions (tested on its own in hostile_sockets), so that the legitimate
    // client afterwards is admitted while the fuzz sessions wait out their connect timeout.
    let node = spawn_node_with(|c| c.max_pending_sessions_per_ip = 100_000).await;
    // Warm the node up (first connect, first notification) before measuring memory.
    let warm = connect(&node, &token("warm", Some("t-fuzz"), Role::Student)).await;
    assert_eq!(node.notify("t-fuzz", "warm", "warm-1").await.0, 202);
    warm.inbox.next("notification:new").await;
    let rss_before = rss_bytes();

    let mut fz = Fuzzer::new(seed, token("fuzzer", Some("t-fuzz"), Role::Student));
    let mut tally = Tally::default();
    let t0 = Instant::now();
    while tally.frames < MAX_FRAMES && t0.elapsed() < MAX_TIME {
        let n = fz.rng.usize(1..=40);
        if fz.rng.bool() {
            websocket_session(&node, &mut fz, n, &mut tally).await;
        } else {
            polling_session(&node, &mut fz, n, &mut tally).await;
        }
    }
    let elapsed = t0.elapsed();
    println!("fuzz_frames: {tally:?} in {elapsed:.1?}");
    assert!(
        tally.frames >= 200,
        "the fuzzer barely ran ({tally:?}); the node refused its sessions"
    );

    let (health, _) = send(node.http.get(format!("{}/healthz", node.url()))).await;
    assert_eq!(health, 200);
    // The bystander connected before the fuzz is still served, and a newcomer gets in.
    ok(&warm.ack("notification:count", serde_json::json!({})).await);
    let legit = connect(&node, &token("legit", Some("t-fuzz"), Role::Student)).await;
    let (status, body) = node.notify("t-fuzz", "legit", "after-fuzz").await;
    assert_eq!(status, 202, "{body}");
    let n = legit
        .inbox
        .wait_for("notification:new", |v| v["id"] == "after-fuzz")
        .await;
    assert_eq!(n["userId"], "legit");
    // Every socket the fuzzer authenticated is gone again: only the two real clients remain.
    wait_for_connections(&node, 2).await;

    let grown = rss_bytes().saturating_sub(rss_before);
    println!("fuzz_frames: RSS grew by {} KiB", grown / 1024);
    assert!(
        grown < RSS_BOUND_BYTES,
        "the process grew by {grown} bytes over {} frames",
        tally.frames
    );
    legit.disconnect().await;
    warm.disconnect().await;
}
