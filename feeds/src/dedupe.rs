//! Recently seen ids, for venues whose trade ids are not ordered (Bybit's UUIDs hashed to 64 bits):
//! a duplicated or replayed trade is recognised by membership instead of by "id ≤ last".
//!
//! A fixed ring of the last [`RECENT`] ids, searched linearly (a few dozen ns: trades arrive in bursts
//! of a few, and a repeat comes from the same burst or the one before, well inside the window). No
//! allocation, no hashing beyond the id itself.

/// How many ids are remembered.
pub const RECENT: usize = 256;

/// The last [`RECENT`] ids seen.
pub struct RecentIds {
    ring: Box<[u64; RECENT]>,
    next: usize,
    len: usize,
}

impl Default for RecentIds {
    fn default() -> Self {
        Self {
            ring: Box::new([0; RECENT]),
            next: 0,
            len: 0,
        }
    }
}

impl RecentIds {
    /// Records `id`; returns `false` if it was seen within the window (a duplicate).
    #[inline]
    pub fn insert_if_new(&mut self, id: u64) -> bool {
        if self.ring[..self.len].contains(&id) {
            return false;
        }
        self.ring[self.next] = id;
        self.next = (self.next + 1) % RECENT;
        self.len = (self.len + 1).min(RECENT);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_a_window_of_ids() {
        let mut r = RecentIds::default();
        assert!(r.insert_if_new(7));
        assert!(!r.insert_if_new(7));
        for i in 100..100 + RECENT as u64 {
            assert!(r.insert_if_new(i));
        }
        // 7 has left the window; 100 + RECENT - 1 has not.
        assert!(r.insert_if_new(7));
        assert!(!r.insert_if_new(100 + RECENT as u64 - 1));
    }
}
