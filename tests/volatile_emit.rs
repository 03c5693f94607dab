//! Volatile emits (`socket.volatile().emit(..)`) through the vendored engineioxide, whose
//! volatile packet is a slot in the socket's queue (docs/vendor.md §12), on each of the three
//! transport paths: a session opened over websocket (one task), one upgraded from polling
//! (reader and writer tasks) and plain polling. The gateway itself emits nothing volatile;
//! this is a bare socketioxide server.

use std::time::Duration;

use futures::FutureExt;
use rust_socketio::asynchronous::ClientBuilder;
use rust_socketio::{Event, Payload, TransportType};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

/// Serves a namespace that answers `ping` with a volatile `pong` then a regular `after`
/// (to check the volatile one did not hold up, or drop, the queue).
async fn serve() -> u16 {
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", async |s: SocketRef| {
        s.on("ping", async |s: SocketRef| {
            s.volatile().emit("pong", &1).ok();
            s.emit("after", &2).ok();
        });
    });
    let app = axum::Router::new().layer(layer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

async fn next(rx: &mut mpsc::UnboundedReceiver<(String, Value)>) -> (String, Value) {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("an event in time")
        .expect("event")
}

async fn round_trip(transport: TransportType) {
    let port = serve().await;
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Value)>();
    let on_connect = tx.clone();
    let client = ClientBuilder::new(format!("http://127.0.0.1:{port}"))
        .transport_type(transport)
        .reconnect(false)
        .on(Event::Connect, move |_, _| {
            let tx = on_connect.clone();
            async move {
                tx.send(("connect".to_owned(), Value::Null)).ok();
            }
            .boxed()
        })
        .on_any(move |event, payload, _| {
            let tx = tx.clone();
            async move {
                let arg = match payload {
                    Payload::Text(mut v) if !v.is_empty() => v.remove(0),
                    _ => Value::Null,
                };
                tx.send((event.as_str().to_owned(), arg)).ok();
            }
            .boxed()
        })
        .connect()
        .await
        .expect("connects");
    assert_eq!(next(&mut rx).await.0, "connect");
    // Several rounds: each volatile packet is taken from the slot, the next one set again.
    for _ in 0..3 {
        client.emit("ping", json!(null)).await.expect("emit");
        let mut got = Vec::new();
        while got.len() < 2 {
            got.push(next(&mut rx).await);
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            [
                ("after".to_owned(), json!(2)),
                ("pong".to_owned(), json!(1))
            ]
        );
        // Nothing more: one volatile packet per emit.
        if let Ok(e) = rx.try_recv() {
            panic!("unexpected event {e:?}");
        }
    }
    client.disconnect().await.ok();
}

#[tokio::test]
async fn a_volatile_emit_reaches_a_websocket_session() {
    round_trip(TransportType::Websocket).await;
}

#[tokio::test]
async fn a_volatile_emit_reaches_a_session_upgraded_from_polling() {
    round_trip(TransportType::WebsocketUpgrade).await;
}

#[tokio::test]
async fn a_volatile_emit_reaches_a_polling_session() {
    round_trip(TransportType::Polling).await;
}
