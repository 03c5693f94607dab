//! Delivery accounting: what was promised to whom, what arrived, what was lost.
//!
//! Every published message has a sequence number. The publisher writes down how many accounted
//! sockets should receive it (after the server accepted it); every socket bumps the received
//! count of the sequence number it finds in the marker. Loss is then computed per message, so a
//! duplicate on one socket can never hide a loss on another message. Counters are atomics in a
//! table sized before the run (the run is bounded, so is the table), and [`tally`] is a pure
//! function over the two columns so the arithmetic is tested on its own.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Expected and received counts, one slot per sequence number.
pub struct Ledger {
    expected: Vec<AtomicU32>,
    received: Vec<AtomicU32>,
    /// Deliveries whose sequence number is outside the table or was never published.
    unknown: AtomicU64,
    /// The highest sequence number published + 1.
    published: AtomicU64,
}

/// The outcome over all messages of one stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    /// Messages the server accepted (the ones with expected recipients recorded).
    pub messages: u64,
    /// Sum over messages of the sockets that should have received it.
    pub expected: u64,
    /// Every delivery counted, duplicates included.
    pub received: u64,
    /// Deliveries that matched an expectation (at most `expected` per message).
    pub delivered: u64,
    /// Deliveries beyond what a message expected.
    pub duplicates: u64,
    /// Expected deliveries that never arrived.
    pub lost: u64,
    /// Deliveries of a sequence number that was never published (or refused by the server).
    pub unknown: u64,
    /// Messages that lost at least one delivery.
    pub messages_with_loss: u64,
}

impl Tally {
    /// Lost / expected, 0 when nothing was expected.
    pub fn loss_ratio(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.lost as f64 / self.expected as f64
        }
    }
}

/// Pure accounting over the two columns: expected\[i] and received\[i] belong to message i.
pub fn tally(expected: &[u32], received: &[u32], unknown: u64) -> Tally {
    let mut t = Tally {
        unknown,
        ..Tally::default()
    };
    for (i, &r) in received.iter().enumerate() {
        let e = expected.get(i).copied().unwrap_or(0);
        let (e, r) = (u64::from(e), u64::from(r));
        t.received += r;
        if e == 0 {
            // Nothing promised: a delivery of a refused or never-sent message.
            t.unknown += r;
            continue;
        }
        t.messages += 1;
        t.expected += e;
        t.delivered += r.min(e);
        t.duplicates += r.saturating_sub(e);
        let lost = e.saturating_sub(r);
        t.lost += lost;
        t.messages_with_loss += u64::from(lost > 0);
    }
    // Expectations beyond the received column (cannot happen with equal lengths, kept total).
    for &e in expected.iter().skip(received.len()) {
        if e > 0 {
            t.messages += 1;
            t.expected += u64::from(e);
            t.lost += u64::from(e);
            t.messages_with_loss += 1;
        }
    }
    t
}

impl Ledger {
    /// A ledger for at most `capacity` messages.
    pub fn new(capacity: usize) -> Self {
        Ledger {
            expected: (0..capacity).map(|_| AtomicU32::new(0)).collect(),
            received: (0..capacity).map(|_| AtomicU32::new(0)).collect(),
            unknown: AtomicU64::new(0),
            published: AtomicU64::new(0),
        }
    }

    pub fn capacity(&self) -> u64 {
        self.expected.len() as u64
    }

    /// Takes the next sequence number, or `None` when the table is full (the run stops publishing).
    pub fn next_seq(&self) -> Option<u64> {
        let seq = self.published.fetch_add(1, Relaxed);
        if seq < self.capacity() {
            Some(seq)
        } else {
            self.published.fetch_sub(1, Relaxed);
            None
        }
    }

    /// The server accepted message `seq`; `recipients` accounted sockets should get it.
    pub fn expect(&self, seq: u64, recipients: u32) {
        if let Some(slot) = self.expected.get(seq as usize) {
            slot.store(recipients, Relaxed);
        }
    }

    /// One socket received message `seq`.
    pub fn receive(&self, seq: u64) {
        match self.received.get(seq as usize) {
            Some(slot) => {
                slot.fetch_add(1, Relaxed);
            }
            None => {
                self.unknown.fetch_add(1, Relaxed);
            }
        }
    }

    /// Deliveries counted so far (cheap, for the progress line).
    pub fn received_so_far(&self) -> u64 {
        let n = self.published.load(Relaxed) as usize;
        self.received[..n.min(self.received.len())]
            .iter()
            .map(|c| u64::from(c.load(Relaxed)))
            .sum()
    }

    /// Whether every accepted message has all its expected deliveries (drain can stop early).
    pub fn complete(&self) -> bool {
        let n = self.published.load(Relaxed) as usize;
        (0..n.min(self.expected.len()))
            .all(|i| self.received[i].load(Relaxed) >= self.expected[i].load(Relaxed))
    }

    /// The outcome so far.
    pub fn tally(&self) -> Tally {
        let n = (self.published.load(Relaxed) as usize).min(self.expected.len());
        let expected: Vec<u32> = self.expected[..n].iter().map(|c| c.load(Relaxed)).collect();
        // Deliveries beyond the published range are counted as unknown too.
        let stray: u64 = self.received[n..]
            .iter()
            .map(|c| u64::from(c.load(Relaxed)))
            .sum();
        let received: Vec<u32> = self.received[..n].iter().map(|c| c.load(Relaxed)).collect();
        tally(&expected, &received, self.unknown.load(Relaxed) + stray)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_run_has_no_loss() {
        let t = tally(&[3, 3, 2], &[3, 3, 2], 0);
        assert_eq!(
            t,
            Tally {
                messages: 3,
                expected: 8,
                received: 8,
                delivered: 8,
                ..Tally::default()
            }
        );
        assert_eq!(t.loss_ratio(), 0.0);
    }

    #[test]
    fn a_duplicate_on_one_message_does_not_hide_a_loss_on_another() {
        let t = tally(&[2, 2], &[3, 1], 0);
        assert_eq!(t.received, 4);
        assert_eq!(t.delivered, 3);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.lost, 1);
        assert_eq!(t.messages_with_loss, 1);
        assert!((t.loss_ratio() - 0.25).abs() < 1e-12);
    }

    #[test]
    fn deliveries_of_refused_messages_are_unknown_not_delivered() {
        let t = tally(&[0, 4], &[2, 4], 1);
        assert_eq!(t.messages, 1);
        assert_eq!(t.expected, 4);
        assert_eq!(t.unknown, 3);
        assert_eq!(t.lost, 0);
    }

    #[test]
    fn the_concurrent_ledger_agrees_with_the_pure_tally() {
        let l = Ledger::new(4);
        for expected in [2, 1, 3] {
            let seq = l.next_seq().unwrap();
            l.expect(seq, expected);
        }
        for seq in [0, 0, 1, 1, 2, 9] {
            l.receive(seq);
        }
        assert!(!l.complete());
        let t = l.tally();
        assert_eq!(
            (
                t.messages,
                t.expected,
                t.delivered,
                t.duplicates,
                t.lost,
                t.unknown
            ),
            (3, 6, 4, 1, 2, 1)
        );
        assert_eq!(l.next_seq(), Some(3));
        assert_eq!(l.next_seq(), None, "the table is bounded");
    }
}
