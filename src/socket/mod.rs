//! The Socket.IO surface: authentication at connect, room placement, and the event table.
//!
//! [`client_events`] lists every client event with its handler in one place; [`register`]
//! installs one fallback handler per socket that routes to its dispatch. Every handler is a named
//! async fn taking an [`EventCx`] and a typed payload and returning a `Result`; [`run`]
//! wraps it with the per-socket rate limit (and the flood flag), payload validation,
//! metrics and the ack envelope, so those rules hold for every event alike.

mod admin;
pub mod admission;
mod args;
pub mod client_events;
mod connect;
mod courses;
pub mod event_rate;
mod expiry;
mod notifications;
mod pacing;
pub mod presence;
mod progress;
pub mod recovery;
pub mod reply;
pub mod session;

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{Event, SocketRef, State};
use tracing::Instrument;

use crate::auth::{Claims, Verifier};
use crate::client_ip::ClientIp;
use crate::error::{AppError, ErrorCode};
use crate::ids::{TenantId, UserId};
use crate::metrics::{self, SecurityKind, TenantGauge};
use crate::operator::Operator;
use crate::refusal_log::Refusal;
use crate::service::Gateway;
use crate::store::connections::{ConnectionLedger, LedgerCaps};
use crate::types::parse_payload;

use admission::Admission;

use reply::Reply;
use session::{RateVerdict, Session};

/// Per-socket limits and the cluster-wide caps, from configuration (the node's own caps
/// are in [`admission::AdmissionLimits`]).
#[derive(Debug, Clone)]
pub struct SocketLimits {
    pub max_connections_per_user: usize,
    pub max_connections_per_tenant: usize,
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
    pub expiry: expiry::ExpiryTimers,
    /// The per-socket event rate, for every socket of the node.
    pub event_rate: event_rate::EventRate,
    pub admission: Arc<Admission>,
    pub ledger: Arc<dyn ConnectionLedger>,
    /// What closed sockets owe the ledger and the recovery store, paced.
    pub releases: crate::releases::Releases,
    pub operator: Operator<A>,
    pub presence: Arc<crate::presence::Presence>,
}

impl<A: Adapter> SocketCtx<A> {
    // One argument per shared part of the node; a parameter struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gateway: Gateway<A>,
        verifier: Verifier,
        limits: SocketLimits,
        tenant_metric_cap: usize,
        draining: Arc<AtomicBool>,
        admission: Arc<Admission>,
        ledger: Arc<dyn ConnectionLedger>,
        operator: Operator<A>,
        presence: Arc<crate::presence::Presence>,
    ) -> Self {
        Self {
            expiry: expiry::ExpiryTimers::start(gateway.io().clone()),
            event_rate: event_rate::EventRate::new(limits.event_rate_per_sec, limits.event_burst),
            releases: crate::releases::Releases::start(ledger.clone(), gateway.recovery().cloned()),
            gateway,
            verifier,
            limits,
            tenants: TenantGauge::new(tenant_metric_cap),
            draining,
            admission,
            ledger,
            operator,
            presence,
        }
    }

    /// Sockets on this node, counting connects that hold a reservation.
    pub fn connections(&self) -> usize {
        self.admission.sockets()
    }

    pub fn ledger_caps(&self) -> LedgerCaps {
        LedgerCaps {
            per_user: self.limits.max_connections_per_user,
            per_tenant: self.limits.max_connections_per_tenant,
        }
    }
}

/// The client address and user agent of a socket's handshake, for security log lines.
/// Copied out of the handshake request at CONNECT: the request's parts are released
/// once the socket is admitted (a header map and an extension map per idle socket).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<ClientIp>,
    pub user_agent: Option<Box<str>>,
}

impl ClientInfo {
    pub fn of(parts: &http::request::Parts) -> Self {
        Self {
            ip: parts.extensions.get::<ClientIp>().copied(),
            user_agent: crate::client_ip::user_agent(&parts.headers).map(String::into_boxed_str),
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

    /// Logs (aggregated per client IP) and counts a refused action, then returns the
    /// error to answer with.
    pub fn refuse(&self, kind: SecurityKind, err: AppError) -> AppError {
        metrics::security_event(kind);
        self.log_refusal(Some(kind), &err);
        err
    }

    fn log_refusal(&self, kind: Option<SecurityKind>, err: &AppError) {
        let c = self.claims();
        let client = &self.session.client;
        let sid = self.socket.id.to_string();
        self.ctx.admission.report(&Refusal {
            what: self.event,
            code: err.code.as_str(),
            reason: &err.message,
            security: kind.map(SecurityKind::as_str),
            ip: client.ip.map(|ip| ip.0),
            user_agent: client.user_agent.as_deref(),
            sid: Some(&sid),
            user: Some(c.sub.as_str()),
            tenant: c.tenant.as_ref().map(|t| t.as_str()),
        });
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

/// Installs the socket's one event entry point. A single fallback handler per socket (not
/// one boxed handler per event name) keeps the per-connection footprint small; the table
/// of events lives in [`client_events`].
/// It captures nothing (the context comes from the server's state, the session from the
/// socket's extensions), so registering it allocates nothing per socket.
fn register<A: Adapter>(s: &SocketRef<A>) {
    s.on_fallback(
        |s: SocketRef<A>,
         Event(name): Event,
         args::FirstArg(arg): args::FirstArg,
         reply: Reply<A>,
         State(slot): State<CtxSlot<A>>| {
            async move {
                let (Some(ctx), Some(session)) = (slot.get(), s.extensions.get::<Arc<Session>>())
                else {
                    tracing::error!(sid = %s.id, event = %name, "event before the socket's session; dropped");
                    return;
                };
                client_events::dispatch(
                    &name,
                    Incoming {
                        socket: s,
                        session,
                        ctx,
                        arg,
                        reply,
                    },
                )
                .await
            }
        },
    );
}

/// One incoming event, before it is routed.
struct Incoming<A: Adapter> {
    socket: SocketRef<A>,
    session: Arc<Session>,
    ctx: Arc<SocketCtx<A>>,
    arg: Result<serde_json::Value, AppError>,
    reply: Reply<A>,
}

/// Runs one handler under the rules every event shares (see [`handle`]), in a span when
/// traces are on.
async fn run<A, P, R, F, Fut>(event: &'static str, i: Incoming<A>, handler: F)
where
    A: Adapter,
    P: DeserializeOwned,
    R: Serialize,
    F: FnOnce(EventCx<A>, P) -> Fut,
    Fut: Future<Output = Result<R, AppError>>,
{
    if !crate::traces::enabled() {
        let _outcome = handle(event, i, handler).await;
        return;
    }
    let span = crate::traces::event_span(event, i.socket.ns());
    let outcome = handle(event, i, handler).instrument(span.clone()).await;
    crate::traces::record_outcome(&span, outcome);
}

/// Rate limit, parse, run, measure, answer; returns the outcome for the trace.
async fn handle<A, P, R, F, Fut>(
    event: &'static str,
    i: Incoming<A>,
    handler: F,
) -> Result<(), ErrorCode>
where
    A: Adapter,
    P: DeserializeOwned,
    R: Serialize,
    F: FnOnce(EventCx<A>, P) -> Fut,
    Fut: Future<Output = Result<R, AppError>>,
{
    let start = Instant::now();
    let Incoming {
        socket,
        session,
        ctx,
        arg,
        reply,
    } = i;
    if session.is_flooding() {
        // Flagged and being disconnected: nothing more is handled, answered or logged.
        return Err(ErrorCode::RateLimited);
    }
    let cx = EventCx {
        socket,
        session,
        ctx,
        event,
    };
    if rate_limited(&cx) {
        let err = AppError::new(ErrorCode::RateLimited, "too many events; slow down");
        metrics::event_handled(event, err.code.as_str(), start.elapsed());
        reply.send::<()>(event, &Err(err));
        return Err(ErrorCode::RateLimited);
    }
    let result = match arg.and_then(parse_payload::<P>) {
        Ok(payload) => handler(cx, payload).await,
        Err(e) => {
            cx.log_refusal(None, &e);
            Err(e)
        }
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code.as_str(),
    };
    metrics::event_handled(event, outcome, start.elapsed());
    reply.send(event, &result);
    result.map(|_| ()).map_err(|e| e.code)
}

/// Applies the per-socket rate limit; disconnects a socket that keeps flooding.
fn rate_limited<A: Adapter>(cx: &EventCx<A>) -> bool {
    let allowed = cx.ctx.event_rate.allows(&cx.socket.id);
    match cx
        .session
        .rate_verdict(allowed, cx.ctx.limits.flood_disconnect_after)
    {
        RateVerdict::Allowed => false,
        RateVerdict::Limited => {
            cx.refuse(
                SecurityKind::RateLimited,
                AppError::new(ErrorCode::RateLimited, "event rate exceeded"),
            );
            true
        }
        RateVerdict::Flooding => {
            cx.session.flag_flooding();
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
/// `slot` is the one given to the server's builder ([`CtxSlot`]).
pub fn serve<A: Adapter + socketioxide_core::adapter::DefinedAdapter>(
    io: &SocketIo<A>,
    ctx: Arc<SocketCtx<A>>,
    slot: &CtxSlot<A>,
) -> A::InitRes {
    let _ = slot.0.set(ctx.clone());
    connect::attach(io, ctx)
}

/// Where a socket's handlers find the node's [`SocketCtx`]: socketioxide's per-server state
/// (`SocketIoBuilder::with_state`), filled in [`serve`]. A handler that captured the
/// context (and the session) was a boxed closure per socket; one that captures nothing is
/// not an allocation.
pub struct CtxSlot<A: Adapter>(Arc<OnceLock<Arc<SocketCtx<A>>>>);

impl<A: Adapter> CtxSlot<A> {
    pub fn get(&self) -> Option<Arc<SocketCtx<A>>> {
        self.0.get().cloned()
    }
}

impl<A: Adapter> Clone for CtxSlot<A> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<A: Adapter> Default for CtxSlot<A> {
    fn default() -> Self {
        Self(Arc::default())
    }
}
