//! A raw Engine.IO v4 websocket session, for the tests that must speak the protocol the way
//! an attacker would (no CONNECT, forged packets, hundreds of sessions racing) where a real
//! Socket.IO client would refuse to.

use std::time::Duration;

use futures::future::join_all;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::TestNode;

pub struct RawSession {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// The outcome of opening a session: the HTTP status when the handshake was refused.
pub async fn try_open(node: &TestNode, headers: &[(&str, &str)]) -> Result<RawSession, u16> {
    let url = format!(
        "ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket",
        node.port
    );
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => {
            let mut s = RawSession { ws };
            let open = s
                .next_text(Duration::from_secs(5))
                .await
                .expect("open packet");
            assert!(open.starts_with('0'), "engine.io open, got {open}");
            Ok(s)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("websocket handshake failed: {e}"),
    }
}

pub async fn open(node: &TestNode) -> RawSession {
    try_open(node, &[]).await.expect("session admitted")
}

impl RawSession {
    pub async fn send(&mut self, text: &str) -> bool {
        self.ws.send(Message::text(text)).await.is_ok()
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> bool {
        self.ws.send(Message::binary(bytes)).await.is_ok()
    }

    /// The next text frame, answering pings; None when the session closed or time ran out.
    pub async fn next_text(&mut self, within: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??
                .ok()?;
            match msg {
                Message::Text(t) if t.as_str() == "2" => {
                    let _ = self.ws.send(Message::text("3")).await;
                }
                Message::Text(t) => return Some(t.to_string()),
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Sends a Socket.IO CONNECT with this token and returns the server's answer packet
    /// (`40...` accepted, `44...` refused), or None if the session closed.
    pub async fn connect(&mut self, token: &str) -> Option<String> {
        self.send(&format!("40{}", serde_json::json!({ "token": token })))
            .await;
        self.next_text(Duration::from_secs(10)).await
    }

    /// Whether the server closed the session within `within`.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}

/// This process's resident memory, in bytes (the nodes under test run in it).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Opens one session per token, round-robin over the nodes, then sends every CONNECT at
/// the same instant; returns how many were accepted, and the sessions (to hold them).
pub async fn race(nodes: &[TestNode], tokens: &[String]) -> (usize, Vec<RawSession>) {
    let mut sessions = Vec::new();
    for i in 0..tokens.len() {
        sessions.push(open(&nodes[i % nodes.len()]).await);
    }
    let answers = join_all(sessions.iter_mut().zip(tokens).map(|(s, t)| s.connect(t))).await;
    let accepted = answers
        .iter()
        .filter(|a| a.as_deref().is_some_and(|p| p.starts_with("40")))
        .count();
    (accepted, sessions)
}
