//! The handshake request's parts, held for the application until it releases them.
//!
//! A session kept its request's `Parts` inline for its whole life: 224 bytes, plus the
//! header map, the extension map and the URI's bytes they own, about 0.6 KB per idle
//! connection for parts most applications read once, at connect. Held behind an `Arc`,
//! they can be handed out (to a handler that reads them across an `.await`) and released.

use std::sync::{Arc, Mutex, PoisonError};

use http::request::Parts;

/// `Some` until released. A `std` mutex: it is taken for a reference count's increment,
/// never across an `.await`.
#[derive(Debug)]
pub(crate) struct HeldParts(Mutex<Option<Arc<Parts>>>);

impl HeldParts {
    pub(crate) fn new(parts: Parts) -> Self {
        Self(Mutex::new(Some(Arc::new(parts))))
    }

    pub(crate) fn get(&self) -> Option<Arc<Parts>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn release(&self) {
        let released = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        // Dropped outside the lock: the parts' maps may be large.
        drop(released);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Marker(Arc<()>);

    fn parts_with(marker: &Arc<()>) -> Parts {
        let mut parts = http::Request::new(()).into_parts().0;
        parts.extensions.insert(Marker(marker.clone()));
        parts
    }

    #[test]
    fn parts_are_held_until_released_then_freed() {
        let marker = Arc::new(());
        let held = HeldParts::new(parts_with(&marker));
        assert!(held.get().unwrap().extensions.get::<Marker>().is_some());
        assert_eq!(Arc::strong_count(&marker), 2);

        held.release();
        assert!(held.get().is_none());
        assert_eq!(Arc::strong_count(&marker), 1, "the parts were not freed");
        held.release();
        assert!(held.get().is_none());
    }

    #[test]
    fn parts_handed_out_outlive_the_release() {
        let marker = Arc::new(());
        let held = HeldParts::new(parts_with(&marker));
        let kept = held.get().unwrap();
        held.release();
        assert!(held.get().is_none());
        let Marker(still) = kept.extensions.get::<Marker>().unwrap();
        assert!(Arc::ptr_eq(still, &marker));
        drop(kept);
        assert_eq!(Arc::strong_count(&marker), 1);
    }
}
