//! A socket's session: its verified claims and per-socket limits, kept in the socket's
//! extensions at connect so no handler ever parses a token or trusts a payload's ids.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use crate::auth::Claims;
use crate::presence::SocketPresence;
use crate::releases::LedgerSlot;
use crate::socket::ClientInfo;
use crate::socket::admission::SocketSlot;
use crate::socket::recovery::SocketRecovery;

/// The reservations a connected socket holds; given back by dropping them.
#[derive(Default)]
pub struct Reservations {
    pub node: Option<SocketSlot>,
    pub ledger: Option<LedgerSlot>,
}

/// Per-socket state; shared as `Arc<Session>` in the socket's extensions.
pub struct Session {
    pub claims: Claims,
    /// Where the socket connected from, for its security log lines.
    pub client: ClientInfo,
    /// Refusals by the event rate in a row (the rate itself is the node's:
    /// [`EventRate`](super::event_rate::EventRate)).
    strikes: AtomicU32,
    /// When the last refusal happened, in ms since [`BASE`].
    last_strike_ms: AtomicU64,
    flooding: AtomicBool,
    /// Allocated at the first `progress:video` (most sockets never send one): boxed, the
    /// map costs every socket 8 bytes instead of 48.
    #[allow(clippy::box_collection)]
    video_forwarded: Mutex<Option<Box<HashMap<String, Instant>>>>,
    /// Held until disconnect; also released if the socket is dropped without one.
    reservations: Mutex<Reservations>,
    /// Its presence (a socket with a tenant, presence on). Here rather than an extension
    /// of its own: each extension is an allocation, an `Arc` and a map entry per socket.
    pub presence: Option<SocketPresence>,
    /// Its part in connection state recovery (recovery on, not opted out).
    pub recovery: Option<SocketRecovery>,
    /// When its token expires (seconds since the epoch): the claims' `exp`, moved by
    /// `auth:refresh`; the node's expiry timers are armed for it (`socket::expiry`).
    pub expires: AtomicU64,
}

/// What the rate limiter says about one event.
#[derive(Debug, PartialEq, Eq)]
pub enum RateVerdict {
    Allowed,
    Limited,
    /// Limited too many times in a row: disconnect.
    Flooding,
}

/// The origin of every session's refusal timestamps (one per process, not per socket).
static BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

/// A refusal later than this after the previous one starts the strike count again.
const STRIKE_WINDOW_MS: u64 = 1_000;

/// Videos remembered per socket for the `progress:video` throttle.
const MAX_THROTTLED_VIDEOS: usize = 256;

impl Session {
    pub fn new(claims: Claims) -> Self {
        Self::with_reservations(claims, ClientInfo::default(), Reservations::default())
    }

    pub fn with_reservations(
        claims: Claims,
        client: ClientInfo,
        reservations: Reservations,
    ) -> Self {
        let exp = claims.exp;
        Self {
            claims,
            client,
            strikes: AtomicU32::new(0),
            last_strike_ms: AtomicU64::new(0),
            flooding: AtomicBool::new(false),
            video_forwarded: Mutex::default(),
            reservations: Mutex::new(reservations),
            presence: None,
            recovery: None,
            expires: AtomicU64::new(exp),
        }
    }

    /// The socket's presence and recovery state, made before its session.
    pub fn with_parts(
        mut self,
        presence: Option<SocketPresence>,
        recovery: Option<SocketRecovery>,
    ) -> Self {
        self.presence = presence;
        self.recovery = recovery;
        self
    }

    /// Gives back the socket's connection reservations (at disconnect).
    pub fn release(&self) {
        drop(std::mem::take(
            &mut *self.reservations.lock().unwrap_or_else(|p| p.into_inner()),
        ));
    }

    /// Marks the socket as flooding: no further event of it is handled.
    pub fn flag_flooding(&self) {
        self.flooding.store(true, Ordering::Release);
    }

    pub fn is_flooding(&self) -> bool {
        self.flooding.load(Ordering::Acquire)
    }

    /// What one event gets, given whether the node's event rate `allowed` it: a refusal
    /// is a strike, and strikes in a row make the socket flooding.
    pub fn rate_verdict(&self, allowed: bool, flood_after: u32) -> RateVerdict {
        if allowed {
            return RateVerdict::Allowed;
        }
        // Strikes run on while refusals keep coming: a socket sending five times its rate
        // gets some events through, but is still flooding. A second without a refusal
        // starts the count again.
        let now = BASE.elapsed().as_millis() as u64;
        let last = self.last_strike_ms.swap(now, Ordering::Relaxed);
        let strikes = if now.saturating_sub(last) > STRIKE_WINDOW_MS {
            self.strikes.store(1, Ordering::Relaxed);
            1
        } else {
            self.strikes.fetch_add(1, Ordering::Relaxed) + 1
        };
        if strikes >= flood_after.max(1) {
            RateVerdict::Flooding
        } else {
            RateVerdict::Limited
        }
    }

    /// Whether a `progress:video` for this video may be forwarded now.
    pub fn video_may_forward(&self, video: &str, interval: Duration) -> bool {
        let now = Instant::now();
        let mut seen = self
            .video_forwarded
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let seen = seen.get_or_insert_with(Box::default);
        if let Some(last) = seen.get(video)
            && now.duration_since(*last) < interval
        {
            return false;
        }
        if seen.len() >= MAX_THROTTLED_VIDEOS {
            seen.retain(|_, last| now.duration_since(*last) < interval);
        }
        seen.insert(video.to_owned(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::ids::{TenantId, UserId};
    use crate::socket::event_rate::EventRate;
    use socketioxide::socket::Sid;

    fn session() -> Session {
        let claims = Claims {
            sub: UserId::parse("u").unwrap(),
            tenant: Some(TenantId::parse("t").unwrap()),
            role: Role::Student,
            exp: u64::MAX,
            iat: None,
            jti: None,
        };
        Session::new(claims)
    }

    /// The node's event rate and one socket's session, as `socket::rate_limited` uses them.
    fn check(rate: &EventRate, sid: &Sid, s: &Session, flood_after: u32) -> RateVerdict {
        s.rate_verdict(rate.allows(sid), flood_after)
    }

    #[test]
    fn a_burst_passes_then_events_are_limited_then_a_flood_is_flagged() {
        let (rate, sid, s) = (EventRate::new(1, 3), Sid::new(), session());
        for _ in 0..3 {
            assert_eq!(check(&rate, &sid, &s, 3), RateVerdict::Allowed);
        }
        assert_eq!(check(&rate, &sid, &s, 3), RateVerdict::Limited);
        assert_eq!(check(&rate, &sid, &s, 3), RateVerdict::Limited);
        assert_eq!(check(&rate, &sid, &s, 3), RateVerdict::Flooding);
    }

    #[test]
    fn a_socket_sending_far_above_its_rate_is_flagged_even_when_some_events_get_through() {
        let (rate, sid, s) = (EventRate::new(50, 1), Sid::new(), session());
        let mut allowed = 0;
        let mut flagged = false;
        for _ in 0..400 {
            match check(&rate, &sid, &s, 50) {
                RateVerdict::Allowed => allowed += 1,
                RateVerdict::Limited => {}
                RateVerdict::Flooding => {
                    flagged = true;
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            flagged,
            "{allowed} events got through, and it was never flagged"
        );
        assert!(allowed >= 1);
    }

    #[test]
    fn video_progress_is_forwarded_once_per_interval_per_video() {
        let s = session();
        let hour = Duration::from_secs(3600);
        assert!(s.video_may_forward("v1", hour));
        assert!(!s.video_may_forward("v1", hour));
        assert!(s.video_may_forward("v2", hour));
        assert!(s.video_may_forward("v1", Duration::ZERO));
    }
}
