//! The socketioxide-redis driver over a fred `SubscriberClient`, with the two things the
//! stock `FredDriver` lacks: it re-subscribes after every reconnect, and it counts what it
//! sends, receives and drops.
//!
//! Why not the stock driver: after Redis restarts, fred reconnects but the new connection
//! has no subscriptions, and nothing restores them: every emit still returns `Ok` while no
//! node receives anything. And when a per-channel buffer is full the stock driver drops the
//! message with a log line only. This driver is the stock one (same channels, same sharded
//! pub/sub, same wire format; the adapter protocol is socketioxide-redis's, untouched) plus
//! a task on `reconnect_rx` that re-issues `SSUBSCRIBE` for every tracked shard channel,
//! grouped by hash slot so it also works on a Redis Cluster, and counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use fred::clients::SubscriberClient;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::prelude::FredResult;
use fred::types::Message;
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::{broadcast, mpsc};

use super::metrics;

/// Where received messages go: the stream of each channel subscribed with
/// [`Driver::subscribe`], and the one stream every room channel feeds
/// ([`Driver::subscribe_into`]: the first `tx` given; a channel given another `tx` gets an
/// entry of its own). An entry per room channel (a copy of its name and a map slot, ~160 B)
/// cost every socket of a node that much, for a sender they all shared.
#[derive(Default)]
struct Handlers {
    by_channel: HashMap<String, mpsc::Sender<ChanItem>>,
    shared: Option<mpsc::Sender<ChanItem>>,
}

impl Handlers {
    /// The sender for `chan`: its own, or else the shared one.
    fn get(&self, chan: &str) -> Option<&mpsc::Sender<ChanItem>> {
        self.by_channel.get(chan).or(self.shared.as_ref())
    }

    /// Registers `tx` for a room channel; `true` if it took an entry of its own.
    fn register_shared(&mut self, chan: &str, tx: mpsc::Sender<ChanItem>) -> bool {
        match &self.shared {
            None => self.shared = Some(tx),
            Some(shared) if shared.same_channel(&tx) => {}
            Some(_) => {
                self.by_channel.insert(chan.to_owned(), tx);
                return true;
            }
        }
        false
    }
}

/// A fred error, as the adapter reports driver errors.
#[derive(Debug)]
pub struct DriverError(fred::error::Error);

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DriverError {}

impl From<fred::error::Error> for DriverError {
    fn from(e: fred::error::Error) -> Self {
        Self(e)
    }
}

/// Shares its handlers and connection between clones, as the adapter requires.
#[derive(Clone)]
pub struct MeteredFredDriver {
    handlers: Arc<RwLock<Handlers>>,
    conn: SubscriberClient,
    /// After each successful re-subscription: when the subscription was lost and when it
    /// was back (ms since the epoch), so that the node can replay what its sockets missed.
    resubscribed: broadcast::Sender<(u64, u64)>,
}

impl MeteredFredDriver {
    /// Connects the subscriber and starts the dispatch and re-subscribe tasks.
    pub async fn new(client: SubscriberClient) -> FredResult<Self> {
        let handlers = Arc::new(RwLock::new(Handlers::default()));
        tokio::spawn(dispatch(client.message_rx(), handlers.clone()));
        client.init().await?;
        // Subscribed after the first connection, so only real reconnects are seen.
        let reconnects = client.reconnect_rx();
        let (resubscribed, _) = broadcast::channel(16);
        let lost_at = Arc::new(AtomicU64::new(0));
        tokio::spawn(note_losses(client.error_rx(), lost_at.clone()));
        tokio::spawn(resubscribe_on_reconnect(
            client.clone(),
            reconnects,
            lost_at,
            resubscribed.clone(),
        ));
        Ok(Self {
            handlers,
            conn: client,
            resubscribed,
        })
    }

    /// Each successful re-subscription after a reconnect: (lost, back), ms since the epoch.
    pub fn resubscribed(&self) -> broadcast::Receiver<(u64, u64)> {
        self.resubscribed.subscribe()
    }

    /// The subscriber connection (for shutdown and tests).
    pub fn client(&self) -> &SubscriberClient {
        &self.conn
    }

    fn handlers_mut(&self) -> std::sync::RwLockWriteGuard<'_, Handlers> {
        self.handlers.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes to `chan`, its handler already registered (a message that follows the
    /// confirmation finds it); on failure, removes the handler if it is the channel's own.
    async fn ssubscribe(&self, chan: String, own_handler: bool) -> Result<(), DriverError> {
        if let Err(e) = self.conn.ssubscribe(chan.as_str()).await {
            if own_handler {
                self.handlers_mut().by_channel.remove(&chan);
            }
            return Err(e.into());
        }
        Ok(())
    }
}

/// Routes every pub/sub message to the adapter stream of its channel; counts drops.
async fn dispatch(mut rx: broadcast::Receiver<Message>, handlers: Arc<RwLock<Handlers>>) {
    loop {
        match rx.recv().await {
            Ok(msg) => {
                let chan = msg.channel.to_string();
                let Some(data) = msg.value.into_owned_bytes() else {
                    continue;
                };
                metrics::adapter_message("in");
                let tx = handlers
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&chan)
                    .cloned();
                match tx {
                    Some(tx) => {
                        if let Err(e) = tx.try_send((chan, data)) {
                            metrics::adapter_dropped(1);
                            tracing::warn!(error = %e, "adapter message dropped: channel buffer full");
                        }
                    }
                    None => tracing::debug!(chan, "adapter message for a channel with no handler"),
                }
            }
            // fred keeps the sender alive across reconnects; closed means the client is gone.
            Err(broadcast::error::RecvError::Closed) => return,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                metrics::adapter_dropped(n);
                tracing::warn!(
                    dropped = n,
                    "adapter messages dropped: pub/sub receiver lagged"
                );
            }
        }
    }
}

/// When the subscriber connection failed first since the last re-subscription: the
/// earliest time events can have been missed.
async fn note_losses(
    mut errors: broadcast::Receiver<(fred::error::Error, Option<fred::types::config::Server>)>,
    lost_at: Arc<AtomicU64>,
) {
    loop {
        match errors.recv().await {
            Ok(_) => {
                let now = crate::recovery::offset::now_ms();
                let _ = lost_at.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// A reconnect whose loss was not seen as an error is assumed to have lost this much
/// (fred's reconnect delay is capped at 1 s; the rest is margin).
const UNSEEN_LOSS_MS: u64 = 3_000;

/// After every reconnect, subscribes again to every shard channel the adapter uses, then
/// tells the node since when it was deaf.
async fn resubscribe_on_reconnect(
    client: SubscriberClient,
    mut reconnects: broadcast::Receiver<fred::types::config::Server>,
    lost_at: Arc<AtomicU64>,
    resubscribed: broadcast::Sender<(u64, u64)>,
) {
    loop {
        match reconnects.recv().await {
            Ok(server) => {
                metrics::redis_reconnect("pubsub");
                match resubscribe(&client).await {
                    Ok(n) => {
                        let back = crate::recovery::offset::now_ms();
                        let lost = match lost_at.swap(0, Ordering::Relaxed) {
                            0 => back.saturating_sub(UNSEEN_LOSS_MS),
                            t => t,
                        };
                        let _ = resubscribed.send((lost, back));
                        metrics::resubscribed(true);
                        tracing::info!(%server, channels = n, "redis reconnected: adapter channels re-subscribed");
                    }
                    Err(e) => {
                        metrics::resubscribed(false);
                        tracing::error!(%server, error = %e, "redis reconnected but re-subscribing failed; cross-node delivery is down until the next reconnect");
                    }
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// `SSUBSCRIBE` again to the tracked shard channels, one call per hash slot (a sharded
/// subscribe may only name channels of one slot).
pub async fn resubscribe(client: &SubscriberClient) -> FredResult<usize> {
    let channels: Vec<String> = client
        .tracked_shard_channels()
        .into_iter()
        .map(|c| c.to_string())
        .collect();
    let count = channels.len();
    for (_, group) in fred::util::group_by_hash_slot(channels)? {
        let group: Vec<String> = group
            .into_iter()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect();
        client.ssubscribe(group).await?;
    }
    Ok(count)
}

impl Driver for MeteredFredDriver {
    type Error = DriverError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.conn.spublish::<u16, _, _>(chan, val).await?;
        metrics::adapter_message("out");
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size);
        self.handlers_mut().by_channel.insert(chan.clone(), tx);
        self.ssubscribe(chan, true).await?;
        Ok(MessageStream::new(rx))
    }

    /// The room channels' way in: many channels, one stream (vendor/socketioxide-redis §18).
    async fn subscribe_into(
        &self,
        chan: String,
        tx: mpsc::Sender<ChanItem>,
    ) -> Result<(), Self::Error> {
        let own = self.handlers_mut().register_shared(&chan, tx);
        self.ssubscribe(chan, own).await
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.handlers_mut().by_channel.remove(&chan);
        self.conn.sunsubscribe(chan).await?;
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let (_, num): (String, u16) = self.conn.pubsub_shardnumsub(chan).await?;
        Ok(num)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_channels_share_one_sender_without_an_entry_each() {
        let (rooms, mut rooms_rx) = mpsc::channel(8);
        let (requests, mut requests_rx) = mpsc::channel(8);
        let (other, _other_rx) = mpsc::channel(8);
        let mut handlers = Handlers::default();
        handlers.by_channel.insert("requests".into(), requests);
        assert!(!handlers.register_shared("room-a", rooms.clone()));
        assert!(!handlers.register_shared("room-b", rooms));
        assert!(handlers.register_shared("room-c", other));
        assert_eq!(handlers.by_channel.len(), 2, "requests and room-c only");

        handlers
            .get("room-b")
            .unwrap()
            .try_send(("room-b".into(), vec![1]))
            .unwrap();
        handlers
            .get("requests")
            .unwrap()
            .try_send(("requests".into(), vec![2]))
            .unwrap();
        assert_eq!(rooms_rx.try_recv().unwrap().0, "room-b");
        assert_eq!(requests_rx.try_recv().unwrap().0, "requests");
        assert!(
            handlers
                .get("room-c")
                .unwrap()
                .same_channel(&handlers.by_channel["room-c"])
        );
    }
}
