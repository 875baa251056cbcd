//! A bounded message queue with client-side conflation by SOW key and a named overflow policy
//! (docs/host.md, "Bounded queues"). It bounds what it holds twice: a number of messages of its
//! own, and bytes in a [`Budget`] shared by every queue of one client, so a client's received
//! messages never take more than the budget however many streams it has.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::sync::Signal;

/// Something a queue holds: its SOW key (for conflation) and the bytes it accounts for.
pub(crate) trait Entry {
    /// The SOW key (`k`), if the message has one.
    fn sow_key(&self) -> Option<&str>;
    /// Bytes of memory the entry holds (its copied text and payload).
    fn size(&self) -> usize;
}

/// Bytes a client's queues may hold together. An entry is accepted while the total stays
/// under the limit, and always when nothing at all is held, so one entry larger than the
/// limit cannot wedge a client.
///
/// A producer refused for lack of room is told when room is made: the budget raises the
/// signal it was given (the driver's), whichever queue gives bytes back.
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    limit: usize,
    /// A `try_take` failed since the last `give`.
    starved: AtomicBool,
    wake: Option<Arc<Signal>>,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Budget {
            used: AtomicUsize::new(0),
            limit: limit.max(1),
            starved: AtomicBool::new(false),
            wake: None,
        }
    }

    /// A budget of `limit` bytes that raises `wake` when room is made for a refused producer.
    pub(crate) fn with_wake(limit: usize, wake: Arc<Signal>) -> Self {
        Budget {
            wake: Some(wake),
            ..Budget::new(limit)
        }
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Take `n` bytes if they fit (or nothing is held). False, taking nothing, otherwise.
    pub(crate) fn try_take(&self, n: usize) -> bool {
        // Compare-and-swap, not add-then-undo: a reader of `used()` must never see a take
        // that did not fit (the transient sum went past the limit).
        let taken = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                (u == 0 || u.saturating_add(n) <= self.limit).then_some(u.saturating_add(n))
            })
            .is_ok();
        if !taken {
            self.starved.store(true, Ordering::SeqCst);
        }
        taken
    }

    /// Take `n` bytes whatever the limit (an unbounded queue, a conflated replacement).
    pub(crate) fn force(&self, n: usize) {
        self.used.fetch_add(n, Ordering::AcqRel);
    }

    /// Give `n` bytes back.
    pub(crate) fn give(&self, n: usize) {
        // Never below zero, even if a caller gives back twice (it would be a bug).
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
        if n > 0
            && self.starved.swap(false, Ordering::SeqCst)
            && let Some(w) = &self.wake
        {
            w.wake();
        }
    }
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
pub(crate) enum Pushed<T> {
    /// Queued at the back.
    Queued,
    /// Conflated: replaced an unconsumed message with the same SOW key, in its place.
    Replaced,
    /// Queued after dropping older messages to make room (how many).
    DroppedOldest(usize),
    /// Not queued, under `DropOldest`: it alone does not fit the byte budget that other
    /// queues of the client fill; it is dropped.
    Dropped,
    /// Not queued: the queue is full (policy `Block` or `SlowConsumer`); the message is returned.
    Full(T),
}

/// A bounded FIFO with optional conflation by SOW key; its entries' bytes are taken from a
/// shared [`Budget`] and given back as they are popped (or, for entries moved out with
/// [`ConflatingQueue::pop_counted`], by whoever hands them on, see [`Budget::give`]).
#[derive(Debug)]
pub(crate) struct ConflatingQueue<T> {
    items: VecDeque<T>,
    /// Position id of `items[0]`; ids grow by one per queued message.
    front_id: u64,
    /// SOW key → position id of the unconsumed message with that key (only when conflating).
    index: BTreeMap<Box<str>, u64>,
    capacity: usize,
    policy: OverflowPolicy,
    conflate: bool,
    budget: Arc<Budget>,
}

impl<T: Entry> ConflatingQueue<T> {
    /// A queue of at most `capacity` messages and the bytes `budget` allows (both ignored
    /// with [`OverflowPolicy::Unbounded`], whose bytes are still counted).
    pub(crate) fn new(capacity: usize, policy: OverflowPolicy, budget: Arc<Budget>) -> Self {
        ConflatingQueue {
            items: VecDeque::new(),
            front_id: 0,
            index: BTreeMap::new(),
            capacity: capacity.max(1),
            policy,
            conflate: false,
            budget,
        }
    }

    /// Turn conflation on: a message whose SOW key matches an unconsumed one replaces it. For
    /// messages without keys (topics without a SOW) nothing is conflated.
    pub(crate) fn set_conflate(&mut self, on: bool) {
        self.conflate = on;
        if !on {
            self.index.clear();
        }
    }

    /// Whether conflation is on.
    pub(crate) fn is_conflating(&self) -> bool {
        self.conflate
    }

    /// Add a message.
    pub(crate) fn push(&mut self, item: T) -> Pushed<T> {
        if self.conflate
            && let Some(k) = item.sow_key()
            && let Some(&id) = self.index.get(k)
            && let Some(slot) = id
                .checked_sub(self.front_id)
                .and_then(|i| self.items.get_mut(i as usize))
        {
            // In place of one already counted: only the difference is taken.
            self.budget.force(item.size());
            self.budget.give(slot.size());
            *slot = item;
            return Pushed::Replaced;
        }
        let size = item.size();
        let mut dropped = 0;
        if self.policy == OverflowPolicy::Unbounded {
            self.budget.force(size);
        } else {
            loop {
                if self.items.len() < self.capacity && self.budget.try_take(size) {
                    break;
                }
                match self.policy {
                    OverflowPolicy::DropOldest => {
                        if self.pop().is_some() {
                            dropped += 1;
                        } else {
                            // Nothing of ours left to drop: the budget is held by others.
                            return Pushed::Dropped;
                        }
                    }
                    _ => return Pushed::Full(item),
                }
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
            0 => Pushed::Queued,
            n => Pushed::DroppedOldest(n),
        }
    }

    /// Take the oldest message, giving its bytes back to the budget.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let item = self.pop_counted()?;
        self.budget.give(item.size());
        Some(item)
    }

    /// Take the oldest message; its bytes stay taken from the budget until whoever holds it
    /// gives them back (see [`Budget::give`]).
    pub(crate) fn pop_counted(&mut self) -> Option<T> {
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

    /// Drop everything queued, giving the bytes back.
    pub(crate) fn clear(&mut self) {
        while self.pop().is_some() {}
    }

    /// Messages queued.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The overflow policy.
    pub(crate) fn policy(&self) -> OverflowPolicy {
        self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Debug, PartialEq)]
    struct M(Option<&'static str>, u32);
    impl Entry for M {
        fn sow_key(&self) -> Option<&str> {
            self.0
        }
        fn size(&self) -> usize {
            10
        }
    }

    fn queue(cap: usize, policy: OverflowPolicy) -> ConflatingQueue<M> {
        ConflatingQueue::new(cap, policy, Arc::new(Budget::new(1 << 20)))
    }

    #[test]
    fn conflation_replaces_in_place() {
        let mut q = queue(10, OverflowPolicy::Block);
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
        assert_eq!(q.budget.used(), 40, "a replacement takes no extra bytes");
        assert_eq!(q.pop(), Some(M(Some("a"), 3)));
        // Once consumed, the key starts fresh.
        assert_eq!(q.push(M(Some("a"), 6)), Pushed::Queued);
        let rest: Vec<_> = std::iter::from_fn(|| q.pop()).map(|m| m.1).collect();
        assert_eq!(rest, [2, 4, 5, 6]);
        assert_eq!(q.budget.used(), 0);
    }

    #[test]
    fn overflow_policies() {
        let mut q = queue(2, OverflowPolicy::Block);
        q.push(M(None, 1));
        q.push(M(None, 2));
        assert_eq!(q.push(M(None, 3)), Pushed::Full(M(None, 3)));
        let mut q = queue(2, OverflowPolicy::DropOldest);
        q.push(M(None, 1));
        q.push(M(None, 2));
        assert_eq!(q.push(M(None, 3)), Pushed::DroppedOldest(1));
        assert_eq!(q.pop(), Some(M(None, 2)));
        let mut q = queue(1, OverflowPolicy::Unbounded);
        for i in 0..100 {
            assert_eq!(q.push(M(None, i)), Pushed::Queued);
        }
        assert_eq!(q.budget.used(), 1000, "unbounded still counts");
        // A full conflating queue still takes a replacement.
        let mut q = queue(1, OverflowPolicy::SlowConsumer);
        q.set_conflate(true);
        q.push(M(Some("k"), 1));
        assert_eq!(q.push(M(Some("k"), 2)), Pushed::Replaced);
        assert_eq!(q.push(M(Some("j"), 3)), Pushed::Full(M(Some("j"), 3)));
    }

    #[test]
    fn queues_of_one_client_share_a_byte_budget() {
        let budget = Arc::new(Budget::new(35));
        let mut a = ConflatingQueue::new(100, OverflowPolicy::Block, budget.clone());
        let mut b = ConflatingQueue::new(100, OverflowPolicy::DropOldest, budget.clone());
        for i in 0..3 {
            assert_eq!(a.push(M(None, i)), Pushed::Queued);
        }
        assert_eq!(
            a.push(M(None, 3)),
            Pushed::Full(M(None, 3)),
            "35 bytes hold 3"
        );
        // `b` holds nothing and the budget is full: it can only drop what it is given.
        assert_eq!(b.push(M(None, 9)), Pushed::Dropped);
        a.pop();
        assert_eq!(b.push(M(None, 10)), Pushed::Queued);
        assert_eq!(b.push(M(None, 11)), Pushed::DroppedOldest(1));
        assert_eq!(budget.used(), 30);
        assert!(budget.used() <= budget.limit());
        // Nothing held at all: one entry larger than the whole budget still passes.
        let tiny = Arc::new(Budget::new(1));
        let mut c = ConflatingQueue::new(10, OverflowPolicy::Block, tiny.clone());
        assert_eq!(c.push(M(None, 1)), Pushed::Queued);
        assert_eq!(c.push(M(None, 2)), Pushed::Full(M(None, 2)));
        c.clear();
        assert_eq!(tiny.used(), 0);
    }

    #[test]
    fn popped_entries_can_stay_counted_until_handed_on() {
        let mut q = queue(3, OverflowPolicy::Block);
        q.set_conflate(true);
        for (k, n) in [("a", 1), ("b", 2), ("c", 3)] {
            q.push(M(Some(k), n));
        }
        let first = q.pop_counted().unwrap();
        assert_eq!(
            q.budget.used(),
            30,
            "taken entries stay counted until handed on"
        );
        // A key taken out is no longer conflated with.
        assert_eq!(q.push(M(Some("a"), 4)), Pushed::Queued);
        assert_eq!(q.push(M(Some("a"), 5)), Pushed::Replaced);
        q.budget.give(first.size());
        let rest: Vec<_> = std::iter::from_fn(|| q.pop()).map(|m| m.1).collect();
        assert_eq!(rest, [2, 3, 5]);
        assert_eq!(q.budget.used(), 0);
    }
}
