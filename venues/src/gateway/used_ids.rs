//! Every client id a gateway ever sent or adopted, refused a second time for the whole life of the
//! process, in memory that does not grow with the order count the way a hash set of ids does.
//!
//! Ids in [`ClientIdGen`]'s form (`qa<start>-<sequence>`, nearly all of them) cost one bit each in
//! a bitmap of sequence numbers per prefix: 75 k orders (an hour of the soak) need 75 k bits (~9 KB,
//! at most twice that in capacity), where a `HashSet<ClientOrderId>` (32-byte keys) needs ~4 MiB and
//! kept growing for as long as the engine ran. Any other id (an order adopted from elsewhere, a
//! hand-made id) is kept whole.

use std::collections::{HashMap, HashSet};

use qalpha_engine::order::{ClientIdGen, ClientOrderId};

/// Sequence numbers at or above this are kept whole rather than widening a bitmap (2 MiB at most
/// per prefix).
const MAX_BIT_SEQ: u64 = 1 << 24;

/// The set of used client ids (see the module docs).
#[derive(Debug, Default)]
pub struct UsedIds {
    /// Prefix (with its `-`) → bit `n` set when sequence `n` was used.
    bits: HashMap<String, Vec<u64>>,
    /// Ids not in the generator's form.
    other: HashSet<ClientOrderId>,
}

impl UsedIds {
    /// Marks `id` used; `false` if it was already.
    pub fn insert(&mut self, id: ClientOrderId) -> bool {
        match ClientIdGen::split(&id) {
            Some((prefix, seq)) if seq < MAX_BIT_SEQ => {
                let words = match self.bits.get_mut(prefix) {
                    Some(w) => w,
                    None => self.bits.entry(prefix.to_string()).or_default(),
                };
                let (w, b) = ((seq / 64) as usize, seq % 64);
                if words.len() <= w {
                    words.resize(w + 1, 0);
                }
                let fresh = words[w] & (1 << b) == 0;
                words[w] |= 1 << b;
                fresh
            }
            _ => self.other.insert(id),
        }
    }

    /// Whether `id` was used.
    pub fn contains(&self, id: &ClientOrderId) -> bool {
        match ClientIdGen::split(id) {
            Some((prefix, seq)) if seq < MAX_BIT_SEQ => self
                .bits
                .get(prefix)
                .and_then(|w| w.get((seq / 64) as usize))
                .is_some_and(|w| w & (1 << (seq % 64)) != 0),
            _ => self.other.contains(id),
        }
    }

    /// Bytes held by the set's contents (capacity of the bitmaps and of the set of other ids).
    pub fn heap_bytes(&self) -> usize {
        self.bits
            .iter()
            .map(|(k, w)| k.capacity() + w.capacity() * 8)
            .sum::<usize>()
            + self.other.capacity() * std::mem::size_of::<ClientOrderId>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ClientOrderId {
        ClientOrderId::parse(s).unwrap()
    }

    #[test]
    fn each_id_is_used_once_whatever_its_form() {
        let mut u = UsedIds::default();
        let mut g = ClientIdGen::new(1_795_621_440_753);
        let mut later = ClientIdGen::new(1_795_621_440_754);
        let ids: Vec<_> = (0..500).map(|_| g.next_id()).collect();
        for i in &ids {
            assert!(!u.contains(i));
            assert!(u.insert(*i), "{i}");
        }
        for i in &ids {
            assert!(u.contains(i) && !u.insert(*i), "{i}");
        }
        // Another process's prefix is another bitmap: same sequence numbers, all fresh.
        for _ in 0..500 {
            assert!(u.insert(later.next_id()));
        }
        // Ids outside the generator's form, including near misses of it, are kept whole and do
        // not collide with the canonical ids they resemble.
        let canonical_one = ids[0];
        assert_eq!(ClientIdGen::split(&canonical_one).unwrap().1, 1);
        let prefix = ClientIdGen::split(&canonical_one).unwrap().0.to_string();
        for other in [format!("{prefix}01"), "manual-1".into(), "mock-1".into()] {
            assert!(u.insert(id(&other)), "{other}");
            assert!(!u.insert(id(&other)), "{other}");
        }
        // A sequence past the bitmap bound is kept whole too.
        let far = id(&format!("{prefix}zzzzzzzzz"));
        assert!(u.insert(far) && !u.insert(far) && u.contains(&far));
    }

    #[test]
    fn a_day_of_ids_costs_bits_not_entries() {
        let mut u = UsedIds::default();
        let mut g = ClientIdGen::new(1_795_621_440_753);
        for _ in 0..1_000_000 {
            u.insert(g.next_id());
        }
        // One bit per id (plus the prefix): 125 KB where a hash set of ids needs ~40 MB.
        assert!(u.heap_bytes() < 200_000, "{}", u.heap_bytes());
    }
}
