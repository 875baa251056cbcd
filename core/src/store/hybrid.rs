//! [`HybridPublishStore`]: a bounded first store (memory) that spills into a second one (a file)
//! when it is full.

use super::PublishStore;
use crate::session::StoreError;

/// A publish store made of two: entries go to `first` while it has room and to `spill` when it
/// does not, and come back out of both in sequence order (the Python client's
/// `HybridPublishStore`: memory speed in the common case, disk capacity when the server falls
/// behind).
///
/// Replay and discards see one store: [`PublishStore::next_after`] returns the lower of the
/// two stores' next entries, discards apply to both, counts add up. Each store only ever sees
/// increasing sequence numbers, as the trait requires.
///
/// Durability is the parts': with a memory `first` and a file `spill`, only the spilled
/// entries survive a restart of the process.
#[derive(Debug)]
pub struct HybridPublishStore<M, S> {
    first: M,
    spill: S,
}

impl<M: PublishStore, S: PublishStore> HybridPublishStore<M, S> {
    /// A store that fills `first` and spills into `spill`.
    pub fn new(first: M, spill: S) -> Self {
        HybridPublishStore { first, spill }
    }

    /// The first store.
    pub fn first(&self) -> &M {
        &self.first
    }

    /// The spill store.
    pub fn spill(&self) -> &S {
        &self.spill
    }

    /// Both stores, back.
    pub fn into_parts(self) -> (M, S) {
        (self.first, self.spill)
    }
}

impl<M: PublishStore, S: PublishStore> PublishStore for HybridPublishStore<M, S> {
    fn store(&mut self, seq: u64, frame: &[u8]) -> Result<(), StoreError> {
        if self.first.has_room(frame.len()) {
            match self.first.store(seq, frame) {
                // A store that claimed room and had none after all: spill.
                Err(StoreError::Full) => {}
                done => return done,
            }
        }
        self.spill.store(seq, frame)
    }

    fn discard_up_to(&mut self, seq: u64) {
        self.first.discard_up_to(seq);
        self.spill.discard_up_to(seq);
    }

    fn discard(&mut self, seq: u64) {
        self.first.discard(seq);
        self.spill.discard(seq);
    }

    fn next_after(&mut self, seq: u64) -> Option<(u64, &[u8])> {
        let in_first = self.first.next_after(seq).map(|(s, _)| s);
        let in_spill = self.spill.next_after(seq).map(|(s, _)| s);
        match (in_first, in_spill) {
            (Some(a), Some(b)) if b < a => self.spill.next_after(seq),
            (Some(_), _) => self.first.next_after(seq),
            (None, _) => self.spill.next_after(seq),
        }
    }

    fn get(&mut self, seq: u64) -> Option<&[u8]> {
        if self.first.get(seq).is_some() {
            self.first.get(seq)
        } else {
            self.spill.get(seq)
        }
    }

    fn unpersisted_count(&self) -> usize {
        self.first.unpersisted_count() + self.spill.unpersisted_count()
    }

    fn unpersisted_bytes(&self) -> usize {
        self.first.unpersisted_bytes() + self.spill.unpersisted_bytes()
    }

    fn last_seq(&self) -> u64 {
        self.first.last_seq().max(self.spill.last_seq())
    }

    fn has_room(&self, len: usize) -> bool {
        self.first.has_room(len) || self.spill.has_room(len)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.first.sync()?;
        self.spill.sync()
    }
}

#[cfg(test)]
mod tests {
    use alloc::collections::BTreeMap;
    use alloc::vec;
    use alloc::vec::Vec;

    use proptest::prelude::*;

    use super::*;
    use crate::store::MemoryPublishStore;

    type Mem = MemoryPublishStore<Vec<u8>>;

    fn hybrid(first_msgs: usize, spill_msgs: usize) -> HybridPublishStore<Mem, Mem> {
        HybridPublishStore::new(
            MemoryPublishStore::new(vec![0; 4096], first_msgs),
            MemoryPublishStore::new(vec![0; 1 << 16], spill_msgs),
        )
    }

    use crate::store::replay_all as replay;

    #[test]
    fn fills_the_first_store_then_spills_and_replays_in_order() {
        let mut s = hybrid(2, 100);
        for seq in 1..=5 {
            s.store(seq, &[seq as u8; 3]).unwrap();
        }
        assert_eq!(s.first().unpersisted_count(), 2);
        assert_eq!(s.spill().unpersisted_count(), 3);
        assert_eq!((s.unpersisted_count(), s.unpersisted_bytes()), (5, 15));
        // Persisting the first two frees memory: the next entry goes there again, after
        // spilled ones, and replay still runs in sequence order.
        s.discard_up_to(2);
        s.store(6, &[6; 3]).unwrap();
        assert_eq!(s.first().unpersisted_count(), 1);
        let seqs: Vec<u64> = replay(&mut s).into_iter().map(|(q, _)| q).collect();
        assert_eq!(seqs, [3, 4, 5, 6]);
        assert_eq!(s.get(4), Some(&[4u8; 3][..]));
        assert_eq!(s.get(6), Some(&[6u8; 3][..]));
        assert_eq!(s.last_seq(), 6);
    }

    #[test]
    fn full_when_both_are_full() {
        let mut s = hybrid(1, 1);
        s.store(1, b"a").unwrap();
        s.store(2, b"b").unwrap();
        assert!(!s.has_room(1));
        assert_eq!(s.store(3, b"c"), Err(StoreError::Full));
    }

    #[derive(Debug, Clone)]
    enum Step {
        Store(u8),
        DiscardUpTo(u8),
        DiscardOldest,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (1u8..40).prop_map(Step::Store),
            1 => any::<u8>().prop_map(Step::DiscardUpTo),
            1 => Just(Step::DiscardOldest),
        ]
    }

    proptest! {
        /// Whatever is stored and discarded, the hybrid holds what one store would: the
        /// model is an ordered map of the entries not yet discarded.
        #[test]
        fn behaves_like_one_store(steps in proptest::collection::vec(step(), 1..80)) {
            let mut s = hybrid(3, 1000);
            let mut model: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
            let mut seq = 0u64;
            for st in steps {
                match st {
                    Step::Store(len) => {
                        seq += 1;
                        let frame = vec![len; usize::from(len)];
                        s.store(seq, &frame).unwrap();
                        model.insert(seq, frame);
                    }
                    Step::DiscardUpTo(n) => {
                        let upto = seq.saturating_sub(u64::from(n % 8));
                        s.discard_up_to(upto);
                        model.retain(|&k, _| k > upto);
                    }
                    Step::DiscardOldest => {
                        // Only the oldest entry can be failed (the memory store's rule).
                        if let Some(&oldest) = model.keys().next() {
                            s.discard(oldest);
                            model.remove(&oldest);
                        }
                    }
                }
                let want: Vec<(u64, Vec<u8>)> =
                    model.iter().map(|(k, v)| (*k, v.clone())).collect();
                prop_assert_eq!(replay(&mut s), want);
                prop_assert_eq!(s.unpersisted_count(), model.len());
                prop_assert_eq!(
                    s.unpersisted_bytes(),
                    model.values().map(Vec::len).sum::<usize>()
                );
            }
        }
    }
}
