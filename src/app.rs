//! Building and running one gateway node: the same wiring for the binary and the tests.
//!
//! [`Application::build`] binds the listener (port 0 picks a free one, which tests use) and
//! wires store, adapter, sockets and routes; [`Application::run_until_stopped`] serves until
//! the [`ShutdownHandle`] fires, then drains within the configured timeout. With
//! `METRICS_PORT` a second, internal listener serves `/metrics` alone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::{HeaderValue, Method, header};
use futures::future::BoxFuture;
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::{ParserConfig, SocketIo};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::util::MapRequestLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::client_ip::TrustedProxies;
use crate::config::Config;
use crate::emit;
use crate::export::memory::MemoryExport;
use crate::export::{Export, ExportQueue, delivery};
use crate::http::quota::{ApiQuotas, QuotaSettings};
use crate::http::{self, ApiState, MetricsOn};
use crate::metrics;
use crate::operator::Operator;
use crate::presence::memory::MemoryPresence;
use crate::presence::relay::{Incoming, LocalRelay, MembershipRelay};
use crate::presence::tracker::PresenceSettings;
use crate::presence::{Presence, PresenceStore};
use crate::server::{HttpServer, Timeouts};
use crate::server_events as events;
use crate::service::{Gateway, PeerStats};
use crate::socket::admission::{Admission, AdmissionLimits};
use crate::socket::presence::RoomAnnouncer;
use crate::socket::{self, SocketCtx, SocketLimits};
use crate::store::connections::{ConnectionLedger, MemoryLedger};
use crate::store::instrumented::Instrumented;
use crate::store::memory::MemoryStore;
use crate::store::revocations::{MemoryRevocations, RevocationStore};
use crate::store::{Store, StoreLimits};
use crate::types::ErrorEvent;

/// Fires graceful shutdown; cheap to clone.
#[derive(Clone, Default)]
pub struct ShutdownHandle(CancellationToken);

impl ShutdownHandle {
    pub fn trigger(&self) {
        self.0.cancel();
    }
}

/// A built node, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    server: Arc<HttpServer>,
    /// The internal `/metrics` listener, when `METRICS_PORT` is set.
    metrics: Option<(TcpListener, Arc<HttpServer>)>,
    shutdown: ShutdownHandle,
    draining: Arc<AtomicBool>,
    close_sockets: Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>,
    drain_timeout: Duration,
}

/// Cluster: the adapter's re-subscriptions and the ring of offsets received from other
/// nodes, for the replay after a Redis blip.
pub type Blips = (
    tokio::sync::broadcast::Receiver<(u64, u64)>,
    Arc<crate::recovery::received::Received>,
);

/// The parts of a node that depend on the adapter, handed to the generic wiring.
pub struct NodeParts {
    pub store: Arc<dyn Store>,
    pub ledger: Arc<dyn ConnectionLedger>,
    pub peers: Option<Arc<dyn PeerStats>>,
    pub revocations: Arc<dyn RevocationStore>,
    pub presence: Arc<dyn PresenceStore>,
    /// Membership changes to every node's presence, and those that reach this node.
    pub memberships: (Arc<dyn MembershipRelay>, Incoming),
    pub recovery: Arc<dyn crate::recovery::RecoveryStore>,
    /// The export queue (§12): in memory on one node, in Redis for a cluster.
    pub export: Arc<dyn ExportQueue>,
    /// Cluster: the adapter's re-subscriptions (when the subscription was lost and when it
    /// was back), after which the node replays what its sockets missed.
    /// With the ring of offsets the node received from other nodes (recovery on).
    pub resubscribed: Option<Blips>,
    /// What a local join waits for (cluster: the rooms' sharded channels).
    pub room_channels: Arc<dyn crate::service::channels::RoomChannels>,
    /// The tenants' quota buckets shared by the cluster; `None`: the node's own.
    pub buckets: Option<Arc<crate::store::redis_buckets::RedisBuckets>>,
}

impl Application {
    /// Builds a node from configuration: embedded (in memory) without `REDIS_URL`, a
    /// cluster node (Redis store and adapter) with it.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let limits = config.store_limits();
        if let Some(url) = config.redis_url.clone() {
            return Self::build_cluster(config, &url.0, limits).await;
        }
        let parts = NodeParts {
            store: Arc::new(MemoryStore::new(limits)),
            ledger: Arc::new(MemoryLedger::default()),
            peers: None,
            revocations: Arc::new(MemoryRevocations::default()),
            presence: Arc::new(MemoryPresence::default()),
            memberships: {
                let (relay, incoming) = LocalRelay::new();
                let relay: Arc<dyn MembershipRelay> = Arc::new(relay);
                (relay, incoming)
            },
            recovery: Arc::new(crate::recovery::memory::MemoryRecovery::new(
                config.recovery_bounds(),
            )),
            export: Arc::new(MemoryExport::new(config.export_bounds())),
            resubscribed: None,
            room_channels: Arc::new(crate::service::channels::InProcess),
            buckets: None,
        };
        let slot = socket::CtxSlot::<LocalAdapter>::default();
        let builder = socket_io_builder(&config, socketioxide_core::Uid::new());
        let (layer, io) = builder.with_state(slot.clone()).build_layer();
        Self::assemble::<LocalAdapter>(config, io, layer, slot, parts, |_init| async {}).await
    }

    /// A cluster node: store and Socket.IO adapter in Redis, stats from every node.
    async fn build_cluster(config: Config, url: &str, limits: StoreLimits) -> anyhow::Result<Self> {
        use crate::cluster::{self, Cluster};
        let node = config.node_id();
        let received = config.recovery_enabled.then(|| {
            Arc::new(crate::recovery::received::Received::new(
                crate::recovery::received::capacity(config.recovery_stream_max_len),
            ))
        });
        let (cluster, adapter) = Cluster::connect(
            url,
            &config.redis_tls(),
            &node,
            limits,
            config
                .room_channels
                .then(|| Duration::from_millis(config.room_unsubscribe_delay_ms)),
            received.clone(),
        )
        .await?;
        let parts = NodeParts {
            store: cluster.store(),
            ledger: cluster.ledger(),
            peers: Some(cluster.peers()),
            revocations: cluster.revocations(),
            presence: cluster.presence(Duration::from_millis(config.presence_ttl_ms)),
            memberships: cluster.membership_relay().await?,
            recovery: cluster.recovery(config.recovery_bounds()),
            export: cluster.export(config.export_bounds()),
            resubscribed: received.map(|r| (cluster.resubscribed(), r)),
            room_channels: cluster.room_channels(),
            buckets: Some(cluster.buckets()),
        };
        let ctx_slot = socket::CtxSlot::<cluster::Adapter>::default();
        let (layer, io) = socket_io_builder(&config, cluster.server_id())
            .with_adapter::<cluster::Adapter>(adapter)
            .with_state(ctx_slot.clone())
            .build_layer();
        let init_error = Arc::new(std::sync::Mutex::new(None));
        let slot = init_error.clone();
        let app = Self::assemble::<cluster::Adapter>(
            config,
            io.clone(),
            layer,
            ctx_slot,
            parts,
            async move |init| {
                if let Err(e) = init.await {
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                }
            },
        )
        .await?;
        if let Some(e) = init_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            anyhow::bail!("cannot subscribe the Socket.IO adapter to Redis: {e}");
        }
        cluster.start(io, node, app.shutdown.0.clone());
        Ok(app)
    }

    /// Wires a node over any adapter. `init` receives the namespace's adapter initialisation
    /// (a future to await for a remote adapter, `()` for the local one).
    pub async fn assemble<A: Adapter + socketioxide_core::adapter::DefinedAdapter>(
        config: Config,
        io: SocketIo<A>,
        layer: socketioxide::layer::SocketIoLayer<A>,
        slot: socket::CtxSlot<A>,
        parts: NodeParts,
        init: impl AsyncFnOnce(A::InitRes),
    ) -> anyhow::Result<Self> {
        let verifier = config.verifier()?;
        let proxies = TrustedProxies::parse(&config.trusted_proxies)?;
        let timeouts = Timeouts {
            header: Duration::from_millis(config.http_header_timeout_ms),
            body: Duration::from_millis(config.http_body_timeout_ms),
            idle: Duration::from_millis(config.http_idle_timeout_ms),
        };
        let prometheus = metrics::install();
        verifier.start_key_refresh().await;
        let node = config.node_id();
        metrics::init_node(&node);
        let store: Arc<dyn Store> = Arc::new(Instrumented::new(parts.store));
        let shutdown = ShutdownHandle::default();
        crate::store::sweeper::spawn(
            store.clone(),
            config.retention_sweep_interval,
            config.tenant_metric_cap,
            shutdown.0.clone(),
        );
        // One node (no peers): emits and recoveries are put in one order (`Recovery::order`).
        let single_node = parts.peers.is_none();
        let export = Arc::new(Export::new(parts.export));
        let gateway = Gateway::new(
            io.clone(),
            store,
            node.clone(),
            parts.peers,
            Duration::from_millis(config.stats_timeout_ms),
            crate::fair::FairShare {
                store_concurrency: config.tenant_store_concurrency,
                recipients_per_sec: config.tenant_notify_recipients_per_sec,
                recipients_burst: config.tenant_notify_recipients_burst,
                storage_quota: config.tenant_storage_quota,
            },
            crate::service::Links {
                memberships: parts.memberships.0,
                recovery: config.recovery_enabled.then(|| {
                    Arc::new(crate::recovery::Recovery::new(
                        parts.recovery.clone(),
                        Duration::from_secs(config.recovery_window_secs),
                        single_node,
                        // As many as one room's stream keeps.
                        config.recovery_stream_max_len.max(1),
                    ))
                }),
                export: export.clone(),
                room_channels: parts.room_channels,
                buckets: parts.buckets.clone(),
            },
        );
        tokio::spawn(socket::presence::follow_memberships(
            io.clone(),
            parts.memberships.1,
        ));
        let operator = Operator::new(
            io.clone(),
            parts.revocations,
            Duration::from_secs(config.max_token_lifetime_secs),
            Duration::from_secs(config.jwt_leeway_secs),
        );
        let shutdown = ShutdownHandle::default();
        delivery::spawn(
            &export,
            config.delivery_settings(),
            &node,
            shutdown.0.clone(),
        )?;
        let presence = Presence::start(
            parts.presence,
            Arc::new(RoomAnnouncer {
                gateway: gateway.clone(),
            }),
            PresenceSettings {
                enabled: config.presence_enabled,
                debounce: Duration::from_millis(config.presence_debounce_ms),
                upkeep_every: Duration::from_millis((config.presence_ttl_ms / 3).max(100)),
                tenant_metric_cap: config.tenant_metric_cap,
                list_cache: Duration::from_millis(config.presence_list_cache_ms),
            },
            shutdown.0.clone(),
        );
        let draining = Arc::new(AtomicBool::new(false));
        let trusted = Arc::new(TrustedProxies::parse(&config.trusted_proxies)?);
        let admission = Admission::new(AdmissionLimits {
            max_connections: config.max_connections,
            max_connections_per_ip: config.max_connections_per_ip,
            max_pending_sessions: config.max_pending_sessions,
            max_pending_sessions_per_ip: config.max_pending_sessions_per_ip,
            connect_attempts_per_session: config.connect_attempts_per_session,
            connect_concurrency: config.connect_concurrency,
            connect_queue_timeout: Duration::from_millis(config.connect_queue_timeout_ms),
        });
        let limits = SocketLimits {
            max_connections_per_user: config.max_connections_per_user,
            max_connections_per_tenant: config.max_connections_per_tenant,
            event_rate_per_sec: config.event_rate_per_sec,
            event_burst: config.event_burst,
            flood_disconnect_after: config.flood_disconnect_after,
            progress_video_interval: Duration::from_millis(config.progress_video_interval_ms),
        };
        let ctx = Arc::new(SocketCtx::new(
            gateway.clone(),
            verifier.clone(),
            limits,
            config.tenant_metric_cap,
            draining.clone(),
            admission.clone(),
            parts.ledger,
            operator.clone(),
            presence.clone(),
        ));
        let releases = ctx.releases.clone();
        init(socket::serve(&io, ctx, &slot)).await;
        if let (Some((rx, received)), Some(_)) = (parts.resubscribed, gateway.recovery()) {
            tokio::spawn(socket::recovery::replay_after_blips(
                io.clone(),
                gateway.clone(),
                received,
                rx,
                shutdown.0.clone(),
            ));
        }

        let state = ApiState {
            gateway,
            verifier,
            operator,
            presence,
            prometheus,
            draining: draining.clone(),
            quotas: ApiQuotas::new(
                QuotaSettings {
                    rate_per_sec: config.api_rate_per_sec,
                    burst: config.api_burst,
                    max_in_flight: config.api_max_in_flight,
                    refusal_hold: Duration::from_millis(config.api_refusal_hold_ms),
                    max_held_refusals: config.api_max_held_refusals,
                },
                parts.buckets,
            ),
            max_notification_data_bytes: config.max_notification_data_bytes,
            refusals: admission.recent.clone(),
        };
        let metrics_on = match config.metrics_port {
            Some(_) => MetricsOn::InternalPort,
            None => MetricsOn::PublicPort,
        };
        let metrics_router = http::metrics_router(state.clone());
        let mut router = http::router(state, config.max_http_body_bytes, metrics_on)
            .layer(layer)
            .layer(MapRequestLayer::new(|req: axum::extract::Request| {
                // Only Socket.IO handshakes are kept past their response.
                if req.uri().path().starts_with(SOCKET_IO_PATH) {
                    http::detach_from_read_buffer(req)
                } else {
                    req
                }
            }))
            .layer(axum::middleware::from_fn_with_state(
                http::handshake::Gate {
                    admission,
                    trusted,
                    socket_io_path: SOCKET_IO_PATH,
                },
                http::handshake::gate,
            ));
        if let Some(cors) = cors(&config.cors_origins)? {
            router = router.layer(cors);
        }
        let addr = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        tracing::info!(node, addr = %listener.local_addr()?, cluster = config.redis_url.is_some(), "gateway listening");
        let metrics = match config.metrics_port {
            Some(port) => {
                let addr = SocketAddr::new(config.host, port);
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("METRICS_PORT: cannot listen on {addr}: {e}"))?;
                tracing::info!(addr = %listener.local_addr()?, "metrics listening");
                let server = HttpServer::new(metrics_router, proxies.clone(), timeouts);
                Some((listener, server))
            }
            None => None,
        };
        let close_io = io.clone();
        let close_sockets = Box::new(move || -> BoxFuture<'static, ()> {
            Box::pin(async move {
                let notice = ErrorEvent {
                    code: crate::error::ErrorCode::Unavailable,
                    message: "this node is shutting down; reconnect".into(),
                    event: None,
                };
                if let Err(e) = emit::broadcast(close_io.local(), events::ERROR, &notice).await {
                    tracing::debug!(error = %e, "shutdown notice not delivered to every socket");
                }
                // Let the notice leave before the transports close.
                tokio::time::sleep(Duration::from_millis(200)).await;
                close_io.close().await;
                releases.settled().await;
            })
        });
        Ok(Self {
            listener,
            server: HttpServer::new(router, proxies, timeouts),
            metrics,
            shutdown,
            draining,
            close_sockets,
            drain_timeout: config.drain_timeout(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `/metrics` is served apart from the public port (`METRICS_PORT`), if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Serves until shutdown fires; then refuses new sockets, tells and closes the open
    /// ones, lets in-flight requests finish, and returns within the drain timeout.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self {
            listener,
            server,
            metrics,
            shutdown,
            draining,
            close_sockets,
            drain_timeout,
        } = self;
        let token = shutdown.0.clone();
        let signal = async move {
            token.cancelled().await;
            tracing::info!(
                timeout_secs = drain_timeout.as_secs(),
                "draining: refusing new sockets, closing open ones"
            );
            draining.store(true, Ordering::Relaxed);
            close_sockets().await;
        };
        if let Some((listener, server)) = metrics {
            let stop = shutdown.0.clone();
            tokio::spawn(server.serve(listener, async move { stop.cancelled().await }));
        }
        let serve = server.serve(listener, signal);
        let mut serve = std::pin::pin!(serve);
        let deadline = async {
            shutdown.0.cancelled().await;
            tokio::time::sleep(drain_timeout).await;
        };
        tokio::select! {
            () = &mut serve => {}
            _ = deadline => tracing::warn!("drain timeout reached; exiting with connections still open"),
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Socket.IO settings shared by every adapter; `server_id` names the node to the others
/// (the cluster's ledger records it: `cluster::user_servers`).
pub fn socket_io_builder(
    config: &Config,
    server_id: socketioxide_core::Uid,
) -> socketioxide::SocketIoBuilder {
    let mut named = socketioxide::SocketIoConfig::default();
    named.server_id = server_id;
    // First: it replaces every setting made before it.
    SocketIo::builder()
        .with_config(named)
        .req_path(SOCKET_IO_PATH)
        .ping_interval(Duration::from_millis(config.ping_interval_ms))
        .ping_timeout(Duration::from_millis(config.ping_timeout_ms))
        .max_payload(config.max_message_bytes as u64)
        .ws_max_message_size(config.max_message_bytes)
        .ws_max_frame_size(config.max_message_bytes)
        .max_buffer_size(config.socket_buffer_packets)
        .ws_read_buffer_size(WS_READ_BUFFER_BYTES)
        .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
        .with_parser(
            // The gateway takes no binary payloads: a packet announcing attachments is
            // refused at the parser (it closes the session) instead of buffering up to
            // socketioxide's defaults of 10,000 attachments and 10 MB per packet.
            ParserConfig::common()
                .max_incoming_binaries(0)
                .max_incoming_binary_buf_size(config.max_message_bytes)
                .packet_completion_timeout(Duration::from_millis(config.connect_timeout_ms)),
        )
}

/// Where clients reach Socket.IO (the clients' default).
const SOCKET_IO_PATH: &str = "/socket.io";

/// Bytes a websocket reads per syscall, and its read buffer's first size; the buffer grows to
/// fit a larger frame when one comes, and keeps that size for the socket's life.
/// engineioxide's 4 KiB default was an eighth of an idle socket's heap (heap profile in
/// `docs/benchmarks.md`). Client events are small: with 128 bytes a CONNECT that carries a
/// token (~220 bytes) takes two reads and leaves a buffer of about 350 bytes; with 1 KiB it
/// took one read and left 1 KiB (tungstenite reserves a frame's length again on top of the
/// part already read, so a buffer of N bytes doubles for a frame between N/2 and N).
const WS_READ_BUFFER_BYTES: usize = 128;

fn cors(origins: &[String]) -> anyhow::Result<Option<CorsLayer>> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .map(|o| {
            o.parse()
                .map_err(|_| anyhow::anyhow!("CORS_ORIGINS: {o:?} is not a valid origin"))
        })
        .collect::<anyhow::Result<_>>()?;
    if origins.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
    ))
}
