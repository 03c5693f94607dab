//! Spawns real gateway nodes on port 0 and drives them with a real Socket.IO client
//! (`rust_socketio`) and real HTTP (`reqwest`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use lms_realtime::auth::{Role, mint_hs256};
use lms_realtime::{Application, Config, ShutdownHandle};
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload, TransportType};
use serde_json::{Value, json};
use tokio::sync::Notify;

pub const SECRET: &str = "integration-secret-0123456789abcdef";
pub const WAIT: Duration = Duration::from_secs(10);
/// How long a test waits to be sure something did NOT arrive.
pub const QUIET: Duration = Duration::from_millis(400);

pub struct TestNode {
    pub port: u16,
    /// The internal `/metrics` listener, when the node was given a `METRICS_PORT`.
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub shutdown: ShutdownHandle,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub http: reqwest::Client,
}

impl TestNode {
    /// The node's Prometheus exposition.
    pub async fn metrics_text(&self) -> String {
        let res = self
            .http
            .get(format!("{}/metrics", self.url()))
            .send()
            .await
            .expect("scrape");
        res.text().await.expect("metrics body")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.url())
    }

    /// An authenticated service API request builder.
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.http.request(method, self.api(path)).bearer_auth(token)
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        send(self.call(reqwest::Method::POST, path, token).json(&body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        send(self.call(reqwest::Method::PUT, path, token).json(&body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        send(self.call(reqwest::Method::GET, path, token)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        send(self.call(reqwest::Method::DELETE, path, token)).await
    }

    /// Stores a notification for one user through the service API.
    pub async fn notify(&self, tenant: &str, user: &str, id: &str) -> (u16, Value) {
        let body = json!({
            "tenantId": tenant,
            "target": { "userId": user },
            "notification": { "id": id, "title": format!("t-{id}"), "message": "m", "type": "GENERAL", "priority": "NORMAL" }
        });
        self.post("/notifications", &service_token(tenant), body)
            .await
    }

    /// Who is online in a course, through the service API (asserts a 200).
    pub async fn course_presence(&self, tenant: &str, course: &str) -> Value {
        let (status, body) = self
            .get(
                &format!("/tenants/{tenant}/courses/{course}/presence"),
                &service_token(tenant),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn enroll(&self, tenant: &str, course: &str, user: &str, role: &str) {
        let (status, body) = self
            .put(
                &format!("/tenants/{tenant}/courses/{course}/members/{user}"),
                &service_token(tenant),
                json!({ "role": role }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// The value of one series in Prometheus text output (0 when absent).
pub fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

pub async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Starts a node with the test defaults, adjusted by `tweak`.
pub async fn spawn_node_with(tweak: impl FnOnce(&mut Config)) -> TestNode {
    let mut config = Config::for_tests(SECRET);
    tweak(&mut config);
    let app = Application::build(config)
        .await
        .expect("the application builds");
    let port = app.port();
    let metrics_addr = app.metrics_addr();
    let shutdown = app.shutdown_handle();
    let task = tokio::spawn(app.run_until_stopped());
    TestNode {
        port,
        metrics_addr,
        shutdown,
        task,
        http: reqwest::Client::new(),
    }
}

pub async fn spawn_node() -> TestNode {
    spawn_node_with(|_| {}).await
}

pub fn token(sub: &str, tenant: Option<&str>, role: Role) -> String {
    mint_hs256(SECRET, sub, tenant, role, 3600).unwrap()
}

/// A student token of `tenant` with an explicit `iat` and, when given, a `jti`.
pub fn token_with(sub: &str, tenant: &str, iat: i64, jti: Option<&str>) -> String {
    let mut claims = json!({
        "sub": sub, "tenantId": tenant, "role": "student",
        "iat": iat, "exp": chrono::Utc::now().timestamp() + 3600,
    });
    if let Some(j) = jti {
        claims["jti"] = json!(j);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// Now, in seconds since the epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn service_token(tenant: &str) -> String {
    token("backend", Some(tenant), Role::Service)
}

pub fn super_token() -> String {
    token("root", None, Role::SuperAdmin)
}

/// Everything a client received, in order.
#[derive(Default)]
pub struct Inbox {
    events: Mutex<Vec<(String, Value)>>,
    notify: Notify,
}

impl Inbox {
    fn push(&self, event: String, payload: Value) {
        self.events.lock().unwrap().push((event, payload));
        self.notify.notify_waiters();
    }

    pub fn all(&self, event: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(e, _)| e == event)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Waits for the first `event` whose payload satisfies `pred`.
    pub async fn wait_for(&self, event: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let found = tokio::time::timeout(WAIT, async {
            loop {
                let notified = self.notify.notified();
                if let Some(v) = self.all(event).into_iter().find(|v| pred(v)) {
                    return v;
                }
                notified.await;
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!(
                "no {event:?} matching the predicate within {WAIT:?}; got {:?}",
                self.events.lock().unwrap()
            )
        })
    }

    pub async fn next(&self, event: &str) -> Value {
        self.wait_for(event, |_| true).await
    }

    /// Waits for the first `event` and removes it, so later waits see only what follows;
    /// `None` when none came within [`WAIT`].
    pub async fn take(&self, event: &str) -> Option<Value> {
        tokio::time::timeout(WAIT, self.next(event)).await.ok()?;
        let mut events = self.events.lock().unwrap();
        let at = events.iter().position(|(e, _)| e == event)?;
        Some(events.remove(at).1)
    }

    /// Asserts that no `event` arrives within a short quiet period.
    pub async fn assert_none(&self, event: &str) {
        tokio::time::sleep(QUIET).await;
        let got = self.all(event);
        assert!(got.is_empty(), "unexpected {event:?}: {got:?}");
    }
}

/// A connected Socket.IO client and what it received.
pub struct TestClient {
    pub client: Client,
    pub inbox: Arc<Inbox>,
    /// rust_socketio 0.6 picks ack ids at random in 0..999 and mixes up callbacks when two
    /// outstanding acks share one, so a client keeps one ack in flight at a time.
    acking: tokio::sync::Mutex<()>,
    /// The `notification:count` every tenant user's socket gets on connect, taken out of
    /// the inbox so that later waits see only the counts that follow.
    pub connect_count: Option<Value>,
}

fn first_arg(payload: Payload) -> Value {
    match payload {
        Payload::Text(mut args) if !args.is_empty() => args.remove(0),
        Payload::Text(_) => Value::Null,
        #[allow(deprecated)]
        Payload::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        Payload::Binary(_) => Value::Null,
    }
}

/// How a client presents its token.
pub enum TokenIn {
    Auth,
    Query,
    Header,
}

pub fn builder(
    node: &TestNode,
    token: Option<&str>,
    how: TokenIn,
    inbox: Arc<Inbox>,
) -> ClientBuilder {
    let url = match (&how, token) {
        (TokenIn::Query, Some(t)) => format!("{}?token={t}", node.url()),
        _ => node.url(),
    };
    let mut b = ClientBuilder::new(url)
        .transport_type(TransportType::Websocket)
        .reconnect(false);
    match (how, token) {
        (TokenIn::Auth, Some(t)) => b = b.auth(json!({ "token": t })),
        (TokenIn::Header, Some(t)) => b = b.opening_header("Authorization", format!("Bearer {t}")),
        _ => {}
    }
    let any_inbox = inbox.clone();
    let err_inbox = inbox.clone();
    let open_inbox = inbox.clone();
    let close_inbox = inbox;
    b.on_any(move |event, payload, _| {
        let inbox = any_inbox.clone();
        async move { inbox.push(event.as_str().to_owned(), first_arg(payload)) }.boxed()
    })
    .on(Event::Error, move |payload, _| {
        let inbox = err_inbox.clone();
        async move { inbox.push("error".into(), first_arg(payload)) }.boxed()
    })
    .on(Event::Connect, move |_, _| {
        let inbox = open_inbox.clone();
        async move { inbox.push("open".into(), Value::Null) }.boxed()
    })
    .on(Event::Close, move |_, _| {
        let inbox = close_inbox.clone();
        async move { inbox.push("close".into(), Value::Null) }.boxed()
    })
}

/// Connects with the token in `auth` and waits for the namespace CONNECT.
pub async fn connect(node: &TestNode, token: &str) -> TestClient {
    connect_via(node, Some(token), TokenIn::Auth).await
}

pub async fn connect_via(node: &TestNode, token: Option<&str>, how: TokenIn) -> TestClient {
    let inbox = Arc::new(Inbox::default());
    let client = builder(node, token, how, inbox.clone())
        .connect()
        .await
        .expect("transport connects");
    inbox.next("open").await;
    let connect_count = match token.and_then(tenant_of) {
        Some(_) => inbox.take("notification:count").await,
        None => None,
    };
    TestClient {
        client,
        inbox,
        acking: tokio::sync::Mutex::new(()),
        connect_count,
    }
}

/// The `tenantId` claim of a JWT, read without verifying it (the test minted it).
pub fn tenant_of(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["tenantId"].as_str().map(str::to_owned)
}

/// Connects and expects the connection to be refused; returns the refusal message.
pub async fn refused(node: &TestNode, token: Option<&str>, how: TokenIn) -> String {
    let inbox = Arc::new(Inbox::default());
    refusal(builder(node, token, how, inbox.clone()), inbox).await
}

/// Connects with a client made by [`builder`] (on `inbox`), perhaps changed further, and
/// expects the connection to be refused; returns the refusal message.
pub async fn refusal(b: ClientBuilder, inbox: Arc<Inbox>) -> String {
    let _client = b.connect().await.expect("transport connects");
    let err = inbox
        .wait_for("error", |v| v.to_string().contains("ConnectError"))
        .await;
    let text = err
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| err.to_string());
    assert!(
        inbox.all("open").is_empty(),
        "a refused socket must not see CONNECT"
    );
    let json = &text[text.find('{').expect("connect_error data")..];
    let v: Value = serde_json::from_str(json).expect("connect_error data is JSON");
    v["message"].as_str().unwrap().to_owned()
}

impl TestClient {
    /// Emits with an ack callback and returns the ack's first argument.
    pub async fn ack(&self, event: &str, payload: Value) -> Value {
        self.ack_payload(event, Payload::Text(vec![payload])).await
    }

    /// Emits an event with no argument at all, only the ack callback.
    pub async fn ack_without_payload(&self, event: &str) -> Value {
        self.ack_payload(event, Payload::Text(vec![])).await
    }

    async fn ack_payload(&self, event: &str, payload: Payload) -> Value {
        let _one_at_a_time = self.acking.lock().await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = Arc::new(Mutex::new(Some(tx)));
        self.client
            .emit_with_ack(event, payload, WAIT, move |p, _| {
                let tx = tx.clone();
                async move {
                    if let Some(tx) = tx.lock().unwrap().take() {
                        // rust_socketio hands an ack over as the array of its arguments.
                        let v = match first_arg(p) {
                            serde_json::Value::Array(mut args) if args.len() == 1 => args.remove(0),
                            other => other,
                        };
                        let _ = tx.send(v);
                    }
                }
                .boxed()
            })
            .await
            .expect("emit");
        tokio::time::timeout(WAIT, rx)
            .await
            .expect("ack in time")
            .expect("ack")
    }

    /// Emits without an ack callback.
    pub async fn emit(&self, event: &str, payload: Value) {
        self.client.emit(event, payload).await.expect("emit");
    }

    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
    }
}

/// How many `event`s about `user` (their `userId`) a client received.
pub fn about(c: &TestClient, event: &str, user: &str) -> usize {
    c.inbox
        .all(event)
        .iter()
        .filter(|v| v["userId"] == user)
        .count()
}

/// The error code of a failed ack.
pub fn code(ack: &Value) -> &str {
    assert_eq!(ack["ok"], false, "expected a failed ack, got {ack}");
    ack["error"]["code"].as_str().unwrap()
}

pub fn ok(ack: &Value) -> &Value {
    assert_eq!(ack["ok"], true, "expected a successful ack, got {ack}");
    ack
}

/// Polls cluster stats until the node counts `n` sockets.
pub async fn wait_for_connections(node: &TestNode, n: u64) {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let (_, stats) = node.get("/stats", &super_token()).await;
            if stats["connections"] == n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("the node never counted {n} sockets"));
}

/// Installs a subscriber that keeps every log line (each test runs in its own process
/// under nextest; under `cargo test` the first test to call it wins, which only makes the
/// count of the others smaller).
pub fn capture_logs() -> Arc<Mutex<Vec<String>>> {
    #[derive(Clone)]
    struct Lines(Arc<Mutex<Vec<String>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let text = String::from_utf8_lossy(buf);
            self.0
                .lock()
                .unwrap()
                .extend(text.lines().map(str::to_owned));
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines(Arc::default());
    let writer = lines.clone();
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_writer(move || writer.clone())
        .try_init();
    lines.0
}
