//! Micro-benchmarks of the gateway's hot paths: token verification (every connect), room
//! names (every connect and emit), encoding a notification packet (every delivery) and the
//! memory store's inbox operations (every notification). Run: `cargo bench --bench hot_paths`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lms_realtime::auth::{KeySource, Role, Verifier, mint_hs256};
use lms_realtime::ids::{CourseId, TenantId, UserId};
use lms_realtime::rooms;
use lms_realtime::store::memory::MemoryStore;
use lms_realtime::store::{InboxStore, ListQuery, StoreLimits, conformance};

fn token_verification(c: &mut Criterion) {
    let verifier = Verifier::new(
        jsonwebtoken::Algorithm::HS256,
        &KeySource::Secret("bench-secret-0123456789abcdef-0123".into()),
        None,
        None,
        30,
    )
    .unwrap();
    let token = mint_hs256(
        "bench-secret-0123456789abcdef-0123",
        "user-123",
        Some("tenant-1"),
        Role::Student,
        3600,
    )
    .unwrap();
    c.bench_function("verify_hs256_token", |b| {
        b.iter(|| verifier.verify_now(black_box(&token)).unwrap())
    });
}

fn room_names(c: &mut Criterion) {
    let t = TenantId::parse("tenant-1").unwrap();
    let u = UserId::parse("user-123").unwrap();
    let course = CourseId::parse("course-42").unwrap();
    c.bench_function("build_connect_rooms", |b| {
        b.iter(|| {
            black_box([
                rooms::platform_role(Role::Student),
                rooms::tenant(&t),
                rooms::user(&t, &u),
                rooms::tenant_role(&t, Role::Student),
                rooms::course(&t, &course),
            ])
        })
    });
    c.bench_function("parse_id", |b| {
        b.iter(|| UserId::parse(black_box("user-123")).unwrap())
    });
}

fn notification_packet(c: &mut Criterion) {
    let t = TenantId::parse("tenant-1").unwrap();
    let u = UserId::parse("user-123").unwrap();
    let n = conformance::notification(&t, &u, "9b2f7c1e-5a4d-4c36-9d0a-2f4b1e6c7d8a");
    c.bench_function("encode_notification_event", |b| {
        b.iter(|| {
            // What a Socket.IO v4 EVENT packet carries: 42["notification:new",{...}]
            let body = serde_json::to_string(&("notification:new", black_box(&n))).unwrap();
            black_box(format!("42{body}"))
        })
    });
}

fn memory_store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = MemoryStore::new(StoreLimits::default());
    let t = TenantId::parse("tenant-1").unwrap();
    let mut i = 0u64;
    c.bench_function("memory_insert_notification", |b| {
        b.iter(|| {
            i += 1;
            let u = UserId::parse(format!("u{}", i % 1000)).unwrap();
            let n = conformance::notification(&t, &u, &format!("n{i}"));
            rt.block_on(conformance::deliver(&store, &n)).unwrap()
        })
    });
    let u = UserId::parse("u1").unwrap();
    let q = ListQuery {
        limit: 20,
        before: None,
        status: None,
    };
    c.bench_function("memory_list_20", |b| {
        b.iter(|| rt.block_on(store.list(&t, &u, &q)).unwrap())
    });
    c.bench_function("memory_unread_count", |b| {
        b.iter(|| rt.block_on(store.unread_count(&t, &u)).unwrap())
    });
}

/// Every broadcast a node sends to the others, and every one it receives, is a packet
/// encoded with MessagePack by the Redis adapter. Compares the patched encoding of its data
/// (one byte string) with the older one (one integer per byte), for a notification with
/// 4 KB of `data`.
fn adapter_packet_encoding(c: &mut Criterion) {
    use socketioxide_core::{Str, Value};
    use std::collections::VecDeque;
    let text = format!(
        r#"2["notification:new",{{"id":"n-1","data":"{}"}}]"#,
        "x".repeat(4096)
    );
    let value = Value::Str(Str::from(text.clone()), None);
    c.bench_function("adapter_data_encode_decode_4k", |b| {
        b.iter(|| {
            let bytes = rmp_serde::to_vec(black_box(&value)).unwrap();
            black_box(rmp_serde::from_slice::<Value>(&bytes).unwrap())
        })
    });
    c.bench_function("adapter_data_encode_decode_4k_as_before", |b| {
        b.iter(|| {
            let raw = (
                0u8,
                black_box(text.as_bytes()),
                None::<VecDeque<bytes::Bytes>>,
            );
            let bytes = rmp_serde::to_vec(&raw).unwrap();
            black_box(
                rmp_serde::from_slice::<(u8, Vec<u8>, Option<VecDeque<bytes::Bytes>>)>(&bytes)
                    .unwrap(),
            )
        })
    });
}

criterion_group!(
    benches,
    token_verification,
    room_names,
    notification_packet,
    memory_store,
    adapter_packet_encoding
);
criterion_main!(benches);
