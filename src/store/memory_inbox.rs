//! The inbox in memory, under the same rules as on Redis: a body is held once (every
//! recipient's entry shares one `Arc`), an idempotency record per notification id expires
//! after its window, entries are trimmed by age, dismissal age and count, an idle inbox is
//! dropped whole, and a read never creates an inbox.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::memory::MemoryStore;
use super::usage::Usage;
use super::*;

/// One reference in an inbox.
pub(super) struct Entry {
    body: Arc<Notification>,
    status: NotificationStatus,
    at: Instant,
}

#[derive(Default)]
pub(super) struct Inbox {
    next_seq: u64,
    entries: BTreeMap<u64, Entry>,
    /// Dismissed entries in the order they were dismissed (so by time): the trim
    /// finds the ones past their retention at the front instead of scanning the inbox.
    dismissed: VecDeque<(Instant, u64)>,
    by_id: HashMap<NotificationId, u64>,
    unread: u64,
    last_active: Option<Instant>,
}

/// Where the live push of a notification to one user stands.
#[derive(Clone, Copy)]
enum Push {
    Claimed(Instant),
    Done,
}

/// A notification's body and idempotency record.
pub(super) struct Sent {
    body: Arc<Notification>,
    pushes: HashMap<UserId, Push>,
    window_until: Instant,
}

impl Sent {
    /// Users who got the push, or are getting it within the lease.
    fn delivered(&self, now: Instant) -> HashSet<UserId> {
        self.pushes
            .iter()
            .filter(|(_, p)| match p {
                Push::Done => true,
                Push::Claimed(at) => now.duration_since(*at) < DELIVERY_LEASE,
            })
            .map(|(u, _)| u.clone())
            .collect()
    }
}

impl Inbox {
    fn remove(&mut self, seq: u64) -> usize {
        let Some(old) = self.entries.remove(&seq) else {
            return 0;
        };
        self.by_id.remove(&old.body.id);
        if old.status == NotificationStatus::Unread {
            self.unread -= 1;
        }
        1
    }

    /// Applies the retention rules; returns how many entries went. It runs on every insert,
    /// so it looks only at the ends: entries are in insertion order (`at` grows with `seq`),
    /// and `dismissed` in dismissal order, so what has expired is at their fronts.
    fn trim(&mut self, now: Instant, l: &StoreLimits) -> usize {
        let mut gone = 0;
        while let Some((&seq, e)) = self.entries.first_key_value()
            && now.duration_since(e.at) > l.inbox_retention
        {
            gone += self.remove(seq);
        }
        while let Some(&(at, seq)) = self.dismissed.front()
            && now.duration_since(at) > l.dismissed_retention
        {
            self.dismissed.pop_front();
            gone += self.remove(seq);
        }
        while self.entries.len() > l.inbox_cap.max(1) {
            let (&seq, _) = self.entries.first_key_value().expect("non-empty");
            gone += self.remove(seq);
        }
        gone
    }

    fn idle(&self, now: Instant, l: &StoreLimits) -> bool {
        self.last_active
            .is_none_or(|at| now.duration_since(at) > l.inbox_idle_ttl())
    }

    fn set_status(
        &mut self,
        id: &NotificationId,
        to: NotificationStatus,
        now: Instant,
    ) -> StoreResult<StatusChange> {
        let seq = *self
            .by_id
            .get(id)
            .ok_or_else(|| StoreError::NotFound(format!("notification {id}")))?;
        let entry = self.entries.get_mut(&seq).expect("by_id and entries agree");
        let from = entry.status;
        // A dismissed notification never becomes "read" again.
        let changed = from != to && from != NotificationStatus::Dismissed;
        if changed {
            entry.status = to;
            if to == NotificationStatus::Dismissed {
                self.dismissed.push_back((now, seq));
            }
            if from == NotificationStatus::Unread {
                self.unread -= 1;
            }
            self.last_active = Some(now);
        }
        Ok(StatusChange {
            changed,
            unread: self.unread,
        })
    }
}

impl MemoryStore {
    /// Runs `f` on a live inbox of the user, if there is one; never creates it.
    fn existing_inbox<R>(
        &self,
        t: &TenantId,
        u: &UserId,
        f: impl FnOnce(&mut Inbox, Instant) -> R,
    ) -> Option<R> {
        let mut inboxes = self.inboxes();
        // Under the lock: `Inbox::dismissed` stays in time order.
        let now = Instant::now();
        let key = (t.clone(), u.clone());
        let inbox = inboxes.get_mut(&key)?;
        if inbox.idle(now, &self.limits) {
            inboxes.remove(&key);
            return None;
        }
        inbox.trim(now, &self.limits);
        Some(f(inbox, now))
    }
}

#[async_trait]
impl InboxStore for MemoryStore {
    async fn open_fanout(&self, n: &Notification) -> StoreResult<Fanout> {
        let now = Instant::now();
        let mut sent = self.sent();
        let key = (n.tenant_id.clone(), n.id.clone());
        let record = sent.get_mut(&key).filter(|r| r.window_until > now);
        if let Some(r) = record {
            return Ok(Fanout {
                body: r.body.clone(),
                retry: true,
                delivered: r.delivered(now),
            });
        }
        let mut body = n.clone();
        body.user_id = None;
        body.status = NotificationStatus::Unread;
        let body = Arc::new(body);
        sent.insert(
            key,
            Sent {
                body: body.clone(),
                pushes: HashMap::new(),
                window_until: now + self.limits.idempotency_window,
            },
        );
        Ok(Fanout {
            body,
            retry: false,
            delivered: HashSet::new(),
        })
    }

    async fn insert(&self, to: &UserId, body: &Arc<Notification>) -> StoreResult<InsertOutcome> {
        self.touch_user_index(&body.tenant_id, to);
        let mut inboxes = self.inboxes();
        // Taken under the lock, so that `at` grows with `seq` (see `Inbox::trim`).
        let now = Instant::now();
        let inbox = inboxes
            .entry((body.tenant_id.clone(), to.clone()))
            .or_default();
        if inbox.idle(now, &self.limits) {
            *inbox = Inbox::default();
        }
        inbox.last_active = Some(now);
        inbox.trim(now, &self.limits);
        if inbox.by_id.contains_key(&body.id) {
            return Ok(InsertOutcome::Duplicate {
                unread: inbox.unread,
            });
        }
        inbox.next_seq += 1;
        let seq = inbox.next_seq;
        inbox.by_id.insert(body.id.clone(), seq);
        inbox.unread += 1;
        inbox.entries.insert(
            seq,
            Entry {
                body: body.clone(),
                status: NotificationStatus::Unread,
                at: now,
            },
        );
        inbox.trim(now, &self.limits);
        Ok(InsertOutcome::Inserted {
            unread: inbox.unread,
        })
    }

    async fn mark_delivered(
        &self,
        t: &TenantId,
        id: &NotificationId,
        to: &[UserId],
    ) -> StoreResult<()> {
        let now = Instant::now();
        if let Some(r) = self.sent().get_mut(&(t.clone(), id.clone()))
            && r.window_until > now
        {
            for u in to {
                r.pushes.insert(u.clone(), Push::Done);
            }
        }
        Ok(())
    }

    async fn claim_delivery(
        &self,
        t: &TenantId,
        id: &NotificationId,
        to: &UserId,
    ) -> StoreResult<bool> {
        let now = Instant::now();
        let mut sent = self.sent();
        let Some(r) = sent
            .get_mut(&(t.clone(), id.clone()))
            .filter(|r| r.window_until > now)
        else {
            return Ok(true);
        };
        let free = match r.pushes.get(to) {
            None => true,
            Some(Push::Done) => false,
            Some(Push::Claimed(at)) => now.duration_since(*at) >= DELIVERY_LEASE,
        };
        if free {
            r.pushes.insert(to.clone(), Push::Claimed(now));
        }
        Ok(free)
    }

    async fn mark_read(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
    ) -> StoreResult<StatusChange> {
        self.change_status(t, u, id, NotificationStatus::Read)
    }

    async fn mark_all_read(&self, t: &TenantId, u: &UserId) -> StoreResult<u64> {
        Ok(self
            .existing_inbox(t, u, |inbox, now| {
                let mut changed = 0;
                for e in inbox.entries.values_mut() {
                    if e.status == NotificationStatus::Unread {
                        e.status = NotificationStatus::Read;
                        changed += 1;
                    }
                }
                if changed > 0 {
                    inbox.last_active = Some(now);
                }
                inbox.unread = 0;
                changed
            })
            .unwrap_or(0))
        .inspect(|changed| self.touched_if(t, u, *changed > 0))
    }

    async fn dismiss(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
    ) -> StoreResult<StatusChange> {
        self.change_status(t, u, id, NotificationStatus::Dismissed)
    }

    async fn unread_count(&self, t: &TenantId, u: &UserId) -> StoreResult<u64> {
        Ok(self
            .existing_inbox(t, u, |inbox, _| inbox.unread)
            .unwrap_or(0))
    }

    async fn list(&self, t: &TenantId, u: &UserId, q: &ListQuery) -> StoreResult<Page> {
        let page = self.existing_inbox(t, u, |inbox, _| {
            let upper = q.before.unwrap_or(u64::MAX);
            let mut items = Vec::with_capacity(q.limit);
            let mut last_seq = None;
            let mut more = false;
            for (seq, e) in inbox.entries.range(..upper).rev() {
                if q.status.is_some_and(|s| s != e.status) {
                    continue;
                }
                if items.len() == q.limit {
                    more = true;
                    break;
                }
                let mut n = (*e.body).clone();
                n.user_id = Some(u.clone());
                n.status = e.status;
                items.push(n);
                last_seq = Some(*seq);
            }
            Page {
                items,
                next_cursor: if more { last_seq } else { None },
                skipped: 0,
            }
        });
        Ok(page.unwrap_or(Page {
            items: vec![],
            next_cursor: None,
            skipped: 0,
        }))
    }

    async fn sweep(&self) -> StoreResult<SweepReport> {
        let now = Instant::now();
        let mut report = SweepReport::default();
        self.inboxes().retain(|_, inbox| {
            report.inboxes += 1;
            if inbox.idle(now, &self.limits) {
                report.trimmed += inbox.entries.len() as u64;
                return false;
            }
            report.trimmed += inbox.trim(now, &self.limits) as u64;
            !inbox.entries.is_empty()
        });
        self.sent().retain(|_, r| r.window_until > now);
        self.evict_idle_memberships(now);
        Ok(report)
    }
}

impl MemoryStore {
    /// Activity of a user on the membership side (a connect, an enrolment change) keeps
    /// their inbox: a user's data expires together, as on Redis.
    pub(super) fn touch_inbox(&self, t: &TenantId, u: &UserId) {
        let now = Instant::now();
        if let Some(inbox) = self.inboxes().get_mut(&(t.clone(), u.clone()))
            && !inbox.idle(now, &self.limits)
        {
            inbox.last_active = Some(now);
        }
    }

    /// Read or dismiss; a change is activity of the user.
    fn change_status(
        &self,
        t: &TenantId,
        u: &UserId,
        id: &NotificationId,
        to: NotificationStatus,
    ) -> StoreResult<StatusChange> {
        let change = self
            .existing_inbox(t, u, |inbox, now| inbox.set_status(id, to, now))
            .unwrap_or_else(|| Err(StoreError::NotFound(format!("notification {id}"))))?;
        self.touched_if(t, u, change.changed);
        Ok(change)
    }

    /// After an inbox change that was activity, the user's course index is kept too.
    fn touched_if(&self, t: &TenantId, u: &UserId, activity: bool) {
        if activity {
            self.touch_user_index(t, u);
        }
    }
}

/// Every tenant's stored bytes and entries, counted as on Redis (`usage`): each inbox entry a
/// reference, each body referenced by an inbox once.
pub(super) fn measure(inboxes: &Inboxes) -> HashMap<TenantId, Usage> {
    let mut totals: HashMap<TenantId, Usage> = HashMap::new();
    let mut bodies = HashSet::new();
    for ((t, _), inbox) in inboxes {
        let total = totals.entry(t.clone()).or_default();
        *total += Usage::references(inbox.entries.len() as u64);
        for e in inbox.entries.values() {
            if bodies.insert((t, &e.body.id)) {
                *total += Usage::of_body(&e.body);
            }
        }
    }
    totals
}

/// The engine's maps, by user and by notification.
pub(super) type Inboxes = HashMap<(TenantId, UserId), Inbox>;
pub(super) type SentRecords = HashMap<(TenantId, NotificationId), Sent>;
