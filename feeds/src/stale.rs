//! How long a book the consumer relied on was out of sync: [`StaleClock`].
//!
//! Only a book that has been in sync once can go stale: a book still waiting for its first
//! snapshot was never trusted, so that wait is start-up, not stale time. The clock runs on receive
//! times (`recv_ns`), so a replay reports the same stale time as the live run it recorded.
//!
//! Hot path: plain field updates, no allocation.

/// One book's stale clock. The feed owns one per book and adds what the methods return to its
/// counters (`stale_events`, `resyncs`, `stale_ns`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StaleClock {
    /// Receive time the book went stale after having been in sync; `None` while in sync (or never
    /// synced).
    since_ns: Option<u64>,
    ever_synced: bool,
}

impl StaleClock {
    /// The book lost sync at `recv_ns`. Returns true when this starts a stale period: the book had
    /// been in sync and was not already stale.
    #[inline]
    pub(crate) fn went_stale(&mut self, recv_ns: u64) -> bool {
        if self.ever_synced && self.since_ns.is_none() {
            self.since_ns = Some(recv_ns);
            return true;
        }
        false
    }

    /// The book is in sync at `recv_ns`. Returns the length of the stale period this ends, if one
    /// was running.
    #[inline]
    pub(crate) fn synced(&mut self, recv_ns: u64) -> Option<u64> {
        self.ever_synced = true;
        self.end(recv_ns)
    }

    /// Closes the accounting at the last receive time seen (end of a replay). Returns the length of
    /// the stale period still running, if any.
    pub(crate) fn finish(&mut self, last_recv_ns: u64) -> Option<u64> {
        self.end(last_recv_ns)
    }

    #[inline]
    fn end(&mut self, now_ns: u64) -> Option<u64> {
        self.since_ns
            .take()
            .map(|since| now_ns.saturating_sub(since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_book_never_synced_is_not_stale() {
        let mut c = StaleClock::default();
        assert!(!c.went_stale(10));
        assert_eq!(c.finish(100), None);
        // The first sync ends no stale period.
        assert_eq!(c.synced(50), None);
    }

    #[test]
    fn one_stale_period_per_loss_of_sync() {
        let mut c = StaleClock::default();
        c.synced(1);
        assert!(c.went_stale(10));
        // Losing sync again while stale neither restarts nor counts a new period.
        assert!(!c.went_stale(20));
        assert_eq!(c.synced(35), Some(25));
        assert_eq!(c.synced(40), None);
        assert!(c.went_stale(50));
        assert_eq!(c.finish(80), Some(30));
        // Finished: nothing left open.
        assert_eq!(c.finish(90), None);
    }

    #[test]
    fn receive_time_going_backwards_counts_zero() {
        let mut c = StaleClock::default();
        c.synced(1);
        c.went_stale(100);
        assert_eq!(c.synced(90), Some(0));
    }
}
