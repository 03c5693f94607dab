//! Admission: exact caps on sessions and sockets that no race can overshoot (§13).
//!
//! Every cap is a reservation taken *before* any await and given back by dropping it
//! ([`Slot`]), so a refusal, a disconnect or a socket that vanishes without either all
//! release exactly once. The caps held here are this node's: the node's sockets, the
//! sockets per client IP, and the sessions that have not authenticated yet (in total and
//! per IP). The per-user and per-tenant caps are cluster-wide and live in the
//! [`ConnectionLedger`](crate::store::connections::ConnectionLedger).
//!
//! A handshake (an Engine.IO request without `sid`) takes a pending slot in
//! [`Admission::admit_handshake`]; the [`SessionGuard`] that holds it rides in the
//! handshake request's extensions, which engineioxide keeps for the session's life, so it
//! is dropped (and its slot freed) when the session ends, however it ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use super::pacing::ConnectPacer;
use crate::client_ip::ClientIp;
use crate::ids::TenantId;
use crate::recent_refusals::{RecentRefusals, Seen};
use crate::refusal_log::{Refusal, RefusalLog};

/// This node's limits on sessions and sockets.
#[derive(Debug, Clone)]
pub struct AdmissionLimits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub max_pending_sessions: usize,
    pub max_pending_sessions_per_ip: usize,
    pub connect_attempts_per_session: u32,
    /// Connects doing their store work at once ([`ConnectPacer`]); 0: no gate.
    pub connect_concurrency: usize,
    /// Longest wait for a turn at the pacer before `UNAVAILABLE`.
    pub connect_queue_timeout: Duration,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapExceeded {
    Node,
    Ip,
    PendingNode,
    PendingIp,
}

impl CapExceeded {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Node => "node connection cap reached",
            Self::Ip => "per-IP connection cap reached",
            Self::PendingNode => "node cap on unauthenticated sessions reached",
            Self::PendingIp => "per-IP cap on unauthenticated sessions reached",
        }
    }
}

/// One counter of a cap, incremented only while below the cap.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Counter {
    fn try_take(&self, cap: usize) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_ok()
    }

    fn give_back(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// Counts per client IP; entries are removed at zero so the map holds only live IPs.
#[derive(Default)]
struct PerIp(Mutex<HashMap<ClientIp, usize>>);

impl PerIp {
    fn try_take(&self, ip: ClientIp, cap: usize) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_default();
        if *n >= cap {
            if *n == 0 {
                map.remove(&ip);
            }
            return false;
        }
        *n += 1;
        true
    }

    fn give_back(&self, ip: ClientIp) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }

    fn get(&self, ip: ClientIp) -> usize {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&ip).copied().unwrap_or(0)
    }
}

/// The node's admission state, shared by the HTTP layer and the connect middleware.
pub struct Admission {
    limits: AdmissionLimits,
    /// Refusal lines of this node, aggregated per client IP.
    pub log: RefusalLog<std::net::IpAddr>,
    /// The last security refusals of this node, for the operator console.
    pub recent: Arc<RecentRefusals>,
    sockets: Counter,
    sockets_per_ip: PerIp,
    pending: Counter,
    pending_per_ip: PerIp,
    /// Turns for the store work of connects.
    pub pacer: ConnectPacer,
}

/// Which reservation a [`Slot`] gives back.
enum SlotKind {
    Pending,
    PendingIp(ClientIp),
}

/// A held reservation; dropping it gives it back.
pub struct Slot {
    admission: Arc<Admission>,
    kind: SlotKind,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let a = &self.admission;
        match self.kind {
            SlotKind::Pending => a.pending.give_back(),
            SlotKind::PendingIp(ip) => a.pending_per_ip.give_back(ip),
        }
    }
}

/// A socket's reservations on this node: one of the node's sockets and, when its address
/// is known, one of its IP's; dropping it gives both back. One value, held inline in the
/// socket's session for its life (a `Vec` of two [`Slot`]s was an allocation per socket).
pub struct SocketSlot {
    admission: Arc<Admission>,
    ip: Option<ClientIp>,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.admission.sockets.give_back();
        if let Some(ip) = self.ip {
            self.admission.sockets_per_ip.give_back(ip);
        }
    }
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Arc<Self> {
        Arc::new(Self {
            pacer: ConnectPacer::new(limits.connect_concurrency, limits.connect_queue_timeout),
            limits,
            log: RefusalLog::default(),
            recent: Arc::default(),
            sockets: Counter::default(),
            sockets_per_ip: PerIp::default(),
            pending: Counter::default(),
            pending_per_ip: PerIp::default(),
        })
    }

    /// Logs a refusal (aggregated per client IP) and keeps a security refusal in the
    /// console's ring, which sees every one: it is bounded, not aggregated.
    pub fn report(&self, r: &Refusal<'_>) {
        if let Some(kind) = r.security {
            let tenant = r.tenant.and_then(|t| TenantId::parse(t).ok());
            self.recent.record(Seen {
                kind,
                what: r.what,
                code: r.code,
                client: r.ip,
                tenant: tenant.as_ref(),
            });
        }
        self.log.report(r);
    }

    pub fn limits(&self) -> &AdmissionLimits {
        &self.limits
    }

    /// Sockets connected (or reserved by a connect in progress) on this node.
    pub fn sockets(&self) -> usize {
        self.sockets.get()
    }

    /// Sessions on this node that have not authenticated yet.
    pub fn pending(&self) -> usize {
        self.pending.get()
    }

    pub fn sockets_from(&self, ip: ClientIp) -> usize {
        self.sockets_per_ip.get(ip)
    }

    fn slot(self: &Arc<Self>, kind: SlotKind) -> Slot {
        Slot {
            admission: self.clone(),
            kind,
        }
    }

    /// Reserves a socket on this node and for its IP (when known).
    pub fn reserve_socket(
        self: &Arc<Self>,
        ip: Option<ClientIp>,
    ) -> Result<SocketSlot, CapExceeded> {
        if !self.sockets.try_take(self.limits.max_connections) {
            return Err(CapExceeded::Node);
        }
        // Dropped on the IP's refusal: gives the node's socket back.
        let mut slot = SocketSlot {
            admission: self.clone(),
            ip: None,
        };
        if let Some(ip) = ip {
            if !self
                .sockets_per_ip
                .try_take(ip, self.limits.max_connections_per_ip)
            {
                return Err(CapExceeded::Ip);
            }
            slot.ip = Some(ip);
        }
        Ok(slot)
    }

    /// Admits a new Engine.IO session from `ip`, or says which cap it hit.
    pub fn admit_handshake(
        self: &Arc<Self>,
        ip: ClientIp,
    ) -> Result<Arc<SessionGuard>, CapExceeded> {
        if !self.pending.try_take(self.limits.max_pending_sessions) {
            return Err(CapExceeded::PendingNode);
        }
        let node = self.slot(SlotKind::Pending);
        if !self
            .pending_per_ip
            .try_take(ip, self.limits.max_pending_sessions_per_ip)
        {
            return Err(CapExceeded::PendingIp);
        }
        let per_ip = self.slot(SlotKind::PendingIp(ip));
        Ok(Arc::new(SessionGuard {
            ip,
            pending: Mutex::new(Some([node, per_ip])),
            failed_connects: AtomicU32::new(0),
            _held: crate::metrics::GaugeHeld::handshake(),
        }))
    }
}

/// One Engine.IO session's admission state, kept in its handshake request's extensions
/// until the socket is admitted (the request is then released).
pub struct SessionGuard {
    pub ip: ClientIp,
    pending: Mutex<Option<[Slot; 2]>>,
    failed_connects: AtomicU32,
    _held: crate::metrics::GaugeHeld,
}

impl SessionGuard {
    /// The session authenticated: it no longer counts as pending.
    pub fn authenticated(&self) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    pub fn failed_connects(&self) -> u32 {
        self.failed_connects.load(Ordering::Acquire)
    }

    /// Records a refused CONNECT; returns how many this session has had.
    pub fn connect_failed(&self) -> u32 {
        self.failed_connects.fetch_add(1, Ordering::AcqRel) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max: usize, per_ip: usize, pending: usize, pending_ip: usize) -> Arc<Admission> {
        Admission::new(AdmissionLimits {
            max_connections: max,
            max_connections_per_ip: per_ip,
            max_pending_sessions: pending,
            max_pending_sessions_per_ip: pending_ip,
            connect_attempts_per_session: 3,
            connect_concurrency: 0,
            connect_queue_timeout: Duration::from_secs(1),
        })
    }

    fn ip(s: &str) -> ClientIp {
        ClientIp(s.parse().unwrap())
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_node_cap() {
        let a = admission(20, 1000, 10, 10);
        let held = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        if let Ok(s) = a.reserve_socket(None) {
                            held.lock().unwrap().push(s);
                        }
                    }
                });
            }
        });
        assert_eq!(held.lock().unwrap().len(), 20);
        assert_eq!(a.sockets(), 20);
        held.lock().unwrap().clear();
        assert_eq!(a.sockets(), 0);
    }

    #[test]
    fn an_ip_over_its_cap_is_refused_and_the_node_slot_it_took_is_given_back() {
        let a = admission(10, 2, 10, 10);
        let _one = a.reserve_socket(Some(ip("1.1.1.1"))).unwrap();
        let _two = a.reserve_socket(Some(ip("1.1.1.1"))).unwrap();
        assert_eq!(
            a.reserve_socket(Some(ip("1.1.1.1"))).err(),
            Some(CapExceeded::Ip)
        );
        assert_eq!(a.sockets(), 2);
        assert!(a.reserve_socket(Some(ip("2.2.2.2"))).is_ok());
    }

    #[test]
    fn a_pending_session_frees_its_slot_when_it_authenticates_or_ends() {
        let a = admission(10, 10, 2, 1);
        let g = a.admit_handshake(ip("1.1.1.1")).unwrap();
        assert_eq!(
            a.admit_handshake(ip("1.1.1.1")).err(),
            Some(CapExceeded::PendingIp)
        );
        let other = a.admit_handshake(ip("2.2.2.2")).unwrap();
        assert_eq!(
            a.admit_handshake(ip("3.3.3.3")).err(),
            Some(CapExceeded::PendingNode)
        );
        g.authenticated();
        assert_eq!(a.pending(), 1);
        drop(other);
        assert_eq!(a.pending(), 0);
        drop(g);
        assert!(a.admit_handshake(ip("1.1.1.1")).is_ok());
    }

    #[test]
    fn failed_connects_are_counted_per_session() {
        let a = admission(10, 10, 10, 10);
        let g = a.admit_handshake(ip("1.1.1.1")).unwrap();
        assert_eq!(g.connect_failed(), 1);
        assert_eq!(g.connect_failed(), 2);
        let h = a.admit_handshake(ip("1.1.1.1")).unwrap();
        assert_eq!(h.connect_failed(), 1);
    }
}
