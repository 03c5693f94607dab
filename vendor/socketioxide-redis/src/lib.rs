#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

//! # A redis/valkey adapter implementation for the socketioxide crate.
//! The adapter is used to communicate with other nodes of the same application.
//! This allows to broadcast messages to sockets connected on other servers,
//! to get the list of rooms, to add or remove sockets from rooms, etc.
//!
//! To achieve this, the adapter uses a [pub/sub](https://redis.io/docs/latest/develop/interact/pubsub/) system
//! through Redis to communicate with other servers.
//!
//! The [`Driver`] abstraction allows the use of any pub/sub client.
//! Three implementations are provided:
//! * [`RedisDriver`](crate::drivers::redis::RedisDriver) for the [`redis`] crate with a standalone redis.
//! * [`ClusterDriver`](crate::drivers::redis::ClusterDriver) for the [`redis`] crate with a redis cluster.
//! * [`FredDriver`](crate::drivers::fred::FredDriver) for the [`fred`] crate with a standalone/cluster redis.
//!
//! When using redis clusters, the drivers employ [sharded pub/sub](https://redis.io/docs/latest/develop/interact/pubsub/#sharded-pubsub)
//! to distribute the load across Redis nodes.
//!
//! You can also implement your own driver by implementing the [`Driver`] trait.
//!
//! <div class="warning">
//!     The provided driver implementations are using <code>RESP3</code> for efficiency purposes.
//!     Make sure your redis server supports it (redis v7 and above).
//!     If not, you can implement your own driver using the <code>RESP2</code> protocol.
//! </div>
//!
//! <div class="warning">
//!     Socketioxide-Redis is not compatible with <code>@socketio/redis-adapter</code>
//!     and <code>@socketio/redis-emitter</code>. They use completely different protocols and
//!     cannot be used together. Do not mix socket.io JS servers with socketioxide rust servers.
//! </div>
//!
//! ## Example with the [`redis`] driver
//! ```rust
//! # use socketioxide::{SocketIo, extract::{SocketRef, Data}, adapter::Adapter};
//! # use socketioxide_redis::{RedisAdapterCtr, RedisAdapter};
//! # async fn doc_main() -> Result<(), Box<dyn std::error::Error>> {
//! async fn on_connect<A: Adapter>(socket: SocketRef<A>) {
//!     socket.join("room1");
//!     socket.on("event", on_event);
//!     let _ = socket.broadcast().emit("hello", "world").await.ok();
//! }
//! async fn on_event<A: Adapter>(socket: SocketRef<A>, Data(data): Data<String>) {}
//!
//! let client = redis::Client::open("redis://127.0.0.1:6379?protocol=RESP3")?;
//! let adapter = RedisAdapterCtr::new_with_redis(&client).await?;
//! let (layer, io) = SocketIo::builder()
//!     .with_adapter::<RedisAdapter<_>>(adapter)
//!     .build_layer();
//! Ok(())
//! # }
//! ```
//!
//!
//! ## Example with the [`fred`] driver
//! ```rust
//! # use socketioxide::{SocketIo, extract::{SocketRef, Data}, adapter::Adapter};
//! # use socketioxide_redis::{RedisAdapterCtr, FredAdapter};
//! # use fred::types::RespVersion;
//! # async fn doc_main() -> Result<(), Box<dyn std::error::Error>> {
//! async fn on_connect<A: Adapter>(socket: SocketRef<A>) {
//!     socket.join("room1");
//!     socket.on("event", on_event);
//!     let _ = socket.broadcast().emit("hello", "world").await.ok();
//! }
//! async fn on_event<A: Adapter>(socket: SocketRef<A>, Data(data): Data<String>) {}
//!
//! let mut config = fred::prelude::Config::from_url("redis://127.0.0.1:6379?protocol=resp3")?;
//! // We need to manually set the RESP3 version because
//! // the fred crate does not parse the protocol query parameter.
//! config.version = RespVersion::RESP3;
//! let client = fred::prelude::Builder::from_config(config).build_subscriber_client()?;
//! let adapter = RedisAdapterCtr::new_with_fred(client).await?;
//! let (layer, io) = SocketIo::builder()
//!     .with_adapter::<FredAdapter<_>>(adapter)
//!     .build_layer();
//! Ok(())
//! # }
//! ```
//!
//!
//! ## Example with the [`redis`] cluster driver
//! ```rust
//! # use socketioxide::{SocketIo, extract::{SocketRef, Data}, adapter::Adapter};
//! # use socketioxide_redis::{RedisAdapterCtr, ClusterAdapter};
//! # async fn doc_main() -> Result<(), Box<dyn std::error::Error>> {
//! async fn on_connect<A: Adapter>(socket: SocketRef<A>) {
//!     socket.join("room1");
//!     socket.on("event", on_event);
//!     let _ = socket.broadcast().emit("hello", "world").await.ok();
//! }
//! async fn on_event<A: Adapter>(socket: SocketRef<A>, Data(data): Data<String>) {}
//!
//! // single node cluster
//! let client = redis::cluster::ClusterClient::new(["redis://127.0.0.1:6379?protocol=resp3"])?;
//! let adapter = RedisAdapterCtr::new_with_cluster(&client).await?;
//!
//! let (layer, io) = SocketIo::builder()
//!     .with_adapter::<ClusterAdapter<_>>(adapter)
//!     .build_layer();
//! Ok(())
//! # }
//! ```
//!
//! Check the [`chat example`](https://github.com/Totodore/socketioxide/tree/main/examples/chat)
//! for more complete examples.
//!
//! ## How does it work?
//!
//! An adapter is created for each created namespace and it takes a corresponding [`CoreLocalAdapter`].
//! The [`CoreLocalAdapter`] allows to manage the local rooms and local sockets. The default `LocalAdapter`
//! is simply a wrapper around this [`CoreLocalAdapter`].
//!
//! The adapter is then initialized with the [`RedisAdapter::init`] method.
//! This will subscribe to 3 channels:
//! * `"{prefix}-request#{namespace}#"`: A global channel to receive broadcasted requests.
//! * `"{prefix}-request#{namespace}#{uid}#"`: A specific channel to receive requests only for this server.
//! * `"{prefix}-response#{namespace}#{uid}#"`: A specific channel to receive responses only for this server.
//!   Messages sent to this channel will be always in the form `[req_id, data]`. This will allow the adapter to extract the request id
//!   and route the response to the appropriate stream before deserializing the data.
//!
//! All messages are encoded with msgpack.
//!
//! There are 7 types of requests:
//! * Broadcast a packet to all the matching sockets.
//! * Broadcast a packet to all the matching sockets and wait for a stream of acks.
//! * Disconnect matching sockets.
//! * Get all the rooms.
//! * Add matching sockets to rooms.
//! * Remove matching sockets to rooms.
//! * Fetch all the remote sockets matching the options.
//!
//! For ack streams, the adapter will first send a `BroadcastAckCount` response to the server that sent the request,
//! and then send the acks as they are received (more details in [`RedisAdapter::broadcast_with_ack`] fn).
//!
//! On the other side, each time an action has to be performed on the local server, the adapter will
//! first broadcast a request to all the servers and then perform the action locally.

use std::{
    borrow::Cow,
    collections::HashMap,
    fmt,
    future::{self, Future},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use drivers::{ChanItem, Driver, MessageStream};
use futures_core::Stream;
use futures_util::{StreamExt, future::Either};
use serde::{Serialize, de::DeserializeOwned};
use socketioxide_core::adapter::remote_packet::{
    RequestIn, RequestOut, RequestTypeIn, RequestTypeOut, Response, ResponseTypeId,
};
use socketioxide_core::adapter::request::RemoteRequestHandler;
use socketioxide_core::adapter::stream::{
    AckStream, DropStream, ResponseHandlers, insert_response_handler, wait_responses,
};
use socketioxide_core::{
    Sid, Uid,
    adapter::errors::{AdapterError, BroadcastError},
    adapter::{
        BroadcastOptions, CoreAdapter, CoreLocalAdapter, DefinedAdapter, RemoteSocketData, Room,
        RoomParam, SocketEmitter, Spawnable,
    },
    packet::Packet,
};
use tokio::sync::mpsc;

/// Drivers are an abstraction over the pub/sub backend used by the adapter.
/// You can use the provided implementation or implement your own.
pub mod drivers;

/// Sharded room channels: broadcasts to a room reach only the nodes with sockets in it.
pub mod rooms;
pub use rooms::{RoomChannels, RoomShard};
pub mod servers;
pub use servers::{RoomServers, ServersFuture};

/// Represent any error that might happen when using this adapter.
#[derive(thiserror::Error)]
pub enum Error<R: Driver> {
    /// Redis driver error
    #[error("driver error: {0}")]
    Driver(R::Error),
    /// Packet encoding error
    #[error("packet encoding error: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    /// Packet decoding error
    #[error("packet decoding error: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

impl<R: Driver> Error<R> {
    fn from_driver(err: R::Error) -> Self {
        Self::Driver(err)
    }
}
impl<R: Driver> fmt::Debug for Error<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Driver(err) => write!(f, "Driver error: {err:?}"),
            Self::Decode(err) => write!(f, "Decode error: {err:?}"),
            Self::Encode(err) => write!(f, "Encode error: {err:?}"),
        }
    }
}

impl<R: Driver> From<Error<R>> for AdapterError {
    fn from(err: Error<R>) -> Self {
        AdapterError::from(Box::new(err) as Box<dyn std::error::Error + Send>)
    }
}

/// The configuration of the [`RedisAdapter`].
#[derive(Debug, Clone)]
pub struct RedisAdapterConfig {
    /// The request timeout. It is mainly used when expecting response such as when using
    /// `broadcast_with_ack` or `rooms`. Default is 5 seconds.
    pub request_timeout: Duration,

    /// The prefix used for the channels. Default is "socket.io".
    pub prefix: Cow<'static, str>,

    /// The channel size used to receive ack responses. Default is 255.
    ///
    /// If you have a lot of servers/sockets and that you may miss acknowledgement because they arrive faster
    /// than you poll them with the returned stream, you might want to increase this value.
    pub ack_response_buffer: usize,

    /// The channel size used to receive messages. Default is 1024.
    ///
    /// If your server is under heavy load, you might want to increase this value.
    pub stream_buffer: usize,

    /// Which rooms get a sharded channel of their own, and its hash tag. Default: none,
    /// every broadcast goes through the namespace's request channel. See [`rooms`].
    pub room_shard: Option<RoomShard>,

    /// How long a room's channel stays subscribed after its last local socket left.
    /// Default is 5 seconds.
    pub room_release_after: Duration,

    /// Called with every broadcast received from another server, before it is handed to
    /// the local sockets. Default: none. See [`RedisAdapterConfig::with_remote_broadcast_observer`].
    pub remote_broadcast_observer: Option<RemoteBroadcastObserver>,

    /// The servers of the rooms the application tracks. Default: none. See
    /// [`RedisAdapterConfig::with_room_servers`].
    pub room_servers: Option<RoomServers>,
}

/// Where a broadcast to one room is published (see [`CustomRedisAdapter::route`]).
enum Route {
    /// The room's own sharded channel.
    Room(String),
    /// The request channels of these servers.
    Servers(Vec<Uid>),
    /// The namespace's request channel, which every server receives.
    Requests,
}

/// A callback given every broadcast this server receives from another one.
#[derive(Clone)]
pub struct RemoteBroadcastObserver(Arc<dyn Fn(&Packet) + Send + Sync>);

impl RemoteBroadcastObserver {
    /// Wraps the callback.
    pub fn new(f: impl Fn(&Packet) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl fmt::Debug for RemoteBroadcastObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RemoteBroadcastObserver")
    }
}
impl RedisAdapterConfig {
    /// Create a new config.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set the request timeout. Default is 5 seconds.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Set the prefix used for the channels. Default is "socket.io".
    pub fn with_prefix(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Set the channel size used to send ack responses. Default is 255.
    ///
    /// If you have a lot of servers/sockets and that you may miss acknowledgement because they arrive faster
    /// than you poll them with the returned stream, you might want to increase this value.
    pub fn with_ack_response_buffer(mut self, buffer: usize) -> Self {
        assert!(buffer > 0, "buffer size must be greater than 0");
        self.ack_response_buffer = buffer;
        self
    }

    /// Set the channel size used to receive messages. Default is 1024.
    ///
    /// If your server is under heavy load, you might want to increase this value.
    pub fn with_stream_buffer(mut self, buffer: usize) -> Self {
        assert!(buffer > 0, "buffer size must be greater than 0");
        self.stream_buffer = buffer;
        self
    }

    /// Publish a broadcast to exactly one room on that room's own sharded channel, when
    /// `shard` gives the room one; a node then subscribes to the channels of the rooms its
    /// sockets are in. The application must call [`RoomChannels::ready`] (from
    /// [`RedisAdapterCtr::room_channels`]) before a socket joins a room locally.
    pub fn with_sharded_rooms(mut self, shard: RoomShard) -> Self {
        self.room_shard = Some(shard);
        self
    }

    /// Set how long a room's channel stays subscribed after its last local socket left.
    /// Default is 5 seconds.
    pub fn with_room_release_after(mut self, after: Duration) -> Self {
        self.room_release_after = after;
        self
    }

    /// Call `observer` with every broadcast received from another server, once per
    /// broadcast and before the local sockets get it (whether or not any socket here
    /// matches). An application that replays what its sockets missed while this server was
    /// not subscribed (after a Redis reconnect) can tell from it what did arrive.
    pub fn with_remote_broadcast_observer(mut self, observer: RemoteBroadcastObserver) -> Self {
        self.remote_broadcast_observer = Some(observer);
        self
    }

    /// Send a broadcast (or a disconnect) to exactly one room that `servers` tracks to the
    /// servers it names, each on its own request channel, instead of to every server. A
    /// room it tracks should have no room channel ([`Self::with_sharded_rooms`]): that
    /// channel would take precedence. See [`servers`].
    pub fn with_room_servers(mut self, servers: RoomServers) -> Self {
        self.room_servers = Some(servers);
        self
    }
}

impl Default for RedisAdapterConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(5),
            prefix: Cow::Borrowed("socket.io"),
            ack_response_buffer: 255,
            stream_buffer: 1024,
            room_shard: None,
            room_release_after: Duration::from_secs(5),
            remote_broadcast_observer: None,
            room_servers: None,
        }
    }
}

/// The adapter constructor. For each namespace you define, a new adapter instance is created
/// from this constructor.
#[derive(Debug)]
pub struct RedisAdapterCtr<R> {
    driver: R,
    config: RedisAdapterConfig,
    room_channels: RoomChannels<R>,
}

#[cfg(feature = "redis")]
impl RedisAdapterCtr<drivers::redis::RedisDriver> {
    /// Create a new adapter constructor with the [`redis`] driver and a default config.
    pub async fn new_with_redis(client: &redis::Client) -> redis::RedisResult<Self> {
        Self::new_with_redis_config(client, RedisAdapterConfig::default()).await
    }
    /// Create a new adapter constructor with the [`redis`] driver and a custom config.
    pub async fn new_with_redis_config(
        client: &redis::Client,
        config: RedisAdapterConfig,
    ) -> redis::RedisResult<Self> {
        let driver = drivers::redis::RedisDriver::new(client).await?;
        Ok(Self::new_with_driver(driver, config))
    }
}
#[cfg(feature = "redis-cluster")]
impl RedisAdapterCtr<drivers::redis::ClusterDriver> {
    /// Create a new adapter constructor with the [`redis`] driver and a default config.
    pub async fn new_with_cluster(
        client: &redis::cluster::ClusterClient,
    ) -> redis::RedisResult<Self> {
        Self::new_with_cluster_config(client, RedisAdapterConfig::default()).await
    }

    /// Create a new adapter constructor with the [`redis`] driver and a default config.
    pub async fn new_with_cluster_config(
        client: &redis::cluster::ClusterClient,
        config: RedisAdapterConfig,
    ) -> redis::RedisResult<Self> {
        let driver = drivers::redis::ClusterDriver::new(client).await?;
        Ok(Self::new_with_driver(driver, config))
    }
}
#[cfg(feature = "fred")]
impl RedisAdapterCtr<drivers::fred::FredDriver> {
    /// Create a new adapter constructor with the default [`fred`] driver and a default config.
    pub async fn new_with_fred(
        client: fred::clients::SubscriberClient,
    ) -> fred::prelude::FredResult<Self> {
        Self::new_with_fred_config(client, RedisAdapterConfig::default()).await
    }
    /// Create a new adapter constructor with the default [`fred`] driver and a custom config.
    pub async fn new_with_fred_config(
        client: fred::clients::SubscriberClient,
        config: RedisAdapterConfig,
    ) -> fred::prelude::FredResult<Self> {
        let driver = drivers::fred::FredDriver::new(client).await?;
        Ok(Self::new_with_driver(driver, config))
    }
}
impl<R: Driver> RedisAdapterCtr<R> {
    /// Create a new adapter constructor with a custom redis/valkey driver and a config.
    ///
    /// You can implement your own driver by implementing the [`Driver`] trait with any redis/valkey client.
    /// Check the [`drivers`] module for more information.
    pub fn new_with_driver(driver: R, config: RedisAdapterConfig) -> RedisAdapterCtr<R> {
        let room_channels = RoomChannels::new(
            driver.clone(),
            &config.prefix,
            config.stream_buffer,
            config.room_shard,
            config.room_release_after,
        );
        RedisAdapterCtr {
            driver,
            config,
            room_channels,
        }
    }

    /// The room channels of every namespace, to make them ready before a local join.
    pub fn room_channels(&self) -> RoomChannels<R> {
        self.room_channels.clone()
    }
}

/// The redis adapter with the fred driver.
#[cfg(feature = "fred")]
pub type FredAdapter<E> = CustomRedisAdapter<E, drivers::fred::FredDriver>;

/// The redis adapter with the redis driver.
#[cfg(feature = "redis")]
pub type RedisAdapter<E> = CustomRedisAdapter<E, drivers::redis::RedisDriver>;

/// The redis adapter with the redis cluster driver.
#[cfg(feature = "redis-cluster")]
pub type ClusterAdapter<E> = CustomRedisAdapter<E, drivers::redis::ClusterDriver>;

/// The redis adapter implementation.
/// It is generic over the [`Driver`] used to communicate with the redis server.
/// And over the [`SocketEmitter`] used to communicate with the local server. This allows to
/// avoid cyclic dependencies between the adapter, `socketioxide-core` and `socketioxide` crates.
pub struct CustomRedisAdapter<E, R> {
    /// The driver used by the adapter. This is used to communicate with the redis server.
    /// All the redis adapter instances share the same driver.
    driver: R,
    /// The configuration of the adapter.
    config: RedisAdapterConfig,
    /// A unique identifier for the adapter to identify itself in the redis server.
    uid: Uid,
    /// The local adapter, used to manage local rooms and socket stores.
    local: CoreLocalAdapter<E>,
    /// The request channel used to broadcast requests to all the servers.
    /// format: `{prefix}-request#{path}#`.
    req_chan: String,
    /// A map of response handlers used to await for responses from the remote servers.
    responses: Arc<Mutex<ResponseHandlers<Vec<u8>>>>,
    /// The sharded room channels, shared by every namespace.
    room_channels: RoomChannels<R>,
}

impl<E, R> DefinedAdapter for CustomRedisAdapter<E, R> {}
impl<E: SocketEmitter, R: Driver> CoreAdapter<E> for CustomRedisAdapter<E, R> {
    type Error = Error<R>;
    type State = RedisAdapterCtr<R>;
    type AckStream =
        Either<E::AckStream, AckStream<E, DropStream<MessageStream<Vec<u8>>, Vec<u8>>, Vec<u8>>>;
    type InitRes = InitRes<R>;

    fn new(state: &Self::State, local: CoreLocalAdapter<E>) -> Self {
        let req_chan = format!("{}-request#{}#", state.config.prefix, local.path());
        let uid = local.server_id();
        Self {
            local,
            req_chan,
            uid,
            driver: state.driver.clone(),
            config: state.config.clone(),
            responses: Arc::new(Mutex::new(HashMap::new())),
            room_channels: state.room_channels.clone(),
        }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Self::InitRes {
        let fut = async move {
            check_ns(self.local.path())?;
            let global_stream = self.subscribe(self.req_chan.clone()).await?;
            let specific_stream = self.subscribe(self.get_req_chan(Some(self.uid))).await?;
            let response_chan = format!(
                "{}-response#{}#{}#",
                self.config.prefix,
                self.local.path(),
                self.uid
            );

            let response_stream = self.subscribe(response_chan.clone()).await?;
            let sink: std::sync::Weak<Self> = Arc::downgrade(&self);
            self.room_channels.register(self.local.path(), sink);
            let stream = futures_util::stream::select(global_stream, specific_stream);
            let stream = futures_util::stream::select(stream, response_stream);
            tokio::spawn(self.pipe_stream(stream, response_chan));
            on_success();
            Ok(())
        };
        InitRes(Box::pin(fut))
    }

    async fn close(&self) -> Result<(), Self::Error> {
        let response_chan = format!(
            "{}-response#{}#{}#",
            self.config.prefix,
            self.local.path(),
            self.uid
        );
        tokio::try_join!(
            self.driver.unsubscribe(self.req_chan.clone()),
            self.driver.unsubscribe(self.get_req_chan(Some(self.uid))),
            self.driver.unsubscribe(response_chan),
            self.room_channels.close(self.local.path()),
        )
        .map_err(Error::from_driver)?;

        Ok(())
    }

    /// Get the number of servers by getting the number of subscribers to the request channel.
    async fn server_count(&self) -> Result<u16, Self::Error> {
        let count = self
            .driver
            .num_serv(&self.req_chan)
            .await
            .map_err(Error::from_driver)?;

        Ok(count)
    }

    /// Broadcast a packet to all the servers to send them through their sockets.
    async fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> Result<(), BroadcastError> {
        if !opts.is_local(self.uid) {
            let req = RequestOut::new(self.uid, RequestTypeOut::Broadcast(&packet), &opts);
            self.send_routed(req, &opts)
                .await
                .map_err(AdapterError::from)?;
        }

        self.local.broadcast(packet, opts)?;
        Ok(())
    }

    /// Broadcast a packet to all the servers to send them through their sockets.
    ///
    /// Returns a Stream that is a combination of the local ack stream and a remote [`MessageStream`].
    /// Here is a specific protocol in order to know how many message the server expect to close
    /// the stream at the right time:
    /// * Get the number `n` of remote servers.
    /// * Send the broadcast request.
    /// * Expect `n` `BroadcastAckCount` response in the stream to know the number `m` of expected ack responses.
    /// * Expect `sum(m)` broadcast counts sent by the servers.
    ///
    /// Example with 3 remote servers (n = 3):
    /// ```text
    /// +---+                   +---+                   +---+
    /// | A |                   | B |                   | C |
    /// +---+                   +---+                   +---+
    ///   |                       |                       |
    ///   |---BroadcastWithAck--->|                       |
    ///   |---BroadcastWithAck--------------------------->|
    ///   |                       |                       |
    ///   |<-BroadcastAckCount(2)-|     (n = 2; m = 2)    |
    ///   |<-BroadcastAckCount(2)-------(n = 2; m = 4)----|
    ///   |                       |                       |
    ///   |<----------------Ack---------------------------|
    ///   |<----------------Ack---|                       |
    ///   |                       |                       |
    ///   |<----------------Ack---------------------------|
    ///   |<----------------Ack---|                       |
    async fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Option<Duration>,
    ) -> Result<Self::AckStream, Self::Error> {
        if opts.is_local(self.uid) {
            tracing::debug!(?opts, "broadcast with ack is local");
            let (local, _) = self.local.broadcast_with_ack(packet, opts, timeout);
            let stream = Either::Left(local);
            return Ok(stream);
        }
        let req = RequestOut::new(self.uid, RequestTypeOut::BroadcastWithAck(&packet), &opts)
            .with_ack_timeout(timeout);
        let req_id = req.id;

        // When the request targets a specific server, only this server will answer,
        // otherwise all the other servers will.
        let remote_serv_cnt = if opts.server_id.is_none() {
            self.server_count().await?.saturating_sub(1)
        } else {
            1
        };

        let (tx, rx) = mpsc::channel(self.config.ack_response_buffer + remote_serv_cnt as usize);
        self.responses.lock().unwrap().insert(req_id, tx);
        // Built before sending the request, to remove the handler if the send fails or is cancelled.
        let remote = DropStream::new(MessageStream::new(rx), self.responses.clone(), req_id);

        self.send_req(req, opts.server_id).await?;
        let (local, _) = self.local.broadcast_with_ack(packet, opts, timeout);

        // we wait for the configured ack timeout + the adapter request timeout
        let timeout = self
            .config
            .request_timeout
            .saturating_add(timeout.unwrap_or(self.local.ack_timeout()));

        Ok(Either::Right(AckStream::new(
            local,
            remote,
            decode_redis_ack,
            timeout,
            remote_serv_cnt,
            req_id,
            self.responses.clone(),
        )))
    }

    async fn disconnect_socket(&self, opts: BroadcastOptions) -> Result<(), BroadcastError> {
        if !opts.is_local(self.uid) {
            // On the room's channel when a broadcast to that room would be: an emit
            // followed by a disconnect then reaches each node in that order.
            let req = RequestOut::new(self.uid, RequestTypeOut::DisconnectSockets, &opts);
            self.send_routed(req, &opts)
                .await
                .map_err(AdapterError::from)?;
        }
        self.local
            .disconnect_socket(opts)
            .map_err(BroadcastError::Socket)?;

        Ok(())
    }

    async fn rooms(&self, opts: BroadcastOptions) -> Result<Vec<Room>, Self::Error> {
        if opts.is_local(self.uid) {
            return Ok(self.local.rooms(opts).into_iter().collect());
        }
        let req = RequestOut::new(self.uid, RequestTypeOut::AllRooms, &opts);
        let req_id = req.id;

        // First get the remote stream because redis might send
        // the responses before subscription is done.
        let stream = self
            .get_res::<()>(req_id, ResponseTypeId::AllRooms, opts.server_id)
            .await?;
        self.send_req(req, opts.server_id).await?;
        let local = self.local.rooms(opts);
        let rooms = stream
            .filter_map(|item| future::ready(item.into_rooms()))
            .fold(local, async |mut acc, item| {
                acc.extend(item);
                acc
            })
            .await;
        Ok(Vec::from_iter(rooms))
    }

    async fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), Self::Error> {
        let rooms: Vec<Room> = rooms.into_room_iter().collect();
        let sharded = rooms
            .iter()
            .any(|r| self.room_channels.channel(self.local.path(), r).is_some());
        if !opts.is_local(self.uid) {
            let req = RequestOut::new(self.uid, RequestTypeOut::AddSockets(&rooms), &opts);
            self.send_req(req, opts.server_id).await?;
            if sharded {
                // Every node handles requests in order and makes the rooms' channels ready
                // before it adds its sockets (`pipe_stream`), so once each has answered
                // this request, the join is done everywhere.
                let barrier = RequestOut::new(self.uid, RequestTypeOut::AllRooms, &opts);
                let answers = self
                    .get_res::<()>(barrier.id, ResponseTypeId::AllRooms, opts.server_id)
                    .await?;
                self.send_req(barrier, opts.server_id).await?;
                answers.for_each(|_| future::ready(())).await;
            }
        }
        if sharded && !self.local.sockets(opts.clone()).is_empty() {
            self.room_channels
                .ready(self.local.path(), &rooms)
                .await
                .map_err(Error::from_driver)?;
        }
        self.local.add_sockets(opts, rooms);
        Ok(())
    }

    async fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), Self::Error> {
        let rooms: Vec<Room> = rooms.into_room_iter().collect();
        if !opts.is_local(self.uid) {
            let req = RequestOut::new(self.uid, RequestTypeOut::DelSockets(&rooms), &opts);
            self.send_req(req, opts.server_id).await?;
        }
        self.local.del_sockets(opts, rooms);
        Ok(())
    }

    async fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> Result<Vec<RemoteSocketData>, Self::Error> {
        if opts.is_local(self.uid) {
            return Ok(self.local.fetch_sockets(opts));
        }
        let req = RequestOut::new(self.uid, RequestTypeOut::FetchSockets, &opts);
        let req_id = req.id;
        // First get the remote stream because redis might send
        // the responses before subscription is done.
        let remote = self
            .get_res::<RemoteSocketData>(req_id, ResponseTypeId::FetchSockets, opts.server_id)
            .await?;

        self.send_req(req, opts.server_id).await?;
        let local = self.local.fetch_sockets(opts);
        let sockets = remote
            .filter_map(|item| future::ready(item.into_fetch_sockets()))
            .fold(local, async |mut acc, item| {
                acc.extend(item);
                acc
            })
            .await;
        Ok(sockets)
    }

    fn get_local(&self) -> &CoreLocalAdapter<E> {
        &self.local
    }
}

/// Error that can happen when initializing the adapter.
#[derive(thiserror::Error)]
pub enum InitError<D: Driver> {
    /// Driver error.
    #[error("driver error: {0}")]
    Driver(D::Error),
    /// Malformed namespace path.
    #[error("malformed namespace path, it must not contain '#'")]
    MalformedNamespace,
}
impl<D: Driver> fmt::Debug for InitError<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Driver(err) => fmt::Debug::fmt(err, f),
            Self::MalformedNamespace => write!(f, "Malformed namespace path"),
        }
    }
}
/// The result of the init future.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct InitRes<D: Driver>(futures_core::future::BoxFuture<'static, Result<(), InitError<D>>>);

impl<D: Driver> Future for InitRes<D> {
    type Output = Result<(), InitError<D>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}
impl<D: Driver> Spawnable for InitRes<D> {
    fn spawn(self) {
        tokio::spawn(async move {
            if let Err(e) = self.0.await {
                tracing::error!("error initializing adapter: {e}");
            }
        });
    }
}

impl<E: SocketEmitter, R: Driver> CustomRedisAdapter<E, R> {
    /// Build a response channel for a request.
    ///
    /// The uid is used to identify the server that sent the request.
    /// The req_id is used to identify the request.
    fn get_res_chan(&self, uid: Uid) -> String {
        let path = self.local.path();
        let prefix = &self.config.prefix;
        format!("{prefix}-response#{path}#{uid}#")
    }
    /// Build a request channel for a request.
    ///
    /// If we know the target server id, we can build a channel specific to this server.
    /// Otherwise, we use the default request channel that will broadcast the request to all the servers.
    fn get_req_chan(&self, node_id: Option<Uid>) -> String {
        match node_id {
            Some(uid) => format!("{}{}#", self.req_chan, uid),
            None => self.req_chan.clone(),
        }
    }

    async fn pipe_stream(
        self: Arc<Self>,
        mut stream: impl Stream<Item = ChanItem> + Unpin,
        response_chan: String,
    ) {
        while let Some((chan, item)) = stream.next().await {
            if chan.starts_with(&self.req_chan) {
                if let Err(e) = self.recv_request(item).await {
                    let ns = self.local.path();
                    let uid = self.uid;
                    tracing::warn!(?uid, ?ns, "request handler error: {e}");
                }
            } else if chan == response_chan {
                let req_id = read_req_id(&item);
                tracing::trace!(?req_id, ?chan, ?response_chan, "extracted sid");
                let handlers = self.responses.lock().unwrap();
                if let Some(tx) = req_id.and_then(|id| handlers.get(&id)) {
                    if let Err(e) = tx.try_send(item) {
                        tracing::warn!("error sending response to handler: {e}");
                    }
                } else {
                    tracing::warn!(?req_id, "could not find req handler");
                }
            } else {
                tracing::warn!("unexpected message/channel: {chan}");
            }
        }
    }

    /// Decode a request received from the request channel and handle it.
    fn recv_item(self: &Arc<Self>, item: Vec<u8>) -> Result<(), Error<R>> {
        let req: RequestIn = rmp_serde::from_slice(&item)?;
        <Self as RemoteRequestHandler<E>>::recv_req(self, req);
        Ok(())
    }

    /// [`Self::recv_item`] for the request channels, where a remote join first makes its
    /// rooms' channels ready when local sockets are about to join them. The requests that
    /// follow wait: the node that asked for the join learns it is done from the answer to
    /// its next request.
    async fn recv_request(self: &Arc<Self>, item: Vec<u8>) -> Result<(), Error<R>> {
        let req: RequestIn = rmp_serde::from_slice(&item)?;
        if let (RequestTypeIn::AddSockets(rooms), Some(opts)) = (&req.r#type, &req.opts)
            && req.node_id != self.uid
            && self.room_channels.enabled()
            && !self.local.sockets(opts.clone()).is_empty()
            && let Err(e) = self.room_channels.ready(self.local.path(), rooms).await
        {
            // Joined all the same, as without room channels; a later join subscribes again.
            tracing::warn!(uid = ?self.uid, "room channels not subscribed for a remote join: {e}");
        }
        <Self as RemoteRequestHandler<E>>::recv_req(self, req);
        Ok(())
    }

    /// Where a broadcast goes: to exactly one room that has a channel of its own, on that
    /// channel; to exactly one room whose servers are tracked, to those servers; otherwise
    /// on the request channel. A broadcast to several rooms stays on the request channel
    /// (as in Node's sharded adapter), so that a socket in two of them gets it once.
    async fn route(&self, opts: &BroadcastOptions) -> Route {
        let (None, [room]) = (opts.server_id, opts.rooms.as_slice()) else {
            return Route::Requests;
        };
        if let Some(chan) = self.room_channels.channel(self.local.path(), room) {
            return Route::Room(chan);
        }
        match &self.config.room_servers {
            Some(servers) => servers.of(room).await.map_or(Route::Requests, Route::Servers),
            None => Route::Requests,
        }
    }

    /// Sends a broadcast or a disconnect where [`Self::route`] says. Every request about a
    /// room takes the same way, so an emit followed by a disconnect reaches each server in
    /// that order.
    async fn send_routed(
        &self,
        req: RequestOut<'_>,
        opts: &BroadcastOptions,
    ) -> Result<(), Error<R>> {
        match self.route(opts).await {
            Route::Room(chan) => self.publish(chan, req).await,
            Route::Requests => self.send_req(req, opts.server_id).await,
            Route::Servers(named) => {
                let mut uids: Vec<Uid> = Vec::with_capacity(named.len());
                for uid in named {
                    if uid != self.uid && !uids.contains(&uid) {
                        uids.push(uid);
                    }
                }
                if uids.is_empty() {
                    return Ok(());
                }
                let req = rmp_serde::to_vec(&req)?;
                let sends = uids
                    .into_iter()
                    .map(|uid| self.driver.publish(self.get_req_chan(Some(uid)), req.clone()));
                for res in futures_util::future::join_all(sends).await {
                    res.map_err(Error::from_driver)?;
                }
                Ok(())
            }
        }
    }

    async fn publish(&self, chan: String, req: RequestOut<'_>) -> Result<(), Error<R>> {
        let req = rmp_serde::to_vec(&req)?;
        self.driver
            .publish(chan, req)
            .await
            .map_err(Error::from_driver)
    }

    async fn send_req(&self, req: RequestOut<'_>, target_uid: Option<Uid>) -> Result<(), Error<R>> {
        tracing::trace!(?req, "sending request");
        let req = rmp_serde::to_vec(&req)?;
        let chan = self.get_req_chan(target_uid);
        self.driver
            .publish(chan, req)
            .await
            .map_err(Error::from_driver)?;

        Ok(())
    }

    /// Await for all the responses from the remote servers.
    async fn get_res<D: DeserializeOwned + fmt::Debug>(
        &self,
        req_id: Sid,
        response_type: ResponseTypeId,
        target_uid: Option<Uid>,
    ) -> Result<impl Stream<Item = Response<D>>, Error<R>> {
        // Check for specific target node
        let remote_serv_cnt = if target_uid.is_none() {
            self.server_count().await?.saturating_sub(1) as usize
        } else {
            1
        };
        let rx = insert_response_handler(&self.responses, req_id, remote_serv_cnt);
        let stream = MessageStream::new(rx).filter_map(|item| {
            let data = match rmp_serde::from_slice::<(Sid, Response<D>)>(&item) {
                Ok((_, data)) => Some(data),
                Err(e) => {
                    tracing::warn!("error decoding response: {e}");
                    None
                }
            };
            future::ready(data)
        });
        Ok(wait_responses(
            stream,
            self.responses.clone(),
            req_id,
            response_type,
            remote_serv_cnt,
            self.config.request_timeout,
        ))
    }

    /// Little wrapper to map the error type.
    #[inline]
    async fn subscribe(&self, pat: String) -> Result<MessageStream<ChanItem>, InitError<R>> {
        tracing::trace!(?pat, "subscribing to");
        self.driver
            .subscribe(pat, self.config.stream_buffer)
            .await
            .map_err(InitError::Driver)
    }
}

impl<E: SocketEmitter, R: Driver> rooms::RoomSink for CustomRedisAdapter<E, R> {
    fn has_room(&self, room: &str) -> bool {
        self.local.has_room(room)
    }

    fn recv(self: Arc<Self>, item: Vec<u8>) {
        if let Err(e) = self.recv_item(item) {
            let ns = self.local.path();
            tracing::warn!(?ns, "room channel request error: {e}");
        }
    }
}

impl<E: SocketEmitter, R: Driver> RemoteRequestHandler<E> for CustomRedisAdapter<E, R> {
    type Error = Error<R>;

    fn local(&self) -> &CoreLocalAdapter<E> {
        &self.local
    }

    fn recv_broadcast(&self, opts: BroadcastOptions, packet: Packet) {
        if let Some(observer) = &self.config.remote_broadcast_observer {
            (observer.0)(&packet);
        }
        if let Err(e) = self.local.broadcast(packet, opts) {
            tracing::warn!(uid = ?self.uid, ns = ?self.local.path(), "remote request broadcast handler: {e:?}");
        }
    }

    fn send_res<D: Serialize + fmt::Debug + Send + 'static>(
        &self,
        req_id: Sid,
        req_origin: Uid,
        res: Response<D>,
    ) -> impl Future<Output = Result<(), Error<R>>> + Send + 'static {
        let chan = self.get_res_chan(req_origin);
        tracing::trace!(?res, "sending response to {}", &chan);
        // We send the req_id separated from the response object.
        // This allows to partially decode the response and route by the req_id
        // before fully deserializing it.
        let res = rmp_serde::to_vec(&(req_id, res));
        let driver = self.driver.clone();
        async move {
            driver
                .publish(chan, res?)
                .await
                .map_err(Error::from_driver)?;
            Ok(())
        }
    }
}

/// Checks if the namespace path is valid
/// Panics if the path is empty or contains a `#`
fn check_ns<D: Driver>(path: &str) -> Result<(), InitError<D>> {
    if path.is_empty() || path.contains('#') {
        Err(InitError::MalformedNamespace)
    } else {
        Ok(())
    }
}

/// Extract the request id from a data encoded as `[Sid, ...]`
pub fn read_req_id(data: &[u8]) -> Option<Sid> {
    use std::str::FromStr;
    let mut rd = data;
    let len = rmp::decode::read_array_len(&mut rd).ok()?;
    if len < 1 {
        return None;
    }

    let mut buff = [0u8; Sid::ZERO.as_str().len()];
    let str = rmp::decode::read_str(&mut rd, &mut buff).ok()?;
    Sid::from_str(str).ok()
}

/// Decode a msgpack-encoded `(Sid, Response<E>)` tuple from raw bytes.
fn decode_redis_ack<E: DeserializeOwned + fmt::Debug>(
    item: Vec<u8>,
) -> Result<Response<E>, Box<dyn std::error::Error + Send>> {
    rmp_serde::from_slice::<(Sid, Response<E>)>(&item)
        .map(|(_, response)| response)
        .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send>)
}

#[cfg(test)]
mod tests {
    use std::{
        pin::Pin,
        task::{Context, Poll},
        time::Duration,
    };

    use futures_core::{FusedStream, Stream};
    use serde::{Deserialize, Serialize};
    use socketioxide_core::{
        Sid, Str, Uid, Value,
        adapter::errors::SocketError,
        adapter::{
            BroadcastFlags, BroadcastIter, BroadcastOptions, CoreAdapter, CoreLocalAdapter,
            RemoteSocketData, SocketEmitter,
        },
        packet::Packet,
        parser::Parse,
    };
    use socketioxide_parser_common::CommonParser;

    use super::*;

    struct StubEmitter(Str);
    struct StubAckStream;
    impl Stream for StubAckStream {
        type Item = (Sid, Result<Value, StubAckError>);
        fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Ready(None)
        }
    }
    impl FusedStream for StubAckStream {
        fn is_terminated(&self) -> bool {
            true
        }
    }
    #[derive(Debug, Serialize, Deserialize)]
    struct StubAckError;
    impl fmt::Display for StubAckError {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            Ok(())
        }
    }
    impl std::error::Error for StubAckError {}

    impl SocketEmitter for StubEmitter {
        type AckError = StubAckError;
        type AckStream = StubAckStream;
        fn get_all_sids(&self, _: impl Fn(&Sid) -> bool) -> Vec<Sid> {
            vec![]
        }
        fn get_remote_sockets(&self, _: BroadcastIter<'_>) -> Vec<RemoteSocketData> {
            vec![]
        }
        fn send_many(&self, _: BroadcastIter<'_>, _: Value) -> Result<(), Vec<SocketError>> {
            Ok(())
        }
        fn send_many_volatile(&self, _: BroadcastIter<'_>, _: Value) {}
        fn send_many_with_ack(
            &self,
            _: BroadcastIter<'_>,
            _: Packet,
            _: Option<Duration>,
        ) -> (Self::AckStream, u32) {
            (StubAckStream, 0)
        }
        fn disconnect_many(&self, _: Vec<Sid>) -> Result<(), Vec<SocketError>> {
            Ok(())
        }
        fn path(&self) -> &Str {
            &self.0
        }
        fn parser(&self) -> impl Parse {
            CommonParser
        }
        fn server_id(&self) -> Uid {
            Uid::ZERO
        }
        fn ack_timeout(&self) -> Duration {
            Duration::from_secs(5)
        }
    }

    /// What the driver does when the adapter sends a request.
    #[derive(Debug, Clone, Copy)]
    enum Mode {
        Success,
        Fail,
        Hang,
    }

    impl Mode {
        async fn run(self) -> Result<(), std::io::Error> {
            match self {
                Mode::Success => Ok(()),
                Mode::Fail => Err(std::io::Error::other("backend is down")),
                Mode::Hang => std::future::pending().await,
            }
        }
    }

    #[derive(Clone)]
    struct StubDriver(Mode);
    impl Driver for StubDriver {
        type Error = std::io::Error;

        async fn publish(&self, _: String, _: Vec<u8>) -> Result<(), Self::Error> {
            self.0.run().await
        }
        async fn subscribe(
            &self,
            _: String,
            _: usize,
        ) -> Result<MessageStream<ChanItem>, Self::Error> {
            Ok(MessageStream::new_empty())
        }
        async fn unsubscribe(&self, _: String) -> Result<(), Self::Error> {
            Ok(())
        }
        async fn num_serv(&self, _: &str) -> Result<u16, Self::Error> {
            Ok(2)
        }
    }

    fn adapter(mode: Mode) -> CustomRedisAdapter<StubEmitter, StubDriver> {
        let state =
            RedisAdapterCtr::new_with_driver(StubDriver(mode), RedisAdapterConfig::default());
        CoreAdapter::new(&state, CoreLocalAdapter::new(StubEmitter(Str::from("/"))))
    }

    // `broadcast_with_ack` registers a response handler before publishing its request.
    // The handler must be removed when the request can't be sent, otherwise each failed
    // publish (e.g. during a backend outage) leaks one entry for the lifetime of the namespace.
    fn packet() -> Packet {
        Packet::event(Str::from("/"), Value::Str(Str::from("[\"event\"]"), None))
    }

    fn opts() -> BroadcastOptions {
        let mut opts = BroadcastOptions::default();
        opts.add_flag(BroadcastFlags::Broadcast);
        opts
    }

    #[tokio::test]
    async fn failed_request_removes_the_response_handler() {
        let adapter = adapter(Mode::Fail);
        let res = adapter.broadcast_with_ack(packet(), opts(), None).await;
        assert!(matches!(res, Err(Error::Driver(_))));
        assert!(adapter.responses.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn cancelled_request_removes_the_response_handler() {
        let adapter = adapter(Mode::Hang);
        let fut = adapter.broadcast_with_ack(packet(), opts(), None);
        let res = tokio::time::timeout(Duration::from_millis(10), fut).await;
        assert!(res.is_err());
        assert!(adapter.responses.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn response_handler_lives_as_long_as_the_stream() {
        let adapter = adapter(Mode::Success);
        let stream = adapter
            .broadcast_with_ack(packet(), opts(), None)
            .await
            .map_err(|_| "broadcast should succeed")
            .unwrap();
        assert_eq!(adapter.responses.lock().unwrap().len(), 1);
        drop(stream);
        assert!(adapter.responses.lock().unwrap().is_empty());
    }

    #[test]
    fn check_ns_error() {
        assert!(matches!(
            check_ns::<StubDriver>("#"),
            Err(InitError::MalformedNamespace)
        ));
        assert!(matches!(
            check_ns::<StubDriver>(""),
            Err(InitError::MalformedNamespace)
        ));
    }
}
