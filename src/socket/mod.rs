//! The Socket.IO surface: authentication at connect, room placement, and the event table.
//!
//! [`register`] lists every client event with its handler in one place. Every handler is
//! a named async fn taking an [`EventCx`] and a typed payload and returning a `Result`;
//! [`on`] wraps it with the per-socket rate limit, payload validation, metrics and the ack
//! envelope, so those rules hold for every event alike.

mod admin;
mod args;
mod connect;
mod courses;
mod notifications;
mod progress;
pub mod reply;
pub mod session;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::auth::{Claims, Verifier};
use crate::error::{AppError, ErrorCode};
use crate::ids::{TenantId, UserId};
use crate::metrics::{self, SecurityKind, TenantGauge};
use crate::service::Gateway;
use crate::types::parse_payload;

use reply::Reply;
use session::{RateVerdict, Session};

/// Per-socket and per-node limits, from configuration.
#[derive(Debug, Clone)]
pub struct SocketLimits {
    pub max_connections: usize,
    pub max_connections_per_user: usize,
    pub event_rate_per_sec: u32,
    pub event_burst: u32,
    pub flood_disconnect_after: u32,
    pub progress_video_interval: Duration,
}

/// What every socket handler shares on one node.
pub struct SocketCtx<A: Adapter> {
    pub gateway: Gateway<A>,
    pub verifier: Verifier,
    pub limits: SocketLimits,
    pub tenants: TenantGauge,
    pub draining: Arc<AtomicBool>,
    connections: AtomicUsize,
    per_user: Mutex<HashMap<(Option<TenantId>, UserId), usize>>,
}

impl<A: Adapter> SocketCtx<A> {
    pub fn new(
        gateway: Gateway<A>,
        verifier: Verifier,
        limits: SocketLimits,
        tenant_metric_cap: usize,
        draining: Arc<AtomicBool>,
    ) -> Self {
        Self {
            gateway,
            verifier,
            limits,
            tenants: TenantGauge::new(tenant_metric_cap),
            draining,
            connections: AtomicUsize::new(0),
            per_user: Mutex::default(),
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    fn user_connections(&self, claims: &Claims) -> usize {
        let map = self.per_user.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(claims.tenant.clone(), claims.sub.clone()))
            .copied()
            .unwrap_or(0)
    }

    fn track(&self, claims: &Claims, opened: bool) {
        let mut map = self.per_user.lock().unwrap_or_else(|p| p.into_inner());
        let key = (claims.tenant.clone(), claims.sub.clone());
        if opened {
            self.connections.fetch_add(1, Ordering::Relaxed);
            *map.entry(key).or_default() += 1;
        } else {
            self.connections.fetch_sub(1, Ordering::Relaxed);
            if let Some(n) = map.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&key);
                }
            }
        }
    }
}

/// What a handler knows about the event it serves.
pub struct EventCx<A: Adapter> {
    pub socket: SocketRef<A>,
    pub session: Arc<Session>,
    pub ctx: Arc<SocketCtx<A>>,
    pub event: &'static str,
}

impl<A: Adapter> EventCx<A> {
    pub fn claims(&self) -> &Claims {
        &self.session.claims
    }

    pub fn gateway(&self) -> &Gateway<A> {
        &self.ctx.gateway
    }

    /// The socket's own tenant.
    pub fn tenant(&self) -> Result<&TenantId, AppError> {
        self.claims().tenant()
    }

    /// Logs and counts a refused action, then returns the error to answer with.
    pub fn refuse(&self, kind: SecurityKind, err: AppError) -> AppError {
        let c = self.claims();
        metrics::security_event(kind);
        tracing::warn!(
            security = kind.as_str(),
            user = %c.sub,
            tenant = c.tenant.as_ref().map(|t| t.as_str()).unwrap_or("-"),
            role = c.role.as_str(),
            event = self.event,
            sid = %self.socket.id,
            reason = %err.message,
            "security event"
        );
        err
    }

    /// Checks the ids a payload names against the socket's own: another tenant is a
    /// `TENANT_MISMATCH`, another user a `FORBIDDEN`; both are security events.
    pub fn check_owner(
        &self,
        tenant: Option<&TenantId>,
        user: Option<&UserId>,
    ) -> Result<(), AppError> {
        let c = self.claims();
        if let Some(t) = tenant
            && c.tenant.as_ref() != Some(t)
        {
            return Err(self.refuse(SecurityKind::TenantMismatch, AppError::tenant_mismatch()));
        }
        if let Some(u) = user
            && *u != c.sub
        {
            return Err(self.refuse(
                SecurityKind::Forbidden,
                AppError::forbidden("a socket may only act on its own user's notifications"),
            ));
        }
        Ok(())
    }
}

/// Every client event of the contract (§3), with its handler.
fn register<A: Adapter>(s: &SocketRef<A>, ctx: &Arc<SocketCtx<A>>, session: &Arc<Session>) {
    on(s, ctx, session, "notification:read", notifications::read);
    on(
        s,
        ctx,
        session,
        "notification:read_all",
        notifications::read_all,
    );
    on(
        s,
        ctx,
        session,
        "notification:dismiss",
        notifications::dismiss,
    );
    on(s, ctx, session, "notification:count", notifications::count);
    on(s, ctx, session, "notification:list", notifications::list);
    on(s, ctx, session, "course:join", courses::join);
    on(s, ctx, session, "course:leave", courses::leave);
    on(s, ctx, session, "course:update", courses::update);
    on(s, ctx, session, "progress:content", progress::content);
    on(s, ctx, session, "progress:video", progress::video);
    on(s, ctx, session, "admin:broadcast", admin::broadcast);
    on(s, ctx, session, "admin:system_alert", admin::system_alert);
    on(s, ctx, session, "auth:refresh", connect::refresh);
    let ctx = ctx.clone();
    let session = session.clone();
    s.on_fallback(move |s: SocketRef<A>, reply: Reply<A>| {
        let (ctx, session) = (ctx.clone(), session.clone());
        async move {
            let cx = EventCx {
                socket: s,
                session,
                ctx,
                event: "unknown",
            };
            if rate_limited(&cx) {
                reply.send::<()>(
                    "unknown",
                    &Err(AppError::new(ErrorCode::RateLimited, "too many events")),
                );
                return;
            }
            metrics::event_handled(
                "unknown",
                ErrorCode::InvalidPayload.as_str(),
                Duration::ZERO,
            );
            reply.send::<()>("unknown", &Err(AppError::invalid("unknown event")));
        }
    });
}

/// Registers one event: rate limit, parse, run, measure, answer.
fn on<A, P, R, F, Fut>(
    s: &SocketRef<A>,
    ctx: &Arc<SocketCtx<A>>,
    session: &Arc<Session>,
    event: &'static str,
    handler: F,
) where
    A: Adapter,
    P: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    F: Fn(EventCx<A>, P) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R, AppError>> + Send + 'static,
{
    let ctx = ctx.clone();
    let session = session.clone();
    s.on(
        event,
        move |s: SocketRef<A>, args::FirstArg(arg): args::FirstArg, reply: Reply<A>| {
            let (ctx, session, handler) = (ctx.clone(), session.clone(), handler.clone());
            async move {
                let start = Instant::now();
                let cx = EventCx {
                    socket: s,
                    session,
                    ctx,
                    event,
                };
                if rate_limited(&cx) {
                    let err = AppError::new(ErrorCode::RateLimited, "too many events; slow down");
                    metrics::event_handled(event, err.code.as_str(), start.elapsed());
                    reply.send::<()>(event, &Err(err));
                    return;
                }
                let result = match arg.and_then(parse_payload::<P>) {
                    Ok(payload) => handler(cx, payload).await,
                    Err(e) => {
                        tracing::info!(event, error = %e.message, "invalid payload");
                        Err(e)
                    }
                };
                let outcome = match &result {
                    Ok(_) => "ok",
                    Err(e) => e.code.as_str(),
                };
                metrics::event_handled(event, outcome, start.elapsed());
                reply.send(event, &result);
            }
        },
    );
}

/// Applies the per-socket rate limit; disconnects a socket that keeps flooding.
fn rate_limited<A: Adapter>(cx: &EventCx<A>) -> bool {
    match cx.session.check_rate(cx.ctx.limits.flood_disconnect_after) {
        RateVerdict::Allowed => false,
        RateVerdict::Limited => {
            cx.refuse(
                SecurityKind::RateLimited,
                AppError::new(ErrorCode::RateLimited, "event rate exceeded"),
            );
            true
        }
        RateVerdict::Flooding => {
            cx.refuse(
                SecurityKind::RateLimited,
                AppError::new(ErrorCode::RateLimited, "flooding: disconnecting"),
            );
            if let Err(e) = cx.socket.clone().disconnect() {
                tracing::debug!(error = %e, "flooding socket already gone");
            }
            true
        }
    }
}

/// Wires the namespace: every socket passes [`connect::authenticate`] before it connects.
pub fn serve<A: Adapter + socketioxide_core::adapter::DefinedAdapter>(
    io: &SocketIo<A>,
    ctx: Arc<SocketCtx<A>>,
) -> A::InitRes {
    connect::attach(io, ctx)
}
