//! OpenTelemetry traces, off unless an OTLP endpoint is configured.
//!
//! When on, [`export::install`] adds a `tracing-opentelemetry` layer that turns the
//! gateway's own spans (and nothing else: no log events, no dependency spans) into OTLP
//! spans sent over HTTP in batches. Three kinds of span exist, each made here so that
//! their names and attributes are written once: a service API request
//! ([`request_span`], a child of the caller's W3C `traceparent`), a Socket.IO event
//! handled ([`event_span`]) and an emit to rooms ([`emit_span`]). Their attributes are
//! bounded and carry no ids: route templates, event names, statuses.
//!
//! When off, nothing is created: [`enabled`] is one relaxed load, checked before a span
//! is built, so a node without traces pays nothing per request or event.

pub mod export;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::error::ErrorCode;

pub use export::{TraceExport, Traces};

/// The target of every span made here: the export layer takes this target alone.
pub const TARGET: &str = "lms_realtime::traces";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are being exported (set once, by [`export::install`]).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn set_enabled() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// A service API request, named `METHOD /route/{template}`, the child of the caller's
/// `traceparent` when the request carries a valid one (a new trace otherwise).
pub fn request_span(method: &http::Method, route: &str, headers: &http::HeaderMap) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        "http request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        "http.request.method" = %method,
        "http.route" = route,
        "http.response.status_code" = Empty,
    );
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if let Err(e) = span.set_parent(parent) {
        tracing::debug!(error = %e, "request span not parented to the caller's trace");
    }
    span
}

/// Records the answer's status on a [`request_span`]; a server error marks the span failed.
pub fn record_status(span: &Span, status: http::StatusCode) {
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
}

/// One Socket.IO event handled: the event name from the event table, never a client's
/// unknown name.
pub fn event_span(event: &'static str, namespace: &str) -> Span {
    tracing::info_span!(
        target: TARGET,
        "socket.io event",
        otel.name = %format_args!("socket.io {event}"),
        otel.kind = "server",
        otel.status_code = Empty,
        "socketio.event" = event,
        "socketio.namespace" = namespace,
        "socketio.outcome" = Empty,
    )
}

/// Records an event's outcome (`ok` or the contract's error code) on an [`event_span`];
/// the gateway's own failures (those answered 5xx on HTTP) mark the span failed.
pub fn record_outcome(span: &Span, outcome: Result<(), ErrorCode>) {
    let code = outcome.err();
    span.record("socketio.outcome", code.map_or("ok", ErrorCode::as_str));
    if code.is_some_and(|c| c.http_status() >= 500) {
        span.record("otel.status_code", "error");
    }
}

/// One emit of a server event to rooms (on this node and, in a cluster, published to the
/// others). A child of whatever caused it: a request or an event.
pub fn emit_span(event: &'static str) -> Span {
    tracing::info_span!(
        target: TARGET,
        "socket.io emit",
        otel.name = %format_args!("emit {event}"),
        otel.kind = "producer",
        "socketio.event" = event,
    )
}
