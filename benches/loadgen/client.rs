//! One Socket.IO v4 client over a raw websocket, as a single tokio task per socket.
//!
//! `connect` does TCP + websocket upgrade + Engine.IO open + Socket.IO CONNECT with the token in
//! `auth`, and times the whole of it. `drive` then owns the socket: it answers pings, feeds
//! marked deliveries to the ledger, sends queued events with ack ids and times their acks, and
//! closes cleanly when told to. No thread per socket and small buffers, so tens of thousands of
//! sockets fit in one process.

use crate::proto::{self, Frame};
use crate::stats::{AckKind, Stats};
use crate::target::Target;
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

pub type Ws = WebSocketStream<TcpStream>;

/// An event a scenario wants a socket to send.
pub struct Outgoing {
    pub kind: AckKind,
    pub payload: serde_json::Value,
}

/// How a connection attempt ended.
pub enum Connect {
    Connected(Box<Ws>),
    /// The server answered CONNECT with `44`: its message (UNAUTHORIZED, ...).
    Refused(String),
    /// Anything else went wrong (TCP, upgrade, timeout, protocol).
    Failed(&'static str),
}

/// Why `drive` returned.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The run (or a storm, or the client's lifetime) asked the socket to go.
    Closed,
    /// The server or the transport ended it.
    Lost(&'static str),
}

fn ws_config() -> WebSocketConfig {
    // Frames here are a few hundred bytes: tungstenite's 128 KiB read buffer per socket would
    // make the load generator, not the server, the memory bottleneck.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Connects and authenticates one socket; records the attempt in `stats`.
pub async fn connect(target: &Target, token: &str, timeout: Duration, stats: &Stats) -> Connect {
    stats
        .attempts
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t0 = Instant::now();
    let outcome = match tokio::time::timeout(timeout, handshake(target, token)).await {
        Ok(o) => o,
        Err(_) => Connect::Failed("timeout"),
    };
    match &outcome {
        Connect::Connected(_) => {
            stats
                .accepted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            stats
                .connected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            stats
                .connect_latency
                .record(token.len(), t0.elapsed().as_micros() as u64);
        }
        Connect::Refused(m) => stats.refused.add(m),
        Connect::Failed(why) => stats.failed.add(why),
    }
    outcome
}

async fn handshake(target: &Target, token: &str) -> Connect {
    let Ok(tcp) = TcpStream::connect(target.addr).await else {
        return Connect::Failed("tcp");
    };
    let _ = tcp.set_nodelay(true);
    let Ok((mut ws, _)) =
        client_async_with_config(target.ws.as_str(), tcp, Some(ws_config())).await
    else {
        return Connect::Failed("websocket upgrade");
    };
    // Engine.IO open packet first, then our CONNECT.
    match next_text(&mut ws).await {
        Some(t) if matches!(proto::parse(&t), Frame::Open { .. }) => {}
        _ => return Connect::Failed("no engine.io open"),
    }
    if ws
        .send(Message::text(proto::connect_packet(token)))
        .await
        .is_err()
    {
        return Connect::Failed("send connect");
    }
    loop {
        let Some(t) = next_text(&mut ws).await else {
            return Connect::Failed("closed during connect");
        };
        match proto::parse(&t) {
            Frame::Connected => return Connect::Connected(Box::new(ws)),
            Frame::ConnectError { message } => {
                let _ = ws.close(None).await;
                return Connect::Refused(message);
            }
            Frame::Ping if ws.send(Message::text(proto::PONG)).await.is_err() => {
                return Connect::Failed("send pong");
            }
            _ => {}
        }
    }
}

async fn next_text(ws: &mut Ws) -> Option<String> {
    while let Some(msg) = ws.next().await {
        match msg.ok()? {
            Message::Text(t) => return Some(t.as_str().to_owned()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
    None
}

/// What `drive` needs to know about its socket.
pub struct Driver {
    pub stats: Arc<Stats>,
    /// Histogram shard; any number stable per socket.
    pub shard: usize,
    /// Whether its deliveries count towards loss (stable sockets do, churning ones do not).
    pub accounted: bool,
    /// The run is over when this turns true.
    pub stop: watch::Receiver<bool>,
    /// Storm generation: the socket closes when it changes (churn only).
    pub storm: Option<watch::Receiver<u64>>,
    /// Close by itself at this instant (churn lifetimes).
    pub until: Option<tokio::time::Instant>,
    /// Events to send.
    pub outgoing: Option<mpsc::Receiver<Outgoing>>,
}

/// Runs one connected socket until the run, a storm or its lifetime ends it, or the server does.
pub async fn drive(ws: Box<Ws>, mut d: Driver) -> End {
    use std::sync::atomic::Ordering::Relaxed;
    let mut ws = *ws;
    let stats = d.stats.clone();
    let mut pending: HashMap<u64, (AckKind, Instant)> = HashMap::new();
    let mut next_id = 0u64;
    let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
    let until = tokio::time::sleep_until(d.until.unwrap_or(far));
    tokio::pin!(until);
    let end = loop {
        tokio::select! {
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None => break End::Lost("server closed"),
                    Some(Ok(_)) => continue,
                    Some(Err(_)) => break End::Lost("transport error"),
                };
                match proto::parse(text.as_str()) {
                    Frame::Ping if ws.send(Message::text(proto::PONG)).await.is_err() => {
                        break End::Lost("send pong");
                    }
                    Frame::Event { args, .. } => {
                        stats.events_received.fetch_add(1, Relaxed);
                        if let Some(m) = proto::find_marker(args) {
                            if d.accounted {
                                stats.delivered(d.shard, m);
                            } else {
                                stats.unaccounted_deliveries.fetch_add(1, Relaxed);
                            }
                        }
                    }
                    Frame::Ack { id, args } => {
                        if let Some((kind, t0)) = pending.remove(&id) {
                            let a = stats.ack(kind);
                            if proto::ack_ok(args) {
                                a.ok.fetch_add(1, Relaxed);
                            } else {
                                a.refused.add(&proto::ack_error_code(args));
                            }
                            a.latency.record(d.shard, t0.elapsed().as_micros() as u64);
                        }
                    }
                    Frame::Disconnected => break End::Lost("server disconnect"),
                    Frame::Close => break End::Lost("engine.io close"),
                    _ => {}
                }
            }
            out = recv_outgoing(&mut d.outgoing) => {
                let Some(out) = out else { d.outgoing = None; continue };
                next_id += 1;
                pending.insert(next_id, (out.kind, Instant::now()));
                stats.ack(out.kind).sent.fetch_add(1, Relaxed);
                if ws.send(Message::text(proto::event_packet(next_id, out.kind.event(), &out.payload))).await.is_err() {
                    break End::Lost("send event");
                }
            }
            _ = crate::stop::stopped(&mut d.stop) => break End::Closed,
            _ = storm_changed(&mut d.storm) => break End::Closed,
            _ = &mut until => break End::Closed,
        }
    };
    stats.connected.fetch_sub(1, Relaxed);
    match end {
        End::Closed => {
            stats.closed.fetch_add(1, Relaxed);
            // Leave the namespace, then close the websocket, as a browser tab closing would.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let _ = ws.send(Message::text("41")).await;
                let _ = ws.close(None).await;
            })
            .await;
        }
        End::Lost(why) => stats.unexpected_disconnects.add(why),
    }
    end
}

async fn recv_outgoing(rx: &mut Option<mpsc::Receiver<Outgoing>>) -> Option<Outgoing> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn storm_changed(rx: &mut Option<watch::Receiver<u64>>) {
    match rx {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}
