use std::{future::Future, pin::Pin, task};

use futures_core::Stream;
use pin_project_lite::pin_project;
use tokio::sync::mpsc;

/// A driver implementation for the [redis](docs.rs/redis) pub/sub backend.
#[cfg(feature = "redis")]
pub mod redis;

/// A driver implementation for the [fred](docs.rs/fred) pub/sub backend.
#[cfg(feature = "fred")]
pub mod fred;

pin_project! {
    /// A stream of raw messages received from a channel.
    /// Messages are encoded with msgpack.
    #[derive(Debug)]
    pub struct MessageStream<T> {
        #[pin]
        rx: mpsc::Receiver<T>,
    }
}

impl<T> MessageStream<T> {
    /// Create a new empty message stream.
    pub fn new_empty() -> Self {
        // mpsc bounded channel requires buffer > 0
        let (_, rx) = mpsc::channel(1);
        Self { rx }
    }
    /// Create a new message stream from a receiver.
    pub fn new(rx: mpsc::Receiver<T>) -> Self {
        Self { rx }
    }
}

impl<T> Stream for MessageStream<T> {
    type Item = T;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut task::Context<'_>,
    ) -> task::Poll<Option<Self::Item>> {
        self.project().rx.poll_recv(cx)
    }
}

/// A message item that can be returned from a channel.
pub type ChanItem = (String, Vec<u8>);

/// The driver trait can be used to support different pub/sub backends.
/// It must share handlers/connection between its clones.
pub trait Driver: Clone + Send + Sync + 'static {
    /// The error type for the driver.
    type Error: std::error::Error + Send + 'static;

    /// Publish a message to a channel.
    fn publish(
        &self,
        chan: String,
        val: Vec<u8>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Subscribe to a channel, it will return a stream of messages.
    /// The size parameter is the buffer size of the channel.
    fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> impl Future<Output = Result<MessageStream<ChanItem>, Self::Error>> + Send;

    /// Subscribe to a channel, its messages sent to `tx`, which several channels may share
    /// (each item carries its channel). The default subscribes a stream of its own and pipes
    /// it into `tx`, a task per channel; the stock drivers register `tx` itself, so that a
    /// channel costs an entry in their handler map, not a buffer and a task.
    fn subscribe_into(
        &self,
        chan: String,
        tx: mpsc::Sender<ChanItem>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async move {
            let mut stream = self.subscribe(chan, tx.max_capacity()).await?;
            tokio::spawn(async move {
                use futures_util::StreamExt;
                while let Some(item) = stream.next().await {
                    if tx.send(item).await.is_err() {
                        return;
                    }
                }
            });
            Ok(())
        }
    }

    /// Unsubscribe from a channel.
    fn unsubscribe(&self, pat: String) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Returns the number of socket.io servers.
    fn num_serv(&self, chan: &str) -> impl Future<Output = Result<u16, Self::Error>> + Send;
}
