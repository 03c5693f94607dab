//! A raw Socket.IO client that does what socket.io-client 4.8 does for connection state
//! recovery (keeps the CONNECT answer's `pid` and the last string argument of each event,
//! and sends `{ token, pid, offset }` on reconnect), with every argument visible. Shared
//! by the single-node and the cluster recovery tests.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::TestNode;
use crate::raw::{RawSession, open};

/// One received event: name, payload, and the trailing offset if there was one.
#[derive(Debug, Clone, PartialEq)]
pub struct Got {
    pub event: String,
    pub data: Value,
    pub offset: Option<String>,
    pub args: usize,
}

pub struct Recovering {
    pub session: RawSession,
    pub pid: Option<String>,
    /// The last offset seen (what socket.io-client keeps).
    pub offset: Option<String>,
}

/// The CONNECT answer's data.
fn answer(packet: &str) -> Value {
    let data = packet.strip_prefix("40").expect("CONNECT accepted");
    serde_json::from_str(data).expect("CONNECT data is JSON")
}

impl Recovering {
    /// Opens a session and connects with `auth` (the token plus whatever recovery asks).
    pub async fn connect(node: &TestNode, auth: Value) -> (Recovering, Value) {
        let mut session = open(node).await;
        session.send(&format!("40{auth}")).await;
        let packet = session
            .next_text(Duration::from_secs(10))
            .await
            .expect("a CONNECT answer");
        let data = answer(&packet);
        let pid = data.get("pid").and_then(Value::as_str).map(str::to_owned);
        (
            Recovering {
                session,
                pid,
                offset: None,
            },
            data,
        )
    }

    /// A new session.
    pub async fn new(node: &TestNode, token: &str) -> Recovering {
        Self::connect(node, json!({ "token": token })).await.0
    }

    /// Reconnects the way socket.io-client does after a transport close; returns the new
    /// client and whether it recovered (same pid).
    pub async fn reconnect(self, node: &TestNode, token: &str) -> (Recovering, bool) {
        let mut auth = json!({ "token": token, "pid": self.pid });
        if let Some(o) = &self.offset {
            auth["offset"] = json!(o);
        }
        let before = self.pid.clone();
        drop(self.session);
        let (next, _) = Self::connect(node, auth).await;
        let recovered = next.pid.is_some() && next.pid == before;
        let mut next = next;
        if recovered {
            next.offset = self.offset;
        }
        (next, recovered)
    }

    /// The next event, keeping its offset; None when nothing came within `within`.
    pub async fn next_event(&mut self, within: Duration) -> Option<Got> {
        loop {
            let text = self.session.next_text(within).await?;
            let Some(body) = text.strip_prefix("42") else {
                continue;
            };
            let args: Vec<Value> = serde_json::from_str(body).expect("an event array");
            let event = args[0].as_str().expect("event name").to_owned();
            let offset = match args.last() {
                Some(Value::String(s)) if args.len() > 2 => Some(s.clone()),
                _ => None,
            };
            if offset.is_some() {
                self.offset.clone_from(&offset);
            }
            return Some(Got {
                event,
                data: args.get(1).cloned().unwrap_or(Value::Null),
                offset,
                args: args.len() - 1,
            });
        }
    }

    /// The ids of the `notification:new` events received until `n` came (or time ran out).
    pub async fn notifications(&mut self, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        while ids.len() < n {
            let Some(got) = self.next_event(Duration::from_secs(5)).await else {
                break;
            };
            if got.event == "notification:new" {
                ids.push(got.data["id"].as_str().unwrap_or_default().to_owned());
            }
        }
        ids
    }

    /// Every `notification:new` id that arrives within a quiet period.
    pub async fn drain_notifications(&mut self) -> Vec<String> {
        let mut ids = Vec::new();
        while let Some(got) = self.next_event(Duration::from_millis(500)).await {
            if got.event == "notification:new" {
                ids.push(got.data["id"].as_str().unwrap_or_default().to_owned());
            }
        }
        ids
    }
}

/// Bytes of filler per broadcast: loopback TCP buffers take tens of MB (rmem max 32 MiB
/// here) before a socket's own send buffer fills, so nodes under this test admit it.
pub const FILL_BYTES: usize = 200_000;

/// Broadcasts that overflow a socket that reads nothing: its kernel buffers take a few MB
/// before its send buffer (`SOCKET_BUFFER_PACKETS`) fills.
pub const FLOOD: usize = 80;

/// Sends [`FLOOD`] tenant broadcasts of [`FILL_BYTES`] through `via`; returns their titles.
pub async fn flood(via: &TestNode, tenant: &str) -> Vec<String> {
    let token = crate::helpers::service_token(tenant);
    let filler = "x".repeat(FILL_BYTES);
    let mut sent = Vec::new();
    for i in 0..FLOOD {
        let title = format!("b{i}");
        let (status, body) = via
            .post(
                &format!("/tenants/{tenant}/broadcast"),
                &token,
                json!({ "title": title, "message": "m", "data": { "fill": filler } }),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        sent.push(title);
    }
    sent
}

/// Asserts that `node` cut a socket off as a slow consumer and counted what it dropped.
pub async fn cut_off_and_counted(node: &TestNode) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = node.metrics_text().await;
        let cut =
            crate::helpers::counter(&m, "lms_socket_disconnects_total{reason=\"slow_consumer\"}");
        let dropped = crate::helpers::counter(&m, "lms_emit_dropped_total{event=\"any\"}");
        if cut >= 1.0 && dropped >= 1.0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no slow consumer cut off and counted: cut {cut}, dropped {dropped}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Recovering {
    /// Titles of the `notification:new` events until the session closes or goes quiet.
    pub async fn titles_until_closed(&mut self) -> Vec<String> {
        let mut titles = Vec::new();
        while let Some(got) = self.next_event(Duration::from_secs(2)).await {
            if got.event == "notification:new" {
                titles.push(got.data["title"].as_str().unwrap_or_default().to_owned());
            }
        }
        titles
    }
}
