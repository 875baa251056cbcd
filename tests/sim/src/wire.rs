//! The virtual wire: per-direction FIFO queues of byte chunks with a delivery time. Bytes are
//! split into random chunks when sent and coalesced at random when delivered, so every
//! chunking a TCP stream can produce is exercised; a cut keeps a random prefix of what is in
//! flight (a disconnect at any byte); a black hole silently swallows everything.

use std::collections::VecDeque;

use amps_core::util::Rng;
use amps_core::{Duration, Instant};

/// One direction of a link.
#[derive(Default)]
pub(crate) struct Pipe {
    chunks: VecDeque<(Instant, Vec<u8>)>,
}

impl Pipe {
    /// Queue `bytes` for delivery after `latency`, in random chunks, after everything queued
    /// before (FIFO, like TCP).
    pub(crate) fn send(&mut self, now: Instant, latency: Duration, bytes: &[u8], rng: &mut Rng) {
        let mut at = now + latency;
        if let Some((last, _)) = self.chunks.back() {
            at = at.max(*last);
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = match rng.below(4) {
                0 => 1 + rng.below(3) as usize,
                1 => 1 + rng.below(64) as usize,
                _ => rest.len(),
            }
            .min(rest.len());
            self.chunks.push_back((at, rest[..n].to_vec()));
            rest = &rest[n..];
        }
    }

    /// The earliest delivery time.
    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.chunks.front().map(|c| c.0)
    }

    /// Everything due at `now`, coalesced into random groups.
    pub(crate) fn take_due(&mut self, now: Instant, rng: &mut Rng) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        while let Some((at, _)) = self.chunks.front() {
            if *at > now {
                break;
            }
            let (_, c) = self.chunks.pop_front().unwrap_or_default();
            match out.last_mut() {
                Some(last) if rng.below(2) == 0 => last.extend_from_slice(&c),
                _ => out.push(c),
            }
        }
        out
    }

    pub(crate) fn bytes_in_flight(&self) -> usize {
        self.chunks.iter().map(|c| c.1.len()).sum()
    }

    /// Keep only the first `keep` bytes in flight.
    pub(crate) fn truncate(&mut self, mut keep: usize) {
        let mut kept = VecDeque::new();
        while let Some((at, mut c)) = self.chunks.pop_front() {
            if keep == 0 {
                break;
            }
            if c.len() > keep {
                c.truncate(keep);
            }
            keep -= c.len();
            kept.push_back((at, c));
        }
        self.chunks = kept;
    }

    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
    }

    /// Time the last byte in flight arrives.
    pub(crate) fn last_at(&self) -> Option<Instant> {
        self.chunks.back().map(|c| c.0)
    }
}

/// A connection between a client and a broker.
pub(crate) struct Link {
    pub(crate) client: usize,
    pub(crate) broker: usize,
    pub(crate) conn: amps_broker::ConnId,
    pub(crate) latency: Duration,
    pub(crate) to_broker: Pipe,
    pub(crate) to_client: Pipe,
    /// Swallows everything silently (a partition nobody is told about).
    pub(crate) black_hole: bool,
    /// Closing: once both pipes drain (or at this time), both ends are told.
    pub(crate) closing_at: Option<Instant>,
}
