//! Bybit v5 `orderbook.{depth}.SYM` book rules (PROTOCOLS.md §C.3).
//!
//! Unlike Binance there is no REST bridge: the stream itself sends the snapshot.
//!
//! 1. A `snapshot` replaces the book, whenever it comes (Bybit re-sends one after internal trouble;
//!    `u == 1` marks a service restart). It is never checked against the previous `u`.
//! 2. A `delta` applies absolute sizes level by level; size `"0"` deletes the level.
//! 3. `u` goes up by exactly 1 per message per topic (observed on every real capture; the docs give
//!    no gap rule). A jump is a gap: the book is stale until the next snapshot, which the live driver
//!    gets by resubscribing. Deltas that arrive while stale are discarded — there is nothing to
//!    bridge them to.
//! 4. A delta with the `u` just applied is a re-sent duplicate and is discarded: re-applying it
//!    would be harmless (absolute sizes), skipping it is cheaper. A `u` *below* the last applied one
//!    is a gap like any other: an older message's sizes are out of date, and a sequence that moves
//!    backwards without a snapshot means the venue restarted it — the book cannot be trusted.
//!
//! Each depth of a symbol (and `orderbook.1`) is its own [`TopicBook`]: their `u` sequences are
//! independent. The cross sequence `seq` is kept alongside, because it is the id that can be compared
//! between depths (the book checker matches `orderbook.1` quotes to rebuilt books by it).

use qalpha_engine::event::StaleReason;
use qalpha_engine::{Price, Qty};

use crate::book::{BookSide, OrderBook};
use crate::stats::DecodeError;

/// Where a topic's book stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicState {
    /// No snapshot yet, or stale: deltas are discarded.
    AwaitingSnapshot,
    /// In sync after the message with update id `u` and cross sequence `seq`.
    Synced { u: u64, seq: u64 },
}

/// What a delta did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaOutcome {
    /// Applied to an in-sync book.
    Applied,
    /// `u` equal to the last applied one: discarded, the book is unchanged and still in sync.
    Duplicate,
    /// The book is waiting for a snapshot: discarded.
    Discarded,
    /// The book went stale for this reason; the next snapshot brings it back.
    Stale(StaleReason),
}

/// What a snapshot did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotOutcome {
    /// Loaded: the book is in sync. `was_synced` says whether it replaced an in-sync book.
    Loaded { was_synced: bool },
    /// A level could not be parsed: the book is cleared and stale.
    Malformed { was_synced: bool, err: DecodeError },
}

/// Counters for one topic's book.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncCounters {
    /// Deltas applied.
    pub applied: u64,
    pub snapshots: u64,
    /// Snapshots with `u == 1` (service restart).
    pub restarts: u64,
    /// Snapshots that replaced a book that was already in sync.
    pub resets: u64,
    /// Times the book reached sync from stale or empty (first sync included).
    pub syncs: u64,
    /// `u` jumps, forwards or backwards.
    pub gaps: u64,
    pub duplicates: u64,
    /// Deltas discarded while waiting for a snapshot.
    pub discarded: u64,
    pub malformed: u64,
    /// Messages that left the book crossed (best bid ≥ best ask); must stay 0 on real data.
    pub crossed: u64,
}

impl SyncCounters {
    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &SyncCounters) {
        self.applied += o.applied;
        self.snapshots += o.snapshots;
        self.restarts += o.restarts;
        self.resets += o.resets;
        self.syncs += o.syncs;
        self.gaps += o.gaps;
        self.duplicates += o.duplicates;
        self.discarded += o.discarded;
        self.malformed += o.malformed;
        self.crossed += o.crossed;
    }
}

/// One topic's book (`orderbook.{depth}.SYM`) and its sync state.
pub struct TopicBook {
    book: OrderBook,
    state: TopicState,
    counters: SyncCounters,
}

impl TopicBook {
    /// A book with room for `depth` levels per side (plus slack for levels in flight).
    pub fn new(depth: u16) -> Self {
        Self {
            book: OrderBook::with_capacity(usize::from(depth) * 2 + 8),
            state: TopicState::AwaitingSnapshot,
            counters: SyncCounters::default(),
        }
    }

    pub fn state(&self) -> TopicState {
        self.state
    }

    /// True when the book may be used (checks, signals, orders).
    pub fn is_synced(&self) -> bool {
        matches!(self.state, TopicState::Synced { .. })
    }

    /// The book. Only meaningful while [`is_synced`](Self::is_synced).
    pub fn book(&self) -> &OrderBook {
        &self.book
    }

    pub fn counters(&self) -> &SyncCounters {
        &self.counters
    }

    /// Cross sequence of the last applied message while in sync.
    pub fn last_seq(&self) -> Option<u64> {
        match self.state {
            TopicState::Synced { seq, .. } => Some(seq),
            TopicState::AwaitingSnapshot => None,
        }
    }

    /// Marks the book stale from outside (disconnect, dropped event).
    pub fn invalidate(&mut self) {
        self.state = TopicState::AwaitingSnapshot;
    }

    /// Replaces the book with a snapshot.
    pub fn on_snapshot<B, A>(&mut self, u: u64, seq: u64, bids: B, asks: A) -> SnapshotOutcome
    where
        B: IntoIterator<Item = Result<(Price, Qty), DecodeError>>,
        A: IntoIterator<Item = Result<(Price, Qty), DecodeError>>,
    {
        let was_synced = self.is_synced();
        self.counters.snapshots += 1;
        self.book.clear();
        if let Err(err) = self.load(bids, asks) {
            self.book.clear();
            self.counters.malformed += 1;
            self.state = TopicState::AwaitingSnapshot;
            return SnapshotOutcome::Malformed { was_synced, err };
        }
        if u == 1 {
            self.counters.restarts += 1;
        }
        if was_synced {
            self.counters.resets += 1;
        } else {
            self.counters.syncs += 1;
        }
        self.after_update(u, seq);
        SnapshotOutcome::Loaded { was_synced }
    }

    /// Applies a delta under the `u + 1` rule.
    pub fn on_delta<B, A>(&mut self, u: u64, seq: u64, bids: B, asks: A) -> DeltaOutcome
    where
        B: IntoIterator<Item = Result<(Price, Qty), DecodeError>>,
        A: IntoIterator<Item = Result<(Price, Qty), DecodeError>>,
    {
        let TopicState::Synced { u: last, .. } = self.state else {
            self.counters.discarded += 1;
            return DeltaOutcome::Discarded;
        };
        if u == last {
            self.counters.duplicates += 1;
            return DeltaOutcome::Duplicate;
        }
        if u != last + 1 {
            self.counters.gaps += 1;
            self.state = TopicState::AwaitingSnapshot;
            return DeltaOutcome::Stale(StaleReason::SequenceGap);
        }
        if self.load(bids, asks).is_err() {
            // Part of the delta may be applied: the book is no longer exact.
            self.counters.malformed += 1;
            self.state = TopicState::AwaitingSnapshot;
            return DeltaOutcome::Stale(StaleReason::MalformedDiff);
        }
        self.counters.applied += 1;
        self.after_update(u, seq);
        DeltaOutcome::Applied
    }

    fn load<B, A>(&mut self, bids: B, asks: A) -> Result<(), DecodeError>
    where
        B: IntoIterator<Item = Result<(Price, Qty), DecodeError>>,
        A: IntoIterator<Item = Result<(Price, Qty), DecodeError>>,
    {
        for l in bids {
            let (p, q) = l?;
            self.book.set(BookSide::Bid, p, q);
        }
        for l in asks {
            let (p, q) = l?;
            self.book.set(BookSide::Ask, p, q);
        }
        Ok(())
    }

    fn after_update(&mut self, u: u64, seq: u64) {
        if self.book.is_crossed() {
            self.counters.crossed += 1;
        }
        self.state = TopicState::Synced { u, seq };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::MsgKind;

    type L = Result<(Price, Qty), DecodeError>;

    fn lv(p: &str, q: &str) -> L {
        Ok((Price::parse(p).unwrap(), Qty::parse(q).unwrap()))
    }
    fn none() -> Vec<L> {
        vec![]
    }
    fn px(s: &str) -> Price {
        Price::parse(s).unwrap()
    }

    #[test]
    fn snapshot_then_deltas_in_sequence() {
        let mut b = TopicBook::new(50);
        assert_eq!(
            b.on_delta(9, 90, vec![lv("1", "1")], none()),
            DeltaOutcome::Discarded
        );
        assert_eq!(
            b.on_snapshot(
                10,
                100,
                vec![lv("10", "1"), lv("9", "2")],
                vec![lv("11", "1")]
            ),
            SnapshotOutcome::Loaded { was_synced: false }
        );
        assert_eq!(b.last_seq(), Some(100));
        assert_eq!(
            b.on_delta(11, 105, vec![lv("10", "0")], vec![lv("10.5", "3")]),
            DeltaOutcome::Applied
        );
        let t = b.book().top(b.last_seq().unwrap());
        assert_eq!(
            (t.update_id, t.bid_px, t.ask_px),
            (105, px("9"), px("10.5"))
        );
        assert_eq!(
            b.on_delta(11, 105, vec![lv("9", "7")], none()),
            DeltaOutcome::Duplicate
        );
        assert_eq!(b.book().best_bid().unwrap().qty, Qty::parse("2").unwrap());
        let c = b.counters();
        assert_eq!(
            (c.applied, c.syncs, c.duplicates, c.discarded),
            (1, 1, 1, 1)
        );
        assert_eq!(c.crossed, 0);
    }

    #[test]
    fn gap_is_stale_until_the_next_snapshot() {
        let mut b = TopicBook::new(50);
        b.on_snapshot(10, 100, vec![lv("10", "1")], vec![lv("11", "1")]);
        assert_eq!(
            b.on_delta(12, 110, none(), none()),
            DeltaOutcome::Stale(StaleReason::SequenceGap)
        );
        assert!(!b.is_synced());
        assert_eq!(b.on_delta(13, 111, none(), none()), DeltaOutcome::Discarded);
        assert_eq!(
            b.on_snapshot(20, 200, vec![lv("10", "1")], vec![lv("11", "1")]),
            SnapshotOutcome::Loaded { was_synced: false }
        );
        assert_eq!(b.on_delta(21, 201, none(), none()), DeltaOutcome::Applied);
        assert_eq!((b.counters().gaps, b.counters().syncs), (1, 2));
        // Backwards without a snapshot: a gap too.
        assert_eq!(
            b.on_delta(5, 300, none(), none()),
            DeltaOutcome::Stale(StaleReason::SequenceGap)
        );
        assert_eq!(b.counters().gaps, 2);
    }

    #[test]
    fn restart_snapshot_with_u_1_overwrites() {
        let mut b = TopicBook::new(50);
        b.on_snapshot(
            500,
            100,
            vec![lv("10", "1"), lv("9", "1")],
            vec![lv("11", "1")],
        );
        assert_eq!(
            b.on_snapshot(1, 101, vec![lv("8", "5")], vec![lv("12", "1")]),
            SnapshotOutcome::Loaded { was_synced: true }
        );
        assert_eq!(b.book().bid_levels(), 1);
        assert_eq!(b.book().best_bid().unwrap().px, px("8"));
        // The sequence restarts at 1: 2 is the next delta, not a duplicate.
        assert_eq!(b.on_delta(2, 102, none(), none()), DeltaOutcome::Applied);
        let c = b.counters();
        assert_eq!((c.restarts, c.resets, c.syncs, c.gaps), (1, 1, 1, 0));
    }

    #[test]
    fn malformed_levels_make_the_book_stale() {
        let bad = || vec![Err(DecodeError::new(MsgKind::OrderBook, "x"))];
        let mut b = TopicBook::new(1);
        b.on_snapshot(1, 1, vec![lv("10", "1")], vec![lv("11", "1")]);
        assert_eq!(
            b.on_delta(2, 2, none(), bad()),
            DeltaOutcome::Stale(StaleReason::MalformedDiff)
        );
        assert!(!b.is_synced());
        assert!(matches!(
            b.on_snapshot(3, 3, bad(), none()),
            SnapshotOutcome::Malformed {
                was_synced: false,
                ..
            }
        ));
        assert_eq!(b.book().bid_levels(), 0);
        assert_eq!(b.counters().malformed, 2);
    }

    #[test]
    fn crossed_books_are_counted() {
        let mut b = TopicBook::new(50);
        b.on_snapshot(1, 1, vec![lv("10", "1")], vec![lv("11", "1")]);
        b.on_delta(2, 2, vec![lv("11", "1")], none());
        assert_eq!(b.counters().crossed, 1);
    }
}
