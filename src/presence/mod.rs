//! Presence (§10): who is online, per course and per tenant, across the cluster.
//!
//! A user is online in a scope while any of its sockets is in it on any node; several
//! tabs are one user. Each node counts its own sockets in memory ([`tracker`]) and only
//! tells the [`PresenceStore`] when a user's first socket on this node enters a scope and
//! when its last one leaves, so a second tab costs no store round trip. The store answers
//! whether the user came online or went away cluster-wide, and whether instructors are to
//! be told now or later: [`decide`] debounces those announcements per user and course.
//!
//! Two engines, like the rest of the store: [`memory::MemoryPresence`] for one node, and
//! [`redis::RedisPresence`] for a cluster, whose entries belong to the node process that
//! wrote them and are purged by any other node once that process's heartbeat expires.
//! Both pass [`conformance`].

pub mod cache;
pub mod conformance;
pub mod flights;
pub mod keys;
pub mod memory;
pub mod query;
pub mod redis;
pub mod relay;
pub mod tracker;

use async_trait::async_trait;

use crate::ids::{CourseId, TenantId, UserId};
use crate::store::StoreResult;

pub use tracker::{Announcement, Announcer, Presence, SocketPresence};

/// Where a user can be present.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Tenant(TenantId),
    Course(TenantId, CourseId),
}

impl Scope {
    pub fn tenant(&self) -> &TenantId {
        match self {
            Self::Tenant(t) | Self::Course(t, _) => t,
        }
    }

    /// Only course presence is announced (to the course's instructors).
    pub fn announces(&self) -> bool {
        matches!(self, Self::Course(..))
    }
}

/// One online user of a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentUser {
    pub user: UserId,
    /// The role the user is present with: its course role, or its token's role.
    pub role: String,
    /// When its first socket came online, in ms since the epoch.
    pub since_ms: u64,
}

/// What to do about a change of a user's presence in a course.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to tell: the scope does not announce, or instructors were already told
    /// this state (a flap that ended where it began).
    Quiet,
    /// Tell the instructors now.
    Announce,
    /// Told too recently: ask again ([`PresenceStore::settle`]) at this time (ms).
    Suppressed { recheck_at_ms: u64 },
}

/// The answer to a join or leave of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The user's presence in the scope flipped cluster-wide (first socket / last socket).
    pub flipped: bool,
    pub verdict: Verdict,
}

impl Change {
    pub const NONE: Self = Self {
        flipped: false,
        verdict: Verdict::Quiet,
    };
}

/// The answer to [`PresenceStore::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// Whether the user is online in the scope now (what an announcement would say).
    pub online: bool,
    pub verdict: Verdict,
}

/// A user that went away because the node holding it died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departed {
    pub scope: Scope,
    pub user: UserId,
    pub role: String,
    pub verdict: Verdict,
}

/// What the periodic upkeep found.
#[derive(Debug, Default)]
pub struct Upkeep {
    /// Users of dead nodes that are now gone.
    pub departed: Vec<Departed>,
    /// This node's entries were purged (its heartbeat lapsed): write them again.
    pub resync: bool,
}

/// Clock and debounce of one call: passed in so that every engine decides alike.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub now_ms: u64,
    pub debounce_ms: u64,
}

/// Cluster-wide presence, fed by each node's transitions.
#[async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// This node now has `user` in `scope` (its first socket here). Idempotent per node.
    async fn join(
        &self,
        scope: &Scope,
        user: &UserId,
        role: &str,
        rules: Rules,
    ) -> StoreResult<Change>;

    /// This node no longer has `user` in `scope`. Idempotent per node.
    async fn leave(&self, scope: &Scope, user: &UserId, rules: Rules) -> StoreResult<Change>;

    /// After a suppressed announcement: whether the state instructors last heard differs
    /// from the present one, and so is to be announced now.
    async fn settle(&self, scope: &Scope, user: &UserId, rules: Rules) -> StoreResult<Settled>;

    /// `user`, present in the scope, holds `role` there now (a membership changed while it
    /// was online); keeps its `since`. Nothing when it is not present.
    async fn set_role(&self, scope: &Scope, user: &UserId, role: &str) -> StoreResult<()>;

    /// Online users in the scope.
    async fn count(&self, scope: &Scope) -> StoreResult<u64>;

    /// Up to `limit` online users of the scope.
    async fn list(&self, scope: &Scope, limit: usize) -> StoreResult<Vec<PresentUser>>;

    /// Periodic work: keep this node's entries alive, purge those of dead nodes.
    async fn upkeep(&self, rules: Rules) -> StoreResult<Upkeep>;

    /// Removes this node's remaining entries (clean shutdown).
    async fn withdraw(&self, rules: Rules) -> StoreResult<Vec<Departed>>;
}

/// The last state announced for a user in a course: online or not, and when (ms).
pub type Announced = Option<(bool, u64)>;

/// The debounce rule, shared by every engine (the Redis scripts spell the same rule in
/// Lua): announce a change at once unless the last announcement is younger than the
/// debounce; then ask again when it is old enough, and announce only if the state still
/// differs. Returns the verdict and the announced state to keep (`None`: forget it).
pub fn decide(last: Announced, online: bool, rules: Rules) -> (Verdict, Announced) {
    let (state, at) = last.unwrap_or((false, 0));
    let window_open = last.is_some() && at + rules.debounce_ms > rules.now_ms;
    if state == online {
        // Already what instructors last heard; an "offline" record past its window is
        // no longer needed.
        let keep = if !online && !window_open { None } else { last };
        return (Verdict::Quiet, keep);
    }
    if window_open {
        return (
            Verdict::Suppressed {
                recheck_at_ms: at + rules.debounce_ms,
            },
            last,
        );
    }
    (Verdict::Announce, Some((online, rules.now_ms)))
}

pub fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(now_ms: u64) -> Rules {
        Rules {
            now_ms,
            debounce_ms: 2_000,
        }
    }

    #[test]
    fn a_first_join_is_announced_at_once() {
        assert_eq!(
            decide(None, true, at(10_000)),
            (Verdict::Announce, Some((true, 10_000)))
        );
    }

    #[test]
    fn a_leave_right_after_the_join_announcement_waits_for_the_window() {
        let (v, kept) = decide(Some((true, 10_000)), false, at(10_500));
        assert_eq!(
            v,
            Verdict::Suppressed {
                recheck_at_ms: 12_000
            }
        );
        assert_eq!(kept, Some((true, 10_000)));
    }

    #[test]
    fn a_flap_that_ends_online_is_never_announced() {
        // The leave was suppressed; the rejoin finds instructors already told "online".
        assert_eq!(
            decide(Some((true, 10_000)), true, at(10_800)).0,
            Verdict::Quiet
        );
    }

    #[test]
    fn after_the_window_a_leave_is_announced_and_later_forgotten() {
        let (v, kept) = decide(Some((true, 10_000)), false, at(12_000));
        assert_eq!((v, kept), (Verdict::Announce, Some((false, 12_000))));
        assert_eq!(decide(kept, false, at(14_001)), (Verdict::Quiet, None));
    }
}
