//! OpenTelemetry traces against a real OTLP/HTTP receiver: the gateway binary runs with
//! traces on (an axum server on a free port takes `POST /v1/traces` and decodes the
//! protobuf), a backend's request carries a known W3C `traceparent`, and the spans that
//! arrive must continue that trace down to the emit. With traces off, nothing is sent.
//! The binary runs as its own process because the tracing subscriber is process-global.

#[allow(dead_code)]
#[path = "gateway/helpers.rs"]
mod helpers;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use helpers::*;
use lms_realtime::auth::Role;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// One span as received, with its resource's attributes.
#[derive(Clone, Debug)]
struct Received {
    span: Span,
    resource: Vec<KeyValue>,
}

/// What the receiver was sent: every span, and how many export requests came.
#[derive(Default)]
struct Collected {
    spans: Vec<Received>,
    requests: usize,
}

/// A real OTLP/HTTP (protobuf) trace receiver on a free port.
struct Receiver {
    port: u16,
    collected: Arc<Mutex<Collected>>,
}

impl Receiver {
    async fn start() -> Self {
        let collected = Arc::new(Mutex::new(Collected::default()));
        let app = axum::Router::new()
            .route("/v1/traces", post(take))
            .with_state(collected.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { port, collected }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spans(&self) -> Vec<Received> {
        self.collected.lock().unwrap().spans.clone()
    }

    fn requests(&self) -> usize {
        self.collected.lock().unwrap().requests
    }

    /// Waits until the spans received satisfy `done`.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            assert!(
                start.elapsed() < WAIT,
                "no {what} within {WAIT:?}; received: {:#?}",
                spans.iter().map(|s| &s.span.name).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn take(State(collected): State<Arc<Mutex<Collected>>>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
    let mut c = collected.lock().unwrap();
    c.requests += 1;
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                c.spans.push(Received {
                    span,
                    resource: resource.clone(),
                });
            }
        }
    }
    // An empty ExportTraceServiceResponse: everything accepted.
    Vec::new()
}

fn text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        other => format!("{other:?}"),
    }
}

fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(text)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The gateway binary, killed on drop if the test did not stop it.
struct Gateway {
    child: Child,
    node: TestNode,
}

impl Gateway {
    /// Starts `lms-realtime` on a free port with `env` added, and waits until it answers.
    async fn start(env: &[(&str, String)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_lms-realtime"))
            .env_clear()
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env("JWT_SECRET", SECRET)
            .env("NODE_ID", "trace-node")
            // Warnings only: the trace spans must get through a quiet log filter.
            .env("RUST_LOG", "warn")
            // Export every 100 ms instead of the SDK's 5 s.
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .spawn()
            .expect("the lms-realtime binary");
        let node = TestNode {
            port,
            metrics_addr: None,
            // The process is stopped by signal, not by this handle.
            shutdown: lms_realtime::ShutdownHandle::default(),
            task: tokio::spawn(async { Ok(()) }),
            http: reqwest::Client::new(),
        };
        let start = Instant::now();
        while node
            .http
            .get(format!("{}/healthz", node.url()))
            .send()
            .await
            .is_err()
        {
            assert!(start.elapsed() < WAIT, "the gateway did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, node }
    }

    /// SIGTERM, then waits for the process to drain and exit (sending its last spans).
    async fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let start = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < WAIT,
                "the gateway did not stop on SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `POST /api/v1/notifications` to one user, with a `traceparent` header.
async fn notify_traced(node: &TestNode, tenant: &str, user: &str) -> u16 {
    let body = json!({
        "tenantId": tenant,
        "target": { "userId": user },
        "notification": { "id": "n-1", "title": "t", "message": "m", "type": "GENERAL", "priority": "NORMAL" }
    });
    let (status, body) = send(
        node.call(
            reqwest::Method::POST,
            "/notifications",
            &service_token(tenant),
        )
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .json(&body),
    )
    .await;
    assert!(status < 300, "{status} {body}");
    status
}

#[tokio::test]
async fn a_backends_traceparent_reaches_the_request_span_and_the_emit_it_causes() {
    let receiver = Receiver::start().await;
    let gateway = Gateway::start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())]).await;
    let (tenant, user) = ("tenant-tr", "user-secret-42");
    let student = connect(&gateway.node, &token(user, Some(tenant), Role::Student)).await;
    notify_traced(&gateway.node, tenant, user).await;
    student.inbox.next("notification:new").await;

    let spans = receiver
        .wait_for("request and emit spans in the given trace", |spans| {
            let in_trace = spans.iter().filter(|s| hex(&s.span.trace_id) == TRACE_ID);
            in_trace.clone().any(|s| s.span.name.starts_with("POST "))
                && in_trace.clone().any(|s| s.span.name.starts_with("emit "))
        })
        .await;
    let request = spans
        .iter()
        .find(|s| s.span.name == "POST /api/v1/notifications")
        .expect("a span named by method and route template");
    assert_eq!(hex(&request.span.trace_id), TRACE_ID);
    assert_eq!(
        hex(&request.span.parent_span_id),
        PARENT_ID,
        "the request span is the child of the backend's span"
    );
    let attrs = &request.span.attributes;
    assert_eq!(attr(attrs, "http.request.method").as_deref(), Some("POST"));
    assert_eq!(
        attr(attrs, "http.route").as_deref(),
        Some("/api/v1/notifications")
    );
    assert!(
        attr(attrs, "http.response.status_code").is_some_and(|s| s.starts_with('2')),
        "{attrs:?}"
    );
    assert_eq!(
        attr(&request.resource, "service.name").as_deref(),
        Some("lms-realtime")
    );
    assert_eq!(
        attr(&request.resource, "service.instance.id").as_deref(),
        Some("trace-node")
    );

    let emit = spans
        .iter()
        .find(|s| s.span.name == "emit notification:new" && hex(&s.span.trace_id) == TRACE_ID)
        .expect("the emit to the user's room, in the backend's trace");
    assert_eq!(
        emit.span.parent_span_id, request.span.span_id,
        "the emit is a child of the request"
    );
    assert_eq!(
        attr(&emit.span.attributes, "socketio.event").as_deref(),
        Some("notification:new")
    );

    // A Socket.IO event is a span too, named from the event table.
    let ack = student.ack("notification:list", json!({})).await;
    assert_eq!(ack["ok"], true, "{ack}");
    let spans = receiver
        .wait_for("a span for the notification:list event", |spans| {
            spans
                .iter()
                .any(|s| s.span.name == "socket.io notification:list")
        })
        .await;
    let event = spans
        .iter()
        .find(|s| s.span.name == "socket.io notification:list")
        .unwrap();
    assert_eq!(
        attr(&event.span.attributes, "socketio.namespace").as_deref(),
        Some("/")
    );
    assert_eq!(
        attr(&event.span.attributes, "socketio.outcome").as_deref(),
        Some("ok")
    );

    // No span carries a user id or a token, in any attribute.
    let service = service_token(tenant);
    for s in &spans {
        for kv in &s.span.attributes {
            let v = kv.value.as_ref().map(text).unwrap_or_default();
            assert!(
                !v.contains(user) && !v.contains(&service),
                "{}: {}={v}",
                s.span.name,
                kv.key
            );
        }
    }
    student.disconnect().await;
    gateway.stop().await;
}

#[tokio::test]
async fn with_traces_turned_off_nothing_is_sent_to_the_collector() {
    let receiver = Receiver::start().await;
    let gateway = Gateway::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_TRACES_EXPORTER", "none".into()),
    ])
    .await;
    let (tenant, user) = ("tenant-off", "u1");
    let student = connect(&gateway.node, &token(user, Some(tenant), Role::Student)).await;
    notify_traced(&gateway.node, tenant, user).await;
    student.inbox.next("notification:new").await;
    // Several export intervals, then a graceful stop, which would flush what was queued.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    student.disconnect().await;
    gateway.stop().await;
    assert_eq!(receiver.requests(), 0, "{:?}", receiver.spans());
}

#[tokio::test]
async fn the_last_spans_are_sent_when_the_node_stops() {
    let receiver = Receiver::start().await;
    let gateway = Gateway::start(&[
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("{}/v1/traces", receiver.endpoint()),
        ),
        // An interval far longer than the test: only the shutdown flush can send them.
        ("OTEL_BSP_SCHEDULE_DELAY", "600000".into()),
    ])
    .await;
    notify_traced(&gateway.node, "tenant-stop", "u1").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.requests(), 0, "nothing before the interval");
    gateway.stop().await;
    let spans = receiver.spans();
    assert!(
        spans
            .iter()
            .any(|s| s.span.name == "POST /api/v1/notifications"
                && hex(&s.span.trace_id) == TRACE_ID),
        "{spans:?}"
    );
}
