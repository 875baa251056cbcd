//! A bounded message queue with client-side conflation by SowKey (seeds: `MessageStream`,
//! `conflate()`) and a named overflow policy (design.md §3). Used by the host adapters' message
//! streams; needs `alloc`.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};

/// Something with an optional SOW key.
pub trait Keyed {
    /// The SOW key (`k`), if the message has one.
    fn sow_key(&self) -> Option<&str>;
}

/// What a full queue does with one more message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Refuse it: the producer must wait for the consumer (backpressure). The default.
    #[default]
    Block,
    /// Drop the oldest queued message to make room.
    DropOldest,
    /// Refuse it and report the consumer as too slow (the adapter ends the stream).
    SlowConsumer,
    /// No bound (AMPS's own behaviour); only when asked for.
    Unbounded,
}

/// What `push` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed<T> {
    /// Queued at the back.
    Queued,
    /// Conflated: replaced an unconsumed message with the same SOW key, in its place.
    Replaced,
    /// Queued after dropping the oldest message (which is returned).
    DroppedOldest(T),
    /// Not queued: the queue is full (policy `Block` or `SlowConsumer`); the message is returned.
    Full(T),
}

/// A bounded FIFO with optional conflation by SOW key.
#[derive(Debug)]
pub struct ConflatingQueue<T> {
    items: VecDeque<T>,
    /// Position id of `items[0]`; ids grow by one per queued message.
    front_id: u64,
    /// SOW key → position id of the unconsumed message with that key (only when conflating).
    index: BTreeMap<Box<str>, u64>,
    capacity: usize,
    policy: OverflowPolicy,
    conflate: bool,
}

impl<T: Keyed> ConflatingQueue<T> {
    /// A queue of at most `capacity` messages (ignored with [`OverflowPolicy::Unbounded`]).
    pub fn new(capacity: usize, policy: OverflowPolicy) -> Self {
        ConflatingQueue {
            items: VecDeque::new(),
            front_id: 0,
            index: BTreeMap::new(),
            capacity: capacity.max(1),
            policy,
            conflate: false,
        }
    }

    /// Turn conflation on: a message whose SOW key matches an unconsumed one replaces it. For
    /// messages without keys (topics without a SOW) nothing is conflated (seeds).
    pub fn set_conflate(&mut self, on: bool) {
        self.conflate = on;
        if !on {
            self.index.clear();
        }
    }

    /// Whether conflation is on.
    pub fn is_conflating(&self) -> bool {
        self.conflate
    }

    /// Add a message.
    pub fn push(&mut self, item: T) -> Pushed<T> {
        if self.conflate
            && let Some(k) = item.sow_key()
            && let Some(&id) = self.index.get(k)
            && let Some(slot) = id
                .checked_sub(self.front_id)
                .and_then(|i| self.items.get_mut(i as usize))
        {
            *slot = item;
            return Pushed::Replaced;
        }
        let mut dropped = None;
        if self.items.len() >= self.capacity && self.policy != OverflowPolicy::Unbounded {
            match self.policy {
                OverflowPolicy::DropOldest => dropped = self.pop(),
                _ => return Pushed::Full(item),
            }
        }
        if self.conflate
            && let Some(k) = item.sow_key()
        {
            self.index
                .insert(k.into(), self.front_id + self.items.len() as u64);
        }
        self.items.push_back(item);
        match dropped {
            Some(d) => Pushed::DroppedOldest(d),
            None => Pushed::Queued,
        }
    }

    /// Take the oldest message.
    pub fn pop(&mut self) -> Option<T> {
        let item = self.items.pop_front()?;
        if self.conflate
            && let Some(k) = item.sow_key()
            && self.index.get(k) == Some(&self.front_id)
        {
            self.index.remove(k);
        }
        self.front_id += 1;
        Some(item)
    }

    /// Take every queued message, oldest first, onto the back of `out`: O(1) when `out` is
    /// empty (the two buffers are swapped, so their capacities are reused).
    pub fn drain_into(&mut self, out: &mut VecDeque<T>) {
        self.front_id += self.items.len() as u64;
        self.index.clear();
        if out.is_empty() {
            core::mem::swap(&mut self.items, out);
        } else {
            out.append(&mut self.items);
        }
    }

    /// Messages queued.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// True when a push would not fit (before conflation).
    pub fn is_full(&self) -> bool {
        self.policy != OverflowPolicy::Unbounded && self.items.len() >= self.capacity
    }

    /// The overflow policy.
    pub fn policy(&self) -> OverflowPolicy {
        self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct M(Option<&'static str>, u32);
    impl Keyed for M {
        fn sow_key(&self) -> Option<&str> {
            self.0
        }
    }

    #[test]
    fn conflation_replaces_in_place() {
        let mut q = ConflatingQueue::new(10, OverflowPolicy::Block);
        q.set_conflate(true);
        assert_eq!(q.push(M(Some("a"), 1)), Pushed::Queued);
        assert_eq!(q.push(M(Some("b"), 2)), Pushed::Queued);
        assert_eq!(q.push(M(Some("a"), 3)), Pushed::Replaced);
        assert_eq!(q.push(M(None, 4)), Pushed::Queued);
        assert_eq!(
            q.push(M(None, 5)),
            Pushed::Queued,
            "no key: never conflated"
        );
        assert_eq!(q.pop(), Some(M(Some("a"), 3)));
        // Once consumed, the key starts fresh.
        assert_eq!(q.push(M(Some("a"), 6)), Pushed::Queued);
        let rest: Vec<_> = core::iter::from_fn(|| q.pop()).map(|m| m.1).collect();
        assert_eq!(rest, [2, 4, 5, 6]);
    }

    #[test]
    fn overflow_policies() {
        let mut q = ConflatingQueue::new(2, OverflowPolicy::Block);
        q.push(M(None, 1));
        q.push(M(None, 2));
        assert_eq!(q.push(M(None, 3)), Pushed::Full(M(None, 3)));
        let mut q = ConflatingQueue::new(2, OverflowPolicy::DropOldest);
        q.push(M(None, 1));
        q.push(M(None, 2));
        assert_eq!(q.push(M(None, 3)), Pushed::DroppedOldest(M(None, 1)));
        assert_eq!(q.pop(), Some(M(None, 2)));
        let mut q = ConflatingQueue::new(1, OverflowPolicy::Unbounded);
        for i in 0..100 {
            assert_eq!(q.push(M(None, i)), Pushed::Queued);
        }
        // A full conflating queue still takes a replacement.
        let mut q = ConflatingQueue::new(1, OverflowPolicy::SlowConsumer);
        q.set_conflate(true);
        q.push(M(Some("k"), 1));
        assert_eq!(q.push(M(Some("k"), 2)), Pushed::Replaced);
        assert_eq!(q.push(M(Some("j"), 3)), Pushed::Full(M(Some("j"), 3)));
    }

    #[test]
    fn drain_into_takes_everything_in_order_and_frees_the_room() {
        let mut q = ConflatingQueue::new(3, OverflowPolicy::Block);
        q.set_conflate(true);
        for (k, n) in [("a", 1), ("b", 2), ("c", 3)] {
            q.push(M(Some(k), n));
        }
        let mut out = VecDeque::from([M(None, 0)]);
        q.drain_into(&mut out);
        assert!(q.is_empty() && !q.is_full());
        // A key taken out is no longer conflated with.
        assert_eq!(q.push(M(Some("a"), 4)), Pushed::Queued);
        assert_eq!(q.push(M(Some("a"), 5)), Pushed::Replaced);
        let mut empty = VecDeque::new();
        q.drain_into(&mut empty);
        out.extend(empty);
        let got: Vec<_> = out.into_iter().map(|m| m.1).collect();
        assert_eq!(got, [0, 1, 2, 3, 5]);
        assert_eq!(q.pop(), None);
    }
}
