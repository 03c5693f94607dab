//! What a closed socket gives back to the store (its connection count, its recovery
//! session's window), handed to one worker per node that runs a few at a time.
//!
//! Awaited in the disconnect handler, a release kept the whole socket alive (socketioxide
//! removes a socket from its namespace when the handler returns), and the connection count
//! was given back by a task of its own per socket. When every socket closes at once (a load
//! balancer restarts, a client fleet loses its network), each node held every closed socket
//! and two futures per socket while Redis caught up: at the end of the 102k hold the
//! servers grew from 758 to 1,627 MB in ten seconds, and most releases timed out in fred's
//! queue. Queued here, a release is its key (~100 bytes); at most [`IN_FLIGHT`] run at once
//! per node, so Redis takes them as fast as it can and none waits out a command timeout
//! behind the others. The queue has no length cap, but at most two entries per socket the
//! node held: it is bounded by the connection caps.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use socketioxide::socket::Sid;
use tokio::sync::mpsc;

use crate::metrics::GaugeHeld;
use crate::recovery::Recovery;
use crate::store::StoreResult;
use crate::store::connections::{ConnectionLedger, Holder, LedgerCaps, LedgerRefusal};

/// Releases running at once on one node: enough to keep a Redis connection's pipeline
/// full, few enough that their futures cost nothing next to the sockets they release.
pub const IN_FLIGHT: usize = 64;
/// Attempts and pause between them when a release cannot reach the store: a Redis
/// restart or failover (seconds) does not leave a user over-counted or a session on its
/// connected lease.
const ATTEMPTS: u32 = 6;
const RETRY: Duration = Duration::from_secs(2);

/// A reserved socket; dropping it gives the reservation back (through the node's
/// [`Releases`]: a release may need the network, and drops happen in synchronous code).
pub struct LedgerSlot {
    releases: Releases,
    holder: Holder,
    caps: LedgerCaps,
}

impl LedgerSlot {
    /// Reserves a slot, or says which cap refused it.
    pub async fn take(
        ledger: &Arc<dyn ConnectionLedger>,
        releases: &Releases,
        holder: Holder,
        caps: LedgerCaps,
    ) -> StoreResult<Result<Self, LedgerRefusal>> {
        Ok(ledger.reserve(&holder, caps).await?.map(|()| Self {
            releases: releases.clone(),
            holder,
            caps,
        }))
    }
}

impl Drop for LedgerSlot {
    fn drop(&mut self) {
        // Ids are shared strings: the clone copies two pointers.
        self.releases.connection(self.holder.clone(), self.caps);
    }
}

/// The node's release queue; cloned into every connection reservation.
#[derive(Clone)]
pub struct Releases {
    tx: mpsc::UnboundedSender<Release>,
    pending: Arc<AtomicUsize>,
}

struct Release {
    what: What,
    _pending: Pending,
}

/// Counts a release (here and in `lms_disconnect_releases_pending`) until it is done or
/// given up.
struct Pending {
    count: Arc<AtomicUsize>,
    _gauge: GaugeHeld,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

enum What {
    /// One socket of `holder` given back to the connection ledger.
    Connection(Holder, LedgerCaps),
    /// The recovery session at `key`, held by socket `sid`, gets its window.
    Session { key: String, sid: Sid },
}

impl Releases {
    /// Starts the node's worker (it ends when the last handle is dropped, after the queue).
    pub fn start(ledger: Arc<dyn ConnectionLedger>, recovery: Option<Arc<Recovery>>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Release>();
        let worker = Worker { ledger, recovery };
        tokio::spawn(async move {
            futures::stream::poll_fn(|cx| rx.poll_recv(cx))
                .for_each_concurrent(IN_FLIGHT, |r| worker.run(r))
                .await;
        });
        Self {
            tx,
            pending: Arc::default(),
        }
    }

    /// Releases queued or running.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Returns once every release queued so far is done or given up (a draining node
    /// gives back what its sockets held before it exits; its drain timeout bounds this).
    pub async fn settled(&self) {
        while self.pending() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Gives back one socket of `holder` (a dropped reservation).
    pub fn connection(&self, holder: Holder, caps: LedgerCaps) {
        self.queue(What::Connection(holder, caps));
    }

    /// Shortens the recovery session at `key` to the window, if socket `sid` still holds it.
    pub fn session(&self, key: String, sid: Sid) {
        self.queue(What::Session { key, sid });
    }

    fn queue(&self, what: What) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        let release = Release {
            what,
            _pending: Pending {
                count: self.pending.clone(),
                _gauge: GaugeHeld::release_pending(),
            },
        };
        // Fails only once the runtime is shutting down: the node's instance then stops
        // counting (its heartbeat expires) and its sessions keep their connected lease.
        let _ = self.tx.send(release);
    }
}

struct Worker {
    ledger: Arc<dyn ConnectionLedger>,
    recovery: Option<Arc<Recovery>>,
}

impl Worker {
    async fn run(&self, r: Release) {
        for attempt in 1..=ATTEMPTS {
            let last = attempt == ATTEMPTS;
            match self.try_once(&r.what, last).await {
                Ok(()) => return,
                Err(()) if last => {
                    crate::metrics::release_given_up(r.what.kind());
                    return;
                }
                Err(()) => tokio::time::sleep(RETRY).await,
            }
        }
    }

    /// One attempt; a failure is logged (in aggregate: a mass disconnect during an outage
    /// fails every socket's release at once).
    async fn try_once(&self, what: &What, last: bool) -> Result<(), ()> {
        match what {
            What::Connection(holder, caps) => {
                let Err(e) = self.ledger.release(holder, *caps).await else {
                    return Ok(());
                };
                if last {
                    tracing::warn!(error = %e, user = %holder.user, "connection count not released; it counts until this node's instance stops (its share then expires)");
                }
                Err(())
            }
            What::Session { key, sid } => {
                let Some(r) = &self.recovery else {
                    return Ok(());
                };
                let Err(e) = r
                    .store
                    .release_session(key, &sid.to_string(), r.window)
                    .await
                else {
                    return Ok(());
                };
                let what = if last {
                    "recovery session not released; it keeps its connected lease (the token's expiry plus the window)"
                } else {
                    "recovery session not released yet; retrying"
                };
                r.store_failure(sid, &e, what);
                Err(())
            }
        }
    }
}

impl What {
    fn kind(&self) -> &'static str {
        match self {
            Self::Connection(..) => "connection",
            Self::Session { .. } => "session",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{TenantId, UserId};
    use crate::store::connections::MemoryLedger;

    /// A dropped slot is given back through the queue: once it has settled, the user's
    /// cap has room again and nothing is pending.
    #[tokio::test]
    async fn a_dropped_slot_is_given_back_through_the_queue() {
        let ledger: Arc<dyn ConnectionLedger> = Arc::new(MemoryLedger::default());
        let releases = Releases::start(ledger.clone(), None);
        let caps = LedgerCaps {
            per_user: 2,
            per_tenant: 0,
        };
        let u = Holder {
            tenant: Some(TenantId::parse("rel-t").unwrap()),
            user: UserId::parse("rel-u").unwrap(),
        };
        let take = async || LedgerSlot::take(&ledger, &releases, u.clone(), caps).await;
        let held = [take().await.unwrap(), take().await.unwrap()];
        assert!(held.iter().all(Result::is_ok));
        assert_eq!(take().await.unwrap().err(), Some(LedgerRefusal::User));
        drop(held);
        releases.settled().await;
        assert_eq!(releases.pending(), 0);
        assert!(
            take().await.unwrap().is_ok(),
            "the dropped slots were given back"
        );
    }
}
