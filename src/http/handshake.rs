//! The HTTP gate in front of Socket.IO: every request gets its client address, and a new
//! Engine.IO session (a request without `sid`) must get an admission slot first (§13).
//!
//! Unauthenticated sessions cost memory before any token is seen, so they are capped per
//! node and per IP here, before engineioxide creates one. The [`SessionGuard`] put in the
//! request's extensions stays with the session (engineioxide keeps the handshake request's
//! parts until a socket is admitted), so the connect middleware can count its failed
//! CONNECTs, and its slot is given back when the session authenticates or ends.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::client_ip::{ClientIp, TrustedProxies};
use crate::error::{AppError, ErrorCode};
use crate::metrics::{self, SecurityKind};
use crate::refusal_log::Refusal;
use crate::socket::admission::{Admission, CapExceeded};
use crate::types::ApiErrorBody;

/// What the gate needs; shared by every request.
#[derive(Clone)]
pub struct Gate {
    pub admission: Arc<Admission>,
    pub trusted: Arc<TrustedProxies>,
    pub socket_io_path: &'static str,
}

/// Resolves the client address, and admits new Socket.IO sessions.
pub async fn gate(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let ip = client_ip(&gate.trusted, &mut req);
    if req.uri().path().starts_with(gate.socket_io_path) && is_new_session(&req) {
        let Some(ip) = ip else {
            return next.run(req).await;
        };
        match gate.admission.admit_handshake(ip) {
            Ok(guard) => {
                req.extensions_mut().insert(guard);
            }
            Err(cap) => return refuse(&gate, &req, ip, cap),
        }
    }
    next.run(req).await
}

/// The request's [`ClientIp`], computed once from the peer and trusted forwarding headers.
fn client_ip(trusted: &TrustedProxies, req: &mut Request) -> Option<ClientIp> {
    if let Some(ip) = req.extensions().get::<ClientIp>() {
        return Some(*ip);
    }
    let ConnectInfo(peer) = *req.extensions().get::<ConnectInfo<SocketAddr>>()?;
    let ip = trusted.resolve(peer, req.headers());
    req.extensions_mut().insert(ip);
    Some(ip)
}

/// An Engine.IO request that opens a session rather than continuing one.
fn is_new_session(req: &Request) -> bool {
    !req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .any(|pair| pair.split('=').next() == Some("sid"))
}

fn refuse(gate: &Gate, req: &Request, ip: ClientIp, cap: CapExceeded) -> Response {
    let (status, code) = match cap {
        CapExceeded::PendingIp => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited),
        _ => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
    };
    metrics::connect_outcome(code.as_str());
    metrics::security_event(SecurityKind::RateLimited);
    gate.admission.report(&Refusal {
        what: "handshake",
        code: code.as_str(),
        reason: cap.reason(),
        security: Some(SecurityKind::RateLimited.as_str()),
        ip: Some(ip.0),
        user_agent: req
            .headers()
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        ..Default::default()
    });
    let body = ApiErrorBody {
        error: AppError::new(code, cap.reason()),
    };
    let mut res = (status, Json(body)).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        res.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("5"),
        );
    }
    res
}
