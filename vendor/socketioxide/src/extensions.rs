//! [`Extensions`] used to store extra data in each socket instance.
//!
//! It is heavily inspired by the [`http::Extensions`] type from the `http` crate.
//!
//! The main differences are that the entries are a small vector, not a hash map, wrapped
//! with an [`RwLock`] to allow concurrent access. Moreover, any value extracted from the map is cloned before being returned.
//!
//! This is necessary because [`Extensions`] are shared between all the threads that handle the same socket.
//!
//! You can use the [`Extension`](crate::extract::Extension) or
//! [`MaybeExtension`](crate::extract::MaybeExtension) extractor to extract an extension of the given type.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::RwLock;

type AnyVal = Box<dyn Any + Send + Sync>;

/// The extensions as a vector searched in order, not a hash map: a socket holds a few of
/// them, which a hash map keeps in at least four buckets (a 148-byte allocation per socket
/// for up to three 32-byte entries), and a search over a few `TypeId`s costs no more than a
/// lookup. The vector grows by one slot at a time, so that it holds exactly its entries.
type AnyVec = RwLock<Vec<(TypeId, AnyVal)>>;

/// A type map of protocol extensions.
///
/// It is heavily inspired by the `Extensions` type from the `http` crate.
///
/// The main difference is that the entries are wrapped with an `RwLock` to allow concurrent access.
///
/// This is necessary because `Extensions` are shared between all the threads that handle the same socket.
///
/// You can use the [`Extension`](crate::extract::Extension) or
/// [`MaybeExtension`](crate::extract::MaybeExtension) extractor to extract an extension of the given type.
#[derive(Default)]
pub struct Extensions {
    /// The entries, each type at most once.
    map: AnyVec,
}

impl Extensions {
    /// Create an empty `Extensions`.
    #[inline]
    pub fn new() -> Extensions {
        Extensions {
            map: AnyVec::default(),
        }
    }

    /// Insert a type into the `Extensions`.
    ///
    /// The type must be cloneable and thread safe to be stored.
    ///
    /// If a extension of this type already existed, it will
    /// be returned.
    ///
    /// # Example
    ///
    /// ```
    /// # use socketioxide::extensions::Extensions;
    /// let mut ext = Extensions::new();
    /// assert!(ext.insert(5i32).is_none());
    /// assert!(ext.insert(4u8).is_none());
    /// assert_eq!(ext.insert(9i32), Some(5i32));
    /// ```
    pub fn insert<T: Send + Sync + Clone + 'static>(&self, val: T) -> Option<T> {
        let id = TypeId::of::<T>();
        let mut map = self.map.write().unwrap();
        if let Some((_, slot)) = map.iter_mut().find(|(k, _)| *k == id) {
            let old = std::mem::replace(slot, Box::new(val));
            return old.downcast().ok().map(|boxed| *boxed);
        }
        map.reserve_exact(1);
        map.push((id, Box::new(val)));
        None
    }

    /// Get a cloned value of a type previously inserted in the `Extensions`.
    ///
    /// # Example
    ///
    /// ```
    /// # use socketioxide::extensions::Extensions;
    /// let ext = Extensions::new();
    /// assert!(ext.get::<i32>().is_none());
    /// ext.insert(5i32);
    ///
    /// assert_eq!(ext.get::<i32>().unwrap(), 5i32);
    /// ```
    pub fn get<T: Send + Sync + Clone + 'static>(&self) -> Option<T> {
        let id = TypeId::of::<T>();
        self.map
            .read()
            .unwrap()
            .iter()
            .find(|(k, _)| *k == id)
            .and_then(|(_, v)| v.downcast_ref::<T>())
            .cloned()
    }

    /// Remove a type from the `Extensions`.
    ///
    /// If a extension of this type existed, it will be returned.
    ///
    /// # Example
    ///
    /// ```
    /// # use socketioxide::extensions::Extensions;
    /// let mut ext = Extensions::new();
    /// ext.insert(5i32);
    /// assert_eq!(ext.remove::<i32>(), Some(5i32));
    /// assert!(ext.get::<i32>().is_none());
    /// ```
    pub fn remove<T: Send + Sync + 'static>(&self) -> Option<T> {
        let id = TypeId::of::<T>();
        let mut map = self.map.write().unwrap();
        let at = map.iter().position(|(k, _)| *k == id)?;
        let (_, v) = map.swap_remove(at);
        if map.is_empty() {
            map.shrink_to_fit();
        }
        v.downcast().ok().map(|boxed| *boxed)
    }

    /// Clear the `Extensions` of all inserted extensions.
    ///
    /// # Example
    ///
    /// ```
    /// # use socketioxide::extensions::Extensions;
    /// let mut ext = Extensions::new();
    /// ext.insert(5i32);
    /// ext.clear();
    ///
    /// assert!(ext.get::<i32>().is_none());
    /// ```
    #[inline]
    pub fn clear(&self) {
        let mut map = self.map.write().unwrap();
        map.clear();
        map.shrink_to_fit();
    }

    /// Check whether the extension set is empty or not.
    ///
    /// # Example
    ///
    /// ```
    /// # use socketioxide::extensions::Extensions;
    /// let mut ext = Extensions::new();
    /// assert!(ext.is_empty());
    /// ext.insert(5i32);
    /// assert!(!ext.is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.map.read().unwrap().is_empty()
    }

    /// Get the number of extensions available.
    ///
    /// # Example
    ///
    /// ```
    /// # use socketioxide::extensions::Extensions;
    /// let mut ext = Extensions::new();
    /// assert_eq!(ext.len(), 0);
    /// ext.insert(5i32);
    /// assert_eq!(ext.len(), 1);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.map.read().unwrap().len()
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions").finish()
    }
}

#[test]
fn test_extensions() {
    use std::sync::Arc;
    #[derive(Debug, Clone, PartialEq)]
    struct MyType(i32);

    #[derive(Debug, PartialEq)]
    struct ComplexSharedType(u64);
    let shared = Arc::new(ComplexSharedType(20));

    let extensions = Extensions::new();

    extensions.insert(5i32);
    extensions.insert(MyType(10));
    extensions.insert(shared.clone());

    assert_eq!(extensions.get(), Some(5i32));
    assert_eq!(extensions.get::<Arc<ComplexSharedType>>(), Some(shared));

    assert_eq!(extensions.remove::<i32>(), Some(5i32));
    assert!(extensions.get::<i32>().is_none());

    assert!(extensions.get::<bool>().is_none());
    assert_eq!(extensions.get(), Some(MyType(10)));
}

#[test]
fn extensions_hold_exactly_their_entries() {
    let extensions = Extensions::new();
    let capacity = |e: &Extensions| e.map.read().unwrap().capacity();
    assert_eq!(capacity(&extensions), 0, "nothing allocated while empty");
    extensions.insert(5i32);
    assert_eq!(capacity(&extensions), 1);
    assert_eq!(extensions.insert(6i32), Some(5i32), "one entry per type");
    assert_eq!((extensions.len(), capacity(&extensions)), (1, 1));
    extensions.insert(7u8);
    assert_eq!((extensions.len(), capacity(&extensions)), (2, 2));
    assert_eq!(extensions.remove::<i32>(), Some(6i32));
    assert_eq!(extensions.get::<u8>(), Some(7u8));
    extensions.clear();
    assert!(extensions.is_empty());
    assert_eq!(capacity(&extensions), 0);
}
