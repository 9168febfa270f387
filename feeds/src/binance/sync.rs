//! Binance USD-M local book sync (PROTOCOLS.md §A.4).
//!
//! 1. Buffer diffs from the stream while no snapshot is loaded.
//! 2. Load the REST snapshot (`lastUpdateId = L`).
//! 3. Drop diffs with `u < L`.
//! 4. The first applied diff must satisfy `U <= L <= u` (USD-M rule, unlike Spot's `L + 1`).
//! 5. Then every diff must have `pu == previous u`; otherwise the book is stale: keep the stream,
//!    buffer again and wait for a new snapshot (live: request one; replay: the next snapshot record).
//!
//! The buffer is bounded and pre-allocated; if it overflows before a snapshot arrives it is
//! cleared (counted) — a later snapshot is newer than anything dropped. Buffered diffs are checked
//! for `pu` continuity as they arrive, so a gap inside the buffer restarts it at the gap.

use qalpha_engine::event::StaleReason;
use qalpha_engine::{Price, Qty};

use crate::book::{BookSide, OrderBook};
use crate::stats::DecodeError;

/// Most diffs held while waiting for a snapshot.
pub const MAX_BUFFERED_DIFFS: usize = 8192;
/// Most levels held across buffered diffs.
pub const MAX_BUFFERED_LEVELS: usize = 1 << 20;

/// The ids of one diff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiffIds {
    /// `U`
    pub first_id: u64,
    /// `u`
    pub last_id: u64,
    /// `pu`
    pub prev_last_id: Option<u64>,
}

/// Where the book stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// No usable snapshot: diffs are buffered.
    AwaitingSnapshot,
    /// Snapshot loaded at `L`; waiting for the diff with `U <= L <= u`.
    Bridging { snapshot_id: u64 },
    /// In sync at update id `last_id`.
    Synced { last_id: u64 },
}

/// What a diff did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffOutcome {
    /// Applied to an in-sync book.
    Applied,
    /// This diff bridged the snapshot: the book is now in sync.
    Synced,
    /// Held until a snapshot arrives.
    Buffered,
    /// Older than the snapshot (`u < L`): discarded.
    Dropped,
    /// The book went stale for this reason; a new snapshot is needed.
    Stale(StaleReason),
}

/// What a snapshot did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotOutcome {
    /// Bridged with buffered diffs: in sync at this id.
    Synced { last_id: u64 },
    /// Loaded; the bridging diff has not arrived yet.
    Bridging,
    /// The buffered diffs start after the snapshot: a newer snapshot is needed.
    TooOld,
    /// A level could not be parsed; the snapshot was discarded.
    Malformed(DecodeError),
    /// A gap or bad level among the buffered diffs applied after the snapshot.
    Stale(StaleReason),
}

/// Counters for one book.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncCounters {
    pub applied: u64,
    pub buffered: u64,
    pub dropped: u64,
    pub snapshots: u64,
    pub snapshots_too_old: u64,
    /// Times the book reached sync (first sync included).
    pub syncs: u64,
    pub gaps: u64,
    pub malformed_diffs: u64,
    pub buffer_overflows: u64,
    /// Updates that left the book crossed while in sync (should stay 0 on real data).
    pub crossed: u64,
    /// Diffs at or before the book's update id (duplicates, late copies): dropped.
    pub duplicates: u64,
}

#[derive(Clone, Copy, Debug)]
struct BufferedDiff {
    ids: DiffIds,
    levels_start: usize,
    n_bids: usize,
    n_asks: usize,
}

/// One symbol's book and its sync state.
pub struct BookSync {
    book: OrderBook,
    state: SyncState,
    diffs: Vec<BufferedDiff>,
    levels: Vec<(Price, Qty)>,
    counters: SyncCounters,
}

impl Default for BookSync {
    fn default() -> Self {
        Self::new()
    }
}

impl BookSync {
    pub fn new() -> Self {
        Self {
            book: OrderBook::with_capacity(4096),
            state: SyncState::AwaitingSnapshot,
            diffs: Vec::with_capacity(1024),
            levels: Vec::with_capacity(64 * 1024),
            counters: SyncCounters::default(),
        }
    }

    pub fn state(&self) -> SyncState {
        self.state
    }

    /// True when the book may be used (checks, signals, orders).
    pub fn is_synced(&self) -> bool {
        matches!(self.state, SyncState::Synced { .. })
    }

    /// The book. Only meaningful while [`is_synced`](Self::is_synced).
    pub fn book(&self) -> &OrderBook {
        &self.book
    }

    pub fn counters(&self) -> &SyncCounters {
        &self.counters
    }

    /// Last applied update id while in sync.
    pub fn last_id(&self) -> Option<u64> {
        match self.state {
            SyncState::Synced { last_id } => Some(last_id),
            _ => None,
        }
    }

    /// Marks the book stale from outside (disconnect, dropped event) and starts buffering.
    pub fn invalidate(&mut self) {
        self.state = SyncState::AwaitingSnapshot;
        self.clear_buffer();
    }

    /// Feeds one diff.
    pub fn on_diff<B, A>(&mut self, ids: DiffIds, bids: B, asks: A) -> DiffOutcome
    where
        B: IntoIterator<Item = Result<(Price, Qty), DecodeError>>,
        A: IntoIterator<Item = Result<(Price, Qty), DecodeError>>,
    {
        match self.state {
            SyncState::AwaitingSnapshot => {
                self.buffer(ids, bids, asks);
                DiffOutcome::Buffered
            }
            SyncState::Bridging { snapshot_id } => {
                if ids.last_id < snapshot_id {
                    self.counters.dropped += 1;
                    DiffOutcome::Dropped
                } else if ids.first_id > snapshot_id {
                    // The stream moved past the snapshot before a bridging diff was seen.
                    self.counters.snapshots_too_old += 1;
                    self.state = SyncState::AwaitingSnapshot;
                    self.buffer(ids, bids, asks);
                    DiffOutcome::Stale(StaleReason::SnapshotTooOld)
                } else {
                    match self.apply(ids, bids, asks) {
                        Ok(()) => {
                            self.counters.syncs += 1;
                            DiffOutcome::Synced
                        }
                        Err(r) => DiffOutcome::Stale(r),
                    }
                }
            }
            // Entirely older than the book (a duplicated or late copy): nothing new in it.
            SyncState::Synced { last_id } if ids.last_id <= last_id => {
                self.counters.duplicates += 1;
                DiffOutcome::Dropped
            }
            SyncState::Synced { last_id } => {
                let continuous = match ids.prev_last_id {
                    Some(pu) => pu == last_id,
                    None => ids.first_id == last_id + 1,
                };
                if continuous {
                    match self.apply(ids, bids, asks) {
                        Ok(()) => DiffOutcome::Applied,
                        Err(r) => DiffOutcome::Stale(r),
                    }
                } else {
                    self.counters.gaps += 1;
                    self.state = SyncState::AwaitingSnapshot;
                    self.clear_buffer();
                    self.buffer(ids, bids, asks);
                    DiffOutcome::Stale(StaleReason::SequenceGap)
                }
            }
        }
    }

    /// Loads a REST snapshot and bridges it with the buffered diffs.
    pub fn on_snapshot<B, A>(&mut self, last_update_id: u64, bids: B, asks: A) -> SnapshotOutcome
    where
        B: IntoIterator<Item = Result<(Price, Qty), DecodeError>>,
        A: IntoIterator<Item = Result<(Price, Qty), DecodeError>>,
    {
        self.counters.snapshots += 1;
        self.book.clear();
        let loaded: Result<(), DecodeError> = bids
            .into_iter()
            .try_for_each(|l| l.map(|(p, q)| self.book.set(BookSide::Bid, p, q)))
            .and_then(|()| {
                asks.into_iter()
                    .try_for_each(|l| l.map(|(p, q)| self.book.set(BookSide::Ask, p, q)))
            });
        if let Err(e) = loaded {
            self.book.clear();
            self.state = SyncState::AwaitingSnapshot;
            return SnapshotOutcome::Malformed(e);
        }
        self.state = SyncState::Bridging {
            snapshot_id: last_update_id,
        };
        // Replay the buffer through the live rules. Taking the vectors keeps their capacity.
        let diffs = std::mem::take(&mut self.diffs);
        let levels = std::mem::take(&mut self.levels);
        let mut outcome = SnapshotOutcome::Bridging;
        let mut keep_from = diffs.len();
        for (i, d) in diffs.iter().enumerate() {
            let lv = &levels[d.levels_start..d.levels_start + d.n_bids + d.n_asks];
            let (b, a) = lv.split_at(d.n_bids);
            let r = self.on_diff_unbuffered(d.ids, b, a);
            match r {
                DiffOutcome::Dropped => {}
                DiffOutcome::Synced | DiffOutcome::Applied => {
                    if let SyncState::Synced { last_id } = self.state {
                        outcome = SnapshotOutcome::Synced { last_id };
                    }
                }
                DiffOutcome::Stale(StaleReason::SnapshotTooOld) => {
                    outcome = SnapshotOutcome::TooOld;
                    keep_from = i;
                    break;
                }
                DiffOutcome::Stale(reason) => {
                    outcome = SnapshotOutcome::Stale(reason);
                    // A gap starts a new chain at this diff; a malformed one is skipped.
                    keep_from = if reason == StaleReason::SequenceGap {
                        i
                    } else {
                        i + 1
                    };
                    break;
                }
                // Not reachable: the loop stops as soon as the state returns to buffering.
                DiffOutcome::Buffered => {}
            }
        }
        self.diffs = diffs;
        self.levels = levels;
        if keep_from < self.diffs.len() && !self.is_synced() {
            // Keep the diffs a newer snapshot will need.
            let start = self.diffs[keep_from].levels_start;
            self.diffs.drain(..keep_from);
            self.levels.drain(..start);
            for d in &mut self.diffs {
                d.levels_start -= start;
            }
        } else {
            self.clear_buffer();
        }
        outcome
    }

    /// Applies a buffered diff under the bridging/synced rules without re-buffering it.
    fn on_diff_unbuffered(
        &mut self,
        ids: DiffIds,
        bids: &[(Price, Qty)],
        asks: &[(Price, Qty)],
    ) -> DiffOutcome {
        let b = bids.iter().map(|&l| Ok(l));
        let a = asks.iter().map(|&l| Ok(l));
        match self.state {
            // A too-old snapshot turns the state back to buffering; report it without re-buffering.
            SyncState::Bridging { snapshot_id }
                if ids.last_id >= snapshot_id && ids.first_id > snapshot_id =>
            {
                self.counters.snapshots_too_old += 1;
                self.state = SyncState::AwaitingSnapshot;
                DiffOutcome::Stale(StaleReason::SnapshotTooOld)
            }
            SyncState::Synced { last_id }
                if ids
                    .prev_last_id
                    .map_or(ids.first_id != last_id + 1, |pu| pu != last_id) =>
            {
                self.counters.gaps += 1;
                self.state = SyncState::AwaitingSnapshot;
                DiffOutcome::Stale(StaleReason::SequenceGap)
            }
            _ => self.on_diff(ids, b, a),
        }
    }

    fn apply<B, A>(&mut self, ids: DiffIds, bids: B, asks: A) -> Result<(), StaleReason>
    where
        B: IntoIterator<Item = Result<(Price, Qty), DecodeError>>,
        A: IntoIterator<Item = Result<(Price, Qty), DecodeError>>,
    {
        for l in bids {
            let Ok((p, q)) = l else {
                return Err(self.malformed());
            };
            self.book.set(BookSide::Bid, p, q);
        }
        for l in asks {
            let Ok((p, q)) = l else {
                return Err(self.malformed());
            };
            self.book.set(BookSide::Ask, p, q);
        }
        self.counters.applied += 1;
        if self.book.is_crossed() {
            self.counters.crossed += 1;
        }
        self.state = SyncState::Synced {
            last_id: ids.last_id,
        };
        Ok(())
    }

    #[cold]
    fn malformed(&mut self) -> StaleReason {
        // Part of the update may be applied: the book is no longer exact.
        self.counters.malformed_diffs += 1;
        self.state = SyncState::AwaitingSnapshot;
        self.clear_buffer();
        StaleReason::MalformedDiff
    }

    fn buffer<B, A>(&mut self, ids: DiffIds, bids: B, asks: A)
    where
        B: IntoIterator<Item = Result<(Price, Qty), DecodeError>>,
        A: IntoIterator<Item = Result<(Price, Qty), DecodeError>>,
    {
        if let Some(prev) = self.diffs.last() {
            if ids.prev_last_id.is_some_and(|pu| pu != prev.ids.last_id) {
                // A gap inside the buffer: nothing before it can ever be bridged.
                self.clear_buffer();
            }
        }
        if self.diffs.len() >= MAX_BUFFERED_DIFFS {
            self.counters.buffer_overflows += 1;
            self.clear_buffer();
        }
        let start = self.levels.len();
        let mut n_bids = 0;
        for l in bids {
            match l {
                Ok(l) => self.levels.push(l),
                Err(_) => return self.drop_malformed_buffered(start),
            }
            n_bids += 1;
        }
        for l in asks {
            match l {
                Ok(l) => self.levels.push(l),
                Err(_) => return self.drop_malformed_buffered(start),
            }
        }
        let n_asks = self.levels.len() - start - n_bids;
        if self.levels.len() > MAX_BUFFERED_LEVELS {
            self.counters.buffer_overflows += 1;
            self.clear_buffer();
            return;
        }
        self.counters.buffered += 1;
        self.diffs.push(BufferedDiff {
            ids,
            levels_start: start,
            n_bids,
            n_asks,
        });
    }

    #[cold]
    fn drop_malformed_buffered(&mut self, _start: usize) {
        // The chain is broken at this diff: everything buffered so far is useless.
        self.counters.malformed_diffs += 1;
        self.clear_buffer();
    }

    fn clear_buffer(&mut self) {
        self.diffs.clear();
        self.levels.clear();
    }

    /// Diffs currently held.
    pub fn buffered_len(&self) -> usize {
        self.diffs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(p: &str, q: &str) -> Result<(Price, Qty), DecodeError> {
        Ok((Price::parse(p).unwrap(), Qty::parse(q).unwrap()))
    }
    fn ids(u0: u64, u: u64, pu: u64) -> DiffIds {
        DiffIds {
            first_id: u0,
            last_id: u,
            prev_last_id: Some(pu),
        }
    }
    fn none() -> Vec<Result<(Price, Qty), DecodeError>> {
        vec![]
    }

    #[test]
    fn buffers_then_bridges_snapshot() {
        let mut s = BookSync::new();
        assert_eq!(
            s.on_diff(ids(90, 95, 89), vec![lv("10", "1")], none()),
            DiffOutcome::Buffered
        );
        assert_eq!(
            s.on_diff(ids(96, 105, 95), vec![lv("10", "2")], vec![lv("11", "1")]),
            DiffOutcome::Buffered
        );
        assert_eq!(
            s.on_diff(ids(106, 110, 105), vec![lv("9", "3")], none()),
            DiffOutcome::Buffered
        );
        // Snapshot at 100: diff 90..95 dropped, 96..105 bridges, 106..110 continues.
        let out = s.on_snapshot(100, vec![lv("10", "5"), lv("8", "1")], vec![lv("12", "1")]);
        assert_eq!(out, SnapshotOutcome::Synced { last_id: 110 });
        assert_eq!(s.counters().dropped, 1);
        let t = s.book().top(110);
        assert_eq!(
            (t.bid_px, t.bid_qty),
            (Price::parse("10").unwrap(), Qty::parse("2").unwrap())
        );
        assert_eq!(t.ask_px, Price::parse("11").unwrap());
        assert_eq!(s.buffered_len(), 0);
        assert_eq!(
            s.on_diff(ids(111, 111, 110), none(), vec![lv("11", "0")]),
            DiffOutcome::Applied
        );
        assert_eq!(s.book().best_ask().unwrap().px, Price::parse("12").unwrap());
    }

    #[test]
    fn snapshot_before_bridging_diff_waits_then_syncs() {
        let mut s = BookSync::new();
        assert_eq!(
            s.on_snapshot(100, vec![lv("10", "1")], vec![lv("11", "1")]),
            SnapshotOutcome::Bridging
        );
        assert!(!s.is_synced());
        assert_eq!(
            s.on_diff(ids(90, 99, 80), none(), none()),
            DiffOutcome::Dropped
        );
        assert_eq!(
            s.on_diff(ids(100, 101, 99), vec![lv("10", "2")], none()),
            DiffOutcome::Synced
        );
        assert!(s.is_synced());
    }

    #[test]
    fn gap_marks_stale_until_next_snapshot() {
        let mut s = BookSync::new();
        s.on_snapshot(100, vec![lv("10", "1")], vec![lv("11", "1")]);
        assert_eq!(
            s.on_diff(ids(100, 101, 99), none(), none()),
            DiffOutcome::Synced
        );
        assert_eq!(
            s.on_diff(ids(103, 104, 102), none(), none()),
            DiffOutcome::Stale(StaleReason::SequenceGap)
        );
        assert!(!s.is_synced());
        assert_eq!(s.counters().gaps, 1);
        assert_eq!(
            s.on_diff(ids(105, 106, 104), none(), none()),
            DiffOutcome::Buffered
        );
        assert_eq!(
            s.on_snapshot(105, vec![lv("10", "1")], vec![lv("11", "1")]),
            SnapshotOutcome::Synced { last_id: 106 }
        );
    }

    #[test]
    fn too_old_snapshot_keeps_buffer_for_the_next() {
        let mut s = BookSync::new();
        s.on_diff(ids(200, 210, 199), none(), none());
        s.on_diff(ids(211, 220, 210), none(), none());
        assert_eq!(
            s.on_snapshot(150, vec![lv("1", "1")], vec![lv("2", "1")]),
            SnapshotOutcome::TooOld
        );
        assert_eq!(s.buffered_len(), 2);
        assert_eq!(
            s.on_snapshot(215, vec![lv("1", "1")], vec![lv("2", "1")]),
            SnapshotOutcome::Synced { last_id: 220 }
        );
    }

    #[test]
    fn duplicate_diff_is_dropped_not_a_gap() {
        let mut s = BookSync::new();
        s.on_snapshot(100, vec![lv("10", "1")], vec![lv("11", "1")]);
        assert_eq!(
            s.on_diff(ids(100, 101, 99), none(), none()),
            DiffOutcome::Synced
        );
        assert_eq!(
            s.on_diff(ids(102, 105, 101), none(), none()),
            DiffOutcome::Applied
        );
        assert_eq!(
            s.on_diff(ids(102, 105, 101), none(), none()),
            DiffOutcome::Dropped
        );
        assert_eq!((s.counters().duplicates, s.counters().gaps), (1, 0));
        assert_eq!(
            s.on_diff(ids(106, 106, 105), none(), none()),
            DiffOutcome::Applied
        );
    }

    #[test]
    fn nothing_from_before_a_resync_is_applied_after_it() {
        let mut s = BookSync::new();
        s.on_snapshot(100, vec![lv("10", "1")], vec![lv("11", "1")]);
        s.on_diff(ids(100, 101, 99), none(), none());
        // Diff 102..105 is lost; 106..110 arrives: gap.
        assert_eq!(
            s.on_diff(ids(106, 110, 105), vec![lv("10", "7")], none()),
            DiffOutcome::Stale(StaleReason::SequenceGap)
        );
        assert_eq!(
            s.on_diff(ids(111, 115, 110), none(), none()),
            DiffOutcome::Buffered
        );
        assert_eq!(
            s.on_snapshot(112, vec![lv("10", "3")], vec![lv("11", "2")]),
            SnapshotOutcome::Synced { last_id: 115 }
        );
        // The lost diff shows up late (a reorder): it predates the resync and must not touch the book.
        assert_eq!(
            s.on_diff(ids(102, 105, 101), vec![lv("10", "99")], none()),
            DiffOutcome::Dropped
        );
        assert_eq!(s.book().best_bid().unwrap().qty, Qty::parse("3").unwrap());
    }

    #[test]
    fn gap_inside_buffer_restarts_it() {
        let mut s = BookSync::new();
        s.on_diff(ids(10, 20, 9), none(), none());
        s.on_diff(ids(30, 40, 29), none(), none()); // pu 29 != 20
        assert_eq!(s.buffered_len(), 1);
    }

    #[test]
    fn malformed_level_makes_book_stale() {
        let mut s = BookSync::new();
        s.on_snapshot(100, vec![lv("10", "1")], vec![lv("11", "1")]);
        s.on_diff(ids(100, 101, 99), none(), none());
        let bad = vec![Err(DecodeError::new(
            crate::stats::MsgKind::DepthUpdate,
            "x",
        ))];
        assert_eq!(
            s.on_diff(ids(102, 102, 101), bad, none()),
            DiffOutcome::Stale(StaleReason::MalformedDiff)
        );
        assert!(!s.is_synced());
    }
}
