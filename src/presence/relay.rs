//! Membership changes made through the service API, carried to every node's presence.
//!
//! The service API moves a user's live sockets into or out of a course's rooms through the
//! adapter, on whatever node they are. socketioxide has no per-socket hook on that path, so
//! the change also travels as a [`MembershipChange`] to every node, and each node updates
//! the presence of its own sockets of that user (`socket::presence::follow_memberships`).
//! One node delivers to itself ([`LocalRelay`]); a cluster publishes through Redis
//! (`cluster::relay`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::ids::{CourseId, TenantId, UserId};

/// A user's membership of a course changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipChange {
    pub tenant: TenantId,
    pub course: CourseId,
    pub user: UserId,
    /// The course role now held (`student`, `instructor`); `None`: no longer a member.
    pub role: Option<String>,
}

/// The changes that reached this node, in the order it received them.
pub type Incoming = mpsc::UnboundedReceiver<MembershipChange>;

/// Delivers membership changes to every node.
#[async_trait]
pub trait MembershipRelay: Send + Sync + 'static {
    /// Sends `change` to every node, this one included.
    async fn send(&self, change: &MembershipChange) -> anyhow::Result<()>;
}

/// One node: a change goes straight to this node's [`Incoming`].
pub struct LocalRelay {
    tx: mpsc::UnboundedSender<MembershipChange>,
}

impl LocalRelay {
    pub fn new() -> (Self, Incoming) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, rx)
    }
}

#[async_trait]
impl MembershipRelay for LocalRelay {
    async fn send(&self, change: &MembershipChange) -> anyhow::Result<()> {
        self.tx
            .send(change.clone())
            .map_err(|_| anyhow::anyhow!("this node no longer follows membership changes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_local_relay_hands_a_change_to_this_node_unchanged() {
        let (relay, mut rx) = LocalRelay::new();
        let change = MembershipChange {
            tenant: TenantId::parse("t1").unwrap(),
            course: CourseId::parse("c1").unwrap(),
            user: UserId::parse("u1").unwrap(),
            role: None,
        };
        relay.send(&change).await.unwrap();
        assert_eq!(rx.recv().await, Some(change));
    }
}
