//! Refusal logging without amplification (PROTOCOL.md §13).
//!
//! An attacker who sends a thousand bad CONNECTs must not get a thousand WARN lines: per
//! source (a client IP, usually) the first few refusals of a window are logged in full,
//! the rest only counted, and the first refusal after the window closes logs one summary
//! line with how many were suppressed. Counters (`lms_security_events_total`) still see
//! every refusal; only the log is aggregated.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Refusals logged in full per source and window; the rest are summarised.
pub const FULL_LINES_PER_WINDOW: u32 = 5;
/// How long one source's window lasts.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Sources remembered at once; beyond this, windows that have closed are forgotten first,
/// and a source that cannot get a slot is logged under the shared overflow window.
const MAX_SOURCES: usize = 10_000;

/// What to do with one refusal's log line.
#[derive(Debug, PartialEq, Eq)]
pub enum LogVerdict {
    /// Log it in full; `suppressed` refusals of this source went unlogged before it (a
    /// window closed since), and the line should say so.
    Log { suppressed: u64 },
    /// Count it, log nothing.
    Suppress,
}

struct Window {
    started: Instant,
    logged: u32,
    suppressed: u64,
}

/// Per-source log windows; one per node, shared by every refusal site.
pub struct RefusalLog<K: Hash + Eq + Clone> {
    windows: Mutex<HashMap<Option<K>, Window>>,
    full_lines: u32,
    window: Duration,
}

impl<K: Hash + Eq + Clone> Default for RefusalLog<K> {
    fn default() -> Self {
        Self::new(FULL_LINES_PER_WINDOW, WINDOW)
    }
}

impl<K: Hash + Eq + Clone> RefusalLog<K> {
    pub fn new(full_lines: u32, window: Duration) -> Self {
        Self {
            windows: Mutex::default(),
            full_lines: full_lines.max(1),
            window,
        }
    }

    /// Decides whether this refusal from `source` is logged.
    pub fn admit(&self, source: &K) -> LogVerdict {
        self.admit_at(source, Instant::now())
    }

    fn admit_at(&self, source: &K, now: Instant) -> LogVerdict {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = Some(source.clone());
        if !windows.contains_key(&key) && windows.len() >= MAX_SOURCES {
            let window = self.window;
            windows.retain(|k, w| k.is_none() || now.duration_since(w.started) < window);
            if windows.len() >= MAX_SOURCES {
                key = None;
            }
        }
        let w = windows.entry(key).or_insert(Window {
            started: now,
            logged: 0,
            suppressed: 0,
        });
        if now.duration_since(w.started) >= self.window {
            let suppressed = w.suppressed;
            *w = Window {
                started: now,
                logged: 1,
                suppressed: 0,
            };
            return LogVerdict::Log { suppressed };
        }
        if w.logged < self.full_lines {
            w.logged += 1;
            LogVerdict::Log { suppressed: 0 }
        } else {
            w.suppressed += 1;
            LogVerdict::Suppress
        }
    }
}

/// The context of one refusal, for its log line. Strings that came from the client (the
/// user agent, the reason text of a parse error) are logged as values: the log formatter
/// escapes them, and they are cut to [`MAX_CLIENT_TEXT`] characters.
#[derive(Debug, Default)]
pub struct Refusal<'a> {
    /// What was refused: `connect`, `handshake`, an event name, an API route.
    pub what: &'a str,
    pub code: &'a str,
    pub reason: &'a str,
    /// The security kind, when the refusal is a security event.
    pub security: Option<&'a str>,
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<&'a str>,
    pub sid: Option<&'a str>,
    pub user: Option<&'a str>,
    pub tenant: Option<&'a str>,
}

/// Client-supplied text kept in a log line.
pub const MAX_CLIENT_TEXT: usize = 160;

fn clipped(s: &str) -> &str {
    match s.char_indices().nth(MAX_CLIENT_TEXT) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl RefusalLog<std::net::IpAddr> {
    /// Logs a refusal unless its source has used up its lines for this window. The
    /// source is the client IP; refusals without one share a window.
    pub fn report(&self, r: &Refusal<'_>) {
        let source =
            r.ip.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let LogVerdict::Log { suppressed } = self.admit(&source) else {
            return;
        };
        tracing::warn!(
            what = r.what,
            code = r.code,
            reason = clipped(r.reason),
            security = r.security,
            ip = r.ip.map(tracing::field::display),
            user_agent = r.user_agent.map(clipped),
            sid = r.sid,
            user = r.user,
            tenant = r.tenant,
            suppressed_before = (suppressed > 0).then_some(suppressed),
            "refused"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_refusals_of_a_window_are_logged_and_the_rest_counted() {
        let log = RefusalLog::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        let verdicts: Vec<_> = (0..10).map(|_| log.admit_at(&"1.2.3.4", t0)).collect();
        assert_eq!(
            verdicts
                .iter()
                .filter(|v| matches!(v, LogVerdict::Log { .. }))
                .count(),
            3
        );
        assert_eq!(
            log.admit_at(&"1.2.3.4", t0 + Duration::from_secs(11)),
            LogVerdict::Log { suppressed: 7 }
        );
    }

    #[test]
    fn sources_have_windows_of_their_own() {
        let log = RefusalLog::new(1, Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(log.admit_at(&"a", t0), LogVerdict::Log { suppressed: 0 });
        assert_eq!(log.admit_at(&"a", t0), LogVerdict::Suppress);
        assert_eq!(log.admit_at(&"b", t0), LogVerdict::Log { suppressed: 0 });
    }

    #[test]
    fn many_sources_share_one_overflow_window_instead_of_growing_the_map() {
        let log = RefusalLog::new(1, Duration::from_secs(10));
        let t0 = Instant::now();
        let mut logged = 0;
        for i in 0..(MAX_SOURCES + 100) {
            if matches!(log.admit_at(&i, t0), LogVerdict::Log { .. }) {
                logged += 1;
            }
        }
        assert_eq!(logged, MAX_SOURCES + 1);
        assert!(log.windows.lock().unwrap().len() <= MAX_SOURCES + 1);
    }
}
