//! Operator control (§11): kick a user's sockets and revoke tokens, on every node.
//!
//! A kick reaches the user's room through the adapter, so in a cluster every node tells
//! and disconnects its own sockets of that user. A revocation is recorded in the
//! [`RevocationStore`] (memory on one node, Redis in a cluster) and checked by
//! [`Operator::check`] wherever a token is accepted: at connect, at `auth:refresh`, and
//! by the recovery code when it comes. Matching live sockets are kicked the same way: a
//! user revocation reaches the user's room, a `jti` revocation the room of that token
//! ([`rooms::token`]).

use std::sync::Arc;
use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use crate::auth::Claims;
use crate::emit;
use crate::error::{AppError, ErrorCode};
use crate::ids::{TenantId, UserId};
use crate::metrics::{self, KickCause};
use crate::rooms;
use crate::server_events as events;
use crate::store::revocations::{RevocationStore, TokenFacts};
use crate::types::{ErrorEvent, RevocationRequest, Revoked};

/// Kicks and revocations; cheap to clone.
pub struct Operator<A: Adapter> {
    io: SocketIo<A>,
    revocations: Arc<dyn RevocationStore>,
    /// How long a revocation is kept: the longest accepted token lifetime plus leeway.
    keep: Duration,
}

impl<A: Adapter> Clone for Operator<A> {
    fn clone(&self) -> Self {
        Self {
            io: self.io.clone(),
            revocations: self.revocations.clone(),
            keep: self.keep,
        }
    }
}

fn now_secs() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0)
}

impl<A: Adapter> Operator<A> {
    /// `max_token_lifetime` and `leeway` as in configuration: a revocation is kept as long
    /// as any token it can refuse may still be accepted.
    pub fn new(
        io: SocketIo<A>,
        revocations: Arc<dyn RevocationStore>,
        max_token_lifetime: Duration,
        leeway: Duration,
    ) -> Self {
        Self {
            io,
            revocations,
            keep: max_token_lifetime + leeway,
        }
    }

    /// Disconnects every socket of `u` on every node, after an `error` UNAUTHORIZED;
    /// returns how many there were.
    pub async fn kick_user(&self, t: &TenantId, u: &UserId) -> Result<u64, AppError> {
        let n = self
            .disconnect_room(rooms::user(t, u), "disconnected by an operator")
            .await?;
        metrics::kicked(KickCause::Kick, n);
        tracing::info!(tenant = %t, user = %u, sockets = n, "user kicked");
        Ok(n)
    }

    /// Records a revocation and disconnects the live sockets it matches.
    pub async fn revoke(&self, t: &TenantId, req: RevocationRequest) -> Result<Revoked, AppError> {
        if req.user_id.is_none() && req.jti.is_none() {
            return Err(AppError::invalid("give userId, jti or both"));
        }
        let now = now_secs();
        let before = req.before.unwrap_or(now);
        let ahead = before.saturating_sub(now);
        if ahead > self.keep.as_secs() {
            return Err(AppError::invalid(format!(
                "before lies more than {} s ahead (MAX_TOKEN_LIFETIME_SECS + leeway)",
                self.keep.as_secs()
            )));
        }
        // A `before` in the future refuses tokens issued until then: keep it that much longer.
        let keep = self.keep + Duration::from_secs(ahead);
        let mut disconnected = 0;
        if let Some(u) = &req.user_id {
            self.revocations.revoke_user(t, u, before, keep).await?;
            metrics::revoked("user");
            disconnected += self
                .disconnect_room(rooms::user(t, u), "your session was revoked")
                .await?;
        }
        if let Some(j) = &req.jti {
            self.revocations.revoke_token(t, j, keep).await?;
            metrics::revoked("jti");
            disconnected += self
                .disconnect_room(rooms::token(t, j), "your session was revoked")
                .await?;
        }
        metrics::kicked(KickCause::Revocation, disconnected);
        tracing::info!(tenant = %t, user = ?req.user_id, jti = ?req.jti, before, sockets = disconnected, "tokens revoked");
        Ok(Revoked {
            user_id: req.user_id.clone(),
            jti: req.jti,
            before: req.user_id.map(|_| before),
            expires_at: now + keep.as_secs(),
            disconnected,
        })
    }

    /// Refuses a revoked token: `UNAUTHORIZED`, or `UNAVAILABLE` when the store cannot
    /// say (a token is never let through unchecked). For connect, refresh and recovery.
    pub async fn check(&self, c: &Claims) -> Result<(), AppError> {
        let Some(tenant) = &c.tenant else {
            return Ok(());
        };
        let facts = TokenFacts {
            tenant,
            user: &c.sub,
            iat: c.iat,
            jti: c.jti.as_ref(),
        };
        if self.revocations.is_revoked(facts).await? {
            return Err(AppError::new(
                ErrorCode::Unauthorized,
                "this token has been revoked",
            ));
        }
        Ok(())
    }

    /// Tells every socket of `room` (on every node) why, then disconnects them.
    async fn disconnect_room(&self, room: String, why: &str) -> Result<u64, AppError> {
        let sockets = self
            .io
            .to(room.clone())
            .fetch_sockets()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot list the sockets to disconnect");
                AppError::unavailable()
            })?;
        if sockets.is_empty() {
            return Ok(0);
        }
        let notice = ErrorEvent {
            code: ErrorCode::Unauthorized,
            message: why.to_owned(),
            event: None,
        };
        if let Err(e) = emit::broadcast(self.io.to(room.clone()), events::ERROR, &notice).await {
            tracing::warn!(error = %e, "the disconnect notice did not reach every socket");
        }
        self.io.to(room).disconnect().await.map_err(|e| {
            tracing::warn!(error = %e, "cannot disconnect every socket");
            AppError::unavailable()
        })?;
        Ok(sockets.len() as u64)
    }
}
