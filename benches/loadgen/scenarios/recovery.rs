//! `recovery` (issue 12): N sockets on the first node, tenant broadcasts through the other
//! nodes at R/s; after `--kill-after` seconds the first node is killed (SIGKILL to
//! `--kill-pid`). Each socket then does what socket.io-client does: it reconnects to a
//! surviving node with its `pid` and the last offset it saw. Reported: how many sockets
//! recovered (same pid in the answer) or came back as new connections, the time from the kill
//! until each had recovered (p50, p99, last), the events replayed to them and at what rate,
//! loss and duplicates over the whole run (the ledger), and the survivors' CPU (with Redis's
//! when its pid is in `--pids`).

use crate::cli::RecoveryArgs;
use crate::proto::{self, Frame, StreamKind};
use crate::run::{self, Ctx, Meter, per};
use crate::stats::Stats;
use crate::target::Target;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{WebSocketStream, client_async};

type Ws = WebSocketStream<TcpStream>;

/// What the sockets report, shared by all of them.
#[derive(Default)]
struct Outcomes {
    connected: AtomicU64,
    lost: AtomicU64,
    recovered: AtomicU64,
    new_session: AtomicU64,
    replayed: AtomicU64,
    /// Microseconds from the kill until each socket was back (recovered or not).
    back_after_us: Mutex<Vec<u64>>,
    /// Microseconds from the kill until each recovered socket had its recovery answer.
    recovered_after_us: Mutex<Vec<u64>>,
}

/// One socket's session state: what socket.io-client keeps between connections.
struct Session {
    token: String,
    pid: Option<String>,
    offset: Option<String>,
}

impl Session {
    fn connect_packet(&self) -> String {
        let mut auth = json!({ "token": self.token });
        if let Some(pid) = &self.pid {
            auth["pid"] = json!(pid);
            if let Some(o) = &self.offset {
                auth["offset"] = json!(o);
            }
        }
        format!("40{auth}")
    }
}

/// Opens a websocket and sends CONNECT; returns the socket and the `pid` of the answer.
async fn open(target: &Target, s: &Session) -> Option<(Ws, Option<String>)> {
    let tcp = TcpStream::connect(target.addr).await.ok()?;
    let _ = tcp.set_nodelay(true);
    let (mut ws, _) = client_async(target.ws.as_str(), tcp).await.ok()?;
    ws.send(Message::text(s.connect_packet())).await.ok()?;
    loop {
        let text = match ws.next().await? {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        };
        let text = text.as_str();
        if let Some(body) = text.strip_prefix("40") {
            let pid = serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|v| v.get("pid").and_then(Value::as_str).map(str::to_owned));
            return Some((ws, pid));
        }
        if text.starts_with("44") {
            return None;
        }
        if text == "2" {
            ws.send(Message::text(proto::PONG)).await.ok()?;
        }
    }
}

/// The trailing offset argument of an event (`…,"~<offset>"]`), if it has one.
fn trailing_offset(args: &str) -> Option<&str> {
    let body = args.strip_suffix("\"]")?;
    let at = body.rfind(",\"~")?;
    let offset = &body[at + 2..];
    (!offset.contains('"')).then_some(offset)
}

/// Reads events until the connection ends (`false`) or the run stops (`true`). Events whose
/// marker was sent before `back_at` are counted as replayed.
async fn read(
    ws: &mut Ws,
    s: &mut Session,
    stats: &Stats,
    shard: usize,
    back_at_us: Option<u64>,
    out: &Outcomes,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    loop {
        tokio::select! {
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return false,
                    Some(Ok(_)) => continue,
                };
                match proto::parse(text.as_str()) {
                    Frame::Ping if ws.send(Message::text(proto::PONG)).await.is_err() => {
                        return false;
                    }
                    Frame::Event { args, .. } => {
                        stats.events_received.fetch_add(1, Relaxed);
                        if let Some(o) = trailing_offset(args) {
                            s.offset = Some(o.to_owned());
                        }
                        if let Some(m) = proto::find_marker(args) {
                            if back_at_us.is_some_and(|b| m.sent_us < b) {
                                out.replayed.fetch_add(1, Relaxed);
                            }
                            stats.delivered(shard, m);
                        }
                    }
                    Frame::Disconnected | Frame::Close => return false,
                    _ => {}
                }
            }
            _ = crate::stop::stopped(stop) => return true,
        }
    }
}

struct Life {
    first: Target,
    survivors: Vec<Target>,
    shard: usize,
    stats: Arc<Stats>,
    out: Arc<Outcomes>,
    killed_at: Arc<OnceLock<Instant>>,
    stop: watch::Receiver<bool>,
}

/// One socket for the whole run: connect, read, and after the loss reconnect (200 ms to 1 s
/// apart, as socket.io-client's defaults) to a survivor with the session's pid and offset.
async fn life(mut l: Life, mut s: Session, gate: Arc<Semaphore>) {
    let opened = {
        let _permit = gate.acquire().await;
        open(&l.first, &s).await
    };
    let Some((mut ws, pid)) = opened else {
        return;
    };
    s.pid = pid;
    l.out.connected.fetch_add(1, Relaxed);
    let mut back_at = None;
    let mut attempt = 0usize;
    loop {
        if read(
            &mut ws,
            &mut s,
            &l.stats,
            l.shard,
            back_at,
            &l.out,
            &mut l.stop,
        )
        .await
        {
            let _ = ws.close(None).await;
            return;
        }
        l.out.lost.fetch_add(1, Relaxed);
        let reopened = loop {
            if *l.stop.borrow() {
                return;
            }
            tokio::time::sleep(Duration::from_millis((200 * (1 << attempt.min(2))) as u64)).await;
            let target = &l.survivors[(l.shard + attempt) % l.survivors.len()];
            attempt += 1;
            if let Some(opened) = open(target, &s).await {
                break opened;
            }
        };
        let (next, pid) = reopened;
        ws = next;
        let since_kill = l
            .killed_at
            .get()
            .map_or(0, |k| k.elapsed().as_micros() as u64);
        l.out.back_after_us.lock().unwrap().push(since_kill);
        if pid.is_some() && pid == s.pid {
            l.out.recovered.fetch_add(1, Relaxed);
            l.out.recovered_after_us.lock().unwrap().push(since_kill);
        } else {
            l.out.new_session.fetch_add(1, Relaxed);
            s.pid = pid;
        }
        back_at = Some(l.stats.now_us());
        attempt = 0;
    }
}

fn percentiles(mut v: Vec<u64>) -> Value {
    if v.is_empty() {
        return json!(null);
    }
    v.sort_unstable();
    let at =
        |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1] as f64 / 1000.0;
    json!({ "count": v.len(), "p50_ms": at(0.50), "p99_ms": at(0.99), "last_ms": at(1.0) })
}

pub async fn run(ctx: &Ctx, a: &RecoveryArgs) -> anyhow::Result<Value> {
    anyhow::ensure!(
        ctx.targets.len() >= 2,
        "recovery needs two --url: the first is killed, the others take its sockets"
    );
    let p = &a.pop;
    let t_count = p.tenants;
    let out = Arc::new(Outcomes::default());
    let killed_at = Arc::new(OnceLock::new());
    let gate = Arc::new(Semaphore::new(p.connect_concurrency));
    ctx.set_phase("ramp");
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(p.connections);
    for i in 0..p.connections {
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(i as f64 / p.connect_rate)).into())
            .await;
        let (t, user) = super::identity(i, t_count);
        let session = Session {
            token: ctx.minter.mint(&user, Some(&ctx.tenant(t)), "student")?,
            pid: None,
            offset: None,
        };
        let l = Life {
            first: ctx.targets[0].clone(),
            survivors: ctx.targets[1..].to_vec(),
            shard: i,
            stats: ctx.stats.clone(),
            out: out.clone(),
            killed_at: killed_at.clone(),
            stop: ctx.stop.subscribe(),
        };
        handles.push(tokio::spawn(life(l, session, gate.clone())));
    }
    let settle = Instant::now() + ctx.connect_timeout();
    while (out.connected.load(Relaxed) as usize) < p.connections && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connected = out.connected.load(Relaxed);
    anyhow::ensure!(connected > 0, "no socket connected to the first node");
    let members = Arc::new(super::per_tenant(
        &(0..p.connections)
            .map(|i| i < connected as usize)
            .collect::<Vec<_>>(),
        t_count,
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;

    ctx.set_phase("publish");
    let survivors_pids: Vec<u32> = ctx
        .common
        .pids
        .iter()
        .copied()
        .filter(|p| *p != a.kill_pid)
        .collect();
    let meter = Meter::start(&survivors_pids);
    let kill_after = Duration::from_secs_f64(a.kill_after);
    let killer = {
        let (killed_at, pid) = (killed_at.clone(), a.kill_pid);
        tokio::spawn(async move {
            tokio::time::sleep(kill_after).await;
            let _ = killed_at.set(Instant::now());
            std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })
    };
    let stats = ctx.stats.clone();
    let survivors = ctx.targets[1..].to_vec();
    let (started, wall) = run::pace(ctx, a.rate, Duration::from_secs(ctx.common.duration), |k| {
        let (seq, t, text) = super::next_broadcast(&stats, k, t_count)?;
        let (stats, members, api) = (stats.clone(), members.clone(), ctx.api.clone());
        let node = survivors[(k as usize / t_count) % survivors.len()].clone();
        let tenant = ctx.tenant(t);
        Some(async move {
            let outcome = api.broadcast(&node, &tenant, &text).await;
            stats
                .stream(StreamKind::Broadcast)
                .record_publish(seq, members[t], outcome);
        })
    })
    .await;
    let killed = killer.await.unwrap_or(false);
    ctx.set_phase("drain");
    let ledger = &ctx.stats.stream(StreamKind::Broadcast).ledger;
    let drained = run::drain(Duration::from_secs(ctx.common.drain), || ledger.complete()).await;
    let cost = meter.finish();
    let _ = ctx.stop.send(true);
    for h in handles {
        let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
    }

    let back = std::mem::take(&mut *out.back_after_us.lock().unwrap());
    let recovered_after = std::mem::take(&mut *out.recovered_after_us.lock().unwrap());
    let recovered = out.recovered.load(Relaxed);
    let replayed = out.replayed.load(Relaxed);
    let last_back_s = back.iter().max().map(|us| *us as f64 / 1e6);
    let tally = ledger.tally();
    Ok(json!({
        "killed": killed,
        "kill_after_s": a.kill_after,
        "connected_to_first_node": connected,
        "lost": out.lost.load(Relaxed),
        "recovered": recovered,
        "new_sessions": out.new_session.load(Relaxed),
        "back_after_kill": percentiles(back),
        "recovered_after_kill": percentiles(recovered_after),
        "events_replayed": replayed,
        "events_replayed_per_s": last_back_s.and_then(|s| per(replayed as f64, s)),
        "broadcasts_started": started,
        "publish_s": wall.as_secs_f64(),
        "drain_s": drained.as_secs_f64(),
        "deliveries": tally.delivered,
        "cost": crate::report::cost_json(&cost, &[("cpu_s_per_1m_deliveries", cost.cpu_s * 1e6, tally.delivered as f64)]),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trailing_offset_is_the_last_string_argument_when_it_is_one() {
        assert_eq!(
            trailing_offset(r#"["notification:new",{"id":"n"},"~1796-0-ab"]"#),
            Some("~1796-0-ab")
        );
        assert_eq!(trailing_offset(r#"["notification:new",{"m":"~x"}]"#), None);
        assert_eq!(trailing_offset(r#"["e","a\"~b"]"#), None);
    }

    #[test]
    fn a_reconnect_sends_the_pid_and_the_offset_it_saw() {
        let mut s = Session {
            token: "tok".into(),
            pid: None,
            offset: None,
        };
        assert_eq!(s.connect_packet(), r#"40{"token":"tok"}"#);
        s.pid = Some("p1".into());
        let zero_event: Value = serde_json::from_str(&s.connect_packet()[2..]).unwrap();
        assert_eq!(zero_event, json!({ "token": "tok", "pid": "p1" }));
        s.offset = Some("~1-0-a".into());
        let v: Value = serde_json::from_str(&s.connect_packet()[2..]).unwrap();
        assert_eq!(
            v,
            json!({ "token": "tok", "pid": "p1", "offset": "~1-0-a" })
        );
    }
}
