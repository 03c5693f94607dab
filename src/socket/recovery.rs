//! Connection state recovery at connect (PROTOCOL.md §9): offering a session id, taking a
//! session back, and replaying what the socket missed.
//!
//! The middleware decides ([`plan`]) once the token is verified: a client that opted out
//! gets no pid (and its broadcasts lose their offset in the vendored socketioxide); a
//! CONNECT with a known `pid` of the same user, and an offset that is still kept, recovers;
//! anything else is a new session. A recovering socket's live broadcasts are held from the
//! middleware on (the vendored `Socket::hold_broadcasts`); in [`resume`], after CONNECT, it
//! joins its rooms, gets its missed events, then what was held minus what the replay
//! already sent, and later live copies of replayed events are left out too
//! ([`crate::recovery::replayed`]): each event reaches it once, the replay first. On one
//! node the join and the replay also run in one step with the node's emits
//! (`Recovery::order`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::SocketCtx;
use super::session::Session;
use crate::auth::Claims;
use crate::emit;
use crate::ids::CourseId;
use crate::metrics;
use crate::recovery::received::Received;
use crate::recovery::replayed::Replayed;
use crate::recovery::{Entry, Missed, Offset, Pid, Recovery, SavedSession, keys, offset};
use crate::server_events::SERVER_EVENTS;

/// What a CONNECT's auth asks of recovery.
#[derive(Debug, Default, PartialEq)]
pub struct Ask {
    pub opt_out: bool,
    pub pid: Option<Pid>,
    /// `None` when absent (no event seen yet); `Some(None)` when not an offset of ours.
    pub offset: Option<Option<Offset>>,
}

impl Ask {
    pub fn read(auth: Option<&Value>) -> Ask {
        let Some(auth) = auth else {
            return Ask::default();
        };
        Ask {
            opt_out: auth.get("recovery") == Some(&Value::Bool(false)),
            pid: auth.get("pid").and_then(Value::as_str).and_then(Pid::parse),
            offset: auth
                .get("offset")
                .map(|o| o.as_str().and_then(Offset::parse)),
        }
    }
}

/// A socket's part in recovery, kept in its [`Session`].
pub struct SocketRecovery {
    // The pid is the socket's (`Socket::pid`), not copied here: a string per socket.
    start: Offset,
    /// Courses joined with `course:join`, kept with the session.
    joined: Mutex<Vec<String>>,
    /// What replays need, allocated at the socket's first replay (a recovery, or a Redis
    /// blip): most sockets never have one, and this is ~0.3 KB per socket.
    replays: OnceLock<Box<Replays>>,
}

/// A socket's replays: the recovery's, then each Redis blip's.
struct Replays {
    /// A recovering socket's rooms and offset, until [`resume`] takes them, with its turn
    /// (taken in the middleware, so that no blip replay runs before the recovery's).
    pending: Mutex<Option<Pending>>,
    /// One replay at a time.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// What the replays sent, whose live copies are left out (the socket's broadcast
    /// filter reads it).
    replayed: Arc<Mutex<Replayed>>,
    /// Where this socket's live traffic starts (the session's start for a new one, the
    /// client's offset for a recovered one), and per origin the highest offset a replay
    /// sent it: a blip replay sends nothing at or below either (see [`replay_blip`]).
    covered: Mutex<Covered>,
}

impl Replays {
    /// Live traffic from `from` on; with the rooms to `recover`, a recovery from `from`
    /// whose turn is taken now.
    fn new(from: Offset, recover: Option<Vec<String>>) -> Self {
        let turn = Arc::new(tokio::sync::Mutex::new(()));
        let pending = recover.map(|rooms| {
            let guard = turn.clone().try_lock_owned().expect("a new lock is free");
            (rooms, from, guard)
        });
        Self {
            pending: Mutex::new(pending),
            turn,
            replayed: Arc::default(),
            covered: Mutex::new(Covered {
                from,
                by_origin: HashMap::new(),
            }),
        }
    }
}

type Pending = (Vec<String>, Offset, tokio::sync::OwnedMutexGuard<()>);

/// What a socket already has, so that a blip replay does not send it again.
struct Covered {
    from: Offset,
    by_origin: HashMap<u32, Offset>,
}

impl Covered {
    fn has(&self, o: &Offset) -> bool {
        *o <= self.from || self.by_origin.get(&o.origin).is_some_and(|h| o <= h)
    }

    fn add(&mut self, sent: impl IntoIterator<Item = Offset>) {
        for o in sent {
            let h = self.by_origin.entry(o.origin).or_insert(o);
            *h = (*h).max(o);
        }
    }
}

impl SocketRecovery {
    fn saved(&self, sid: &str) -> SavedSession {
        SavedSession {
            start: self.start.to_string(),
            joined: self
                .joined
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            sid: sid.to_owned(),
        }
    }

    /// Where the session of socket `s` is stored (built when needed: a string per socket
    /// otherwise).
    fn key<A: Adapter>(s: &SocketRef<A>, claims: &Claims) -> String {
        keys::session(
            claims.tenant.as_ref(),
            &claims.sub,
            s.pid().unwrap_or_default(),
        )
    }

    /// The replay state, made at the first replay of a new session.
    fn replays(&self) -> &Replays {
        self.replays
            .get_or_init(|| Box::new(Replays::new(self.start, None)))
    }
}

/// What the middleware does with a connect.
pub enum Plan {
    /// Recovery off, or the client opted out.
    Off,
    /// A new session: join now.
    New,
    /// Recover: the rooms are joined and the events replayed in [`resume`].
    Recover {
        pid: Pid,
        saved: SavedSession,
        after: Offset,
    },
}

/// Reads the auth and the stored session. Never refuses: what cannot be recovered is new.
pub async fn plan<A: Adapter>(
    s: &SocketRef<A>,
    r: Option<&Arc<Recovery>>,
    claims: &Claims,
    auth: Option<&Value>,
) -> Plan {
    let Some(r) = r else {
        return Plan::Off;
    };
    let ask = Ask::read(auth);
    if ask.opt_out {
        s.strip_trailing_offset(offset::PREFIX);
        metrics::recovery_connect("opted_out");
        return Plan::Off;
    }
    let Some(pid) = ask.pid else {
        return Plan::New;
    };
    let key = keys::session(claims.tenant.as_ref(), &claims.sub, pid.as_str());
    let saved = match r.store.get_session(&key).await {
        Ok(Some(saved)) => saved,
        Ok(None) => {
            tracing::debug!(sid = %s.id, user = %claims.sub, "unknown or expired pid: new session");
            return Plan::New;
        }
        Err(e) => {
            r.store_failure(&s.id, &e, "recovery session not read: new session");
            return Plan::New;
        }
    };
    let Some(start) = Offset::parse(&saved.start) else {
        return Plan::New;
    };
    let after = match ask.offset {
        None => start,
        // Nothing before the session began can have been missed.
        Some(Some(o)) => o.max(start),
        Some(None) => {
            tracing::debug!(sid = %s.id, "offset not ours: new session");
            return Plan::New;
        }
    };
    Plan::Recover { pid, saved, after }
}

/// Places a connecting socket: a new session joins `rooms` at once and gets a pid; a
/// recovery checks that its offset is still kept and leaves the joining to [`resume`].
/// `joined` are the saved `course:join` courses the user may still enter (their rooms are
/// in `rooms`). Returns the socket's recovery state, for its [`Session`].
pub async fn place<A: Adapter>(
    s: &SocketRef<A>,
    r: Option<&Arc<Recovery>>,
    plan: Plan,
    mut rooms: Vec<String>,
    joined: Vec<String>,
) -> Option<SocketRecovery> {
    let (r, plan) = match (r, plan) {
        (Some(r), plan @ (Plan::New | Plan::Recover { .. })) => (r, plan),
        _ => {
            s.join(rooms);
            return None;
        }
    };
    if let Plan::Recover { pid, saved, after } = plan {
        rooms.push(keys::EVERYONE.to_owned());
        let outcome = r.store.since(&rooms, after).await;
        rooms.retain(|room| room != keys::EVERYONE);
        match outcome {
            Ok(Missed::Events(_)) => {
                let start = Offset::parse(&saved.start).unwrap_or(after);
                // Before the socket is in the namespace: no broadcast overtakes the replay.
                s.hold_broadcasts(r.held_max);
                metrics::recovery_connect("recovered");
                return Some(hold(s, pid, start, joined, Some((rooms, after))));
            }
            Ok(Missed::TooOld) => {
                metrics::recovery_connect("too_old");
                tracing::debug!(sid = %s.id, "offset no longer kept: new session");
            }
            Err(e) => {
                metrics::recovery_connect("too_old");
                tracing::warn!(sid = %s.id, error = %e, "missed events not read: new session");
            }
        }
    } else {
        metrics::recovery_connect("new");
    }
    // Taken before joining: every event after it reaches a socket of this session.
    let start = r.clock.next();
    s.join(rooms);
    let pid = Pid::new();
    Some(hold(s, pid, start, joined, None))
}

/// Gives the socket its pid (the CONNECT answer); its recovery state.
fn hold<A: Adapter>(
    s: &SocketRef<A>,
    pid: Pid,
    start: Offset,
    joined: Vec<String>,
    pending: Option<(Vec<String>, Offset)>,
) -> SocketRecovery {
    s.set_pid(pid.into_string());
    // A recovery's replay state is made now, its turn taken; a new session's waits for a
    // Redis blip.
    let replays = match pending {
        Some((rooms, after)) => OnceLock::from(Box::new(Replays::new(after, Some(rooms)))),
        None => OnceLock::new(),
    };
    SocketRecovery {
        start,
        joined: Mutex::new(joined),
        replays,
    }
}

/// Leaves out, from now on, the live copies of what a replay just sent this socket.
fn filter_replayed<A: Adapter>(s: &SocketRef<A>, me: &SocketRecovery, sent: &[Offset]) {
    if sent.is_empty() {
        return;
    }
    let me = me.replays();
    me.replayed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(sent.iter().copied());
    me.covered
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .add(sent.iter().copied());
    // The filter runs under the socket's gate lock and takes `replayed`: never call this
    // with `replayed` locked. Installing it again replaces an equal one (or one that
    // removed itself once all its offsets came back).
    let replayed = me.replayed.clone();
    s.filter_broadcasts(Box::new(move |trailing| {
        replayed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .verdict(trailing)
    }));
}

/// After CONNECT: a recovering socket joins its rooms and gets what it missed, then the
/// session is stored (again) for the next recovery.
pub async fn resume<A: Adapter>(s: &SocketRef<A>, ctx: &SocketCtx<A>, session: &Session) {
    let (Some(r), Some(me)) = (ctx.gateway.recovery(), &session.recovery) else {
        return;
    };
    let claims = &session.claims;
    let pending = me
        .replays
        .get()
        .and_then(|r| r.pending.lock().unwrap_or_else(|p| p.into_inner()).take());
    if let Some((rooms, after, _turn)) = pending {
        let _order = match &r.order {
            Some(order) => Some(order.lock(&rooms).await),
            None => None,
        };
        let mut read = rooms.clone();
        read.push(keys::EVERYONE.to_owned());
        s.join(rooms);
        let replayed = replay(s, r, &read, after).await;
        filter_replayed(s, me, &replayed);
        release_held(s).await;
    }
    save(s, r, me, claims).await;
}

/// Sends the missed events, each with its offset, to the socket alone; the offsets it
/// accounted for (sent, or its own).
async fn replay<A: Adapter>(
    s: &SocketRef<A>,
    r: &Recovery,
    rooms: &[String],
    after: Offset,
) -> Vec<Offset> {
    let missed = match r.store.since(rooms, after).await {
        Ok(Missed::Events(e)) => e,
        Ok(Missed::TooOld) => {
            tracing::warn!(sid = %s.id, "missed events trimmed during the recovery");
            return Vec::new();
        }
        Err(e) => {
            tracing::warn!(sid = %s.id, error = %e, "missed events not read");
            return Vec::new();
        }
    };
    let sent = send_entries(s, &missed).await;
    metrics::recovery_replayed(sent);
    tracing::info!(sid = %s.id, replayed = sent, "socket recovered");
    missed.iter().map(|e| e.offset).collect()
}

/// Sends what was held back during the replay, in arrival order, minus what the replay
/// sent; waits for a full send buffer as the replay does, then closes (the client recovers
/// again from what it got).
async fn release_held<A: Adapter>(s: &SocketRef<A>) {
    let deadline = tokio::time::Instant::now() + REPLAY_DRAIN;
    loop {
        match s.release_broadcasts() {
            Ok(()) => return,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err(left) => {
                tracing::warn!(sid = %s.id, left, "held broadcasts did not drain: closing to recover again");
                metrics::emit_dropped_n("any", left as u64);
                s.close_transport();
                return;
            }
        }
    }
}

/// Sends kept events to one socket, each with its offset, skipping the ones it sent itself;
/// how many were sent.
async fn send_entries<A: Adapter>(s: &SocketRef<A>, missed: &[crate::recovery::Entry]) -> u64 {
    let pid = s.pid().unwrap_or_default();
    let mut sent = 0;
    for e in missed.iter().filter(|e| e.except.as_deref() != Some(pid)) {
        let Some(name) = SERVER_EVENTS
            .iter()
            .find(|k| k.name == e.event)
            .map(|k| k.name)
        else {
            tracing::warn!(sid = %s.id, event = %e.event, "kept event of an unknown kind skipped");
            continue;
        };
        let data: Value = match serde_json::from_str(&e.data) {
            Ok(v) => v,
            Err(err) => {
                tracing::warn!(sid = %s.id, event = name, error = %err, "kept event unreadable");
                continue;
            }
        };
        if !emit::to_socket_draining(s, name, &(data, e.offset.to_string()), REPLAY_DRAIN).await {
            // Still full after the wait: close, so that it recovers again from what it got.
            tracing::warn!(sid = %s.id, "replay did not drain: closing to recover again");
            metrics::emit_dropped(name);
            s.close_transport();
            break;
        }
        sent += 1;
    }
    sent
}

/// Cluster: after the adapter subscribed again following a Redis reconnect, every local
/// socket gets, once, the kept events of its rooms that never reached this node: those of
/// other node processes (its own were delivered locally: the adapter delivers after a
/// successful publish) from [`BLIP_LOOKBACK`] before the subscription was lost on, minus
/// the offsets this node received ([`Received`]). See [`replay_blip`].
pub async fn replay_after_blips<A: Adapter>(
    io: socketioxide::SocketIo<A>,
    gateway: crate::service::Gateway<A>,
    received: Arc<Received>,
    mut resubscribed: tokio::sync::broadcast::Receiver<(u64, u64)>,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let (lost, back) = tokio::select! {
            _ = stop.cancelled() => return,
            r = resubscribed.recv() => match r {
                Ok(window) => window,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            },
        };
        let Some(r) = gateway.recovery().cloned() else {
            return;
        };
        let sockets = io.local().sockets();
        tracing::info!(
            sockets = sockets.len(),
            lost_at_ms = lost,
            "replaying what sockets missed while the adapter was not subscribed"
        );
        for s in sockets {
            let r = r.clone();
            let received = received.clone();
            tokio::spawn(async move { replay_blip(&s, &r, &received, lost, back).await });
        }
    }
}

/// How far before the subscription was lost a blip replay reads: an event is kept (its
/// offset taken) before it is published, and the two may be up to two command timeouts
/// apart (`crate::cluster::COMMAND_TIMEOUT`, 1.5 s each); node clocks may differ by the
/// recovery's clock allowance (1 s); the rest is margin for the pub/sub hop and the time
/// the driver takes to see the connection fail.
pub const BLIP_LOOKBACK: Duration = Duration::from_secs(6);

/// One socket's blip replay. Its broadcasts are held first; then its rooms' streams are
/// read from [`BLIP_LOOKBACK`] before `lost_ms`, and what it gets is every entry of another
/// node process that this node did not receive ([`Received`]: a received broadcast was
/// delivered to the socket already or is among the held ones) and that it does not have
/// already (before its live traffic began, or sent by an earlier replay). Then the held
/// broadcasts go out minus the replayed offsets, and later live copies of those are left
/// out ([`Replayed`]): an event that had not reached the node when the ring was read but
/// was on its way. When the ring cannot answer for that far back (it dropped offsets
/// there), the replay falls back to the window from `lost_ms` to `back_ms`, minus what the
/// ring still holds: nothing is lost, an event at the window's edges can come twice
/// (`lms_recovery_blip_fallbacks_total`). A second pass [`BLIP_SECOND_PASS`] later does the
/// same again (what the first sent is the socket's by then).
async fn replay_blip<A: Adapter>(
    s: &SocketRef<A>,
    r: &Recovery,
    received: &Received,
    lost_ms: u64,
    back_ms: u64,
) {
    let Some(session) = s.extensions.get::<Arc<Session>>() else {
        return;
    };
    let Some(me) = &session.recovery else {
        return;
    };
    // After the socket's recovery, if it is recovering, and after an earlier blip's replay;
    // a recovery that never reached its CONNECT keeps the turn until the socket goes.
    let Ok(_turn) = tokio::time::timeout(TURN_WAIT, me.replays().turn.lock()).await else {
        tracing::warn!(sid = %s.id, "blip replay skipped: the socket's recovery did not finish");
        return;
    };
    let after = Offset::at_ms(lost_ms.saturating_sub(BLIP_LOOKBACK.as_millis() as u64));
    for pass in 0..2 {
        if pass == 1 {
            tokio::time::sleep(BLIP_SECOND_PASS).await;
        }
        if !s.connected() {
            return;
        }
        let upto_ms = if pass == 0 { back_ms } else { offset::now_ms() };
        if !blip_pass(s, r, me, received, after, lost_ms, upto_ms).await {
            return;
        }
    }
}

/// How long after the first pass of a blip replay the second one reads again: an event
/// kept after the first read whose publish failed (its node's own pub/sub connection was
/// not back yet: the emit is then logged, not refused) is read then. Two command timeouts
/// (the keep's and the publish's) and 1 s.
pub const BLIP_SECOND_PASS: Duration =
    Duration::from_millis(2 * crate::cluster::COMMAND_TIMEOUT.as_millis() as u64 + 1_000);

/// One read and replay of a blip (see [`replay_blip`]); `false` when the socket was closed.
async fn blip_pass<A: Adapter>(
    s: &SocketRef<A>,
    r: &Recovery,
    me: &SocketRecovery,
    received: &Received,
    after: Offset,
    lost_ms: u64,
    upto_ms: u64,
) -> bool {
    // Before the ring is read: a broadcast received after that reaches the socket held.
    s.hold_broadcasts(r.held_max);
    let mut rooms: Vec<String> = s.rooms().into_iter().map(|r| r.into_owned()).collect();
    rooms.push(keys::EVERYONE.to_owned());
    let missed = match r.store.since(&rooms, after).await {
        Ok(Missed::Events(e)) => e,
        Ok(Missed::TooOld) => {
            tracing::warn!(sid = %s.id, "events missed during the Redis outage are no longer kept: closing so that the client re-reads");
            s.close_transport();
            return false;
        }
        Err(e) => {
            tracing::warn!(sid = %s.id, error = %e, "events missed during the Redis outage not read");
            release_held(s).await;
            return true;
        }
    };
    let missed = unreceived(
        missed,
        r.clock.origin(),
        me,
        received,
        after,
        lost_ms,
        upto_ms,
    );
    let sent = send_entries(s, &missed).await;
    metrics::recovery_replayed(sent);
    let offsets: Vec<Offset> = missed.iter().map(|e| e.offset).collect();
    filter_replayed(s, me, &offsets);
    release_held(s).await;
    true
}

/// Of the entries read after `after`, what a blip replay sends: not this node process's
/// own, not what the socket has, and not what the node received; or, when the ring cannot
/// tell that far back, the entries in `[lost_ms, back_ms)` it does not hold.
fn unreceived(
    read: Vec<Entry>,
    mine: u32,
    me: &SocketRecovery,
    received: &Received,
    after: Offset,
    lost_ms: u64,
    back_ms: u64,
) -> Vec<Entry> {
    let read: Vec<Entry> = {
        let covered = me
            .replays()
            .covered
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        read.into_iter()
            .filter(|e| e.offset.origin != mine && !covered.has(&e.offset))
            .collect()
    };
    let offsets: Vec<Offset> = read.iter().map(|e| e.offset).collect();
    match received.unreceived(after, &offsets) {
        Some(keep) => {
            let mut keep = keep.into_iter().peekable();
            read.into_iter()
                .enumerate()
                .filter(|(i, _)| keep.next_if_eq(i).is_some())
                .map(|(_, e)| e)
                .collect()
        }
        None => {
            metrics::recovery_blip_fallback();
            tracing::debug!(
                ring = received.len(),
                "the received ring does not reach back to the Redis outage: replaying its window, an event at its edges may come twice"
            );
            read.into_iter()
                .filter(|e| {
                    e.offset >= Offset::at_ms(lost_ms)
                        && e.offset < Offset::at_ms(back_ms)
                        && !received.contains(&e.offset)
                })
                .collect()
        }
    }
}

/// How long a blip replay waits for the socket's earlier replays.
const TURN_WAIT: Duration = Duration::from_secs(60);

/// How long a replay waits for a full send buffer to drain before it gives up.
const REPLAY_DRAIN: Duration = Duration::from_secs(10);

/// Stores the session until the token expires plus the window (a node that dies cannot
/// shorten it at disconnect).
async fn save<A: Adapter>(s: &SocketRef<A>, r: &Recovery, me: &SocketRecovery, claims: &Claims) {
    let left = claims.exp.saturating_sub(offset::now_ms() / 1000);
    let ttl = Duration::from_secs(left) + r.window;
    if let Err(e) = r
        .store
        .put_session(
            &SocketRecovery::key(s, claims),
            &me.saved(&s.id.to_string()),
            ttl,
        )
        .await
    {
        r.store_failure(&s.id, &e, "recovery session not stored");
    }
}

/// `course:join` / `course:leave`: the session remembers the courses joined by hand.
pub async fn joined_courses_changed<A: Adapter>(
    s: &SocketRef<A>,
    ctx: &SocketCtx<A>,
    course: &CourseId,
    joined: bool,
    session: &Session,
) {
    let (Some(r), Some(me)) = (ctx.gateway.recovery(), &session.recovery) else {
        return;
    };
    let claims = &session.claims;
    {
        let mut list = me.joined.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|c| c != course.as_str());
        if joined {
            list.push(course.to_string());
        }
    }
    save(s, r, me, claims).await;
}

/// At disconnect: the session lives on for the window (queued: the disconnect handler
/// must not hold the socket while Redis answers, see [`crate::releases`]).
pub fn release<A: Adapter>(s: &SocketRef<A>, ctx: &SocketCtx<A>, session: &Session) {
    if let (Some(_), Some(_)) = (ctx.gateway.recovery(), &session.recovery) {
        ctx.releases
            .session(SocketRecovery::key(s, &session.claims), s.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_auth_says_opt_out_pid_and_offset() {
        let pid = Pid::new();
        let o = offset::Clock::new().next();
        let ask = Ask::read(Some(
            &json!({ "token": "t", "pid": pid.as_str(), "offset": o.to_string() }),
        ));
        assert_eq!(ask.pid, Some(pid));
        assert_eq!(ask.offset, Some(Some(o)));
        assert!(!ask.opt_out);
        assert!(Ask::read(Some(&json!({ "recovery": false }))).opt_out);
        let bad = Ask::read(Some(&json!({ "pid": "../x", "offset": 7 })));
        assert_eq!(bad.pid, None);
        assert_eq!(bad.offset, Some(None));
        assert_eq!(Ask::read(None), Ask::default());
    }
}
