//! A real webhook receiver for the export tests: an axum server on a free port that checks
//! every request's `X-LMS-Signature` and `X-LMS-Timestamp` the way a backend would, can
//! fail (or hold) the first requests, and records the batches it accepted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use lms_realtime::export::sign;
use serde_json::Value;

/// What the receiver does with a request it will not accept.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Refuse {
    /// Answers 500.
    Fail,
    /// Never answers (the sender times out or dies waiting).
    Hold,
}

#[derive(Default)]
pub struct Seen {
    /// Requests received, accepted or not.
    pub requests: AtomicUsize,
    /// Requests whose signature or timestamp was wrong (must stay 0).
    pub bad: AtomicUsize,
    /// The events of every accepted batch, in arrival order.
    pub events: Mutex<Vec<Value>>,
    /// How many batches were accepted.
    pub batches: AtomicUsize,
}

pub struct Receiver {
    pub url: String,
    pub seen: Arc<Seen>,
    /// Requests below this number (0-based) are refused.
    refuse_first: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Ctx {
    secret: String,
    refuse_first: Arc<AtomicUsize>,
    how: Refuse,
    seen: Arc<Seen>,
}

async fn hook(State(cx): State<Ctx>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = cx.seen.requests.fetch_add(1, Ordering::SeqCst);
    let ts = headers
        .get("x-lms-timestamp")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let sig = headers
        .get("x-lms-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let fresh = ts.is_some_and(|ts| ts.abs_diff(now) <= 300);
    if !fresh || !sign::verify(&cx.secret, ts.unwrap_or(0), &body, sig) {
        cx.seen.bad.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    if n < cx.refuse_first.load(Ordering::SeqCst) {
        if cx.how == Refuse::Hold {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let batch: Value = serde_json::from_slice(&body).expect("a JSON batch");
    let events = batch["events"].as_array().expect("events: [...]").clone();
    cx.seen.events.lock().unwrap().extend(events);
    cx.seen.batches.fetch_add(1, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

impl Receiver {
    /// Starts a receiver that refuses its first `refuse_first` requests the way `how` says.
    pub async fn start(secret: &str, refuse_first: usize, how: Refuse) -> Self {
        let seen = Arc::new(Seen::default());
        let refuse = Arc::new(AtomicUsize::new(refuse_first));
        let cx = Ctx {
            secret: secret.to_owned(),
            refuse_first: refuse.clone(),
            how,
            seen: seen.clone(),
        };
        let app = axum::Router::new()
            .route("/hook", post(hook))
            .with_state(cx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            seen,
            refuse_first: refuse,
            task,
        }
    }

    /// From now on, accepts every request.
    pub fn accept_all(&self) {
        self.refuse_first.store(0, Ordering::SeqCst);
    }

    pub fn events(&self) -> Vec<Value> {
        self.seen.events.lock().unwrap().clone()
    }

    pub fn requests(&self) -> usize {
        self.seen.requests.load(Ordering::SeqCst)
    }

    pub fn bad_signatures(&self) -> usize {
        self.seen.bad.load(Ordering::SeqCst)
    }

    /// Waits (up to 20 s) until `done` holds for what was accepted.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let start = std::time::Instant::now();
        loop {
            let events = self.events();
            if done(&events) {
                return events;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "receiver never got {what}; got {events:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The secret the tests configure.
pub const HOOK_SECRET: &str = "whsec-test-0123456789abcdef";
