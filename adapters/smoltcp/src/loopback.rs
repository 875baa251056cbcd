//! A loopback [`Device`] with fixed capacity and no allocation, for self-tests and demos: every
//! packet transmitted is received again in order, unless the link is down.
//!
//! smoltcp's own `phy::Loopback` needs `alloc`; this one keeps `SLOTS` packets of at most `MTU`
//! bytes in an array, so a firmware image can run a client and a responder on one interface
//! (targets/bare-metal) and a host test can cut the link at will ([`Loopback::set_link_up`]).

use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// Packets in flight, in a ring of fixed slots.
struct Ring<const SLOTS: usize, const MTU: usize> {
    slots: [[u8; MTU]; SLOTS],
    lens: [usize; SLOTS],
    head: usize,
    len: usize,
    link_up: bool,
    counters: Counters,
}

/// What the device saw (for tests and reports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets queued for delivery.
    pub sent: u64,
    /// Packets handed to the interface.
    pub delivered: u64,
    /// Packets lost: transmitted while the link was down, or pushed out by a full ring.
    pub dropped: u64,
}

impl<const SLOTS: usize, const MTU: usize> Ring<SLOTS, MTU> {
    /// The slot the next packet goes to; when the ring is full the oldest packet is dropped
    /// (only the reply token of `receive` can find it full, `transmit` refuses first).
    fn push_slot(&mut self) -> Option<usize> {
        if SLOTS == 0 {
            return None;
        }
        if self.len == SLOTS {
            self.head = (self.head + 1) % SLOTS;
            self.len -= 1;
            self.counters.dropped += 1;
        }
        Some((self.head + self.len) % SLOTS)
    }
}

/// A fixed-capacity loopback device: `SLOTS` packets of up to `MTU` bytes.
pub struct Loopback<const SLOTS: usize, const MTU: usize> {
    ring: Ring<SLOTS, MTU>,
    /// The packet being received: copied out of the ring so the reply token can use the ring.
    rx: [u8; MTU],
    medium: Medium,
}

impl<const SLOTS: usize, const MTU: usize> Loopback<SLOTS, MTU> {
    /// An empty device with the link up. `medium` is usually `Medium::Ip` (no link layer).
    pub const fn new(medium: Medium) -> Self {
        Loopback {
            ring: Ring {
                slots: [[0; MTU]; SLOTS],
                lens: [0; SLOTS],
                head: 0,
                len: 0,
                link_up: true,
                counters: Counters {
                    sent: 0,
                    delivered: 0,
                    dropped: 0,
                },
            },
            rx: [0; MTU],
            medium,
        }
    }

    /// Cut or restore the link. While it is down every transmitted packet is lost (as on an
    /// unplugged cable); packets already queued are lost too when it goes down.
    pub fn set_link_up(&mut self, up: bool) {
        if !up {
            self.ring.counters.dropped += self.ring.len as u64;
            self.ring.len = 0;
        }
        self.ring.link_up = up;
    }

    /// Whether the link is up.
    pub fn is_link_up(&self) -> bool {
        self.ring.link_up
    }

    /// Packets queued, delivered and dropped so far.
    pub fn counters(&self) -> Counters {
        self.ring.counters
    }
}

/// Receives one packet (a copy taken out of the ring).
pub struct RxToken<'a> {
    packet: &'a [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.packet)
    }
}

/// Sends one packet into the ring.
pub struct TxToken<'a, const SLOTS: usize, const MTU: usize> {
    ring: &'a mut Ring<SLOTS, MTU>,
}

impl<const SLOTS: usize, const MTU: usize> phy::TxToken for TxToken<'_, SLOTS, MTU> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        // smoltcp never builds a packet above the MTU the device reports, so `len <= MTU`.
        let len = len.min(MTU);
        let ring = self.ring;
        let mut spare = [0u8; 0];
        if !ring.link_up {
            ring.counters.dropped += 1;
            // The packet must still be built (the closure's result is needed); it goes into the
            // next slot without being queued.
            let at = (ring.head + ring.len) % SLOTS.max(1);
            return match ring.slots.get_mut(at) {
                Some(slot) => f(slot.get_mut(..len).unwrap_or_default()),
                None => f(&mut spare),
            };
        }
        let Some(at) = ring.push_slot() else {
            ring.counters.dropped += 1;
            return f(&mut spare);
        };
        let r = match ring.slots.get_mut(at) {
            Some(slot) => f(slot.get_mut(..len).unwrap_or_default()),
            None => f(&mut spare),
        };
        if let Some(l) = ring.lens.get_mut(at) {
            *l = len;
        }
        ring.len += 1;
        ring.counters.sent += 1;
        r
    }
}

impl<const SLOTS: usize, const MTU: usize> Device for Loopback<SLOTS, MTU> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, SLOTS, MTU>
    where
        Self: 'a;

    fn receive(&mut self, _: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let ring = &mut self.ring;
        if ring.len == 0 {
            return None;
        }
        let at = ring.head;
        let len = ring.lens.get(at).copied().unwrap_or(0);
        let src = ring.slots.get(at).and_then(|s| s.get(..len))?;
        let dst = self.rx.get_mut(..len)?;
        dst.copy_from_slice(src);
        ring.head = (ring.head + 1) % SLOTS.max(1);
        ring.len -= 1;
        ring.counters.delivered += 1;
        Some((
            RxToken {
                packet: self.rx.get(..len).unwrap_or_default(),
            },
            TxToken { ring },
        ))
    }

    fn transmit(&mut self, _: Instant) -> Option<Self::TxToken<'_>> {
        // A full ring is backpressure: smoltcp keeps the data and retries on a later poll.
        if self.ring.link_up && self.ring.len == SLOTS {
            return None;
        }
        Some(TxToken {
            ring: &mut self.ring,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = self.medium;
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = Some(SLOTS);
        // Nothing corrupts packets in memory (smoltcp's own loopback does the same).
        caps.checksum = ChecksumCapabilities::ignored();
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::{RxToken as _, TxToken as _};

    fn send(dev: &mut Loopback<2, 16>, byte: u8) -> bool {
        match dev.transmit(Instant::ZERO) {
            Some(tx) => {
                tx.consume(4, |b| b.fill(byte));
                true
            }
            None => false,
        }
    }

    fn recv(dev: &mut Loopback<2, 16>) -> Option<Vec<u8>> {
        dev.receive(Instant::ZERO)
            .map(|(rx, _)| rx.consume(|b| b.to_vec()))
    }

    #[test]
    fn delivers_in_order_and_pushes_back_when_full() {
        let mut dev = Loopback::<2, 16>::new(Medium::Ip);
        assert!(send(&mut dev, 1));
        assert!(send(&mut dev, 2));
        assert!(!send(&mut dev, 3), "a full ring refuses a transmit token");
        assert_eq!(recv(&mut dev), Some(vec![1; 4]));
        assert_eq!(recv(&mut dev), Some(vec![2; 4]));
        assert_eq!(recv(&mut dev), None);
        assert_eq!(
            dev.counters(),
            Counters {
                sent: 2,
                delivered: 2,
                dropped: 0
            }
        );
    }

    #[test]
    fn a_cut_link_loses_queued_and_new_packets() {
        let mut dev = Loopback::<2, 16>::new(Medium::Ip);
        assert!(send(&mut dev, 1));
        dev.set_link_up(false);
        assert!(!dev.is_link_up());
        assert!(
            send(&mut dev, 2),
            "transmitting into a cut link is accepted and lost"
        );
        assert_eq!(recv(&mut dev), None);
        assert_eq!(dev.counters().dropped, 2);
        dev.set_link_up(true);
        assert!(send(&mut dev, 3));
        assert_eq!(recv(&mut dev), Some(vec![3; 4]));
    }

    #[test]
    fn a_reply_into_a_full_ring_drops_the_oldest() {
        let mut dev = Loopback::<2, 16>::new(Medium::Ip);
        assert!(send(&mut dev, 1));
        assert!(send(&mut dev, 2));
        // Receive 1 and reply twice through the reply token: the ring holds 2, then 2 and 9;
        // a second reply has to push 2 out.
        let (rx, tx) = dev.receive(Instant::ZERO).unwrap();
        assert_eq!(rx.consume(|b| b.to_vec()), vec![1; 4]);
        tx.consume(4, |b| b.fill(9));
        let (_, tx) = dev.receive(Instant::ZERO).unwrap();
        tx.consume(4, |b| b.fill(8));
        assert_eq!(recv(&mut dev), Some(vec![9; 4]));
        assert_eq!(recv(&mut dev), Some(vec![8; 4]));
        assert_eq!(dev.capabilities().max_transmission_unit, 16);
    }
}
