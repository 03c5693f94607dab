//! Every metric name of the contract (§6), in one place, with bounded labels only.
//!
//! Labels are event names, codes, room kinds, routes and a capped set of tenant ids:
//! never a user id, a course id or a token.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::ids::TenantId;

pub const SOCKET_CONNECTIONS: &str = "lms_socket_connections";
pub const SOCKET_CONNECTS_TOTAL: &str = "lms_socket_connects_total";
pub const SOCKET_DISCONNECTS_TOTAL: &str = "lms_socket_disconnects_total";
pub const ROOM_MEMBERS: &str = "lms_room_members";
pub const ROOMS: &str = "lms_rooms";
pub const TENANT_CONNECTIONS: &str = "lms_tenant_connections";
pub const EVENTS_RECEIVED_TOTAL: &str = "lms_events_received_total";
pub const EVENTS_EMITTED_TOTAL: &str = "lms_events_emitted_total";
pub const EVENT_DURATION_SECONDS: &str = "lms_event_duration_seconds";
pub const SECURITY_EVENTS_TOTAL: &str = "lms_security_events_total";
pub const NOTIFICATIONS_STORED_TOTAL: &str = "lms_notifications_stored_total";
pub const STORE_OPERATION_DURATION_SECONDS: &str = "lms_store_operation_duration_seconds";
pub const STORE_ENTRIES_SKIPPED_TOTAL: &str = "lms_store_entries_skipped_total";
pub const STORE_SWEPT_TOTAL: &str = "lms_store_swept_total";
pub const STORE_ERRORS_TOTAL: &str = "lms_store_errors_total";
pub const HTTP_REQUESTS_TOTAL: &str = "lms_http_requests_total";
/// Not in the contract's table: whether this node's store answered its last check (1/0).
pub const STORE_UP: &str = "lms_store_up";
/// HTTP connections or requests ended by a timeout, by `phase` (header, body, idle).
pub const HTTP_TIMEOUTS_TOTAL: &str = "lms_http_timeouts_total";
/// Failed accepts (out of descriptors, usually).
pub const HTTP_ACCEPT_ERRORS_TOTAL: &str = "lms_http_accept_errors_total";
/// Service API calls refused by a quota, by `reason` (rate, in_flight, data_size).
pub const API_REFUSALS_TOTAL: &str = "lms_api_refusals_total";
/// Quota refusals answered at once with the connection closed, because the node already
/// held `API_MAX_HELD_REFUSALS` refusals (a flood wider than the hold can absorb).
pub const API_REFUSALS_CLOSED_TOTAL: &str = "lms_api_refusals_closed_total";
/// Emits that failed because a socket's send buffer was full (a slow consumer).
pub const EMIT_DROPS_TOTAL: &str = "lms_emit_dropped_total";
/// Connects waiting for their turn at the connect pacer (`CONNECT_CONCURRENCY`).
pub const CONNECTS_WAITING: &str = "lms_connects_waiting";
/// What closed sockets still owe the store, queued (`releases`), and what was given up.
pub const RELEASES_PENDING: &str = "lms_disconnect_releases_pending";
pub const RELEASES_GIVEN_UP_TOTAL: &str = "lms_disconnect_releases_given_up_total";
/// Engine.IO sessions whose handshake request (and admission state) is still held: opened
/// and not yet admitted. An admitted socket releases its handshake.
pub const HANDSHAKES_HELD: &str = "lms_handshakes_held";
/// Per tenant, the store's estimate of what it keeps (`store::usage`), set by each sweep.
pub const TENANT_STORAGE_BYTES: &str = "lms_tenant_storage_bytes";
pub const TENANT_STORAGE_ENTRIES: &str = "lms_tenant_storage_entries";
/// `TENANT_STORAGE_QUOTA` (0: none), for the alert on a tenant near it.
pub const TENANT_STORAGE_QUOTA_BYTES: &str = "lms_tenant_storage_quota_bytes";
/// Connects by what recovery made of them (`recovered`, `new`, `opted_out`, `too_old`).
pub const RECOVERY_CONNECTS_TOTAL: &str = "lms_recovery_connects_total";
/// Events replayed to recovered sockets.
pub const RECOVERY_REPLAYED_TOTAL: &str = "lms_recovery_replayed_events_total";
/// Events sent live but not kept for recovery (the recovery store failed).
pub const RECOVERY_KEEP_FAILURES_TOTAL: &str = "lms_recovery_keep_failures_total";
/// Blip replays (one per socket) that fell back to the outage's window because the ring of
/// received offsets did not reach back far enough (an event may then come twice).
pub const RECOVERY_BLIP_FALLBACKS_TOTAL: &str = "lms_recovery_blip_fallbacks_total";

/// Sockets disconnected by an operator (§11), by cause.
pub const KICKED_SOCKETS_TOTAL: &str = "lms_kicked_sockets_total";
/// Revocations recorded through the service API, by kind (`user`, `jti`).
pub const REVOCATIONS_TOTAL: &str = "lms_revocations_total";
/// Tokens refused because they were revoked, by where (`connect`, `refresh`, `api`).
pub const REVOKED_TOKENS_REFUSED_TOTAL: &str = "lms_revoked_tokens_refused_total";
/// JWKS fetches by outcome (`ok`, `error`).
pub const JWKS_REFRESHES_TOTAL: &str = "lms_jwks_refreshes_total";
/// Keys in each JWKS, by set (the index of the set in configuration, never its URL).
pub const JWKS_KEYS: &str = "lms_jwks_keys";

/// Users online per tenant, cluster-wide (each node reports the tenants it has users
/// of; take the max per tenant), under the tenant-label cap.
pub const PRESENCE_ONLINE_USERS: &str = "lms_presence_online_users";
/// `presence:join` / `presence:leave` decisions, by `event` and `outcome` (`announced`,
/// or `debounced` when the debounce held it back).
pub const PRESENCE_EVENTS_TOTAL: &str = "lms_presence_events_total";
/// Presence updates given up after retries (the store was unreachable).
pub const PRESENCE_STORE_FAILURES_TOTAL: &str = "lms_presence_store_failures_total";

/// Webhook POSTs (§12) by `outcome`: `ok`, `http_error` (a non-2xx answer), `timeout`,
/// `connect_error`. Every attempt counts, retries included.
pub const WEBHOOK_DELIVERIES_TOTAL: &str = "lms_webhook_deliveries_total";
/// On this node, the age of the oldest undelivered event of the tenants it delivers (the
/// max over them; 0 when all are delivered). Take the max over nodes.
pub const WEBHOOK_LAG_SECONDS: &str = "lms_webhook_lag_seconds";
/// Events moved to a tenant's dead letters after `WEBHOOK_MAX_ATTEMPTS` failed POSTs.
pub const WEBHOOK_DEAD_LETTERS_TOTAL: &str = "lms_webhook_dead_letters_total";
/// Exported events the queue could not take (the store was unreachable), by `event`.
pub const EXPORT_APPEND_FAILURES_TOTAL: &str = "lms_export_append_failures_total";

/// Why sockets were disconnected by an operator.
#[derive(Debug, Clone, Copy)]
pub enum KickCause {
    Kick,
    Revocation,
}

/// Security event kinds (§6).
#[derive(Debug, Clone, Copy)]
pub enum SecurityKind {
    AuthFailed,
    TenantMismatch,
    Forbidden,
    RateLimited,
}

impl SecurityKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthFailed => "auth_failed",
            Self::TenantMismatch => "tenant_mismatch",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
        }
    }
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder once and returns its handle.
///
/// Several applications in one process (tests) share it; that is harmless because every
/// series they write is labelled with bounded values only.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(SOCKET_CONNECTIONS, "Sockets connected to this node");
    describe_counter!(SOCKET_CONNECTS_TOTAL, "Connection attempts by outcome");
    describe_counter!(SOCKET_DISCONNECTS_TOTAL, "Disconnections by reason");
    describe_gauge!(
        ROOM_MEMBERS,
        "Members summed over the rooms of a kind on this node"
    );
    describe_gauge!(ROOMS, "Rooms of a kind on this node");
    describe_gauge!(
        TENANT_CONNECTIONS,
        "Sockets per tenant (capped number of tenants, the rest as other)"
    );
    describe_counter!(EVENTS_RECEIVED_TOTAL, "Client events by name and outcome");
    describe_counter!(EVENTS_EMITTED_TOTAL, "Server events emitted by name");
    describe_histogram!(
        EVENT_DURATION_SECONDS,
        Unit::Seconds,
        "Time to handle a client event"
    );
    describe_counter!(
        SECURITY_EVENTS_TOTAL,
        "Refusals, tenant mismatches, forbidden actions, rate limits"
    );
    describe_counter!(NOTIFICATIONS_STORED_TOTAL, "Inbox entries stored");
    describe_histogram!(
        STORE_OPERATION_DURATION_SECONDS,
        Unit::Seconds,
        "Store call latency by operation"
    );
    describe_counter!(STORE_ERRORS_TOTAL, "Store calls that failed, by operation");
    describe_counter!(
        STORE_ENTRIES_SKIPPED_TOTAL,
        "Inbox entries a list could not read (a key or body missing) and left out"
    );
    describe_counter!(
        STORE_SWEPT_TOTAL,
        "Inbox entries removed by the retention sweep"
    );
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "Service API requests by route and status"
    );
    describe_counter!(
        HTTP_TIMEOUTS_TOTAL,
        "HTTP connections or requests ended by a timeout, by phase"
    );
    describe_counter!(
        HTTP_ACCEPT_ERRORS_TOTAL,
        "Failed accepts of HTTP connections"
    );
    describe_counter!(
        API_REFUSALS_TOTAL,
        "Service API calls refused by a per-tenant quota, by reason"
    );
    describe_counter!(
        API_REFUSALS_CLOSED_TOTAL,
        "Quota refusals answered at once, closing the connection, past the held-refusal cap"
    );
    describe_gauge!(
        STORE_UP,
        "1 when the store answered the last readiness check"
    );
    describe_counter!(
        KICKED_SOCKETS_TOTAL,
        "Sockets disconnected by a kick or a revocation, by cause"
    );
    describe_counter!(REVOCATIONS_TOTAL, "Token revocations recorded, by kind");
    describe_counter!(
        REVOKED_TOKENS_REFUSED_TOTAL,
        "Revoked tokens refused, by where (connect, refresh, api)"
    );
    describe_counter!(JWKS_REFRESHES_TOTAL, "JWKS fetches by outcome");
    describe_gauge!(JWKS_KEYS, "Keys loaded from each JWKS (set = its index)");
    describe_gauge!(
        PRESENCE_ONLINE_USERS,
        "Online users per tenant, cluster-wide (max over nodes)"
    );
    describe_gauge!(
        TENANT_STORAGE_BYTES,
        Unit::Bytes,
        "Bytes stored per tenant, as of the last retention sweep (capped tenants, the rest as other)"
    );
    describe_gauge!(
        TENANT_STORAGE_ENTRIES,
        "Inbox entries stored per tenant, as of the last retention sweep"
    );
    describe_gauge!(
        TENANT_STORAGE_QUOTA_BYTES,
        Unit::Bytes,
        "TENANT_STORAGE_QUOTA (0: no quota)"
    );
    describe_counter!(
        PRESENCE_EVENTS_TOTAL,
        "Presence join/leave decisions by event and outcome (announced, debounced)"
    );
    describe_counter!(
        PRESENCE_STORE_FAILURES_TOTAL,
        "Presence updates given up because the store was unreachable"
    );
    describe_gauge!(
        HANDSHAKES_HELD,
        "Engine.IO sessions still holding their handshake request: opened, not yet admitted"
    );
    describe_gauge!(
        RELEASES_PENDING,
        "Releases closed sockets owe the store (connection counts, recovery sessions), queued or running"
    );
    describe_counter!(
        RELEASES_GIVEN_UP_TOTAL,
        "Releases given up after every attempt failed, by kind (connection, session)"
    );
    describe_gauge!(
        CONNECTS_WAITING,
        "Connects waiting for their turn to do their store work (CONNECT_CONCURRENCY)"
    );
    describe_counter!(
        EMIT_DROPS_TOTAL,
        "Emits dropped because a socket's buffer was full"
    );
    describe_counter!(
        RECOVERY_CONNECTS_TOTAL,
        "Connects by recovery outcome (recovered, new, opted_out, too_old)"
    );
    describe_counter!(
        RECOVERY_REPLAYED_TOTAL,
        "Events replayed to recovered sockets"
    );
    describe_counter!(
        RECOVERY_KEEP_FAILURES_TOTAL,
        "Events sent live but not kept for recovery"
    );
    describe_counter!(
        RECOVERY_BLIP_FALLBACKS_TOTAL,
        "Sockets whose replay after a Redis blip fell back to the outage's window (received ring too short)"
    );
    describe_counter!(
        WEBHOOK_DELIVERIES_TOTAL,
        "Webhook POSTs by outcome (ok, http_error, timeout, connect_error), retries included"
    );
    describe_gauge!(
        WEBHOOK_LAG_SECONDS,
        Unit::Seconds,
        "Age of the oldest undelivered event of the tenants this node delivers (max)"
    );
    describe_counter!(
        WEBHOOK_DEAD_LETTERS_TOTAL,
        "Exported events moved to the dead letters after the last failed attempt"
    );
    describe_counter!(
        EXPORT_APPEND_FAILURES_TOTAL,
        "Exported events the queue could not take (store unreachable), by event"
    );
}

/// Publishes the node's gauges at zero, so dashboards show a node before its first socket.
pub fn init_node(node: &str) {
    gauge!(SOCKET_CONNECTIONS, "node" => node.to_owned()).set(0.0);
    for kind in crate::rooms::RoomKind::ALL {
        room_gauges(kind.as_str(), 0, 0);
    }
    // Operator and key counters start at zero, so rates and alerts have a series to read.
    for cause in ["kick", "revocation"] {
        counter!(KICKED_SOCKETS_TOTAL, "cause" => cause).increment(0);
    }
    for kind in ["user", "jti"] {
        counter!(REVOCATIONS_TOTAL, "kind" => kind).increment(0);
    }
    for at in ["connect", "refresh", "api"] {
        counter!(REVOKED_TOKENS_REFUSED_TOTAL, "at" => at).increment(0);
    }
    for outcome in ["ok", "error"] {
        counter!(JWKS_REFRESHES_TOTAL, "outcome" => outcome).increment(0);
    }
    for event in ["join", "leave"] {
        for outcome in ["announced", "debounced"] {
            counter!(PRESENCE_EVENTS_TOTAL, "event" => event, "outcome" => outcome).increment(0);
        }
    }
    counter!(PRESENCE_STORE_FAILURES_TOTAL).increment(0);
    for outcome in ["ok", "http_error", "timeout", "connect_error"] {
        counter!(WEBHOOK_DELIVERIES_TOTAL, "outcome" => outcome).increment(0);
    }
    counter!(WEBHOOK_DEAD_LETTERS_TOTAL).increment(0);
    gauge!(WEBHOOK_LAG_SECONDS).set(0.0);
    gauge!(RELEASES_PENDING).increment(0.0);
    for kind in ["connection", "session"] {
        counter!(RELEASES_GIVEN_UP_TOTAL, "kind" => kind).increment(0);
    }
}

pub fn connection_opened(node: &str) {
    gauge!(SOCKET_CONNECTIONS, "node" => node.to_owned()).increment(1.0);
}

pub fn connection_closed(node: &str, reason: &'static str) {
    gauge!(SOCKET_CONNECTIONS, "node" => node.to_owned()).decrement(1.0);
    counter!(SOCKET_DISCONNECTS_TOTAL, "reason" => reason).increment(1);
}

pub fn connect_outcome(outcome: &'static str) {
    counter!(SOCKET_CONNECTS_TOTAL, "outcome" => outcome).increment(1);
}

pub fn security_event(kind: SecurityKind) {
    counter!(SECURITY_EVENTS_TOTAL, "kind" => kind.as_str()).increment(1);
}

pub fn event_handled(event: &'static str, outcome: &'static str, took: Duration) {
    counter!(EVENTS_RECEIVED_TOTAL, "event" => event, "outcome" => outcome).increment(1);
    histogram!(EVENT_DURATION_SECONDS, "event" => event).record(took.as_secs_f64());
}

pub fn emitted(event: &'static str) {
    counter!(EVENTS_EMITTED_TOTAL, "event" => event).increment(1);
}

pub fn kicked(cause: KickCause, sockets: u64) {
    let cause = match cause {
        KickCause::Kick => "kick",
        KickCause::Revocation => "revocation",
    };
    counter!(KICKED_SOCKETS_TOTAL, "cause" => cause).increment(sockets);
}

pub fn revoked(kind: &'static str) {
    counter!(REVOCATIONS_TOTAL, "kind" => kind).increment(1);
}

pub fn revoked_token_refused(at: &'static str) {
    counter!(REVOKED_TOKENS_REFUSED_TOTAL, "at" => at).increment(1);
}

pub fn jwks_refresh(ok: bool) {
    let outcome = if ok { "ok" } else { "error" };
    counter!(JWKS_REFRESHES_TOTAL, "outcome" => outcome).increment(1);
}

pub fn jwks_keys(set: &'static str, keys: usize) {
    gauge!(JWKS_KEYS, "set" => set).set(keys as f64);
}

pub fn presence_event(event: &'static str, outcome: &'static str) {
    counter!(PRESENCE_EVENTS_TOTAL, "event" => event, "outcome" => outcome).increment(1);
}

pub fn presence_store_failed() {
    counter!(PRESENCE_STORE_FAILURES_TOTAL).increment(1);
}

/// Counts one of something in a gauge while it lives.
pub struct GaugeHeld(&'static str);

impl GaugeHeld {
    /// A connect waiting at the pacer ([`CONNECTS_WAITING`]).
    pub fn connect_waiting() -> Self {
        Self::start(CONNECTS_WAITING)
    }

    /// A release a closed socket owes the store ([`RELEASES_PENDING`]).
    pub fn release_pending() -> Self {
        Self::start(RELEASES_PENDING)
    }

    /// A session's handshake request, while it is held ([`HANDSHAKES_HELD`]).
    pub fn handshake() -> Self {
        Self::start(HANDSHAKES_HELD)
    }

    fn start(name: &'static str) -> Self {
        gauge!(name).increment(1.0);
        Self(name)
    }
}

impl Drop for GaugeHeld {
    fn drop(&mut self) {
        gauge!(self.0).decrement(1.0);
    }
}

pub fn release_given_up(kind: &'static str) {
    counter!(RELEASES_GIVEN_UP_TOTAL, "kind" => kind).increment(1);
}

pub fn emit_dropped(event: &'static str) {
    emit_dropped_n(event, 1);
}

pub fn emit_dropped_n(event: &'static str, n: u64) {
    counter!(EMIT_DROPS_TOTAL, "event" => event).increment(n);
}

pub fn notifications_stored(n: u64) {
    counter!(NOTIFICATIONS_STORED_TOTAL).increment(n);
}

pub fn store_op(op: &'static str, took: Duration, ok: bool) {
    histogram!(STORE_OPERATION_DURATION_SECONDS, "op" => op).record(took.as_secs_f64());
    if !ok {
        counter!(STORE_ERRORS_TOTAL, "op" => op).increment(1);
    }
}

/// Inbox entries a read could not show (a key or body missing) and left out.
pub fn store_entries_skipped(n: u64) {
    counter!(STORE_ENTRIES_SKIPPED_TOTAL).increment(n);
}

/// Inbox entries removed by the retention sweep.
pub fn store_swept(n: u64) {
    counter!(STORE_SWEPT_TOTAL).increment(n);
}

pub fn store_up(up: bool) {
    gauge!(STORE_UP).set(if up { 1.0 } else { 0.0 });
}

pub fn http_request(route: String, status: u16) {
    counter!(HTTP_REQUESTS_TOTAL, "route" => route, "status" => status.to_string()).increment(1);
}

pub fn http_timeout(phase: &'static str) {
    counter!(HTTP_TIMEOUTS_TOTAL, "phase" => phase).increment(1);
}

pub fn http_accept_failed() {
    counter!(HTTP_ACCEPT_ERRORS_TOTAL).increment(1);
}

pub fn api_refused(reason: &'static str) {
    counter!(API_REFUSALS_TOTAL, "reason" => reason).increment(1);
}

pub fn api_refusal_closed() {
    counter!(API_REFUSALS_CLOSED_TOTAL).increment(1);
}

pub fn storage_quota(bytes: Option<u64>) {
    gauge!(TENANT_STORAGE_QUOTA_BYTES).set(bytes.unwrap_or(0) as f64);
}

pub fn room_gauges(kind: &'static str, rooms: u64, members: u64) {
    gauge!(ROOMS, "kind" => kind).set(rooms as f64);
    gauge!(ROOM_MEMBERS, "kind" => kind).set(members as f64);
}

/// Per-tenant gauge whose label set is capped: the first `cap` tenants seen get their own
/// series, every later one is counted under `other`.
pub struct TenantGauge {
    name: &'static str,
    cap: usize,
    labels: Mutex<HashMap<TenantId, &'static str>>,
}

impl TenantGauge {
    /// Sockets per tenant (`lms_tenant_connections`).
    pub fn new(cap: usize) -> Self {
        Self::named(TENANT_CONNECTIONS, cap)
    }

    /// Online users per tenant (`lms_presence_online_users`).
    pub fn online_users(cap: usize) -> Self {
        Self::named(PRESENCE_ONLINE_USERS, cap)
    }

    /// Stored bytes and entries per tenant (`lms_tenant_storage_bytes`, `_entries`).
    pub fn storage(cap: usize) -> (Self, Self) {
        (
            Self::named(TENANT_STORAGE_BYTES, cap),
            Self::named(TENANT_STORAGE_ENTRIES, cap),
        )
    }

    fn named(name: &'static str, cap: usize) -> Self {
        Self {
            name,
            cap,
            labels: Mutex::default(),
        }
    }

    /// The tenant's label: its id, or `other` past the cap.
    pub fn label(&self, t: &TenantId) -> &'static str {
        let mut labels = self.labels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = labels.get(t) {
            return l;
        }
        if labels.len() >= self.cap {
            return "other";
        }
        // Leaked once per distinct tenant, at most `cap` times for the process.
        let label: &'static str = Box::leak(t.to_string().into_boxed_str());
        labels.insert(t.clone(), label);
        label
    }

    pub fn add(&self, t: &TenantId, delta: f64) {
        gauge!(self.name, "tenant" => self.label(t)).increment(delta);
    }

    /// Sets the given labels' values (from [`label`](Self::label)); every other label
    /// seen before drops to zero.
    pub fn set_all(&self, values: HashMap<&'static str, f64>) {
        let known: Vec<&'static str> = {
            let labels = self.labels.lock().unwrap_or_else(|p| p.into_inner());
            labels.values().copied().chain(["other"]).collect()
        };
        for label in known {
            let v = values.get(label).copied().unwrap_or(0.0);
            gauge!(self.name, "tenant" => label).set(v);
        }
    }
}

pub fn recovery_connect(outcome: &'static str) {
    counter!(RECOVERY_CONNECTS_TOTAL, "outcome" => outcome).increment(1);
}

pub fn recovery_replayed(n: u64) {
    counter!(RECOVERY_REPLAYED_TOTAL).increment(n);
}

pub fn recovery_blip_fallback() {
    counter!(RECOVERY_BLIP_FALLBACKS_TOTAL).increment(1);
}

pub fn recovery_keep_failed() {
    counter!(RECOVERY_KEEP_FAILURES_TOTAL).increment(1);
}

pub fn webhook_delivery(outcome: &'static str) {
    counter!(WEBHOOK_DELIVERIES_TOTAL, "outcome" => outcome).increment(1);
}

pub fn webhook_lag(seconds: f64) {
    gauge!(WEBHOOK_LAG_SECONDS).set(seconds);
}

pub fn webhook_dead_letters(events: u64) {
    counter!(WEBHOOK_DEAD_LETTERS_TOTAL).increment(events);
}

pub fn export_append_failed(event: &'static str) {
    counter!(EXPORT_APPEND_FAILURES_TOTAL, "event" => event).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_labels_are_capped_and_the_rest_fold_into_other() {
        let g = TenantGauge::new(2);
        let t = |s: &str| TenantId::parse(s).unwrap();
        assert_eq!(g.label(&t("a")), "a");
        assert_eq!(g.label(&t("b")), "b");
        assert_eq!(g.label(&t("c")), "other");
        assert_eq!(g.label(&t("a")), "a");
    }
}
