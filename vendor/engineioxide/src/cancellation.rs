//! A socket's cancellation token, created at its first use.
//!
//! Every socket had a [`CancellationToken`] (a 112-byte allocation) from its creation, yet
//! only the polling transport, the upgrade from polling and their spawned jobs wait on
//! one: a session opened over websocket is stopped through its queue
//! ([`QueueTx::interrupt`](crate::queue::QueueTx::interrupt)) and never asks for it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering, fence};

use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
pub(crate) struct LazyCancellation {
    token: OnceLock<CancellationToken>,
    cancelled: AtomicBool,
}

impl LazyCancellation {
    /// The token; already cancelled when [`cancel`](Self::cancel) came first.
    pub(crate) fn token(&self) -> &CancellationToken {
        let token = self.token.get_or_init(CancellationToken::new);
        // With the fence in `cancel`: either `cancel` sees this token, or this sees its flag.
        fence(Ordering::SeqCst);
        if self.cancelled.load(Ordering::Relaxed) {
            token.cancel();
        }
        token
    }

    /// Cancels the token if it exists, and any token asked for later.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if let Some(token) = self.token.get() {
            token.cancel();
        }
    }

    /// Whether a token was ever asked for.
    #[cfg(test)]
    pub(crate) fn created(&self) -> bool {
        self.token.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_token_asked_for_before_the_cancel_is_cancelled_by_it() {
        let c = LazyCancellation::default();
        let token = c.token().clone();
        assert!(!token.is_cancelled());
        c.cancel();
        assert!(token.is_cancelled());
    }

    #[test]
    fn a_token_asked_for_after_the_cancel_is_already_cancelled() {
        let c = LazyCancellation::default();
        c.cancel();
        assert!(!c.created(), "cancelling creates no token");
        assert!(c.token().is_cancelled());
    }

    #[test]
    fn a_cancel_racing_the_first_token_is_never_lost() {
        for _ in 0..2_000 {
            let c = Arc::new(LazyCancellation::default());
            let canceller = {
                let c = c.clone();
                std::thread::spawn(move || c.cancel())
            };
            let token = c.token().clone();
            canceller.join().unwrap();
            assert!(token.is_cancelled());
        }
    }
}
