//! What a socket's queue holds.
//!
//! The queue held a `PacketBuf` (a `SmallVec` of two `Packet`s, each as large as the OPEN
//! packet): about 190 bytes, moved into the queue, out of it and into the writer for every
//! message sent, which a fan-out paid once per delivery (`memmove` in its profile), and the
//! size of the slot a busy socket's queue keeps. A message, by far the most common item, is
//! held as its string (32 bytes); anything else as the packets it is, boxed.

use engineioxide_core::{Packet, PacketBuf, Str};
use smallvec::{Array, SmallVec, smallvec};

#[derive(Debug)]
pub(crate) enum Queued {
    /// One message packet.
    Message(Str),
    /// Any other packet, or packets that go together (a message and its attachments).
    Packets(Box<PacketBuf>),
}

impl Queued {
    pub(crate) fn packet(packet: Packet) -> Self {
        match packet {
            Packet::Message(msg) => Queued::Message(msg),
            packet => Queued::Packets(Box::new(smallvec![packet])),
        }
    }

    pub(crate) fn packets(packets: PacketBuf) -> Self {
        Queued::Packets(Box::new(packets))
    }

    /// How many packets this is (for logs).
    #[cfg(any(test, feature = "tracing"))]
    pub(crate) fn len(&self) -> usize {
        match self {
            Queued::Message(_) => 1,
            Queued::Packets(packets) => packets.len(),
        }
    }

    /// The first packet (the only one for everything but a message with attachments).
    pub(crate) fn into_first(self) -> Option<Packet> {
        match self {
            Queued::Message(msg) => Some(Packet::Message(msg)),
            Queued::Packets(packets) => packets.into_iter().next(),
        }
    }

    pub(crate) fn into_packets(self) -> PacketBuf {
        match self {
            Queued::Message(msg) => smallvec![Packet::Message(msg)],
            Queued::Packets(packets) => *packets,
        }
    }

    /// Appends the packets to `out`, in order.
    pub(crate) fn append_to<A: Array<Item = Packet>>(self, out: &mut SmallVec<A>) {
        match self {
            Queued::Message(msg) => out.push(Packet::Message(msg)),
            Queued::Packets(packets) => out.extend(*packets),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_item_is_a_string_wide() {
        assert!(std::mem::size_of::<Queued>() <= std::mem::size_of::<Str>() + 8);
        assert!(std::mem::size_of::<PacketBuf>() > 4 * std::mem::size_of::<Queued>());
    }

    #[test]
    fn packets_come_back_in_order() {
        let msg = Queued::packet(Packet::Message("a".into()));
        assert!(matches!(msg, Queued::Message(_)));
        assert_eq!(
            msg.into_packets().as_slice(),
            &[Packet::Message("a".into())]
        );
        let many = Queued::packets(smallvec![
            Packet::Message("m".into()),
            Packet::Binary(vec![1u8].into()),
        ]);
        assert_eq!(many.len(), 2);
        let mut out: SmallVec<[Packet; 1]> = smallvec![Packet::Ping];
        many.append_to(&mut out);
        assert_eq!(
            out.as_slice(),
            &[
                Packet::Ping,
                Packet::Message("m".into()),
                Packet::Binary(vec![1u8].into())
            ]
        );
        assert_eq!(
            Queued::packet(Packet::Pong).into_first(),
            Some(Packet::Pong)
        );
    }
}
