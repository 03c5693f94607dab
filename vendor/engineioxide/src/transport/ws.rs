//! The ws transport module is responsible for handling websocket connections
//! The only public function is [`new_req`] which is used to upgrade a http request to a websocket connection
//!
//! Other functions are used internally to handle the websocket connection through tasks and channels
//! and to handle upgrade from polling to ws

use std::{future::Future, ops::ControlFlow, sync::Arc};

use futures_util::{
    Sink, SinkExt, StreamExt, TryStreamExt,
    stream::{SplitSink, SplitStream},
};
use http::{HeaderValue, Request, Response, StatusCode, request::Parts};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::error::TrySendError;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message, Utf8Bytes,
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};
use tokio_util::future::FutureExt as _;

use engineioxide_core::{Packet, PacketBuf, ProtocolVersion, Sid, Str, TransportType};

use crate::{
    DisconnectReason, Socket, body::ResponseBody, config::EngineIoConfig, engine::EngineIo,
    errors::Error, handler::EngineIoHandler, queued::Queued, socket::InternalRx,
    transport::make_open_packet,
};

/// Create a response for websocket upgrade
fn ws_response<B>(ws_key: &HeaderValue) -> Response<ResponseBody<B>> {
    let derived = derive_accept_key(ws_key.as_bytes());
    let sec = derived.parse::<HeaderValue>().unwrap();
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::UPGRADE, HeaderValue::from_static("websocket"))
        .header(
            http::header::CONNECTION,
            HeaderValue::from_static("Upgrade"),
        )
        .header(http::header::SEC_WEBSOCKET_ACCEPT, sec)
        .body(ResponseBody::empty_response())
        .unwrap() // we are only using constants
}

/// Upgrade a websocket request to create a websocket connection.
///
/// If a sid is provided in the query it means that is is upgraded from an existing HTTP polling request.
/// In this case the http polling request is closed and the SID is kept for the websocket
pub fn new_req<R: Send + 'static, B, H: EngineIoHandler>(
    engine: Arc<EngineIo<H>>,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req: Request<R>,
) -> Result<Response<ResponseBody<B>>, Error> {
    let ws_key = req
        .headers()
        .get("Sec-WebSocket-Key")
        .ok_or(Error::InvalidWebSocketKey)?
        .clone();
    // The pending upgrade is taken out of the request, so that the parts kept for the
    // socket's life (`req_parts`) do not hold it (nor a copy of the request's parts).
    let mut req = req;
    let upgrade = hyper::upgrade::on(&mut req);
    let (parts, _body) = req.into_parts();

    tokio::spawn(async move {
        let conn = upgrade.await.map(hyper_util::rt::TokioIo::new);

        let res = match conn {
            Ok(conn) => on_init(engine.clone(), conn, protocol, sid, parts).await,
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::debug!("ws upgrade error: {}", _e);
                return;
            }
        };

        match res {
            Ok(_) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(?sid, "ws closed")
            }
            Err(Error::MultipleWebsocketRequests) => {}
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(?sid, "ws closed with error: {_e}");
                if let Some(sid) = sid {
                    engine.close_session(sid, DisconnectReason::TransportError);
                }
            }
        }
    });

    Ok(ws_response(&ws_key))
}

/// Handle a websocket connection upgrade
///
/// Sends an open packet if it is not an upgrade from a polling request
///
/// A new session is handed to a task of its own once the open packet is sent. A session upgraded
/// from polling is read here: it will block until the connection is closed
#[cfg_attr(
    feature = "tracing",
    tracing::instrument(level = "trace", name = "init_websocket", skip(engine, conn, req_data))
)]
pub async fn on_init<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    conn: S,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req_data: Parts,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(engine.config.ws_read_buffer_size)
        .max_message_size(Some(engine.config.ws_max_message_size))
        .max_frame_size(Some(engine.config.ws_max_frame_size));

    let ws_init = move || WebSocketStream::from_raw_socket(conn, Role::Server, Some(ws_config));
    let (socket, ws) = if let Some(sid) = sid {
        match engine.get_socket(sid) {
            None => return Err(Error::UnknownSessionID(sid)),
            Some(socket) if socket.is_ws() => return Err(Error::MultipleWebsocketRequests),
            Some(socket) => {
                let mut ws = ws_init().await;

                let upgrade_fut = upgrade_handshake::<H, S>(&socket, &mut ws);
                match tokio::time::timeout(engine.config.upgrade_timeout, upgrade_fut)
                    .with_cancellation_token(socket.cancellation.token())
                    .await
                {
                    Some(Ok(res)) => res?,
                    Some(Err(_)) => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(?sid, "ws upgrade timed out, closing session");
                        engine.close_session(socket.id, DisconnectReason::TransportError);
                        return Err(Error::Upgrade);
                    }
                    None => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(?sid, "socket is being closed");
                        return Err(Error::Upgrade);
                    }
                }
                (socket, ws)
            }
        }
    } else {
        let socket = engine.create_session(protocol, TransportType::Websocket, req_data, false);

        #[cfg(feature = "tracing")]
        tracing::debug!("new websocket connection");

        let mut ws = ws_init().await;
        init_handshake(socket.id, &mut ws, &engine.config).await?;
        // A session opened over websocket: one task reads, writes and keeps the heartbeat.
        // A task of its own, so that it holds only what it needs: this one also holds the
        // upgrade's request and every state of the upgrade from polling.
        tokio::spawn(super::ws_session::run(engine, ws, socket));
        return Ok(());
    };
    // A session upgraded from polling keeps the heartbeat job it started with, and its
    // writer waits in a task of its own for the last polling request to release the queue.
    let (tx, rx) = ws.split();

    // Pipe between websocket and internal socket channel.
    tokio::spawn(forward_to_socket::<H, S>(socket.clone(), tx));

    // pipe between internal socket channel and websocket
    let outcome = forward_to_handler(&engine, rx, &socket)
        .with_cancellation_token(socket.cancellation.token())
        .await;
    end_session(&engine, &socket, outcome);
    Ok(())
}

/// Closes the session after its reader stopped: with the error's reason, or as closed by the
/// client; `None` when the session was already being closed.
pub(super) fn end_session<H: EngineIoHandler>(
    engine: &EngineIo<H>,
    socket: &Socket<H::Data>,
    outcome: Option<Result<(), Error>>,
) {
    match outcome {
        Some(Err(ref e)) => {
            let reason =
                Option::<DisconnectReason>::from(e).unwrap_or(DisconnectReason::TransportError);

            #[cfg(feature = "tracing")]
            tracing::debug!("error when handling packet: {:?}", e);
            engine.close_session(socket.id, reason);
        }
        Some(Ok(())) => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = %socket.id, "ws transport was closed");
            engine.close_session(socket.id, DisconnectReason::TransportClose);
        }
        None => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = %socket.id, "socket is closing");
        }
    }
}

/// Forwards all packets received from a websocket to a EngineIo [`Socket`]
async fn forward_to_handler<H: EngineIoHandler, S>(
    engine: &Arc<EngineIo<H>>,
    mut rx: SplitStream<WebSocketStream<S>>,
    socket: &Arc<Socket<H::Data>>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    while let Some(msg) = rx.try_next().await? {
        let on_heartbeat = || {
            // A stored signal already tells the heartbeat job that the client is alive.
            socket.heartbeat.notify_one();
            Ok(())
        };
        if on_message(engine, socket, msg, on_heartbeat)?.is_break() {
            break;
        }
    }
    Ok(())
}

/// Handles one websocket message from the client; `Break` when the client closed the session.
/// `on_heartbeat` gets the client's pongs (v4) or pings (v3).
pub(super) fn on_message<H: EngineIoHandler>(
    engine: &Arc<EngineIo<H>>,
    socket: &Arc<Socket<H::Data>>,
    msg: Message,
    on_heartbeat: impl FnOnce() -> Result<(), Error>,
) -> Result<ControlFlow<()>, Error> {
    match msg {
        Message::Text(msg) => match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
            Packet::Close => {
                #[cfg(feature = "tracing")]
                tracing::debug!("[sid={}] closing session", socket.id);
                engine.close_session(socket.id, DisconnectReason::TransportClose);
                return Ok(ControlFlow::Break(()));
            }
            Packet::Pong | Packet::Ping => on_heartbeat()?,
            Packet::Message(msg) => engine.handler.on_message(msg, socket.clone()),
            p => return Err(Error::BadPacket(p)),
        },
        Message::Binary(mut data) => {
            if socket.protocol == ProtocolVersion::V3 && !data.is_empty() {
                // The first byte is the message type, which we don't need.
                data = data.split_off(1);
            }
            engine.handler.on_binary(data, socket.clone());
        }
        Message::Close(_) => {
            #[cfg(feature = "tracing")]
            tracing::debug!("websocket closed, closing session");
            engine.close_session(socket.id, DisconnectReason::TransportClose);
            return Ok(ControlFlow::Break(()));
        }
        _ => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = ?socket.id, "unexpected ws message");
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// Forwards all packets waiting to be sent to the websocket
///
/// The websocket stream is flushed only when the internal channel is drained
async fn forward_to_socket<H: EngineIoHandler, S>(
    socket: Arc<Socket<H::Data>>,
    mut tx: SplitSink<WebSocketStream<S>, Message>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // A polling request that was in progress during the upgrade may still hold the lock.
    let lock = socket.internal_rx.lock();
    let Some(mut internal_rx) = lock
        .with_cancellation_token(socket.cancellation.token())
        .await
    else {
        #[cfg(feature = "tracing")]
        tracing::debug!(sid = %socket.id, "session closed before starting the ws writer");
        return;
    };
    let InternalRx { buffered_rx, .. } = &mut *internal_rx;

    // Forward buffered packets until the channel is closed or the session is cancelled; in
    // the order of the `biased` select this was: the queue, the cancellation, the volatile
    // slot (which shares the queue's waker, hence one `poll_fn` for the three).
    enum Next {
        Queued(Option<Queued>),
        Cancelled,
        Volatile(Queued),
    }
    let mut cancelled = std::pin::pin!(socket.cancellation.token().cancelled());
    loop {
        let next = std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(items) = buffered_rx.poll_recv(cx) {
                return std::task::Poll::Ready(Next::Queued(items));
            }
            if cancelled.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(Next::Cancelled);
            }
            buffered_rx.poll_volatile(cx).map(Next::Volatile)
        })
        .await;
        match next {
            Next::Queued(Some(item)) => {
                feed_packets(&mut tx, &mut item.into_packets(), &socket).await;
                while let Ok(item) = buffered_rx.try_recv() {
                    feed_packets(&mut tx, &mut item.into_packets(), &socket).await;
                }
            }
            Next::Queued(None) | Next::Cancelled => break,
            Next::Volatile(item) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(sid = ?socket.id, "ws volatile flush: {} packets", item.len());
                feed_packets(&mut tx, &mut item.into_packets(), &socket).await;
            }
        }

        #[cfg(feature = "tracing")]
        tracing::trace!(sid = %socket.id, "ws flush");
        tx.flush().await.ok();
    }

    #[cfg(feature = "tracing")]
    tracing::trace!(sid = %socket.id, "ws closing flush");

    tx.flush().await.ok();
    tx.close().await.ok();
}
/// Feeds packets to the websocket as frames, without flushing; a failed send is only logged
/// (the reader sees the broken transport).
pub(super) async fn feed_packets<D, W>(tx: &mut W, packets: &mut PacketBuf, socket: &Socket<D>)
where
    D: Default + Send + Sync + 'static,
    W: Sink<Message, Error = tungstenite::Error> + Unpin,
{
    for item in packets.drain(..) {
        let res = match packet_message(item, socket.protocol) {
            Some(msg) => tx.feed(msg).await,
            None => Ok(()),
        };
        if let Err(_e) = res {
            #[cfg(feature = "tracing")]
            tracing::debug!("[sid={}] error sending packet: {}", socket.id, _e);
        }
    }
}

/// The websocket frame of a packet; `None` for a `Noop`, which a session upgraded from
/// polling may find left in its queue and which is not sent.
pub(super) fn packet_message(item: Packet, protocol: ProtocolVersion) -> Option<Message> {
    match item {
        Packet::Binary(bin) | Packet::BinaryV3(bin) => {
            if protocol == ProtocolVersion::V3 {
                // v3 protocol requires packet type as the first byte.
                // This requires a new buffer. This is OK as it is only for the V3 protocol.
                let mut buff = Vec::with_capacity(bin.len() + 1);
                buff.push(0x04);
                buff.extend(bin);
                Some(Message::Binary(buff.into()))
            } else {
                Some(Message::Binary(bin))
            }
        }
        Packet::Noop => None,
        Packet::Message(msg) => Some(Message::Text(message_text(msg))),
        item => {
            let packet: String = item.try_into().unwrap();
            Some(Message::Text(packet.into()))
        }
    }
}

/// How many recent messages a thread remembers: the writers of two or three broadcasts can
/// interleave on one worker, and with one entry each switch built the text again.
const TEXT_SLOTS: usize = 4;

/// A thread's recent messages, each held (so that its buffer cannot be freed and reused)
/// with its frame text once it has been seen twice; `next` is the slot replaced next.
struct RecentTexts {
    slots: [(Option<Str>, Option<Utf8Bytes>); TEXT_SLOTS],
    next: usize,
}

thread_local! {
    static RECENT_TEXTS: std::cell::RefCell<RecentTexts> = const {
        std::cell::RefCell::new(RecentTexts {
            slots: [const { (None, None) }; TEXT_SLOTS],
            next: 0,
        })
    };
}

/// A message's frame text (`4` + the message). A broadcast hands every socket a clone of
/// one encoded `Str`, and each socket's writer used to build its own copy of the frame
/// text: one allocation per socket per broadcast. The writers of a broadcast run one after
/// another on a thread, so the thread keeps the text of the messages it has recently seen
/// twice and hands it out again while the same buffer comes back. A message seen once (an
/// emit to one socket) costs what it did before.
fn message_text(msg: Str) -> Utf8Bytes {
    let build = |msg: &Str| {
        let mut frame = String::with_capacity(msg.len() + 1);
        frame.push('4');
        frame.push_str(msg);
        Utf8Bytes::from(frame)
    };
    RECENT_TEXTS.with(|recent| {
        let mut recent = recent.borrow_mut();
        let seen = recent.slots.iter_mut().find(|(s, _)| {
            s.as_ref()
                .is_some_and(|s| s.as_ptr() == msg.as_ptr() && s.len() == msg.len())
        });
        match seen {
            Some((_, Some(text))) => text.clone(),
            Some((_, text)) => text.insert(build(&msg)).clone(),
            None => {
                let frame = build(&msg);
                let i = recent.next;
                recent.slots[i] = (Some(msg), None);
                recent.next = (i + 1) % TEXT_SLOTS;
                frame
            }
        }
    })
}

/// Send a Engine.IO [`OpenPacket`] to initiate a websocket connection
async fn init_handshake<S>(
    sid: Sid,
    ws: &mut WebSocketStream<S>,
    config: &EngineIoConfig,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let packet = Packet::Open(make_open_packet(TransportType::Websocket, sid, config));
    let packet: String = packet.into();
    ws.send(Message::Text(packet.into())).await?;
    Ok(())
}

/// Upgrade a session from a polling request to a websocket request.
///
/// Before upgrading the session the server should send a NOOP packet to any pending polling request.
///
/// ## Handshake :
/// ```text
/// CLIENT                                                 SERVER
///│                                                      │
///│   GET /engine.io/?EIO=4&transport=websocket&sid=...  │
///│ ───────────────────────────────────────────────────► │
///│  ◄─────────────────────────────────────────────────┘ │
///│            HTTP 101 (WebSocket handshake)            │
///│                                                      │
///│            -----  WebSocket frames -----             │
///│  ─────────────────────────────────────────────────►  │
///│                         2probe                       │ (ping packet)
///│  ◄─────────────────────────────────────────────────  │
///│                         3probe                       │ (pong packet)
///│  ─────────────────────────────────────────────────►  │
///│                         5                            │ (upgrade packet)
///│                                                      │
///│            -----  WebSocket frames -----             │
/// ```
#[cfg_attr(
    feature = "tracing",
    tracing::instrument(level = "trace", skip(socket, ws))
)]
async fn upgrade_handshake<H: EngineIoHandler, S>(
    socket: &Arc<Socket<H::Data>>,
    ws: &mut WebSocketStream<S>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    #[cfg(feature = "tracing")]
    tracing::debug!("starting websocket connection upgrade");

    // The socket is upgrading, from now on all polling
    // request will return a `Packet::Noop`
    socket.start_upgrade();

    // We send a last Noop request to close a potential waiting polling request.
    // A full buffer needs none: a polling request answers at once with what is buffered.
    if let Err(TrySendError::Closed(_)) = socket.internal_tx.try_send(Queued::packet(Packet::Noop))
    {
        return Err(Error::Upgrade);
    }

    // wait for any current polling connection to finish by waiting for the socket to be unlocked
    // All other polling connection will be immediately closed with a NOOP packet.
    let _lock = socket.internal_rx.lock().await;

    // Fetch the next packet from the ws stream, it should be a PingUpgrade packet
    let msg = match ws.next().await {
        Some(Ok(Message::Text(d))) => d,
        _ => Err(Error::Upgrade)?,
    };
    match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
        Packet::PingUpgrade => {
            #[cfg(feature = "tracing")]
            tracing::debug!("received first ping upgrade");
            // Respond with a PongUpgrade packet
            ws.send(Message::Text(String::from(Packet::PongUpgrade).into()))
                .await?;
        }
        p => Err(Error::BadPacket(p))?,
    };

    // Fetch the next packet from the ws stream, it should be an Upgrade packet
    let msg = match ws.next().await {
        Some(Ok(Message::Text(d))) => d,
        Some(Ok(Message::Close(_))) => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws stream closed before upgrade");
            Err(Error::Upgrade)?
        }
        _ => {
            #[cfg(feature = "tracing")]
            tracing::debug!("unexpected ws message before upgrade");
            Err(Error::Upgrade)?
        }
    };
    match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
        Packet::Upgrade => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws upgraded successfully")
        }
        p => Err(Error::BadPacket(p))?,
    };

    socket.upgrade_to_websocket();
    Ok(())
}

fn ws_bytes_to_str(bytes: tungstenite::Utf8Bytes) -> Str {
    // SAFETY: the bytes are guaranteed to be valid UTF-8 by the tungstenite parser
    unsafe { Str::from_bytes_unchecked(bytes.into()) }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::StreamExt;
    use http::Request;
    use tokio::io::DuplexStream;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);

    #[test]
    fn interleaved_broadcasts_reuse_their_frame_text() {
        let a = Str::from(String::from("2[\"a\"]"));
        let b = Str::from(String::from("2[\"b\"]"));
        let c = Str::from(String::from("2[\"c\"]"));
        // Seen once: built; seen twice: kept.
        for m in [&a, &b, &c] {
            assert_eq!(message_text(m.clone()).as_str(), format!("4{}", &**m));
        }
        let kept: Vec<Utf8Bytes> = [&a, &b, &c].map(|m| message_text(m.clone())).into();
        // From now on, whichever order they come in, each gets the same text (no copy).
        for _ in 0..3 {
            for (m, k) in [&c, &a, &b].into_iter().zip([&kept[2], &kept[0], &kept[1]]) {
                let t = message_text(m.clone());
                assert_eq!(t.as_str().as_ptr(), k.as_str().as_ptr());
                assert_eq!(t.as_str(), format!("4{}", &**m));
            }
        }
        // An equal message in another buffer is not mistaken for a kept one.
        let a2 = Str::from(String::from("2[\"a\"]"));
        assert_ne!(
            message_text(a2).as_str().as_ptr(),
            kept[0].as_str().as_ptr()
        );
    }

    #[derive(Debug)]
    struct StubHandler;
    impl EngineIoHandler for StubHandler {
        type Data = ();
        fn on_connect(self: Arc<Self>, _: Arc<Socket<()>>) {}
        fn on_disconnect(&self, _: Arc<Socket<()>>, _: DisconnectReason) {}
        fn on_message(self: &Arc<Self>, _: Str, _: Arc<Socket<()>>) {}
        fn on_binary(self: &Arc<Self>, _: Bytes, _: Arc<Socket<()>>) {}
    }

    fn socket() -> Arc<Socket<()>> {
        Arc::new(Socket::new(
            ProtocolVersion::V4,
            TransportType::Websocket,
            &EngineIoConfig::default(),
            Request::<()>::default().into_parts().0,
            Arc::new(|_, _| ()),
            false,
        ))
    }

    async fn ws_pair() -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
        let (server, client) = tokio::io::duplex(1024);
        (
            WebSocketStream::from_raw_socket(server, Role::Server, None).await,
            WebSocketStream::from_raw_socket(client, Role::Client, None).await,
        )
    }

    /// A session's future is what an idle websocket socket costs beyond its objects: it
    /// must hold the websocket once (an `async fn` held its arguments twice).
    #[tokio::test]
    async fn the_session_future_holds_the_websocket_once() {
        let engine = Arc::new(EngineIo::new(
            Arc::new(StubHandler),
            EngineIoConfig::default(),
        ));
        let (server, _client) = ws_pair().await;
        let ws = std::mem::size_of_val(&server);
        let session = super::super::ws_session::run(engine, server, socket());
        let rest = std::mem::size_of_val(&session) - ws;
        assert!(rest < 620, "{rest} B besides a {ws} B websocket");
    }

    /// Only polling and the upgrade from it wait on a cancellation token: a websocket
    /// session, from its first message to its end, never creates one.
    #[tokio::test]
    async fn a_websocket_session_never_creates_a_cancellation_token() {
        let engine = Arc::new(EngineIo::new(
            Arc::new(StubHandler),
            EngineIoConfig::default(),
        ));
        let (server, mut client) = ws_pair().await;
        let socket = socket();
        let session = tokio::spawn(super::super::ws_session::run(
            engine,
            server,
            socket.clone(),
        ));
        socket.emit(Str::from("hello")).unwrap();
        let msg = tokio::time::timeout(TIMEOUT, client.next())
            .await
            .expect("the session should send the packet")
            .unwrap()
            .unwrap();
        assert_eq!(msg, Message::text("4hello"));
        client.close(None).await.unwrap();
        while let Ok(Some(Ok(_))) = tokio::time::timeout(TIMEOUT, client.next()).await {}
        tokio::time::timeout(TIMEOUT, session)
            .await
            .expect("the session should end")
            .unwrap();
        socket.cancel();
        assert!(!socket.cancellation.created());
    }

    /// A polling request can still hold the lock at the end of an upgrade.
    #[tokio::test]
    async fn writer_waits_for_the_lock_of_a_polling_request() {
        let socket = socket();
        let (server, mut client) = ws_pair().await;
        let (tx, _rx) = server.split();

        let polling = socket.internal_rx.lock().await;
        let writer = tokio::spawn(forward_to_socket::<StubHandler, _>(socket.clone(), tx));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!writer.is_finished(), "the writer should wait for the lock");

        drop(polling);
        socket.emit(Str::from("hello")).unwrap();
        let msg = tokio::time::timeout(TIMEOUT, client.next())
            .await
            .expect("the writer should send the packet")
            .unwrap()
            .unwrap();
        assert_eq!(msg, Message::text("4hello"));
    }

    #[tokio::test]
    async fn writer_waiting_for_the_lock_stops_with_the_session() {
        let socket = socket();
        let (server, _client) = ws_pair().await;
        let (tx, _rx) = server.split();

        let _polling = socket.internal_rx.lock().await;
        let writer = tokio::spawn(forward_to_socket::<StubHandler, _>(socket.clone(), tx));
        tokio::time::sleep(Duration::from_millis(20)).await;

        socket.cancellation.cancel();
        tokio::time::timeout(TIMEOUT, writer)
            .await
            .expect("the writer should stop")
            .unwrap();
    }
}
