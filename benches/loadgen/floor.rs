//! `lms-floor`: the machine's floor for what one connection and one delivery cost.
//!
//! A websocket server with nothing else in it, to set the gateway's per-unit costs against
//! (issue 15): it holds N idle websocket connections and reports its RSS growth per
//! connection, then writes one pre-encoded text frame to all of them R times a second and
//! reports its CPU-seconds per million deliveries (from /proc/self/stat). Two servers:
//! `raw` keeps the bare `TcpStream`s in a `Vec` and writes from one loop (the kernel's cost,
//! nothing per socket but the stream); `tasks` gives each socket a tokio-tungstenite stream
//! and a task fed by one broadcast channel (the least a task-per-socket server holds).
//! `connect` is its client: N sockets that count the frames they receive and record each
//! one's latency (the server stamps the frame with the wall-clock time it starts writing it,
//! as the gateway's generator stamps a broadcast when it sends its request).
//! benches/floor.sh drives both; docs/benchmarks.md ("Floor") has the figures.

// Shared with lms-loadgen, which uses all of them.
#[allow(dead_code)]
mod latency;
#[allow(dead_code)]
mod procfs;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Message, Role, WebSocketConfig};

#[derive(Parser)]
#[command(
    name = "lms-floor",
    about = "The machine's floor: memory per idle websocket and CPU per delivery"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Hold N websocket connections, report RSS per connection, then write a frame to all at R/s.
    Serve(Serve),
    /// Open N websocket connections to a floor server and count what they receive.
    Connect(Connect),
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// The bare streams in a Vec, written from one loop.
    Raw,
    /// One tokio-tungstenite stream and one task per socket, fed by a broadcast channel.
    Tasks,
}

#[derive(Parser)]
struct Serve {
    /// Loopback port to listen on.
    #[arg(long, default_value_t = 4190)]
    port: u16,
    /// Connections to wait for before measuring.
    #[arg(short = 'n', long, default_value_t = 10_000)]
    connections: usize,
    #[arg(long, value_enum, default_value_t = Mode::Raw)]
    mode: Mode,
    /// Frames written to every socket per second (0: only hold).
    #[arg(short = 'r', long, default_value_t = 0)]
    rate: u32,
    /// Groups the sockets are split into (socket i in group i mod G), written one at a time,
    /// G × rate times a second: with G = 10, the gateway's fan-out shape (a broadcast to one
    /// of 10 tenants at a time) rather than one burst to every socket.
    #[arg(short = 'g', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    groups: u32,
    /// Seconds of writing, and of holding afterwards.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Payload bytes of the text frame (under 65,536).
    #[arg(long, default_value_t = 160)]
    frame_bytes: usize,
}

#[derive(Parser)]
struct Connect {
    #[arg(long, default_value = "127.0.0.1:4190")]
    addr: SocketAddr,
    #[arg(short = 'n', long, default_value_t = 10_000)]
    connections: usize,
    #[arg(long, default_value_t = 2_000)]
    connect_rate: u32,
    /// Seconds to hold the sockets once all are open.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Payload bytes of the server's frame, to turn bytes into frames.
    #[arg(long, default_value_t = 160)]
    frame_bytes: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Cmd::Connect(c) = &cli.cmd
        && !c.addr.ip().is_loopback()
    {
        bail!("lms-floor connects to loopback addresses only");
    }
    let rt = tokio::runtime::Runtime::new()?;
    let line = rt.block_on(async {
        match cli.cmd {
            Cmd::Serve(s) => serve(s).await,
            Cmd::Connect(c) => connect(c).await,
        }
    })?;
    println!("{line}");
    Ok(())
}

/// The unmasked server text frame around `len` bytes of payload.
fn text_frame(len: usize) -> anyhow::Result<Vec<u8>> {
    let mut frame = match len {
        0..=125 => vec![0x81, len as u8],
        126..=65535 => vec![0x81, 126, (len >> 8) as u8, len as u8],
        _ => bail!("--frame-bytes must be under 65,536"),
    };
    frame.extend(std::iter::repeat_n(b'x', len));
    Ok(frame)
}

/// Digits of the send time (µs since the epoch, zero-padded) at the start of every payload.
const STAMP_LEN: usize = 16;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Writes the current time over the first [`STAMP_LEN`] bytes of `payload`.
fn stamp(payload: &mut [u8]) {
    payload[..STAMP_LEN]
        .copy_from_slice(format!("{:0width$}", now_us(), width = STAMP_LEN).as_bytes());
}

/// The send time a payload carries, if it has one.
fn stamp_of(payload: &[u8]) -> Option<u64> {
    std::str::from_utf8(payload.get(..STAMP_LEN)?)
        .ok()?
        .parse()
        .ok()
}

/// Cuts the whole frames (all `frame_len` bytes long) off the front of `buf`, in order.
fn drain_frames(buf: &mut Vec<u8>, frame_len: usize, each: impl FnMut(&[u8])) {
    let whole = buf.len() / frame_len * frame_len;
    buf[..whole].chunks_exact(frame_len).for_each(each);
    buf.drain(..whole);
}

fn me() -> procfs::ProcSample {
    procfs::read(std::process::id()).unwrap_or_default()
}

async fn serve(args: Serve) -> anyhow::Result<String> {
    if args.frame_bytes < STAMP_LEN {
        bail!("--frame-bytes must be at least {STAMP_LEN} (the send time)");
    }
    let mut frame = text_frame(args.frame_bytes)?;
    let header_len = frame.len() - args.frame_bytes;
    let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
    let (tx, mut accepted) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Ok(stream) = accept_handshake(stream).await {
                    tx.send(stream).ok();
                }
            });
        }
    });
    let before = me();
    eprintln!("lms-floor: listening on {}", args.port);

    let groups = args.groups as usize;
    let feeds: Vec<_> = (0..groups)
        .map(|_| broadcast::channel::<Utf8Bytes>(16).0)
        .collect();
    let mut streams: Vec<Vec<TcpStream>> = (0..groups).map(|_| Vec::new()).collect();
    for i in 0..args.connections {
        let stream = accepted.recv().await.context("listener stopped")?;
        match args.mode {
            Mode::Raw => streams[i % groups].push(stream),
            Mode::Tasks => {
                tokio::spawn(socket_task(stream, feeds[i % groups].subscribe()));
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = me();
    let rss_per_connection =
        held.rss_bytes.saturating_sub(before.rss_bytes) / args.connections as u64;
    eprintln!(
        "lms-floor: {} held, {rss_per_connection} B RSS each",
        args.connections
    );

    let mut deliveries = 0u64;
    let start_cpu = me().cpu_s;
    let started = Instant::now();
    if args.rate > 0 {
        let ticks_per_s = args.rate as f64 * groups as f64;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / ticks_per_s));
        for group in (0..groups).cycle() {
            if started.elapsed() >= Duration::from_secs(args.duration) {
                break;
            }
            tick.tick().await;
            stamp(&mut frame[header_len..]);
            match args.mode {
                Mode::Raw => {
                    for s in &mut streams[group] {
                        if s.write_all(&frame).await.is_ok() {
                            deliveries += 1;
                        }
                    }
                }
                Mode::Tasks => {
                    let payload = Utf8Bytes::try_from(frame[header_len..].to_vec())?;
                    deliveries += feeds[group].send(payload).unwrap_or(0) as u64;
                }
            }
        }
    }
    let cpu_s = me().cpu_s - start_cpu;
    let wall_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(json!({
        "mode": match args.mode { Mode::Raw => "raw", Mode::Tasks => "tasks" },
        "connections": args.connections,
        "rss_before_bytes": before.rss_bytes,
        "rss_held_bytes": held.rss_bytes,
        "rss_bytes_per_connection": rss_per_connection,
        "rate": args.rate,
        "groups": args.groups,
        "frame_bytes": args.frame_bytes,
        "write_wall_s": wall_s,
        "deliveries": deliveries,
        "cpu_s": cpu_s,
        "cpu_s_per_1m_deliveries": if deliveries > 0 { cpu_s / deliveries as f64 * 1e6 } else { 0.0 },
    })
    .to_string())
}

/// One socket of the `tasks` server: forwards every broadcast frame, stops on close.
async fn socket_task(stream: TcpStream, mut feed: broadcast::Receiver<Utf8Bytes>) {
    // tungstenite reads in 128 KiB chunks by default; the gateway reads in 1 KiB
    // (`ws_read_buffer_size`), and so does this floor.
    let config = WebSocketConfig::default().read_buffer_size(1024);
    let ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await;
    let (mut tx, mut rx) = ws.split();
    loop {
        tokio::select! {
            frame = feed.recv() => match frame {
                Ok(text) => {
                    if tx.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            msg = rx.next() => if !matches!(msg, Some(Ok(_))) { return },
        }
    }
}

/// Reads the HTTP upgrade request and answers 101; the stream then carries frames only.
async fn accept_handshake(mut stream: TcpStream) -> anyhow::Result<TcpStream> {
    let head = read_head(&mut stream).await?;
    let key = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim())
        })
        .context("no Sec-WebSocket-Key")?;
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    stream.write_all(answer.as_bytes()).await?;
    Ok(stream)
}

/// An HTTP head, up to the blank line (at most 4 KiB; nothing follows it before the answer).
async fn read_head(stream: &mut TcpStream) -> anyhow::Result<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || buf.len() + n > 4096 {
            bail!("bad handshake");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

async fn connect(args: Connect) -> anyhow::Result<String> {
    let frame_len = text_frame(args.frame_bytes)?.len();
    let header_len = frame_len - args.frame_bytes;
    let received = Arc::new(AtomicU64::new(0));
    let latency = Arc::new(latency::Latency::default());
    let mut failed = 0u64;
    let mut open = Vec::with_capacity(args.connections);
    let mut pace = tokio::time::interval(Duration::from_secs_f64(
        1.0 / args.connect_rate.max(1) as f64,
    ));
    for _ in 0..args.connections {
        pace.tick().await;
        match open_socket(args.addr).await {
            Ok(stream) => open.push(stream),
            Err(_) => failed += 1,
        }
    }
    eprintln!("lms-floor: {} open, {failed} failed", open.len());
    let connected = open.len();
    for (i, mut stream) in open.into_iter().enumerate() {
        let (received, latency) = (received.clone(), latency.clone());
        tokio::spawn(async move {
            // Every frame has the same length: whole frames are cut from the front.
            let mut buf = Vec::with_capacity(frame_len * 4);
            let mut chunk = vec![0u8; 4096];
            while let Ok(n @ 1..) = stream.read(&mut chunk).await {
                let at = now_us();
                buf.extend_from_slice(&chunk[..n]);
                drain_frames(&mut buf, frame_len, |frame| {
                    received.fetch_add(1, Ordering::Relaxed);
                    if let Some(sent) = stamp_of(&frame[header_len..]) {
                        latency.record(i, at.saturating_sub(sent));
                    }
                });
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    Ok(json!({
        "connected": connected,
        "failed": failed,
        "frames_received": received.load(Ordering::Relaxed),
        "latency": latency.summary(),
    })
    .to_string())
}

async fn open_socket(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let head = read_head(&mut stream).await?;
    if !head.starts_with("HTTP/1.1 101") {
        bail!("not upgraded: {}", head.lines().next().unwrap_or_default());
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_payload_keeps_its_length_and_reads_back_its_time() {
        let mut frame = text_frame(160).unwrap();
        let header = frame.len() - 160;
        let before = now_us();
        stamp(&mut frame[header..]);
        let sent = stamp_of(&frame[header..]).expect("a stamp");
        assert!(sent >= before && sent <= now_us());
        assert_eq!(frame.len(), header + 160);
        assert!(std::str::from_utf8(&frame[header..]).is_ok());
        assert_eq!(stamp_of(&text_frame(160).unwrap()[header..]), None);
    }

    #[test]
    fn frames_split_across_reads_are_counted_once_whole() {
        let mut frame = text_frame(20).unwrap();
        let header = frame.len() - 20;
        stamp(&mut frame[header..]);
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        buf.extend_from_slice(&frame[..5]);
        drain_frames(&mut buf, frame.len(), |f| seen.push(f.to_vec()));
        assert!(seen.is_empty());
        buf.extend_from_slice(&frame[5..]);
        buf.extend_from_slice(&frame);
        buf.extend_from_slice(&frame[..3]);
        drain_frames(&mut buf, frame.len(), |f| seen.push(f.to_vec()));
        assert_eq!(seen, vec![frame.clone(), frame.clone()]);
        assert_eq!(buf, frame[..3]);
    }
}
