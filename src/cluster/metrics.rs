//! The cluster's own health metrics: adapter traffic and drops, Redis reconnects.
//!
//! They complement the contract's table (§6) and are named like it (`lms_` prefix, bounded
//! labels only). `lms_store_up` is shared with `/readyz` and lives in [`crate::metrics`].

use metrics::{counter, describe_counter, describe_gauge, gauge};

/// Adapter messages through Redis pub/sub, `direction` = `in` | `out`.
pub const ADAPTER_MESSAGES_TOTAL: &str = "lms_adapter_messages_total";
/// Adapter messages lost on this node: a full per-channel buffer or a lagging receiver.
pub const ADAPTER_DROPPED_TOTAL: &str = "lms_adapter_dropped_total";
/// Sharded room channels this node holds subscribed (issue 17); no room in any label.
pub const ADAPTER_ROOM_CHANNELS: &str = "lms_adapter_room_channels";
/// Emits to a user's room, by how the nodes holding the user were found: `ledger` (sent to
/// those nodes only) or `everywhere` (the ledger could not be read or names a node of an
/// older version: sent to every node).
pub const ADAPTER_USER_ROUTES_TOTAL: &str = "lms_adapter_user_routes_total";
/// Reconnections of a Redis client, `client` = `store` | `pubsub`.
pub const REDIS_RECONNECTS_TOTAL: &str = "lms_redis_reconnects_total";
/// Re-subscriptions of the adapter's channels after a reconnect, `outcome` = `ok` | `error`.
pub const ADAPTER_RESUBSCRIBES_TOTAL: &str = "lms_adapter_resubscribes_total";

pub fn describe() {
    describe_counter!(
        ADAPTER_MESSAGES_TOTAL,
        "Socket.IO adapter messages through Redis pub/sub, by direction"
    );
    describe_counter!(
        ADAPTER_DROPPED_TOTAL,
        "Adapter messages dropped on this node (full buffer or lagging receiver)"
    );
    describe_gauge!(
        ADAPTER_ROOM_CHANNELS,
        "Sharded room channels this node is subscribed to (rooms with local sockets, and those left less than ROOM_UNSUBSCRIBE_DELAY_MS ago)"
    );
    describe_counter!(
        ADAPTER_USER_ROUTES_TOTAL,
        "Emits to a user's room, by route: ledger (only the nodes holding the user) or everywhere"
    );
    describe_counter!(
        REDIS_RECONNECTS_TOTAL,
        "Reconnections of a Redis client, by client"
    );
    describe_counter!(
        ADAPTER_RESUBSCRIBES_TOTAL,
        "Re-subscriptions of the adapter's channels after a Redis reconnect"
    );
    // Series exist from the start, so a dashboard shows zero rather than nothing.
    for direction in ["in", "out"] {
        counter!(ADAPTER_MESSAGES_TOTAL, "direction" => direction).increment(0);
    }
    counter!(ADAPTER_DROPPED_TOTAL).increment(0);
    for route in ["ledger", "everywhere"] {
        counter!(ADAPTER_USER_ROUTES_TOTAL, "route" => route).increment(0);
    }
    for client in ["store", "pubsub"] {
        counter!(REDIS_RECONNECTS_TOTAL, "client" => client).increment(0);
    }
}

pub fn adapter_message(direction: &'static str) {
    counter!(ADAPTER_MESSAGES_TOTAL, "direction" => direction).increment(1);
}

pub fn user_route(route: &'static str) {
    counter!(ADAPTER_USER_ROUTES_TOTAL, "route" => route).increment(1);
}

pub fn room_channels(n: usize) {
    gauge!(ADAPTER_ROOM_CHANNELS).set(n as f64);
}

pub fn adapter_dropped(n: u64) {
    counter!(ADAPTER_DROPPED_TOTAL).increment(n);
}

pub fn redis_reconnect(client: &'static str) {
    counter!(REDIS_RECONNECTS_TOTAL, "client" => client).increment(1);
}

pub fn resubscribed(ok: bool) {
    counter!(ADAPTER_RESUBSCRIBES_TOTAL, "outcome" => if ok { "ok" } else { "error" }).increment(1);
}
