//! Connecting: authenticate once, place the socket in its rooms, watch its expiry.
//!
//! The middleware runs before the client sees CONNECT, so a socket is in all its rooms
//! (including course rooms from the membership cache) before any event can reach it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;
use socketioxide_core::adapter::DefinedAdapter;

use std::time::Duration;

use super::admission::{Admission, CapExceeded, SessionGuard};
use super::recovery::{self, Plan};
use super::session::{Reservations, Session};
use super::{ClientInfo, CtxSlot, EventCx, SocketCtx, register};
use crate::auth::{AuthError, Claims, Role, token_from_handshake};
use crate::error::{AppError, ErrorCode};
use crate::ids::CourseId;
use crate::metrics::{self, SecurityKind};
use crate::presence::SocketPresence;
use crate::refusal_log::Refusal as LogLine;
use crate::releases::LedgerSlot;
use crate::rooms;
use crate::store::connections::Holder;
use crate::types::{CourseRole, RefreshPayload, Refreshed};

/// A refused connection; its Display is the `connect_error` message the client sees.
#[derive(Debug)]
pub struct Refusal(ErrorCode);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// Registers the default namespace with the authenticating middleware.
pub fn attach<A: Adapter + DefinedAdapter>(io: &SocketIo<A>, ctx: Arc<SocketCtx<A>>) -> A::InitRes {
    let mw_ctx = ctx.clone();
    let on_connect = move |s: SocketRef<A>| {
        let ctx = ctx.clone();
        async move {
            connected(s.clone(), ctx.clone());
            if let Some(session) = s.extensions.get::<Arc<Session>>() {
                recovery::resume(&s, &ctx, &session).await;
            }
        }
    };
    let middleware = move |s: SocketRef<A>, TryData(auth): TryData<serde_json::Value>| {
        let ctx = mw_ctx.clone();
        async move { authenticate(s, auth.ok(), ctx).await }
    };
    io.ns("/", on_connect.with(middleware))
}

/// Where a connect comes from, and the session it belongs to.
struct Attempt<'a> {
    sid: String,
    /// The handshake request, read once here (the token, the client, the guard).
    parts: Arc<http::request::Parts>,
    client: ClientInfo,
    guard: Option<Arc<SessionGuard>>,
    admission: &'a Admission,
}

impl Attempt<'_> {
    /// Counts, logs (aggregated per IP) and returns a refusal; closes the session once it
    /// has been refused `CONNECT_ATTEMPTS_PER_SESSION` times.
    fn refuse(&self, code: ErrorCode, reason: &str, security: bool) -> Refusal {
        metrics::connect_outcome(code.as_str());
        if security {
            metrics::security_event(SecurityKind::AuthFailed);
        }
        self.admission.report(&LogLine {
            what: "connect",
            code: code.as_str(),
            reason,
            security: security.then_some(SecurityKind::AuthFailed.as_str()),
            ip: self.client.ip.map(|ip| ip.0),
            user_agent: self.client.user_agent.as_deref(),
            sid: Some(&self.sid),
            ..Default::default()
        });
        Refusal(code)
    }

    fn attempts(&self) -> u32 {
        self.admission.limits().connect_attempts_per_session.max(1)
    }

    /// Records this refusal; whether it used up the session's attempts.
    fn used_up(&self) -> bool {
        self.guard
            .as_ref()
            .is_some_and(|g| g.connect_failed() >= self.attempts())
    }

    /// Whether the session had used up its attempts before this CONNECT.
    fn exhausted(&self) -> bool {
        self.guard
            .as_ref()
            .is_some_and(|g| g.failed_connects() >= self.attempts())
    }
}

/// How long a session that used up its CONNECT attempts stays open, so that the last
/// `connect_error` reaches the client before the transport closes.
const CLOSE_AFTER_REFUSAL: Duration = Duration::from_millis(100);

async fn authenticate<A: Adapter>(
    s: SocketRef<A>,
    auth: Option<serde_json::Value>,
    ctx: Arc<SocketCtx<A>>,
) -> Result<(), Refusal> {
    if s.req_parts_released() {
        // A socket of this connection was admitted and released the handshake, then left
        // the namespace: a CONNECT on it would have no client address and no admission
        // guard (nor the per-IP caps). Closing the transport makes the client reconnect,
        // with a session of its own.
        metrics::connect_outcome(ErrorCode::Unavailable.as_str());
        s.close_transport();
        return Err(Refusal(ErrorCode::Unavailable));
    }
    let parts = s.req_parts();
    let attempt = Attempt {
        sid: s.id.to_string(),
        client: ClientInfo::of(&parts),
        guard: parts.extensions.get::<Arc<SessionGuard>>().cloned(),
        parts,
        admission: &ctx.admission,
    };
    if attempt.exhausted() {
        // Attempts used up and the close already scheduled: no more work, no more lines.
        s.close_transport();
        return Err(Refusal(ErrorCode::RateLimited));
    }
    match admit(&s, auth, &ctx, &attempt).await {
        Ok(()) => {
            if let Some(g) = &attempt.guard {
                g.authenticated();
            }
            // Nothing reads the handshake request after this (its client address and user
            // agent are in the session): its headers and extensions are not kept per socket.
            s.release_req_parts();
            Ok(())
        }
        Err(refusal) => {
            if attempt.used_up() {
                let s = s.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(CLOSE_AFTER_REFUSAL).await;
                    s.close_transport();
                });
            }
            Err(refusal)
        }
    }
}

/// Verifies the token, takes every connection reservation, and places the socket.
async fn admit<A: Adapter>(
    s: &SocketRef<A>,
    auth: Option<serde_json::Value>,
    ctx: &Arc<SocketCtx<A>>,
    attempt: &Attempt<'_>,
) -> Result<(), Refusal> {
    if ctx.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(attempt.refuse(ErrorCode::Unavailable, "node is draining", false));
    }
    let parts = &attempt.parts;
    let token = token_from_handshake(auth.as_ref(), parts.uri.query(), &parts.headers);
    let verified = match token {
        Ok(None) => Err(AuthError::Missing),
        Ok(Some(t)) => ctx.verifier.verify(&t).await,
        Err(e) => Err(e),
    };
    let claims = match verified.and_then(|c| {
        if c.role == Role::Service {
            Err(AuthError::RoleNotAllowed)
        } else {
            Ok(c)
        }
    }) {
        Ok(c) => c,
        Err(e) => return Err(attempt.refuse(e.code(), &e.to_string(), true)),
    };
    // The store work below waits its turn: a reconnect storm queues here, not in the
    // store client where calls would time out.
    let Ok(_turn) = ctx.admission.pacer.turn().await else {
        return Err(attempt.refuse(
            ErrorCode::Unavailable,
            "node busy: too many connects in progress, retry",
            false,
        ));
    };
    if let Err(e) = ctx.operator.check(&claims).await {
        let security = e.code == ErrorCode::Unauthorized;
        if security {
            metrics::revoked_token_refused("connect");
        }
        return Err(attempt.refuse(e.code, &e.message, security));
    }
    // Reservations before any await: two connects racing for the last slot cannot both
    // take it. Each is given back by dropping it, on any refusal below.
    let node = ctx
        .admission
        .reserve_socket(attempt.client.ip)
        .map_err(|cap| {
            let code = match cap {
                CapExceeded::Ip => ErrorCode::RateLimited,
                _ => ErrorCode::Unavailable,
            };
            attempt.refuse(code, cap.reason(), code == ErrorCode::RateLimited)
        })?;
    let holder = Holder {
        tenant: claims.tenant.clone(),
        user: claims.sub.clone(),
    };
    let ledger = match LedgerSlot::take(&ctx.ledger, &ctx.releases, holder, ctx.ledger_caps()).await
    {
        Ok(Ok(slot)) => slot,
        Ok(Err(cap)) => return Err(attempt.refuse(ErrorCode::RateLimited, cap.reason(), true)),
        Err(e) => return Err(attempt.refuse(ErrorCode::Unavailable, &e.to_string(), false)),
    };
    let plan = recovery::plan(s, ctx.gateway.recovery(), &claims, auth.as_ref()).await;
    let (mut rooms, mut courses) = match initial_rooms(ctx, &claims).await {
        Ok(r) => r,
        Err(e) => return Err(attempt.refuse(e.code, &e.message, false)),
    };
    let joined = match &plan {
        Plan::Recover { saved, .. } => {
            rejoin(ctx, &claims, &saved.joined, &mut rooms, &mut courses).await
        }
        _ => Vec::new(),
    };
    // Emits to these rooms from now on reach this node before the socket is in them
    // (a recovering socket joins them in `recovery::resume`, right after CONNECT).
    if let Err(e) = ctx.gateway.rooms_ready(&rooms).await {
        return Err(attempt.refuse(e.code, &e.message, false));
    }
    let recovery = recovery::place(s, ctx.gateway.recovery(), plan, rooms, joined).await;
    // Nothing below refuses: the socket is online from here.
    let presence = claims
        .tenant
        .as_ref()
        .filter(|_| ctx.presence.enabled())
        .map(|t| {
            let courses = courses
                .into_iter()
                .map(|(c, r)| (c, r.as_str().to_owned()))
                .collect();
            SocketPresence::open(
                ctx.presence.clone(),
                t.clone(),
                claims.sub.clone(),
                claims.role.as_str(),
                courses,
            )
        });
    let session = Arc::new(
        Session::with_reservations(
            claims,
            attempt.client.clone(),
            Reservations {
                node: Some(node),
                ledger: Some(ledger),
            },
        )
        .with_parts(presence, recovery),
    );
    // Events must have a handler the moment the client sees CONNECT: socketioxide runs
    // the connect handler in a task of its own after sending CONNECT, so registering there
    // would drop an event emitted right at `connect`.
    register(s);
    s.extensions.insert(session);
    Ok(())
}

/// The rooms a socket belongs to from the start (§2), and the courses among them.
async fn initial_rooms<A: Adapter>(
    ctx: &SocketCtx<A>,
    c: &Claims,
) -> Result<(Vec<String>, Vec<(CourseId, CourseRole)>), AppError> {
    let mut rooms = vec![rooms::platform_role(c.role)];
    let mut courses = Vec::new();
    if let Some(t) = &c.tenant {
        rooms.push(rooms::tenant(t));
        rooms.push(rooms::user(t, &c.sub));
        rooms.push(rooms::tenant_role(t, c.role));
        if matches!(c.role, Role::Admin | Role::SuperAdmin) {
            rooms.push(rooms::admins(t));
        }
        if let Some(jti) = &c.jti {
            rooms.push(rooms::token(t, jti));
        }
        for (course, role) in ctx.gateway.user_courses(t, &c.sub).await? {
            rooms.push(rooms::course(t, &course));
            if role == CourseRole::Instructor {
                rooms.push(rooms::course_instructors(t, &course));
            }
            courses.push((course, role));
        }
    }
    Ok((rooms, courses))
}

/// The courses a recovering socket had joined with `course:join` that it may still enter
/// (the same check as `course:join`, membership read afresh): their rooms are added to
/// `rooms`, and the courses it is a member of to `courses` (presence).
async fn rejoin<A: Adapter>(
    ctx: &SocketCtx<A>,
    c: &Claims,
    saved: &[String],
    rooms: &mut Vec<String>,
    courses: &mut Vec<(CourseId, CourseRole)>,
) -> Vec<String> {
    let Some(t) = &c.tenant else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    for course in saved.iter().filter_map(|id| CourseId::parse(id).ok()) {
        let role = match ctx.gateway.course_role(t, &course, &c.sub).await {
            Ok(role) => role,
            Err(e) => {
                tracing::warn!(user = %c.sub, course = %course, error = %e.message, "course not rejoined");
                continue;
            }
        };
        match role {
            Some(r) => {
                rooms.push(rooms::course(t, &course));
                if r == CourseRole::Instructor {
                    rooms.push(rooms::course_instructors(t, &course));
                }
                if !courses.iter().any(|(known, _)| known == &course) {
                    courses.push((course.clone(), r));
                }
            }
            None if matches!(c.role, Role::Admin | Role::SuperAdmin) => {
                rooms.push(rooms::course(t, &course));
            }
            None => continue,
        }
        kept.push(course.to_string());
    }
    kept
}

fn connected<A: Adapter>(s: SocketRef<A>, ctx: Arc<SocketCtx<A>>) {
    let Some(session) = s.extensions.get::<Arc<Session>>() else {
        tracing::error!(sid = %s.id, "connected without a session; disconnecting");
        let _ = s.disconnect();
        return;
    };
    let claims = &session.claims;
    metrics::connect_outcome("accepted");
    metrics::connection_opened(ctx.gateway.node_id());
    if let Some(t) = &claims.tenant {
        ctx.tenants.add(t, 1.0);
    }
    tracing::info!(
        sid = %s.id,
        user = %claims.sub,
        tenant = claims.tenant.as_ref().map(|t| t.as_str()).unwrap_or("-"),
        role = claims.role.as_str(),
        transport = ?s.transport_type(),
        "socket connected"
    );
    ctx.expiry
        .set(s.id, None, session.expires.load(Ordering::Acquire));
    push_unread_count(&s, &ctx, claims);

    // Captures nothing, like the event handler (`register`): no allocation per socket.
    s.on_disconnect(
        |s: SocketRef<A>, reason: DisconnectReason, State(slot): State<CtxSlot<A>>| async move {
            let (Some(ctx), Some(session)) = (slot.get(), s.extensions.get::<Arc<Session>>())
            else {
                return;
            };
            let claims = &session.claims;
            ctx.expiry
                .cancel(s.id, session.expires.load(Ordering::Acquire));
            session.release();
            if let Some(p) = &session.presence {
                p.close();
            }
            recovery::release(&s, &ctx, &session);
            let reason = if crate::emit::slow_consumer_closed(&s) {
                "slow_consumer"
            } else {
                reason_label(reason)
            };
            metrics::connection_closed(ctx.gateway.node_id(), reason);
            if let Some(t) = &claims.tenant {
                ctx.tenants.add(t, -1.0);
            }
            tracing::info!(sid = %s.id, user = %claims.sub, reason, "socket disconnected");
        },
    );
}

/// Every socket of a tenant user learns its unread count at once (the Gateway says why);
/// the store read must not hold up CONNECT, so it runs beside it.
fn push_unread_count<A: Adapter>(s: &SocketRef<A>, ctx: &Arc<SocketCtx<A>>, claims: &Claims) {
    let Some(t) = claims.tenant.clone() else {
        return;
    };
    let (s, gateway, user) = (s.clone(), ctx.gateway.clone(), claims.sub.clone());
    tokio::spawn(async move {
        if let Err(e) = gateway.send_unread_count(&s, &t, &user).await {
            tracing::warn!(sid = %s.id, tenant = %t, error = %e.message, "count on connect not read");
        }
    });
}

fn reason_label(r: DisconnectReason) -> &'static str {
    match r {
        DisconnectReason::TransportClose => "transport_close",
        DisconnectReason::MultipleHttpPollingError => "multiple_polling",
        DisconnectReason::PacketParsingError => "packet_parsing_error",
        DisconnectReason::TransportError => "transport_error",
        DisconnectReason::HeartbeatTimeout => "heartbeat_timeout",
        DisconnectReason::ClientNSDisconnect => "client_disconnect",
        DisconnectReason::ServerNSDisconnect => "server_disconnect",
        DisconnectReason::ClosingServer => "closing_server",
    }
}

/// `auth:refresh`: a valid token for the same user, tenant and role moves the expiry.
pub async fn refresh<A: Adapter>(cx: EventCx<A>, p: RefreshPayload) -> Result<Refreshed, AppError> {
    let claims = cx.ctx.verifier.verify(&p.token).await.map_err(|e| {
        cx.refuse(
            SecurityKind::AuthFailed,
            AppError::new(ErrorCode::Unauthorized, format!("refresh refused: {e}")),
        )
    })?;
    if let Err(e) = cx.ctx.operator.check(&claims).await {
        if e.code != ErrorCode::Unauthorized {
            return Err(e);
        }
        metrics::revoked_token_refused("refresh");
        return Err(cx.refuse(
            SecurityKind::AuthFailed,
            AppError::new(
                ErrorCode::Unauthorized,
                format!("refresh refused: {}", e.message),
            ),
        ));
    }
    let current = cx.claims();
    if claims.sub != current.sub || claims.tenant != current.tenant || claims.role != current.role {
        return Err(cx.refuse(
            SecurityKind::AuthFailed,
            AppError::new(
                ErrorCode::Unauthorized,
                "refresh refused: the token is for another user, tenant or role",
            ),
        ));
    }
    let armed = cx.session.expires.swap(claims.exp, Ordering::AcqRel);
    cx.ctx.expiry.set(cx.socket.id, Some(armed), claims.exp);
    // Revoking the new token by its `jti` must reach this socket too.
    if let (Some(t), Some(jti)) = (&claims.tenant, &claims.jti) {
        cx.socket.join(rooms::token(t, jti));
    }
    Ok(Refreshed {
        expires_at: claims.exp,
    })
}
