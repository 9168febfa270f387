//! One Binance USD-M feed: parse → decode → book sync → [`MarketEvent`]s.
//!
//! Runs on the feed thread. Per frame it allocates nothing after warm-up: the parser's buffers,
//! the books and their diff buffers are all reused. Books are kept per symbol in a small vector
//! (a feed serves a handful of symbols; a linear scan of inline symbols beats hashing).
//!
//! [`MarketEvent`]: qalpha_engine::MarketEvent

use qalpha_engine::event::{MarketPayload, StaleReason, Venue};
use qalpha_engine::ring::PushOutcome;
use qalpha_engine::Symbol;

use super::decode::{decode, BinanceMsg, DepthUpdate};
use super::sync::{BookSync, DiffIds, DiffOutcome, SnapshotOutcome, SyncCounters};
use crate::json::JsonParser;
use crate::sink::{emit, VenueCounters};
use crate::stale::StaleClock;
use crate::stats::{DecodeError, DecodeStats, MsgKind};

/// Kept at its first home: `qalpha_feeds::binance::feed::EventSink` is used across the workspace.
pub use crate::sink::EventSink;

/// Feed-level counters (books' own counters are summed in [`BinanceFeed::sync_counters`]).
#[derive(Clone, Debug, Default)]
pub struct FeedCounters {
    pub decode: DecodeStats,
    /// Times a book went stale after having been in sync.
    pub stale_events: u64,
    /// Times a stale book came back in sync.
    pub resyncs: u64,
    /// Nanoseconds (by receive time) books spent stale after having been in sync.
    pub stale_ns: u64,
    /// Snapshots the feed would request from REST (live) — in replay it waits for the next one.
    pub resync_requests: u64,
    /// Snapshot bodies for symbols with no book yet / unknown symbol.
    pub orphan_snapshots: u64,
    /// Events the ring refused (live drop policy).
    pub ring_drops: u64,
    /// Rebuilt books that came out crossed (corrupt data): never published, resynced.
    pub crossed_books: u64,
    /// Trades at or below the last trade id seen for the symbol (duplicated or late copies): dropped.
    pub duplicate_trades: u64,
}

impl VenueCounters for FeedCounters {
    const VENUE: Venue = Venue::BinanceUsdm;
    fn ring_drops(&mut self) -> &mut u64 {
        &mut self.ring_drops
    }
}

struct SymbolBook {
    symbol: Symbol,
    sync: BookSync,
    stale: StaleClock,
    /// Highest trade id seen (duplicate and late trade copies are dropped).
    last_trade_id: u64,
}

/// A Binance USD-M market-data feed for any number of symbols.
pub struct BinanceFeed {
    parser: JsonParser,
    books: Vec<SymbolBook>,
    counters: FeedCounters,
    last_recv_ns: u64,
}

impl Default for BinanceFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl BinanceFeed {
    pub fn new() -> Self {
        Self {
            parser: JsonParser::new(64 * 1024),
            books: Vec::with_capacity(16),
            counters: FeedCounters::default(),
            last_recv_ns: 0,
        }
    }

    /// Handles one WebSocket text frame received at `recv_ns`.
    #[inline]
    pub fn on_ws_frame<S: EventSink>(&mut self, recv_ns: u64, frame: &[u8], sink: &mut S) {
        self.counters.decode.frames += 1;
        self.last_recv_ns = recv_ns;
        let Self {
            parser,
            books,
            counters,
            ..
        } = self;
        let res = parser.parse(frame, |root| -> Result<(), DecodeError> {
            match decode(root)? {
                BinanceMsg::Depth(d) => on_depth(books, counters, recv_ns, &d, sink),
                BinanceMsg::Event {
                    symbol,
                    exch_ms,
                    payload,
                    ..
                } => {
                    if let MarketPayload::Trade(t) = &payload {
                        let i = book_index(books, symbol);
                        let b = &mut books[i];
                        if t.trade_id <= b.last_trade_id {
                            counters.duplicate_trades += 1;
                            return Ok(());
                        }
                        b.last_trade_id = t.last_trade_id.max(t.trade_id);
                    }
                    emit(counters, sink, symbol, recv_ns, exch_ms, payload);
                    Ok(())
                }
                BinanceMsg::Snapshot(_) => Err(DecodeError::new(
                    MsgKind::DepthSnapshot,
                    "snapshot on a stream connection",
                )),
                BinanceMsg::Control { .. } | BinanceMsg::Ignored => {
                    counters.decode.ignored += 1;
                    Ok(())
                }
            }
            .map(|()| counters.decode.decoded += 1)
        });
        self.settle(res, MsgKind::Unknown, frame);
    }

    /// Handles a REST depth snapshot body for `symbol` received at `recv_ns`.
    pub fn on_snapshot<S: EventSink>(
        &mut self,
        recv_ns: u64,
        symbol: Symbol,
        body: &[u8],
        sink: &mut S,
    ) {
        self.counters.decode.frames += 1;
        self.last_recv_ns = recv_ns;
        let Self {
            parser,
            books,
            counters,
            ..
        } = self;
        let res = parser.parse(body, |root| -> Result<(), DecodeError> {
            let BinanceMsg::Snapshot(snap) = decode(root)? else {
                return Err(DecodeError::new(
                    MsgKind::DepthSnapshot,
                    "REST body is not a depth snapshot",
                ));
            };
            counters.decode.decoded += 1;
            let i = book_index(books, symbol);
            let b = &mut books[i];
            let out = b
                .sync
                .on_snapshot(snap.last_update_id, snap.bids.iter(), snap.asks.iter());
            match out {
                SnapshotOutcome::Synced { last_id } => {
                    synced(b, counters, recv_ns);
                    emit(
                        counters,
                        sink,
                        symbol,
                        recv_ns,
                        snap.exch_ms,
                        MarketPayload::BookSynced { update_id: last_id },
                    );
                    let top = b.sync.book().top(last_id);
                    emit_top(b, counters, sink, recv_ns, snap.exch_ms, top);
                }
                SnapshotOutcome::Bridging => {}
                SnapshotOutcome::TooOld | SnapshotOutcome::Stale(_) => {
                    counters.resync_requests += 1;
                }
                SnapshotOutcome::Malformed(e) => return Err(e),
            }
            Ok(())
        });
        self.settle(res, MsgKind::DepthSnapshot, body);
    }

    /// Counts a frame's outcome: decoded frames were counted inside; errors are counted and logged
    /// once per kind (`invalid_json_kind` names what an unparsable frame was expected to be).
    #[inline]
    fn settle(
        &mut self,
        res: Result<Result<(), DecodeError>, simd_json::Error>,
        invalid_json_kind: MsgKind,
        frame: &[u8],
    ) {
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.counters.decode.malformed("binance", e, frame),
            Err(_) => self.counters.decode.malformed(
                "binance",
                DecodeError::new(invalid_json_kind, "invalid JSON"),
                frame,
            ),
        }
    }

    /// Marks every book stale (connection lost) and asks for snapshots.
    pub fn on_disconnect<S: EventSink>(&mut self, recv_ns: u64, sink: &mut S) {
        self.last_recv_ns = recv_ns;
        for b in &mut self.books {
            let last = b.sync.last_id();
            b.sync.invalidate();
            if let Some(last_update_id) = last {
                went_stale(b, &mut self.counters, recv_ns);
                emit(
                    &mut self.counters,
                    sink,
                    b.symbol,
                    recv_ns,
                    0,
                    MarketPayload::BookStale {
                        reason: StaleReason::Disconnected,
                        last_update_id,
                    },
                );
            }
        }
    }

    /// Closes the books' stale-time accounting at the end of a replay.
    pub fn finish(&mut self) {
        for b in &mut self.books {
            self.counters.stale_ns += b.stale.finish(self.last_recv_ns).unwrap_or(0);
        }
    }

    pub fn counters(&self) -> &FeedCounters {
        &self.counters
    }

    /// Sum of every book's sync counters.
    pub fn sync_counters(&self) -> SyncCounters {
        let mut t = SyncCounters::default();
        for b in &self.books {
            let c = b.sync.counters();
            t.applied += c.applied;
            t.buffered += c.buffered;
            t.dropped += c.dropped;
            t.snapshots += c.snapshots;
            t.snapshots_too_old += c.snapshots_too_old;
            t.syncs += c.syncs;
            t.gaps += c.gaps;
            t.malformed_diffs += c.malformed_diffs;
            t.buffer_overflows += c.buffer_overflows;
            t.crossed += c.crossed;
            t.duplicates += c.duplicates;
        }
        t
    }

    /// The book sync for a symbol, if the feed has seen it.
    pub fn book(&self, symbol: Symbol) -> Option<&BookSync> {
        self.books
            .iter()
            .find(|b| b.symbol == symbol)
            .map(|b| &b.sync)
    }
}

fn book_index(books: &mut Vec<SymbolBook>, symbol: Symbol) -> usize {
    if let Some(i) = books.iter().position(|b| b.symbol == symbol) {
        return i;
    }
    // Cold: first frame for a new symbol.
    books.push(SymbolBook {
        symbol,
        sync: BookSync::new(),
        stale: StaleClock::default(),
        last_trade_id: 0,
    });
    books.len() - 1
}

fn synced(b: &mut SymbolBook, c: &mut FeedCounters, recv_ns: u64) {
    if let Some(stale_ns) = b.stale.synced(recv_ns) {
        c.stale_ns += stale_ns;
        c.resyncs += 1;
    }
}

fn went_stale(b: &mut SymbolBook, c: &mut FeedCounters, recv_ns: u64) {
    if b.stale.went_stale(recv_ns) {
        c.stale_events += 1;
    }
    // One request per stale episode: later diffs are buffered, not reported stale again.
    c.resync_requests += 1;
}

/// Emits the rebuilt top of book; if the ring drops it, the consumer's view is no longer exact,
/// so the book is marked stale (DESIGN §1: market-data ring full = drop, count, mark stale).
fn emit_top<S: EventSink>(
    b: &mut SymbolBook,
    c: &mut FeedCounters,
    sink: &mut S,
    recv_ns: u64,
    exch_ms: u64,
    top: qalpha_engine::event::TopOfBook,
) {
    // A crossed book is corrupt data (never published); a dropped top leaves the consumer's view
    // inexact. Either way the book is dropped and resynced from a snapshot.
    let reason = if top.is_crossed() {
        c.crossed_books += 1;
        StaleReason::CrossedBook
    } else if emit(
        c,
        sink,
        b.symbol,
        recv_ns,
        exch_ms,
        MarketPayload::BookTop(top),
    ) == PushOutcome::Dropped
    {
        StaleReason::RingOverflow
    } else {
        return;
    };
    b.sync.invalidate();
    went_stale(b, c, recv_ns);
    let stale = MarketPayload::BookStale {
        reason,
        last_update_id: top.update_id,
    };
    emit(c, sink, b.symbol, recv_ns, exch_ms, stale);
}

#[inline]
fn on_depth<S: EventSink>(
    books: &mut Vec<SymbolBook>,
    c: &mut FeedCounters,
    recv_ns: u64,
    d: &DepthUpdate<'_, '_>,
    sink: &mut S,
) -> Result<(), DecodeError> {
    if d.partial {
        // A partial-depth frame is a complete top-N from the venue: publish its best level as a quote.
        let mut bids = d.bids.iter();
        let mut asks = d.asks.iter();
        let (bid_px, bid_qty) = bids.next().transpose()?.unwrap_or_default();
        let (ask_px, ask_qty) = asks.next().transpose()?.unwrap_or_default();
        let top = qalpha_engine::event::TopOfBook {
            update_id: d.last_id,
            bid_px,
            bid_qty,
            ask_px,
            ask_qty,
        };
        emit(
            c,
            sink,
            d.symbol,
            recv_ns,
            d.exch_ms,
            MarketPayload::Quote(top),
        );
        return Ok(());
    }
    let i = book_index(books, d.symbol);
    let b = &mut books[i];
    let prev_last = b.sync.last_id();
    let ids = DiffIds {
        first_id: d.first_id,
        last_id: d.last_id,
        prev_last_id: d.prev_last_id,
    };
    match b.sync.on_diff(ids, d.bids.iter(), d.asks.iter()) {
        DiffOutcome::Applied => {
            let top = b.sync.book().top(d.last_id);
            emit_top(b, c, sink, recv_ns, d.exch_ms, top);
        }
        DiffOutcome::Synced => {
            synced(b, c, recv_ns);
            emit(
                c,
                sink,
                d.symbol,
                recv_ns,
                d.exch_ms,
                MarketPayload::BookSynced {
                    update_id: d.last_id,
                },
            );
            let top = b.sync.book().top(d.last_id);
            emit_top(b, c, sink, recv_ns, d.exch_ms, top);
        }
        DiffOutcome::Buffered | DiffOutcome::Dropped => {}
        DiffOutcome::Stale(reason) => {
            went_stale(b, c, recv_ns);
            emit(
                c,
                sink,
                d.symbol,
                recv_ns,
                d.exch_ms,
                MarketPayload::BookStale {
                    reason,
                    last_update_id: prev_last.unwrap_or(0),
                },
            );
            if reason == StaleReason::MalformedDiff {
                return Err(DecodeError::new(MsgKind::DepthUpdate, "malformed level"));
            }
        }
    }
    Ok(())
}
