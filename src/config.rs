//! Configuration: one typed struct, every field an environment variable and the same
//! command-line flag, each with a default and a doc line (`lms-realtime --help`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use std::sync::Arc;

use crate::auth::{KeySource, Verifier};
use crate::jwks::{self, Freshness, KeySets};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `OTEL_TRACES_EXPORTER`: the standard switch, with the two values this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TracesExporter {
    Otlp,
    #[value(name = "none")]
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(clippy::upper_case_acronyms)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
    ES256,
}

impl From<JwtAlgorithm> for jsonwebtoken::Algorithm {
    fn from(a: JwtAlgorithm) -> Self {
        match a {
            JwtAlgorithm::HS256 => Self::HS256,
            JwtAlgorithm::RS256 => Self::RS256,
            JwtAlgorithm::ES256 => Self::ES256,
        }
    }
}

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Everything the gateway reads at start.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// HTTP and Socket.IO port (one port for both); 0 picks a free one.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,
    /// Bind address.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,
    /// Unset: one node, everything in memory. Set: cluster mode over Redis (redis://, rediss://).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,
    /// PEM file of the CA(s) that signed Redis's certificate (rediss://); replaces the
    /// system roots. Unset: the system roots.
    #[arg(long, env = "REDIS_TLS_CA_FILE")]
    pub redis_tls_ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for Redis servers that require mutual TLS
    /// (`tls-auth-clients yes`); needs REDIS_TLS_CLIENT_KEY_FILE.
    #[arg(long, env = "REDIS_TLS_CLIENT_CERT_FILE")]
    pub redis_tls_client_cert_file: Option<PathBuf>,
    /// PEM private key of REDIS_TLS_CLIENT_CERT_FILE.
    #[arg(long, env = "REDIS_TLS_CLIENT_KEY_FILE")]
    pub redis_tls_client_key_file: Option<PathBuf>,
    /// This node's name in logs and metrics (default: the host name).
    #[arg(long, env = "NODE_ID")]
    pub node_id: Option<String>,
    /// HS256 shared secret, at least 32 bytes (`openssl rand -hex 32`).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// PEM public key for RS256 or ES256.
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// JWKS URL of the token issuer: the token's `kid` picks the key (RS256, ES256, EdDSA);
    /// fetched at start, refreshed in the background and on an unknown `kid`.
    #[arg(long, env = "JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<String>,
    /// One JWKS per issuer: a JSON object `{"<iss>": "<jwks url>"}`, inline or the path of
    /// a file holding it; the token's `iss` picks the set.
    #[arg(long, env = "JWT_ISSUERS")]
    pub jwt_issuers: Option<String>,
    /// Seconds between background refreshes of every JWKS.
    #[arg(long, env = "JWT_JWKS_REFRESH_SECS", default_value_t = 300)]
    pub jwt_jwks_refresh_secs: u64,
    /// Least seconds between two fetches of one JWKS caused by tokens with an unknown `kid`.
    #[arg(long, env = "JWT_JWKS_MIN_REFETCH_SECS", default_value_t = 10)]
    pub jwt_jwks_min_refetch_secs: u64,
    /// The one algorithm accepted with a static key (JWKS keys name their own).
    #[arg(
        long,
        env = "JWT_ALGORITHM",
        value_enum,
        default_value = "HS256",
        ignore_case = true
    )]
    pub jwt_algorithm: JwtAlgorithm,
    /// Required `iss` claim, when set.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim, when set.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf` at verification, in seconds.
    #[arg(long, env = "JWT_LEEWAY_SECS", default_value_t = 30)]
    pub jwt_leeway_secs: u64,
    /// Comma-separated origins allowed cross-origin; unset allows none.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Log lines as text or JSON (the filter comes from RUST_LOG, default info).
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        ignore_case = true
    )]
    pub log_format: LogFormat,
    /// OTLP/HTTP base URL of a trace collector (`/v1/traces` is appended), e.g.
    /// `http://otel-collector:4318`. Unset (and no traces endpoint): no traces.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// Full OTLP/HTTP URL for traces, used as is; wins over OTEL_EXPORTER_OTLP_ENDPOINT.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")]
    pub otel_exporter_otlp_traces_endpoint: Option<String>,
    /// `otlp` exports traces when an endpoint is set; `none` turns them off regardless.
    #[arg(
        long,
        env = "OTEL_TRACES_EXPORTER",
        value_enum,
        default_value = "otlp",
        ignore_case = true
    )]
    pub otel_traces_exporter: TracesExporter,

    /// Most sockets this node accepts; further connects are refused with UNAVAILABLE.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 50_000)]
    pub max_connections: usize,
    /// Most sockets one user may hold on this node (devices and tabs).
    #[arg(long, env = "MAX_CONNECTIONS_PER_USER", default_value_t = 20)]
    pub max_connections_per_user: usize,
    /// Sustained client events per second allowed per socket.
    #[arg(long, env = "EVENT_RATE_PER_SEC", default_value_t = 20)]
    pub event_rate_per_sec: u32,
    /// Burst of client events allowed per socket above the sustained rate.
    #[arg(long, env = "EVENT_BURST", default_value_t = 40)]
    pub event_burst: u32,
    /// Rate-limited events, with no second free of refusals between them, after which a
    /// flooding socket is disconnected.
    #[arg(long, env = "FLOOD_DISCONNECT_AFTER", default_value_t = 50)]
    pub flood_disconnect_after: u32,
    /// Largest websocket message or polling payload accepted, in bytes.
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,
    /// Largest service API request body, in bytes.
    #[arg(long, env = "MAX_HTTP_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_http_body_bytes: usize,
    /// Notifications kept per user inbox.
    #[arg(long, env = "INBOX_CAP", default_value_t = 500)]
    pub inbox_cap: usize,
    /// Deprecated name of `EXPORT_QUEUE_CAP` (the progress log became the export queue);
    /// used when `EXPORT_QUEUE_CAP` is not set.
    #[arg(long, env = "PROGRESS_LOG_CAP", default_value_t = 10_000)]
    pub progress_log_cap: usize,
    /// Inbox entries (and stored notification bodies) older than this are dropped
    /// (`90d`, `12h`, `30s`).
    #[arg(long, env = "INBOX_RETENTION", default_value = "90d", value_parser = humantime::parse_duration)]
    pub inbox_retention: Duration,
    /// Every key of a user (inbox, course index) is removed after this long without activity
    /// (insert, read, dismissal, connect, enrolment change); so is a course's membership
    /// that nobody changed or read for this long.
    #[arg(long, env = "INACTIVE_USER_RETENTION", default_value = "180d", value_parser = humantime::parse_duration)]
    pub inactive_user_retention: Duration,
    /// Dismissed inbox entries are dropped this long after their dismissal.
    #[arg(long, env = "DISMISSED_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub dismissed_retention: Duration,
    /// How long a notification id is remembered: a send with the same id within it finishes
    /// the first one instead of sending again.
    #[arg(long, env = "IDEMPOTENCY_WINDOW", default_value = "24h", value_parser = humantime::parse_duration)]
    pub idempotency_window: Duration,
    /// Deprecated name of `EXPORT_RETENTION`; used when `EXPORT_RETENTION` is not set.
    #[arg(long, env = "PROGRESS_LOG_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub progress_log_retention: Duration,
    /// Events kept in each tenant's export queue (§12: the pull API and webhooks read it),
    /// and dead letters kept per tenant. Default: `PROGRESS_LOG_CAP` (10000).
    #[arg(long, env = "EXPORT_QUEUE_CAP")]
    pub export_queue_cap: Option<usize>,
    /// Export queue entries (and dead letters) older than this are dropped (`7d`, `12h`).
    /// Default: `PROGRESS_LOG_RETENTION` (7d).
    #[arg(long, env = "EXPORT_RETENTION", value_parser = humantime::parse_duration)]
    pub export_retention: Option<Duration>,
    /// POSTs per webhook batch before its events go to the tenant's dead letters.
    #[arg(long, env = "WEBHOOK_MAX_ATTEMPTS", default_value_t = 8)]
    pub webhook_max_attempts: u32,
    /// Events per webhook POST at most.
    #[arg(long, env = "WEBHOOK_BATCH_SIZE", default_value_t = 100)]
    pub webhook_batch_size: usize,
    /// The first webhook retry waits about this long (ms), doubling each time (with jitter).
    #[arg(long, env = "WEBHOOK_BACKOFF_BASE_MS", default_value_t = 1_000)]
    pub webhook_backoff_base_ms: u64,
    /// The longest wait between two webhook attempts (ms).
    #[arg(long, env = "WEBHOOK_BACKOFF_MAX_MS", default_value_t = 60_000)]
    pub webhook_backoff_max_ms: u64,
    /// One webhook POST's time limit (ms); past it the attempt counts as a timeout.
    #[arg(long, env = "WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,
    /// How long a node's claim on delivering a tenant lasts without renewal (ms): a dead
    /// node's tenants move to another node after it. At least twice `WEBHOOK_TIMEOUT_MS`
    /// plus a second.
    #[arg(long, env = "WEBHOOK_LEASE_MS", default_value_t = 30_000)]
    pub webhook_lease_ms: u64,
    /// How often a node looks for events appended on other nodes, and new webhooks (ms).
    #[arg(long, env = "WEBHOOK_POLL_INTERVAL_MS", default_value_t = 1_000)]
    pub webhook_poll_interval_ms: u64,
    /// How often each node runs the retention sweep over the inboxes (with jitter).
    #[arg(long, env = "RETENTION_SWEEP_INTERVAL", default_value = "15m", value_parser = humantime::parse_duration)]
    pub retention_sweep_interval: Duration,
    /// At most one `progress:video` per video per socket is forwarded in this interval.
    #[arg(long, env = "PROGRESS_VIDEO_INTERVAL_MS", default_value_t = 5_000)]
    pub progress_video_interval_ms: u64,
    /// Presence (§10) on or off. Off: sockets are not tracked, nothing is written to the
    /// store for them, and presence queries answer `UNAVAILABLE` (for deployments that do
    /// not use it, and to measure what it costs).
    #[arg(long, env = "PRESENCE_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub presence_enabled: bool,
    /// `presence:join` / `presence:leave` go out at most once per user and course in this
    /// many milliseconds; changes in between are held back and the final state is sent.
    #[arg(long, env = "PRESENCE_DEBOUNCE_MS", default_value_t = 2_000)]
    pub presence_debounce_ms: u64,
    /// Cluster: how long a node's presence entries outlive its last heartbeat (refreshed
    /// every third of it); a crashed node's users stop counting within this plus a third.
    #[arg(long, env = "PRESENCE_TTL_MS", default_value_t = 15_000)]
    pub presence_ttl_ms: u64,
    /// A course's `presence:list` answer serves the lists of that course for this many
    /// milliseconds after its read began, unless this node changes the course's presence
    /// first (then the next list reads again). Changes through other nodes show up within
    /// this bound. 0: every list reads the store.
    #[arg(long, env = "PRESENCE_LIST_CACHE_MS", default_value_t = 1_000)]
    pub presence_list_cache_ms: u64,
    /// Cluster: how long a node keeps a room's sharded channel subscribed after the room's
    /// last local socket left (flapping sockets do not make it subscribe again each time).
    #[arg(long, env = "ROOM_UNSUBSCRIBE_DELAY_MS", default_value_t = 5_000)]
    pub room_unsubscribe_delay_ms: u64,
    /// Cluster: emits to one room travel on the room's sharded channel, received only by the
    /// nodes with sockets in it. `false`: every emit on the shared channel, to every node (as
    /// before issue 17; for a rolling upgrade from such a version, see docs/cluster.md).
    #[arg(long, env = "ROOM_CHANNELS", default_value_t = true, action = clap::ArgAction::Set)]
    pub room_channels: bool,
    /// Distinct tenants that get their own `lms_tenant_connections` and
    /// `lms_presence_online_users` series.
    #[arg(long, env = "TENANT_METRIC_CAP", default_value_t = 100)]
    pub tenant_metric_cap: usize,
    /// Time given to sockets and in-flight requests on SIGTERM before the process exits.
    #[arg(long, env = "DRAIN_TIMEOUT_SECS", default_value_t = 20)]
    pub drain_timeout_secs: u64,
    /// How long `GET /api/v1/stats` waits for other nodes.
    #[arg(long, env = "STATS_TIMEOUT_MS", default_value_t = 2_000)]
    pub stats_timeout_ms: u64,
    /// Socket.IO ping interval, in milliseconds.
    #[arg(long, env = "PING_INTERVAL_MS", default_value_t = 25_000)]
    pub ping_interval_ms: u64,
    /// Socket.IO ping timeout, in milliseconds.
    #[arg(long, env = "PING_TIMEOUT_MS", default_value_t = 20_000)]
    pub ping_timeout_ms: u64,
    /// Packets buffered per socket before emits to it are dropped (slow consumer).
    #[arg(long, env = "SOCKET_BUFFER_PACKETS", default_value_t = 128)]
    pub socket_buffer_packets: usize,

    // --- Limits on hostile input (PROTOCOL.md §13, docs/security.md) ---
    /// A session must send its Socket.IO CONNECT within this many milliseconds of the
    /// handshake; an incomplete packet is dropped after the same time.
    #[arg(long, env = "CONNECT_TIMEOUT_MS", default_value_t = 5_000)]
    pub connect_timeout_ms: u64,
    /// Connects that do their store work (caps, recovery, memberships) at once on this
    /// node; the others wait in arrival order. Keeps a reconnect storm from timing out
    /// store calls. 0: no gate.
    #[arg(long, env = "CONNECT_CONCURRENCY", default_value_t = 128)]
    pub connect_concurrency: usize,
    /// Longest wait for a turn at that gate; after it the connect is refused UNAVAILABLE
    /// and the client retries after its backoff.
    #[arg(long, env = "CONNECT_QUEUE_TIMEOUT_MS", default_value_t = 10_000)]
    pub connect_queue_timeout_ms: u64,
    /// Refused CONNECTs after which a session is closed.
    #[arg(long, env = "CONNECT_ATTEMPTS_PER_SESSION", default_value_t = 3)]
    pub connect_attempts_per_session: u32,
    /// Sessions on this node that have not authenticated yet.
    #[arg(long, env = "MAX_PENDING_SESSIONS", default_value_t = 10_000)]
    pub max_pending_sessions: usize,
    /// Sessions from one client IP that have not authenticated yet.
    #[arg(long, env = "MAX_PENDING_SESSIONS_PER_IP", default_value_t = 64)]
    pub max_pending_sessions_per_ip: usize,
    /// Sockets one tenant may hold (cluster-wide in cluster mode); 0 means no cap.
    #[arg(long, env = "MAX_CONNECTIONS_PER_TENANT", default_value_t = 0)]
    pub max_connections_per_tenant: usize,
    /// Authenticated sockets from one client IP on this node (a school behind one NAT
    /// shares an address: size it for that).
    #[arg(long, env = "MAX_CONNECTIONS_PER_IP", default_value_t = 1_000)]
    pub max_connections_per_ip: usize,
    /// Comma-separated proxy addresses or CIDR ranges whose `Forwarded` /
    /// `X-Forwarded-For` name the client; unset trusts no header.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Time a client has to send a request's headers, in milliseconds.
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub http_header_timeout_ms: u64,
    /// Time a client has to send a request's body (408 after), in milliseconds.
    #[arg(long, env = "HTTP_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    pub http_body_timeout_ms: u64,
    /// An idle keep-alive HTTP connection is closed after this many milliseconds.
    #[arg(long, env = "HTTP_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub http_idle_timeout_ms: u64,
    /// Service API requests per second allowed per tenant, for the whole cluster (one token
    /// bucket per tenant, in Redis in a cluster; 429 above).
    #[arg(long, env = "API_RATE_PER_SEC", default_value_t = 50)]
    pub api_rate_per_sec: u32,
    /// Burst of service API requests allowed per tenant above the sustained rate.
    #[arg(long, env = "API_BURST", default_value_t = 100)]
    pub api_burst: u32,
    /// Service API requests one tenant may have in flight on this node (429 above).
    #[arg(long, env = "API_MAX_IN_FLIGHT", default_value_t = 32)]
    pub api_max_in_flight: usize,
    /// How long a rate-limit refusal of the service API is held before it is answered, so
    /// that a backend retrying as fast as it is answered cannot flood the node (0: off).
    #[arg(long, env = "API_REFUSAL_HOLD_MS", default_value_t = 500)]
    pub api_refusal_hold_ms: u64,
    /// Refusals held at once on this node; past it they are answered at once and the
    /// connection closed.
    #[arg(long, env = "API_MAX_HELD_REFUSALS", default_value_t = 2048)]
    pub api_max_held_refusals: usize,
    /// Largest `data` of one notification, in bytes of JSON (413 above).
    #[arg(long, env = "MAX_NOTIFICATION_DATA_BYTES", default_value_t = 8 * 1024)]
    pub max_notification_data_bytes: usize,
    /// Notification recipients one tenant may have in the store at once on this node (each
    /// one's insert, claim and emits); the rest waits in its own line, not ahead of others.
    /// Each one more puts one more command ahead of every other tenant's at each Redis step
    /// (at 16 the victims' p99 in the noisy bench rose 1.8-3.9x, at 2 at most 1.4x:
    /// docs/benchmarks.md, session 11).
    #[arg(long, env = "TENANT_STORE_CONCURRENCY", default_value_t = 2)]
    pub tenant_store_concurrency: usize,
    /// Notification recipients one tenant may store per second, for the whole cluster (a
    /// token bucket; a call over it is refused with 429 RATE_LIMITED before anything is
    /// stored).
    #[arg(
        long,
        env = "TENANT_NOTIFY_RECIPIENTS_PER_SEC",
        default_value_t = 1_000
    )]
    pub tenant_notify_recipients_per_sec: u32,
    /// Burst of notification recipients one tenant may store above the sustained rate.
    #[arg(long, env = "TENANT_NOTIFY_RECIPIENTS_BURST", default_value_t = 5_000)]
    pub tenant_notify_recipients_burst: u32,
    /// Bytes one tenant may keep in the store (estimated, see docs/operations.md); above it
    /// its stored notifications are refused with 429 RATE_LIMITED. Unset: no quota.
    #[arg(long, env = "TENANT_STORAGE_QUOTA")]
    pub tenant_storage_quota: Option<u64>,
    /// Tokens whose `exp` lies further ahead than now plus this are refused (INVALID_TOKEN),
    /// in seconds; bounds how long a leaked token stays usable.
    #[arg(long, env = "MAX_TOKEN_LIFETIME_SECS", default_value_t = 86_400)]
    pub max_token_lifetime_secs: u64,
    /// When set, `/metrics` is served only on this port (an internal listener), and the
    /// public port serves no per-tenant data.
    #[arg(long, env = "METRICS_PORT")]
    pub metrics_port: Option<u16>,
    /// Connection state recovery (§9) on or off. Off: no pid, no offsets, nothing kept.
    #[arg(long, env = "RECOVERY_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub recovery_enabled: bool,
    /// How long after a disconnect a client may recover its session, in seconds.
    #[arg(long, env = "RECOVERY_WINDOW_SECS", default_value_t = 120)]
    pub recovery_window_secs: u64,
    /// Events kept per room for recovery (approximate in Redis: a little more may stay).
    #[arg(long, env = "RECOVERY_STREAM_MAX_LEN", default_value_t = 1_000)]
    pub recovery_stream_max_len: usize,
    /// Events older than this are no longer kept for recovery, in seconds (at least the
    /// window, or a client that reconnects late cannot recover).
    #[arg(long, env = "RECOVERY_STREAM_MAX_AGE_SECS", default_value_t = 300)]
    pub recovery_stream_max_age_secs: u64,
}

impl Config {
    /// A configuration for tests and embedding: HS256 with `secret`, port 0 on loopback.
    pub fn for_tests(secret: &str) -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        let mut config = Wrapper::parse_from(["lms-realtime"]).config;
        config.port = 0;
        config.host = IpAddr::from([127, 0, 0, 1]);
        config.jwt_secret = Some(Secret(secret.to_owned()));
        config.redis_url = None;
        config.redis_tls_ca_file = None;
        config.redis_tls_client_cert_file = None;
        config.redis_tls_client_key_file = None;
        config.otel_exporter_otlp_endpoint = None;
        config.otel_exporter_otlp_traces_endpoint = None;
        config.node_id = Some("test-node".into());
        config
    }

    pub fn node_id(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .or_else(|| {
                    std::fs::read_to_string("/etc/hostname")
                        .ok()
                        .map(|h| h.trim().to_owned())
                })
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "node".into())
        })
    }

    /// Trace export, when an OTLP endpoint is set and `OTEL_TRACES_EXPORTER` is not `none`.
    pub fn trace_export(&self) -> anyhow::Result<Option<crate::traces::TraceExport>> {
        crate::traces::TraceExport::from_settings(
            self.otel_exporter_otlp_endpoint.as_deref(),
            self.otel_exporter_otlp_traces_endpoint.as_deref(),
            self.otel_traces_exporter == TracesExporter::Otlp,
            self.node_id(),
        )
    }

    /// TLS settings for the Redis connections (used with a rediss:// URL).
    pub fn redis_tls(&self) -> crate::cluster::tls::RedisTls {
        crate::cluster::tls::RedisTls {
            ca_file: self.redis_tls_ca_file.clone(),
            client_cert_file: self.redis_tls_client_cert_file.clone(),
            client_key_file: self.redis_tls_client_key_file.clone(),
        }
    }

    /// What each recovery stream keeps.
    pub fn recovery_bounds(&self) -> crate::recovery::StreamBounds {
        crate::recovery::StreamBounds {
            max_len: self.recovery_stream_max_len.max(1),
            max_age: Duration::from_secs(self.recovery_stream_max_age_secs.max(1)),
        }
    }

    /// The bounds every store engine keeps.
    pub fn store_limits(&self) -> crate::store::StoreLimits {
        crate::store::StoreLimits {
            inbox_cap: self.inbox_cap,
            inbox_retention: self.inbox_retention,
            inactive_user_retention: self.inactive_user_retention,
            dismissed_retention: self.dismissed_retention,
            idempotency_window: self.idempotency_window,
        }
    }

    /// What each tenant's export queue keeps (the old `PROGRESS_LOG_*` names still count).
    pub fn export_bounds(&self) -> crate::export::QueueBounds {
        crate::export::QueueBounds {
            cap: self
                .export_queue_cap
                .unwrap_or(self.progress_log_cap)
                .max(1),
            retention: self
                .export_retention
                .unwrap_or(self.progress_log_retention)
                .max(Duration::from_secs(1)),
        }
    }

    /// How webhooks are delivered.
    pub fn delivery_settings(&self) -> crate::export::delivery::DeliverySettings {
        crate::export::delivery::DeliverySettings {
            max_attempts: self.webhook_max_attempts.max(1),
            batch_size: self.webhook_batch_size.clamp(1, 10_000),
            backoff_base: Duration::from_millis(self.webhook_backoff_base_ms),
            backoff_max: Duration::from_millis(self.webhook_backoff_max_ms),
            request_timeout: Duration::from_millis(self.webhook_timeout_ms.max(1)),
            lease_ttl: Duration::from_millis(self.webhook_lease_ms),
            poll_interval: Duration::from_millis(self.webhook_poll_interval_ms.max(10)),
        }
    }

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_secs)
    }

    /// Builds the token verifier, or explains how to provide a key.
    pub fn verifier(&self) -> anyhow::Result<Verifier> {
        let sources = [
            self.jwt_secret.is_some(),
            self.jwt_public_key_file.is_some(),
            self.jwt_jwks_url.is_some(),
            self.jwt_issuers.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            anyhow::bail!(
                "set only one of JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWT_JWKS_URL and JWT_ISSUERS: \
                 a token must have exactly one place its key comes from"
            );
        }
        if self.jwt_jwks_url.is_some() || self.jwt_issuers.is_some() {
            return self.jwks_verifier();
        }
        let key = match (&self.jwt_secret, &self.jwt_public_key_file) {
            (Some(_), Some(_)) => {
                anyhow::bail!("set only one of JWT_SECRET and JWT_PUBLIC_KEY_FILE")
            }
            (Some(s), None) if s.0.is_empty() => {
                anyhow::bail!(
                    "JWT_SECRET is empty: set at least 32 random bytes, e.g. JWT_SECRET=$(openssl rand -hex 32)"
                )
            }
            (Some(s), None) => KeySource::Secret(s.0.clone()),
            (None, Some(path)) => Verifier::read_public_key(path)?,
            (None, None) => anyhow::bail!(
                "no JWT key configured: set JWT_SECRET (HS256 shared secret, e.g. JWT_SECRET=$(openssl rand -hex 32)) \
                 or JWT_PUBLIC_KEY_FILE with JWT_ALGORITHM=RS256|ES256 (or the --jwt-secret / --jwt-public-key-file flags)"
            ),
        };
        // Empty is unset: docker-compose.yml passes `JWT_ISSUER: ${JWT_ISSUER:-}`, an
        // empty variable when .env sets none, which must not require `iss: ""`.
        fn non_empty(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|s| !s.is_empty())
        }
        Verifier::new(
            self.jwt_algorithm.into(),
            &key,
            non_empty(&self.jwt_issuer),
            non_empty(&self.jwt_audience),
            self.jwt_leeway_secs,
        )
        .map(|v| v.max_lifetime(self.max_token_lifetime_secs))
    }

    fn jwks_verifier(&self) -> anyhow::Result<Verifier> {
        let freshness = Freshness {
            refresh: Duration::from_secs(self.jwt_jwks_refresh_secs.max(1)),
            min_refetch: Duration::from_secs(self.jwt_jwks_min_refetch_secs),
            timeout: JWKS_FETCH_TIMEOUT,
        };
        let sets = match (&self.jwt_jwks_url, &self.jwt_issuers) {
            (Some(url), _) => {
                jwks::check_url(url).map_err(|e| anyhow::anyhow!("JWT_JWKS_URL: {e}"))?;
                KeySets::single(url.clone(), freshness)?
            }
            (None, Some(raw)) => {
                if self.jwt_issuer.is_some() {
                    anyhow::bail!(
                        "JWT_ISSUERS names the accepted issuers itself; unset JWT_ISSUER"
                    );
                }
                KeySets::per_issuer(&jwks::parse_issuers(raw)?, freshness)?
            }
            (None, None) => unreachable!("called with a JWKS setting"),
        };
        Ok(Verifier::with_jwks(
            Arc::new(sets),
            self.jwt_issuer.as_deref(),
            self.jwt_audience.as_deref(),
            self.jwt_leeway_secs,
        )
        .max_lifetime(self.max_token_lifetime_secs))
    }
}

/// Time allowed for one JWKS fetch.
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Role, mint_hs256};

    const SECRET: &str = "config-test-secret-0123456789abcdef";

    #[test]
    fn a_short_jwt_secret_is_refused_at_start_with_how_to_make_one() {
        let err = Config::for_tests("dev-secret").verifier().err().unwrap();
        let msg = format!("{err:#}");
        assert!(msg.contains("JWT_SECRET"), "{msg}");
        assert!(msg.contains("at least 32"), "{msg}");
        assert!(msg.contains("openssl rand -hex 32"), "{msg}");
        let err = Config::for_tests("").verifier().err().unwrap();
        assert!(format!("{err:#}").contains("openssl rand -hex 32"));
        assert!(Config::for_tests(SECRET).verifier().is_ok());
    }

    #[test]
    fn ambiguous_key_settings_are_refused_with_a_clear_message() {
        let mut c = Config::for_tests(SECRET);
        c.jwt_jwks_url = Some("https://idp.example/jwks.json".into());
        let msg = format!("{:#}", c.verifier().err().unwrap());
        assert!(msg.contains("only one of JWT_SECRET"), "{msg}");
        c.jwt_secret = None;
        assert!(c.verifier().is_ok());
        c.jwt_jwks_url = Some("idp.example/jwks.json".into());
        assert!(c.verifier().is_err(), "not a URL");
        c.jwt_jwks_url = None;
        c.jwt_issuers = Some(r#"{"https://a": "https://a/jwks"}"#.into());
        assert!(c.verifier().is_ok());
        c.jwt_issuer = Some("https://a".into());
        let msg = format!("{:#}", c.verifier().err().unwrap());
        assert!(msg.contains("unset JWT_ISSUER"), "{msg}");
    }

    #[test]
    fn the_verifier_refuses_tokens_living_longer_than_max_token_lifetime_secs() {
        let mut config = Config::for_tests(SECRET);
        assert_eq!(config.max_token_lifetime_secs, 86_400);
        let day_and_a_bit = mint_hs256(SECRET, "u", Some("t"), Role::Student, 90_000).unwrap();
        let hour = mint_hs256(SECRET, "u", Some("t"), Role::Student, 3_600).unwrap();
        let v = config.verifier().unwrap();
        assert!(v.verify_now(&day_and_a_bit).is_err());
        assert!(v.verify_now(&hour).is_ok());
        config.max_token_lifetime_secs = 600;
        let v = config.verifier().unwrap();
        assert!(v.verify_now(&hour).is_err());
        config.max_token_lifetime_secs = 100_000;
        assert!(
            config
                .verifier()
                .unwrap()
                .verify_now(&day_and_a_bit)
                .is_ok()
        );
    }

    #[test]
    fn empty_issuer_and_audience_are_unset() {
        let mut config = Config::for_tests(SECRET);
        config.jwt_issuer = Some(String::new());
        config.jwt_audience = Some(String::new());
        let token = mint_hs256(SECRET, "u1", Some("t1"), Role::Student, 60).unwrap();
        assert!(config.verifier().unwrap().verify_now(&token).is_ok());

        config.jwt_issuer = Some("lms".into());
        assert!(config.verifier().unwrap().verify_now(&token).is_err());
    }
}
