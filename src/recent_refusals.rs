//! The node's most recent security refusals, for the operator console.
//!
//! The log is aggregated per source ([`crate::refusal_log`]) and the counters have no
//! detail, so an operator asking "what was just refused, from where?" needs a third view:
//! a small ring of the last refusals with time, kind, code, client address and the tenant
//! when the caller was known. It is bounded ([`CAPACITY`]), so a flood only overwrites it;
//! it holds no token and no reason text from the client.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{SecondsFormat, Utc};

use crate::ids::TenantId;
use crate::types::RecentRefusal;

/// Refusals kept per node; the oldest goes first.
pub const CAPACITY: usize = 200;

/// One refusal as the sites that refuse know it.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// The security kind ([`SecurityKind::as_str`](crate::metrics::SecurityKind::as_str)).
    pub kind: &'a str,
    /// What was refused: `connect`, `handshake`, an event name, an API route template.
    pub what: &'a str,
    pub code: &'a str,
    pub client: Option<IpAddr>,
    pub tenant: Option<&'a TenantId>,
}

/// The ring; one per node, shared by the socket and HTTP refusal sites.
#[derive(Debug)]
pub struct RecentRefusals {
    ring: Mutex<VecDeque<(Option<TenantId>, RecentRefusal)>>,
    capacity: usize,
}

impl Default for RecentRefusals {
    fn default() -> Self {
        Self::new(CAPACITY)
    }
}

impl RecentRefusals {
    pub fn new(capacity: usize) -> Self {
        Self {
            ring: Mutex::new(VecDeque::with_capacity(capacity.min(CAPACITY))),
            capacity: capacity.max(1),
        }
    }

    /// Keeps one refusal, dropping the oldest when full.
    pub fn record(&self, seen: Seen<'_>) {
        let entry = RecentRefusal {
            at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            kind: seen.kind.to_owned(),
            what: seen.what.to_owned(),
            code: seen.code.to_owned(),
            client: seen.client.map(|ip| ip.to_string()),
            tenant: seen.tenant.cloned(),
        };
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() >= self.capacity {
            ring.pop_front();
        }
        ring.push_back((seen.tenant.cloned(), entry));
    }

    /// The refusals `visible` admits, newest first, at most `limit`.
    pub fn newest(
        &self,
        limit: usize,
        visible: impl Fn(Option<&TenantId>) -> bool,
    ) -> Vec<RecentRefusal> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter()
            .rev()
            .filter(|(t, _)| visible(t.as_ref()))
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen<'a>(what: &'a str, tenant: Option<&'a TenantId>) -> Seen<'a> {
        Seen {
            kind: "auth_failed",
            what,
            code: "INVALID_TOKEN",
            client: Some("203.0.113.9".parse().unwrap()),
            tenant,
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_refusals_and_drops_the_oldest() {
        let ring = RecentRefusals::new(3);
        for what in ["a", "b", "c", "d"] {
            ring.record(seen(what, None));
        }
        let whats: Vec<_> = ring
            .newest(10, |_| true)
            .into_iter()
            .map(|r| r.what)
            .collect();
        assert_eq!(whats, ["d", "c", "b"]);
        assert_eq!(
            ring.newest(1, |_| true)[0].client.as_deref(),
            Some("203.0.113.9")
        );
    }

    #[test]
    fn a_tenant_filter_sees_only_its_own_tenants_refusals() {
        let ring = RecentRefusals::default();
        let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
        ring.record(seen("x", Some(&a)));
        ring.record(seen("y", Some(&b)));
        ring.record(seen("z", None));
        let only_a = ring.newest(10, |t| t == Some(&a));
        assert_eq!(only_a.len(), 1);
        assert_eq!(only_a[0].what, "x");
        assert_eq!(only_a[0].tenant.as_ref(), Some(&a));
        assert_eq!(ring.newest(10, |_| true).len(), 3);
    }
}
