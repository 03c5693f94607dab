//! The socket's bounded packet queue, allocated to what it holds.
//!
//! A tokio `mpsc::channel` allocates its first block of 32 slots when it is created, whatever
//! its capacity: with a [`PacketBuf`] of 200 bytes that is 6.4 KB per socket, held by every
//! idle connection. This queue is a `VecDeque` behind a mutex (one producer at a time in
//! practice, one consumer that holds the socket's `internal_rx` lock), so an idle socket
//! holds only the few slots it has used, and a burst's slots are given back once drained.
//!
//! It keeps the semantics the socket relied on: a capacity, permits reserved ahead of the
//! send, `try_send`/`try_recv`, an async `recv` and a `close` after which nothing more is
//! accepted and `closed()` resolves.
//!
//! It also holds the socket's volatile slot: the latest volatile packet, which bypasses the
//! queue and overwrites the one before it if the transport has not taken it yet. It used to
//! be a tokio `watch` channel of its own (about 0.5 KB per socket, allocated whether a
//! volatile packet is ever sent or not); the slot is a pointer, boxed only while a packet
//! waits, and wakes the reader through the queue's waker.

use std::{
    collections::VecDeque,
    fmt,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use futures_util::task::AtomicWaker;
use tokio::sync::{
    Notify,
    mpsc::error::{TryRecvError, TrySendError},
};

/// A drained queue whose buffer grew past this many slots gives the memory back.
const KEEP_SLOTS: usize = 4;

/// Pushes `item`; the first push takes one slot, not the `VecDeque`'s minimum of four, so a
/// socket that only ever gets pings keeps 200 bytes, and one that ever had two packets
/// queued keeps four slots (no allocation per packet either way).
fn push<T>(buf: &mut VecDeque<T>, item: T) {
    if buf.capacity() == 0 {
        buf.reserve_exact(1);
    }
    buf.push_back(item);
}

struct State<T> {
    buf: VecDeque<T>,
    /// Permits handed out and not yet used or dropped; they count against the capacity.
    reserved: usize,
    closed: bool,
    /// The latest volatile item not yet taken (see [`QueueTx::set_volatile`]).
    volatile: Option<Box<T>>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    rx_waker: AtomicWaker,
    closed: Notify,
    /// Set when the session must stop (see [`QueueTx::interrupt`]).
    interrupted: AtomicBool,
    /// Set when the transport's read side woke the reader (see [`QueueRx::read_waker`]).
    read_woken: AtomicBool,
}

/// The waker a websocket session gives its reads: it marks the read side as woken, then wakes
/// the session through the queue's waker. A fan-out wakes a session once per delivery, and
/// reading the websocket on each of those wake-ups (its wakers registered again, the stream's
/// readiness checked under its lock, a read that finds nothing) cost about 5 % of a node's CPU
/// at 80k deliveries/s (issue 15). The flags live here, not in an allocation of their own,
/// because every delivery touches this memory anyway.
impl<T: Send + 'static> Wake for Shared<T> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.read_woken.store(true, Ordering::Release);
        self.rx_waker.wake();
    }
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock leaves the deque consistent: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Create a queue of at most `capacity` items (at least one).
pub(crate) fn queue<T>(capacity: usize) -> (QueueTx<T>, QueueRx<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            buf: VecDeque::new(),
            reserved: 0,
            closed: false,
            volatile: None,
        }),
        capacity: capacity.max(1),
        rx_waker: AtomicWaker::new(),
        closed: Notify::new(),
        interrupted: AtomicBool::new(false),
        // Woken to start with: the first turn reads what came with the upgrade.
        read_woken: AtomicBool::new(true),
    });
    (QueueTx(shared.clone()), QueueRx(shared))
}

/// The sending side, kept by the socket.
pub(crate) struct QueueTx<T>(Arc<Shared<T>>);

/// The receiving side, kept behind the socket's `internal_rx` lock.
pub(crate) struct QueueRx<T>(Arc<Shared<T>>);

/// A slot reserved in the queue; dropping it unused gives the slot back.
pub(crate) struct QueuePermit<'a, T>(&'a Shared<T>);

impl<T> QueueTx<T> {
    /// Queue `item` unless the queue is full or closed.
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let mut state = self.0.lock();
        if state.closed {
            return Err(TrySendError::Closed(item));
        }
        if state.buf.len() + state.reserved >= self.0.capacity {
            return Err(TrySendError::Full(item));
        }
        push(&mut state.buf, item);
        drop(state);
        self.0.rx_waker.wake();
        Ok(())
    }

    /// Reserve one slot, to be filled by [`QueuePermit::send`].
    pub(crate) fn try_reserve(&self) -> Result<QueuePermit<'_, T>, TrySendError<()>> {
        let mut state = self.0.lock();
        if state.closed {
            return Err(TrySendError::Closed(()));
        }
        if state.buf.len() + state.reserved >= self.0.capacity {
            return Err(TrySendError::Full(()));
        }
        state.reserved += 1;
        Ok(QueuePermit(&self.0))
    }

    /// Put `item` in the volatile slot, replacing the item still there if the reader has not
    /// taken it: only the latest volatile item is kept, and it bypasses the queue's capacity
    /// and order. `false` (and the item dropped) once the queue is closed.
    pub(crate) fn set_volatile(&self, item: T) -> bool {
        let item = Box::new(item);
        let mut state = self.0.lock();
        if state.closed {
            return false;
        }
        // The item it replaces is dropped after the lock is released.
        let _replaced = state.volatile.replace(item);
        drop(state);
        self.0.rx_waker.wake();
        true
    }

    /// Tells the reader to stop, and wakes it. A websocket session checks this flag on every
    /// wake-up instead of polling the socket's cancellation token: the flag is on memory each
    /// delivery touches anyway, the token's two locks on memory of its own (issue 15).
    pub(crate) fn interrupt(&self) {
        self.0.interrupted.store(true, Ordering::Release);
        self.0.rx_waker.wake();
    }

    /// Whether the receiving side closed the queue.
    pub(crate) fn is_closed(&self) -> bool {
        self.0.lock().closed
    }

    /// Resolves once the receiving side closed the queue.
    pub(crate) async fn closed(&self) {
        loop {
            let notified = self.0.closed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a close between the two is not missed.
            notified.as_mut().enable();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }
}

impl<T> QueuePermit<'_, T> {
    /// Fill the reserved slot.
    pub(crate) fn send(self, item: T) {
        let shared = self.0;
        std::mem::forget(self);
        let mut state = shared.lock();
        state.reserved -= 1;
        // A permit taken before the close still delivers, as with tokio's mpsc.
        push(&mut state.buf, item);
        drop(state);
        shared.rx_waker.wake();
    }
}

impl<T> Drop for QueuePermit<'_, T> {
    fn drop(&mut self) {
        self.0.lock().reserved -= 1;
        self.0.rx_waker.wake();
    }
}

impl<T> QueueRx<T> {
    /// The next item; `None` once the queue is closed, drained and no permit is pending.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(item) = self.pop() {
            return Poll::Ready(Some(item));
        }
        // Register before checking again, so an item pushed in between wakes us.
        self.0.rx_waker.register(cx.waker());
        let mut state = self.0.lock();
        match Self::pop_locked(&mut state) {
            Some(item) => Poll::Ready(Some(item)),
            None if state.closed && state.reserved == 0 => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    /// Takes the volatile item, if one was set since the last take; otherwise registers the
    /// task's waker (the one [`QueueRx::poll_recv`] uses) to be woken when one is set.
    pub(crate) fn poll_volatile(&mut self, cx: &mut Context<'_>) -> Poll<T> {
        self.0.rx_waker.register(cx.waker());
        match self.0.lock().volatile.take() {
            Some(item) => Poll::Ready(*item),
            None => Poll::Pending,
        }
    }

    /// Whether [`QueueTx::interrupt`] was called. The interrupt wakes the waker registered by
    /// [`QueueRx::poll_recv`] or [`QueueRx::poll_volatile`]: a reader must check again after
    /// registering it, or an interrupt between its check and the registration is missed.
    pub(crate) fn is_interrupted(&self) -> bool {
        self.0.interrupted.load(Ordering::Acquire)
    }

    /// A waker for the transport's read side: waking it sets the flag
    /// [`QueueRx::take_read_wake`] takes, then wakes the reader's registered waker.
    pub(crate) fn read_waker(&self) -> Waker
    where
        T: Send + 'static,
    {
        Waker::from(self.0.clone())
    }

    /// Whether the read side was woken since the last call. As with the interrupt, check it
    /// after registering the reader's waker.
    pub(crate) fn take_read_wake(&self) -> bool {
        self.0.read_woken.swap(false, Ordering::Acquire)
    }

    /// Waits for the next item, as [`QueueRx::poll_recv`].
    #[cfg(any(test, feature = "__test_harness"))]
    pub(crate) async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next item if one is queued.
    pub(crate) fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.0.lock();
        match Self::pop_locked(&mut state) {
            Some(item) => Ok(item),
            None if state.closed && state.reserved == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Gives the buffer's slots back if the queue is empty: called by a websocket session's
    /// writer once it has drained the queue and gone idle, so that an idle socket holds no
    /// slot (a socket's item, `Queued`, is 32 bytes). The next push allocates one slot again: an
    /// allocation per burst written, not per packet queued.
    pub(crate) fn release_idle(&mut self) {
        let mut state = self.0.lock();
        if state.buf.is_empty() && state.buf.capacity() > 0 {
            state.buf = VecDeque::new();
        }
    }

    /// Refuse every further send; what is queued can still be received.
    pub(crate) fn close(&mut self) {
        self.0.lock().closed = true;
        self.0.closed.notify_waiters();
        self.0.rx_waker.wake();
    }

    fn pop(&mut self) -> Option<T> {
        Self::pop_locked(&mut self.0.lock())
    }

    fn pop_locked(state: &mut State<T>) -> Option<T> {
        let item = state.buf.pop_front()?;
        if state.buf.is_empty() && state.buf.capacity() > KEEP_SLOTS {
            state.buf.shrink_to(KEEP_SLOTS);
        }
        Some(item)
    }
}

impl<T> fmt::Debug for QueueTx<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueTx")
            .field("capacity", &self.0.capacity)
            .finish()
    }
}

impl<T> fmt::Debug for QueueRx<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.0.lock();
        f.debug_struct("QueueRx")
            .field("len", &state.buf.len())
            .field("closed", &state.closed)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    #[test]
    fn a_new_queue_allocates_no_slot() {
        let (_tx, rx) = queue::<[u8; 200]>(128);
        assert_eq!(rx.0.lock().buf.capacity(), 0);
    }

    #[test]
    fn the_capacity_counts_queued_items_and_reserved_permits() {
        let (tx, mut rx) = queue(2);
        tx.try_send(1).unwrap();
        let permit = tx.try_reserve().unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        drop(permit);
        tx.try_send(3).unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn a_queue_that_held_one_packet_at_a_time_keeps_one_slot() {
        let (tx, mut rx) = queue(128);
        for i in 0..10 {
            tx.try_send(i).unwrap();
            assert_eq!(rx.try_recv(), Ok(i));
        }
        assert_eq!(rx.0.lock().buf.capacity(), 1);
    }

    #[test]
    fn an_idle_queue_releases_its_slots() {
        let (tx, mut rx) = queue(128);
        tx.try_send(1).unwrap();
        rx.release_idle();
        assert_eq!(rx.0.lock().buf.capacity(), 1, "not while an item is queued");
        assert_eq!(rx.try_recv(), Ok(1));
        rx.release_idle();
        assert_eq!(rx.0.lock().buf.capacity(), 0);
        tx.try_send(2).unwrap();
        assert_eq!(rx.try_recv(), Ok(2));
    }

    #[test]
    fn a_drained_burst_gives_its_slots_back() {
        let (tx, mut rx) = queue(128);
        for i in 0..100 {
            tx.try_send(i).unwrap();
        }
        while rx.try_recv().is_ok() {}
        assert!(rx.0.lock().buf.capacity() <= KEEP_SLOTS);
    }

    #[tokio::test]
    async fn close_refuses_sends_keeps_what_is_queued_and_resolves_closed() {
        let (tx, mut rx) = queue(4);
        tx.try_send(1).unwrap();
        let permit = tx.try_reserve().unwrap();
        let waiter = async { tx.closed().await };
        let closer = async {
            tokio::task::yield_now().await;
            rx.close();
        };
        tokio::join!(waiter, closer);
        assert!(tx.is_closed());
        assert!(matches!(tx.try_send(2), Err(TrySendError::Closed(2))));
        permit.send(5);
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(5));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn interrupt_sets_the_flag_and_wakes_the_reader() {
        let (tx, mut rx) = queue::<u8>(4);
        assert!(!rx.is_interrupted());
        let waiter = tokio::spawn(async move {
            std::future::poll_fn(|cx| {
                if rx.is_interrupted() {
                    return Poll::Ready(());
                }
                rx.poll_recv(cx).map(|_| ())
            })
            .await;
            rx.is_interrupted()
        });
        tokio::task::yield_now().await;
        tx.interrupt();
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn the_read_waker_sets_its_flag_and_wakes_the_reader() {
        let (_tx, mut rx) = queue::<u8>(4);
        assert!(rx.take_read_wake(), "woken to start with");
        assert!(!rx.take_read_wake());
        let read_waker = rx.read_waker();
        let reader = tokio::spawn(async move {
            std::future::poll_fn(|cx| {
                let _ = rx.poll_volatile(cx);
                if rx.take_read_wake() {
                    return Poll::Ready(());
                }
                Poll::Pending
            })
            .await;
        });
        tokio::task::yield_now().await;
        read_waker.wake();
        reader.await.unwrap();
    }

    #[test]
    fn the_volatile_slot_keeps_the_latest_item_until_taken() {
        let (tx, mut rx) = queue(1);
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_volatile(&mut cx).is_pending());
        // Neither the queue's capacity nor its items stand in the way.
        tx.try_send(0).unwrap();
        assert!(tx.set_volatile(1));
        assert!(tx.set_volatile(2));
        assert_eq!(rx.poll_volatile(&mut cx), Poll::Ready(2));
        assert!(rx.poll_volatile(&mut cx).is_pending());
        assert_eq!(rx.try_recv(), Ok(0));
        rx.close();
        assert!(!tx.set_volatile(3));
        assert!(rx.poll_volatile(&mut cx).is_pending());
    }

    #[tokio::test]
    async fn poll_volatile_wakes_when_an_item_is_set() {
        let (tx, mut rx) = queue::<u8>(4);
        let task = tokio::spawn(async move { poll_fn(|cx| rx.poll_volatile(cx)).await });
        tokio::task::yield_now().await;
        tx.set_volatile(9);
        assert_eq!(task.await.unwrap(), 9);
    }

    #[tokio::test]
    async fn recv_wakes_when_an_item_arrives() {
        let (tx, mut rx) = queue(4);
        let tx = Arc::new(tx);
        let sender = tx.clone();
        let task = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        sender.try_reserve().unwrap().send(7);
        assert_eq!(task.await.unwrap(), Some(7));
    }
}
