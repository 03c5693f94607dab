//! What recovery keeps in process memory (issue 12): heap bytes per kept event in the
//! memory engine's streams (one node), and per offset in a cluster node's received ring
//! (`recovery/received.rs`), measured with a counting allocator, not read off the layout.
//! Redis's cost per kept event is in docs/cluster.md (`MEMORY USAGE` of a stream).
//!
//! `cargo bench --bench recovery_bytes` (figures in docs/benchmarks.md). Allocation sizes do
//! not depend on optimisation, so `--profile dev` measures the same.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use lms_realtime::recovery::memory::MemoryRecovery;
use lms_realtime::recovery::received::Received;
use lms_realtime::recovery::{Clock, Entry, RecoveryStore, StreamBounds};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::LIVE;

/// A notification-sized payload of `len` bytes of JSON.
fn payload(len: usize) -> String {
    let pad = len.saturating_sub(40);
    format!(r#"{{"id":"n-0000000001","title":"{}"}}"#, "x".repeat(pad))
}

/// Live heap bytes per entry after `rooms` × `per_room` appends of `len`-byte payloads.
async fn stream_bytes(rooms: usize, per_room: usize, len: usize) -> f64 {
    let store = MemoryRecovery::new(StreamBounds {
        max_len: per_room,
        max_age: Duration::from_secs(3600),
    });
    let clock = Clock::new();
    let data = payload(len);
    let names: Vec<String> = (0..rooms)
        .map(|i| format!("tenant:t-{}:user:u-{i:06}", i % 10))
        .collect();
    let before = LIVE.load(Relaxed);
    for _ in 0..per_room {
        for room in &names {
            let entry = Entry {
                offset: clock.next(),
                event: "notification:new".to_owned(),
                data: data.clone(),
                except: None,
            };
            store
                .append(std::slice::from_ref(room), &[entry])
                .await
                .expect("memory append");
        }
    }
    let bytes = (LIVE.load(Relaxed) - before) as f64 / (rooms * per_room) as f64;
    drop(store);
    bytes
}

/// Live heap bytes per offset of a full received ring of `cap`.
fn ring_bytes(cap: usize) -> f64 {
    let clock = Clock::new();
    let before = LIVE.load(Relaxed);
    let ring = Received::new(cap);
    // Twice its size: full, and at its steady state (dropping as it records).
    for _ in 0..2 * cap {
        ring.record(clock.next());
    }
    let bytes = (LIVE.load(Relaxed) - before) as f64 / cap as f64;
    drop(ring);
    bytes
}

fn main() {
    // `cargo nextest run --all-targets` lists every target: nothing to list here.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(measure());
}

async fn measure() {
    println!("memory engine, heap bytes per kept event (payload + entry + deque slot + room):");
    for (rooms, per_room, len) in [
        (1, 10_000, 265),
        (1_000, 10, 265),
        (1, 10_000, 4_096),
        (1_000, 10, 4_096),
    ] {
        let b = stream_bytes(rooms, per_room, len).await;
        println!(
            "  {rooms:>5} rooms x {per_room:>6} entries, {len:>5} B payload: {b:>7.0} B per entry ({:>4.0} B beside the payload)",
            b - len as f64
        );
    }
    println!("received ring (cluster), heap bytes per offset at its steady state:");
    for cap in [16_384, 163_840] {
        println!("  {cap:>7} offsets: {:>5.1} B per offset", ring_bytes(cap));
    }
}
