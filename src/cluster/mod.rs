//! Cluster mode: what a node needs to share its sockets, rooms and state through Redis.
//!
//! [`Cluster::connect`] turns `REDIS_URL` into two fred clients (commands for the store
//! and the node registry; a subscriber for the Socket.IO adapter), checks that the server
//! can do sharded pub/sub (Redis ≥ 7), and hands back the adapter's state.
//! [`Cluster::start`] runs the node's background work (stats heartbeat, store health,
//! reconnect counting) until the node shuts down.
//!
//! URLs (fred's own parser): `redis://[user:pass@]host:port[/db]`,
//! `redis-cluster://host:port?node=host2:port2&node=…` for a Redis Cluster (one reachable
//! master is enough; the rest are discovered), and `redis-sentinel://…` (parsed by fred,
//! untested here). `rediss://` (and `rediss-cluster://`) connect over TLS with rustls,
//! trusting the system roots or `REDIS_TLS_CA_FILE` ([`tls`]). RESP3 is set here in code
//! because fred ignores a `protocol=` parameter in the URL.

pub mod driver;
pub mod lua;
pub mod metrics;
pub mod relay;
pub mod room_channels;
pub mod stats;
pub mod tls;
pub mod user_servers;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, EventInterface};
use fred::types::config::{
    Config as FredConfig, ConnectionConfig, PerformanceConfig, ReconnectPolicy,
};
use fred::types::{InfoKind, RespVersion};
use socketioxide::SocketIo;
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr, RoomChannels};
use tokio_util::sync::CancellationToken;

use crate::presence::PresenceStore;
use crate::presence::redis::RedisPresence;
use crate::presence::relay::{Incoming, MembershipRelay};
use crate::service::stats::local_stats;
use crate::store::connections::ConnectionLedger;
use crate::store::redis::RedisStore;
use crate::store::redis_connections::{LiveInstances, RedisLedger};
use crate::store::redis_revocations::RedisRevocations;
use crate::store::revocations::RevocationStore;
use crate::store::{Health, Store, StoreLimits};

pub use driver::MeteredFredDriver;
pub use stats::RedisPeers;

/// The Socket.IO adapter of a cluster node.
pub type Adapter = CustomRedisAdapter<socketioxide::adapter::Emitter, MeteredFredDriver>;

/// Every command fails after this long instead of waiting for a Redis that is gone; a
/// timed-out command is never written later.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(1_500);
/// Time allowed to open a TCP connection (and TLS handshake) to Redis.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Reconnect backoff: exponential from 100 ms, capped at 1 s, never giving up.
const RECONNECT_MIN_MS: u32 = 100;
const RECONNECT_MAX_MS: u32 = 1_000;
/// Messages buffered per adapter channel between the Redis connection and the adapter.
/// Past it, messages are dropped and counted (`lms_adapter_dropped_total`).
pub const ADAPTER_STREAM_BUFFER: usize = 8_192;
/// Messages buffered between the subscriber connection and the dispatcher; a lag past it
/// is counted as dropped.
const PUBSUB_BROADCAST_CAPACITY: usize = 8_192;
/// Channel prefix of the adapter (`lms-request#/#`, ...).
const ADAPTER_PREFIX: &str = "lms";
/// How long the adapter waits for other nodes' answers (fetch sockets, acks).
const ADAPTER_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Oldest server version with sharded pub/sub (SSUBSCRIBE/SPUBLISH).
const MIN_REDIS_MAJOR: u32 = 7;

/// The fred settings of a client, from the URL alone (TLS with the system roots for
/// `rediss://`); see [`client_config_with_tls`].
pub fn client_config(url: &str) -> anyhow::Result<ClientSettings> {
    client_config_with_tls(url, &tls::RedisTls::default())
}

/// What fred takes to build a client: config, performance, connection, reconnect policy.
pub type ClientSettings = (
    FredConfig,
    PerformanceConfig,
    ConnectionConfig,
    ReconnectPolicy,
);

/// fred settings for every client of a node: RESP3, bounded connect and command time,
/// reconnect forever with a capped backoff, and no silent retry of a command whose
/// connection broke (the store must never report as done what Redis may not have taken).
/// A `rediss://` URL connects with `tls`'s certificates.
pub fn client_config_with_tls(url: &str, tls: &tls::RedisTls) -> anyhow::Result<ClientSettings> {
    let mut config = FredConfig::from_url(url)
        .map_err(|e| anyhow::anyhow!("REDIS_URL is not a valid Redis URL: {e}"))?;
    tls.apply(&mut config)?;
    config.version = RespVersion::RESP3;
    config.fail_fast = true;
    let perf = PerformanceConfig {
        default_command_timeout: COMMAND_TIMEOUT,
        broadcast_channel_capacity: PUBSUB_BROADCAST_CAPACITY,
        ..Default::default()
    };
    let connection = ConnectionConfig {
        connection_timeout: CONNECT_TIMEOUT,
        internal_command_timeout: CONNECT_TIMEOUT,
        max_command_attempts: 1,
        ..Default::default()
    };
    let policy = ReconnectPolicy::new_exponential(0, RECONNECT_MIN_MS, RECONNECT_MAX_MS, 2);
    Ok((config, perf, connection, policy))
}

/// The URL without credentials, for messages.
fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://{host}")
        }
        None => "<unparseable>".into(),
    }
}

/// `redis_version` from `INFO server`, as (major, full string).
fn server_version(info: &str) -> Option<(u32, String)> {
    let v = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("redis_version:"))?
        .trim()
        .to_owned();
    let major = v.split('.').next()?.parse().ok()?;
    Some((major, v))
}

/// Refuses a server without sharded pub/sub, with a message an operator can act on.
fn check_version(info: &str) -> anyhow::Result<()> {
    let Some((major, full)) = server_version(info) else {
        anyhow::bail!("could not read redis_version from INFO server; Redis ≥ 7.0 is required");
    };
    if major < MIN_REDIS_MAJOR {
        anyhow::bail!(
            "Redis {full} is too old: cluster mode needs Redis ≥ 7.0 (the Socket.IO adapter uses sharded pub/sub, SSUBSCRIBE/SPUBLISH); upgrade Redis or unset REDIS_URL"
        );
    }
    Ok(())
}

/// A node's connections to Redis.
pub struct Cluster {
    client: Client,
    subscriber: SubscriberClient,
    /// The adapter's pub/sub driver, shared with the membership relay.
    driver: MeteredFredDriver,
    store: Arc<RedisStore>,
    ledger: Arc<RedisLedger>,
    peers: Arc<RedisPeers>,
    /// This process: the node id and its adapter id ([`user_servers::instance`]).
    instance: String,
    /// The Socket.IO server id the node must run with ([`Self::server_id`]).
    server: socketioxide_core::Uid,
    /// Re-subscriptions of the adapter, with the time the subscription was lost.
    resubscribed: tokio::sync::broadcast::Receiver<(u64, u64)>,
    /// The adapter's sharded room channels.
    rooms: RoomChannels<MeteredFredDriver>,
}

impl Cluster {
    /// Connects both clients, checks the server version and builds the adapter state: a
    /// broadcast to one room travels on the room's sharded channel (`rooms::shard_tag`),
    /// kept subscribed `room_release_after` past the room's last local socket, and a
    /// broadcast to one user's room goes to the nodes the connection ledger names
    /// (`user_servers`) (`None`: every broadcast on the shared channel).
    pub async fn connect(
        url: &str,
        tls: &tls::RedisTls,
        node: &str,
        limits: StoreLimits,
        room_release_after: Option<Duration>,
        received: Option<Arc<crate::recovery::received::Received>>,
    ) -> anyhow::Result<(Self, RedisAdapterCtr<MeteredFredDriver>)> {
        let shown = redacted(url);
        let (config, perf, connection, policy) = client_config_with_tls(url, tls)?;
        let client = Client::new(
            config.clone(),
            Some(perf.clone()),
            Some(connection.clone()),
            Some(policy.clone()),
        );
        client
            .init()
            .await
            .with_context(|| format!("cannot connect to Redis at {shown}"))?;
        let info: String = client
            .info(Some(InfoKind::Server))
            .await
            .with_context(|| format!("cannot read the server version of Redis at {shown}"))?;
        check_version(&info)?;

        let subscriber = SubscriberClient::new(config, Some(perf), Some(connection), Some(policy));
        let driver = MeteredFredDriver::new(subscriber.clone())
            .await
            .with_context(|| format!("cannot open the pub/sub connection to Redis at {shown}"))?;
        let resubscribed = driver.resubscribed();
        let mut adapter_config = RedisAdapterConfig::new()
            .with_prefix(ADAPTER_PREFIX)
            .with_stream_buffer(ADAPTER_STREAM_BUFFER)
            .with_request_timeout(ADAPTER_REQUEST_TIMEOUT);
        if let Some(after) = room_release_after {
            adapter_config = adapter_config
                .with_sharded_rooms(crate::rooms::shard_tag)
                .with_room_release_after(after)
                .with_room_servers(user_servers::room_servers(client.clone()));
        }
        if let Some(received) = received {
            // Before the local sockets get it: see `recovery::received`.
            adapter_config = adapter_config.with_remote_broadcast_observer(
                socketioxide_redis::RemoteBroadcastObserver::new(move |packet| {
                    if let Some(o) = crate::recovery::received::offset_of(packet) {
                        received.record(o);
                    }
                }),
            );
        }
        let ctr = RedisAdapterCtr::new_with_driver(driver.clone(), adapter_config);
        let rooms = ctr.room_channels();
        tracing::info!(redis = %shown, node, "connected to Redis (RESP3, sharded pub/sub)");

        let store = Arc::new(RedisStore::new(client.clone(), limits));
        let server = socketioxide_core::Uid::new();
        let instance = user_servers::instance(node, server);
        let live = LiveInstances::default();
        let ledger = Arc::new(RedisLedger::new(
            client.clone(),
            instance.clone(),
            live.clone(),
        ));
        let peers = Arc::new(RedisPeers::new(
            client.clone(),
            node.to_owned(),
            instance.clone(),
            live,
        ));
        Ok((
            Self {
                client,
                subscriber,
                driver,
                store,
                ledger,
                peers,
                instance,
                server,
                resubscribed,
                rooms,
            },
            ctr,
        ))
    }

    /// The server id the node's Socket.IO server must be built with
    /// ([`socketioxide::SocketIoConfig::server_id`]): the ledger names this process by it,
    /// and other nodes send its users' emits to its request channel.
    pub fn server_id(&self) -> socketioxide_core::Uid {
        self.server
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The tenants' quota buckets, one per tenant for the whole cluster.
    pub fn buckets(&self) -> Arc<crate::store::redis_buckets::RedisBuckets> {
        Arc::new(crate::store::redis_buckets::RedisBuckets::new(
            self.client.clone(),
        ))
    }

    pub fn ledger(&self) -> Arc<dyn ConnectionLedger> {
        self.ledger.clone()
    }

    /// Token revocations, on the store's connection.
    pub fn revocations(&self) -> Arc<dyn RevocationStore> {
        Arc::new(RedisRevocations::new(self.client.clone()))
    }

    /// Presence, its entries owned by this process and expiring `ttl` after its last
    /// upkeep.
    pub fn presence(&self, ttl: Duration) -> Arc<dyn PresenceStore> {
        Arc::new(RedisPresence::new(
            self.client.clone(),
            self.instance.clone(),
            ttl,
        ))
    }

    /// Membership changes to and from every node, on the adapter's pub/sub connection.
    pub async fn membership_relay(&self) -> anyhow::Result<(Arc<dyn MembershipRelay>, Incoming)> {
        let (relay, incoming) = relay::RedisRelay::start(self.driver.clone()).await?;
        let relay: Arc<dyn MembershipRelay> = relay;
        Ok((relay, incoming))
    }

    /// What a local join waits for: its rooms' sharded channels subscribed.
    pub fn room_channels(&self) -> std::sync::Arc<dyn crate::service::channels::RoomChannels> {
        Arc::new(room_channels::ClusterRooms(self.rooms.clone()))
    }

    /// The adapter's re-subscriptions after a Redis reconnect, each with the time (ms since
    /// the epoch) the subscription was lost.
    pub fn resubscribed(&self) -> tokio::sync::broadcast::Receiver<(u64, u64)> {
        self.resubscribed.resubscribe()
    }

    /// Recovery streams and sessions, on the store's connection.
    pub fn recovery(
        &self,
        bounds: crate::recovery::StreamBounds,
    ) -> Arc<dyn crate::recovery::RecoveryStore> {
        Arc::new(crate::recovery::redis::RedisRecovery::new(
            self.client.clone(),
            bounds,
        ))
    }

    /// The export queue (§12), on the store's connection.
    pub fn export(
        &self,
        bounds: crate::export::QueueBounds,
    ) -> Arc<dyn crate::export::ExportQueue> {
        Arc::new(crate::export::redis::RedisExport::new(
            self.client.clone(),
            bounds,
        ))
    }

    pub fn peers(&self) -> Arc<RedisPeers> {
        self.peers.clone()
    }

    /// Runs the node's background work until `stop` fires: the stats heartbeat, the
    /// `lms_store_up` gauge, reconnect counting. On stop the node leaves the registry at
    /// once and closes its Redis connections once its sockets are closed.
    pub fn start(self, io: SocketIo<Adapter>, node: String, stop: CancellationToken) {
        metrics::describe();
        let mut reconnects = self.client.reconnect_rx();
        let counting = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = counting.cancelled() => return,
                    r = reconnects.recv() => match r {
                        Ok(server) => {
                            metrics::redis_reconnect("store");
                            tracing::info!(%server, "redis reconnected (store client)");
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => return,
                    },
                }
            }
        });

        tokio::spawn(async move {
            let mut tick = tokio::time::interval(stats::HEARTBEAT_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let up = self.store.ping().await.is_ok();
                crate::metrics::store_up(up);
                // Channels are released by the adapter's sweep, outside any join.
                metrics::room_channels(self.rooms.subscribed());
                if up && let Err(e) = self.peers.heartbeat(&local_stats(&io, &node)).await {
                    tracing::debug!(error = %e, "stats heartbeat not written");
                }
            }
            if let Err(e) = self.peers.deregister().await {
                tracing::warn!(error = %e, "could not remove this node from the stats registry; it expires in a few seconds");
            }
            // Give the sockets time to be told and closed (the adapter unsubscribes then).
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = self.subscriber.quit().await;
            let _ = self.client.quit().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_check_refuses_redis_6_with_a_clear_message() {
        let err = check_version("# Server\r\nredis_version:6.2.14\r\nredis_mode:standalone\r\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("6.2.14") && err.contains("≥ 7.0"), "{err}");
        assert!(check_version("redis_version:7.0.15\r\n").is_ok());
        assert!(check_version("redis_version:8.0.2\r\n").is_ok());
        assert!(check_version("nothing here").is_err());
    }

    #[test]
    fn credentials_never_show_in_messages() {
        assert_eq!(
            redacted("redis://user:secret@redis.internal:6380/0"),
            "redis://redis.internal:6380/0"
        );
        assert_eq!(redacted("redis://localhost:6379"), "redis://localhost:6379");
    }

    #[test]
    fn resp3_and_a_command_timeout_are_set_in_code() {
        let (config, perf, connection, _) =
            client_config("redis://127.0.0.1:6379?protocol=resp2").unwrap();
        assert_eq!(config.version, RespVersion::RESP3);
        assert_eq!(perf.default_command_timeout, COMMAND_TIMEOUT);
        assert_eq!(connection.max_command_attempts, 1);
        let (cluster, ..) = client_config("redis-cluster://127.0.0.1:7000").unwrap();
        assert!(cluster.server.is_clustered());
        let (tls, ..) = client_config("rediss://h:6380").unwrap();
        assert!(tls.tls.is_some(), "rediss:// connects over TLS");
    }
}
