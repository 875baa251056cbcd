//! A loopback network device (IP medium): what the stack sends comes back to it. It stands in
//! for the board's device (embassy-stm32's Ethernet, cyw43, esp-wifi, ...) so that the
//! example links without one; it is not part of the wiring.

use core::task::{Context, Waker};

use embassy_net_driver::{Capabilities, HardwareAddress, LinkState};

const MTU: usize = 1500;

type Packet = heapless::Vec<u8, MTU>;

/// Packets in flight and the stack's waker.
pub struct Loopback {
    queue: heapless::Deque<Packet, 4>,
    waker: Option<Waker>,
}

impl Loopback {
    /// An empty device.
    pub const fn new() -> Self {
        Loopback {
            queue: heapless::Deque::new(),
            waker: None,
        }
    }
}

/// A received packet.
pub struct Rx(Packet);

/// Room for one packet.
pub struct Tx<'a>(&'a mut Loopback);

impl embassy_net_driver::RxToken for Rx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(mut self, f: F) -> R {
        f(&mut self.0)
    }
}

impl embassy_net_driver::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut p = Packet::new();
        let _ = p.resize(len.min(MTU), 0);
        let r = f(&mut p);
        let _ = self.0.queue.push_back(p);
        if let Some(w) = self.0.waker.take() {
            w.wake();
        }
        r
    }
}

impl embassy_net_driver::Driver for Loopback {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, cx: &mut Context) -> Option<(Rx, Tx<'_>)> {
        self.waker = Some(cx.waker().clone());
        let p = self.queue.pop_front()?;
        Some((Rx(p), Tx(self)))
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<Tx<'_>> {
        self.waker = Some(cx.waker().clone());
        if self.queue.is_full() {
            return None;
        }
        Some(Tx(self))
    }

    fn link_state(&mut self, _cx: &mut Context) -> LinkState {
        LinkState::Up
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MTU;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ip
    }
}
