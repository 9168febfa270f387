//! One Bybit v5 linear public feed: parse → decode → books and tickers → [`MarketEvent`]s.
//!
//! Runs on the feed thread. Per frame it allocates nothing after warm-up: the parser's buffers, the
//! books and the ticker slots are reused (a new topic or symbol adds a slot once, on the cold path).
//! Slots are small vectors scanned linearly: a feed serves a handful of symbols.
//!
//! What each topic emits:
//! - `orderbook.{50,200,500,…}`: `BookSynced` on a snapshot, then `BookTop` after every applied
//!   message while in sync; `BookStale` on a gap, a malformed level, a disconnect or a ring overflow.
//! - `orderbook.1`: Bybit's own best bid/offer as a `Quote` after every applied message. Old level-1
//!   streams send deltas too (the 2023 frames in `../shared/data/bybit-v5` do), so level 1 is kept in
//!   a one-level [`TopicBook`] with the same rules — never published as `BookTop`.
//! - `publicTrade`: one `Trade` per element.
//! - `tickers`: `MarkPrice` when the merged mark, index, funding rate or next funding time changes.
//! - `liquidation` / `allLiquidation`: one `Liquidation` per element.
//!
//! Every book event carries Bybit's cross sequence `seq` as its update id (not the per-topic `u`),
//! so quotes from `orderbook.1` and tops of deeper books are comparable by
//! [`crate::book_check::BookChecker`].
//!
//! [`MarketEvent`]: qalpha_engine::MarketEvent

use qalpha_engine::event::{MarkPrice, MarketPayload, StaleReason, TopOfBook, Venue};
use qalpha_engine::ring::PushOutcome;
use qalpha_engine::Symbol;

use super::decode::{decode, BookUpdate, BybitMsg, Control, ControlOp, TickerUpdate};
use super::sync::{DeltaOutcome, SnapshotOutcome, SyncCounters, TopicBook};
use super::ticker::Ticker;
use crate::json::JsonParser;
use crate::sink::{emit, EventSink, VenueCounters};
use crate::stale::StaleClock;
use crate::stats::{DecodeError, DecodeStats, MsgKind};

/// Feed-level counters (the books' own counters are summed in [`BybitFeed::sync_counters`]).
#[derive(Clone, Debug, Default)]
pub struct FeedCounters {
    pub decode: DecodeStats,
    /// Times a depth book went stale after having been in sync.
    pub stale_events: u64,
    /// Times a stale depth book came back in sync.
    pub resyncs: u64,
    /// Nanoseconds (by receive time) depth books spent stale after having been in sync.
    pub stale_ns: u64,
    /// Book topics the live driver must resubscribe to get a fresh snapshot (replay waits for one).
    pub resync_requests: u64,
    /// Events the ring refused (live drop policy).
    pub ring_drops: u64,
    /// Rebuilt books that came out crossed (corrupt data): never published, resynced.
    pub crossed_books: u64,
    /// Replies to subscribe / unsubscribe / ping / auth.
    pub control_frames: u64,
    pub pongs: u64,
    /// Trades whose id was seen within the last few hundred (duplicated or replayed copies): dropped.
    pub duplicate_trades: u64,
    /// `op:"subscribe"` replies with `success:false` (logged once).
    pub failed_subscriptions: u64,
    /// Ticker deltas for a symbol with no snapshot since start or disconnect (nothing to merge into).
    pub orphan_ticker_deltas: u64,
}

impl VenueCounters for FeedCounters {
    const VENUE: Venue = Venue::BybitLinear;
    fn ring_drops(&mut self) -> &mut u64 {
        &mut self.ring_drops
    }
}

/// A book topic: `orderbook.{depth}.{symbol}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookTopic {
    pub symbol: Symbol,
    pub depth: u16,
}

impl BookTopic {
    /// Level 1 is Bybit's own best bid/offer: published as quotes, not as a rebuilt book.
    pub fn is_quote(&self) -> bool {
        self.depth == 1
    }
}

struct BookSlot {
    topic: BookTopic,
    sync: TopicBook,
    /// Never started for `orderbook.1`: quote topics are not counted as stale books.
    stale: StaleClock,
}

struct TickerSlot {
    symbol: Symbol,
    ticker: Ticker,
    /// A snapshot has been merged since start or the last disconnect.
    have_snapshot: bool,
    last_mark: Option<MarkPrice>,
}

/// A Bybit v5 linear public market-data feed for any number of symbols and topics.
pub struct BybitFeed {
    parser: JsonParser,
    books: Vec<BookSlot>,
    tickers: Vec<TickerSlot>,
    counters: FeedCounters,
    last_recv_ns: u64,
    /// Book topics that need a fresh snapshot (drained by the live driver, which resubscribes).
    pending_resubscribes: Vec<BookTopic>,
    /// Trade ids seen lately (Bybit's ids are unordered UUIDs: duplicates are found by membership).
    recent_trades: crate::dedupe::RecentIds,
}

impl Default for BybitFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl BybitFeed {
    pub fn new() -> Self {
        Self {
            // ob500 snapshots are ~20 KB; larger frames grow the buffers once.
            parser: JsonParser::new(64 * 1024),
            books: Vec::with_capacity(16),
            tickers: Vec::with_capacity(16),
            counters: FeedCounters::default(),
            last_recv_ns: 0,
            pending_resubscribes: Vec::with_capacity(16),
            recent_trades: crate::dedupe::RecentIds::default(),
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
            tickers,
            counters,
            pending_resubscribes,
            recent_trades,
            ..
        } = self;
        let res = parser.parse(frame, |root| -> Result<(), DecodeError> {
            match decode(root)? {
                BybitMsg::Book(b) => {
                    on_book(books, counters, pending_resubscribes, recv_ns, &b, sink)
                }
                BybitMsg::Trades(t) => {
                    // Elements are independent: those before a malformed one are real trades.
                    for r in t.iter() {
                        let (symbol, trade) = r?;
                        if !recent_trades.insert_if_new(trade.trade_id) {
                            counters.duplicate_trades += 1;
                            continue;
                        }
                        emit(
                            counters,
                            sink,
                            symbol,
                            recv_ns,
                            t.exch_ms,
                            MarketPayload::Trade(trade),
                        );
                    }
                    Ok(())
                }
                BybitMsg::Ticker(t) => {
                    on_ticker(tickers, counters, recv_ns, &t, sink);
                    Ok(())
                }
                BybitMsg::Liquidations(l) => {
                    for r in l.iter() {
                        let (symbol, liq) = r?;
                        let p = MarketPayload::Liquidation(liq);
                        emit(counters, sink, symbol, recv_ns, l.exch_ms, p);
                    }
                    Ok(())
                }
                BybitMsg::Control(c) => {
                    on_control(counters, c, frame);
                    counters.decode.ignored += 1;
                    Ok(())
                }
                BybitMsg::Ignored => {
                    counters.decode.ignored += 1;
                    Ok(())
                }
            }
            .map(|()| counters.decode.decoded += 1)
        });
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.counters.decode.malformed("bybit", e, frame),
            Err(_) => self.counters.decode.malformed(
                "bybit",
                DecodeError::new(MsgKind::Unknown, "invalid JSON"),
                frame,
            ),
        }
    }

    /// Marks every book stale (connection lost) and forgets the tickers' merge base: after a
    /// reconnect, deltas must wait for a fresh snapshot.
    pub fn on_disconnect<S: EventSink>(&mut self, recv_ns: u64, sink: &mut S) {
        self.last_recv_ns = recv_ns;
        for t in &mut self.tickers {
            t.have_snapshot = false;
        }
        for b in &mut self.books {
            let last = b.sync.last_seq();
            b.sync.invalidate();
            if let Some(last_update_id) = last {
                went_stale(
                    b,
                    &mut self.counters,
                    &mut self.pending_resubscribes,
                    recv_ns,
                );
                if !b.topic.is_quote() {
                    emit(
                        &mut self.counters,
                        sink,
                        b.topic.symbol,
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

    /// Sum of every depth book's sync counters (`orderbook.1` excluded: see
    /// [`quote_sync_counters`](Self::quote_sync_counters)).
    pub fn sync_counters(&self) -> SyncCounters {
        self.sum_counters(false)
    }

    /// Sum of the `orderbook.1` (quote) topics' sync counters.
    pub fn quote_sync_counters(&self) -> SyncCounters {
        self.sum_counters(true)
    }

    fn sum_counters(&self, quotes: bool) -> SyncCounters {
        let mut t = SyncCounters::default();
        for b in self.books.iter().filter(|b| b.topic.is_quote() == quotes) {
            t.add(b.sync.counters());
        }
        t
    }

    /// The book of `orderbook.{depth}.{symbol}`, if the feed has seen that topic.
    pub fn book(&self, symbol: Symbol, depth: u16) -> Option<&TopicBook> {
        let topic = BookTopic { symbol, depth };
        self.books
            .iter()
            .find(|b| b.topic == topic)
            .map(|b| &b.sync)
    }

    /// The merged ticker of `symbol`, if a `tickers` frame has been seen.
    pub fn ticker(&self, symbol: Symbol) -> Option<&Ticker> {
        self.tickers
            .iter()
            .find(|t| t.symbol == symbol)
            .map(|t| &t.ticker)
    }

    /// Book topics waiting for a snapshot (the live driver resubscribes them off the hot path).
    pub fn pending_resubscribes(&self) -> &[BookTopic] {
        &self.pending_resubscribes
    }
}

fn book_index(books: &mut Vec<BookSlot>, topic: BookTopic) -> usize {
    if let Some(i) = books.iter().position(|b| b.topic == topic) {
        return i;
    }
    // Cold: first frame of a new topic.
    books.push(BookSlot {
        topic,
        sync: TopicBook::new(topic.depth),
        stale: StaleClock::default(),
    });
    books.len() - 1
}

fn synced(b: &mut BookSlot, c: &mut FeedCounters, pending: &mut Vec<BookTopic>, recv_ns: u64) {
    if let Some(stale_ns) = b.stale.synced(recv_ns) {
        c.stale_ns += stale_ns;
        c.resyncs += 1;
    }
    pending.retain(|t| *t != b.topic);
}

/// Starts the stale clock of a depth book that was in sync, and asks for a resubscribe.
fn went_stale(b: &mut BookSlot, c: &mut FeedCounters, pending: &mut Vec<BookTopic>, recv_ns: u64) {
    if !b.topic.is_quote() && b.stale.went_stale(recv_ns) {
        c.stale_events += 1;
    }
    if !pending.contains(&b.topic) {
        c.resync_requests += 1;
        pending.push(b.topic);
    }
}

/// Emits the rebuilt top of book; if the ring drops it, the consumer's view is no longer exact, so
/// the book is marked stale (DESIGN §1: market-data ring full = drop, count, mark stale).
fn emit_top<S: EventSink>(
    b: &mut BookSlot,
    c: &mut FeedCounters,
    pending: &mut Vec<BookTopic>,
    sink: &mut S,
    recv_ns: u64,
    exch_ms: u64,
    top: TopOfBook,
) {
    let symbol = b.topic.symbol;
    // A crossed book is corrupt data (never published); a dropped top leaves the consumer's view
    // inexact. Either way the book is dropped and resubscribed for a snapshot.
    let reason = if top.is_crossed() {
        c.crossed_books += 1;
        StaleReason::CrossedBook
    } else if emit(
        c,
        sink,
        symbol,
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
    went_stale(b, c, pending, recv_ns);
    let stale = MarketPayload::BookStale {
        reason,
        last_update_id: top.update_id,
    };
    emit(c, sink, symbol, recv_ns, exch_ms, stale);
}

#[inline]
fn on_book<S: EventSink>(
    books: &mut Vec<BookSlot>,
    c: &mut FeedCounters,
    pending: &mut Vec<BookTopic>,
    recv_ns: u64,
    u: &BookUpdate<'_, '_>,
    sink: &mut S,
) -> Result<(), DecodeError> {
    let topic = BookTopic {
        symbol: u.symbol,
        depth: u.depth,
    };
    let i = book_index(books, topic);
    let b = &mut books[i];
    if topic.is_quote() {
        return on_quote_book(b, c, pending, recv_ns, u, sink);
    }
    let prev_seq = b.sync.last_seq();
    let stale = |reason| MarketPayload::BookStale {
        reason,
        last_update_id: prev_seq.unwrap_or(0),
    };
    if u.snapshot {
        match b
            .sync
            .on_snapshot(u.update_id, u.seq, u.bids.iter(), u.asks.iter())
        {
            SnapshotOutcome::Loaded { was_synced } => {
                if !was_synced {
                    synced(b, c, pending, recv_ns);
                }
                let p = MarketPayload::BookSynced { update_id: u.seq };
                emit(c, sink, topic.symbol, recv_ns, u.exch_ms, p);
                let top = b.sync.book().top(u.seq);
                emit_top(b, c, pending, sink, recv_ns, u.exch_ms, top);
            }
            SnapshotOutcome::Malformed { was_synced, err } => {
                went_stale(b, c, pending, recv_ns);
                if was_synced {
                    let p = stale(StaleReason::MalformedDiff);
                    emit(c, sink, topic.symbol, recv_ns, u.exch_ms, p);
                }
                return Err(err);
            }
        }
        return Ok(());
    }
    match b
        .sync
        .on_delta(u.update_id, u.seq, u.bids.iter(), u.asks.iter())
    {
        DeltaOutcome::Applied => {
            let top = b.sync.book().top(u.seq);
            emit_top(b, c, pending, sink, recv_ns, u.exch_ms, top);
        }
        DeltaOutcome::Duplicate | DeltaOutcome::Discarded => {}
        DeltaOutcome::Stale(reason) => {
            went_stale(b, c, pending, recv_ns);
            emit(c, sink, topic.symbol, recv_ns, u.exch_ms, stale(reason));
            if reason == StaleReason::MalformedDiff {
                return Err(DecodeError::new(MsgKind::OrderBook, "malformed level"));
            }
        }
    }
    Ok(())
}

/// `orderbook.1`: keep the one-level book and publish it as the venue's quote.
fn on_quote_book<S: EventSink>(
    b: &mut BookSlot,
    c: &mut FeedCounters,
    pending: &mut Vec<BookTopic>,
    recv_ns: u64,
    u: &BookUpdate<'_, '_>,
    sink: &mut S,
) -> Result<(), DecodeError> {
    let applied = if u.snapshot {
        match b
            .sync
            .on_snapshot(u.update_id, u.seq, u.bids.iter(), u.asks.iter())
        {
            SnapshotOutcome::Loaded { .. } => {
                synced(b, c, pending, recv_ns);
                true
            }
            SnapshotOutcome::Malformed { err, .. } => {
                went_stale(b, c, pending, recv_ns);
                return Err(err);
            }
        }
    } else {
        match b
            .sync
            .on_delta(u.update_id, u.seq, u.bids.iter(), u.asks.iter())
        {
            DeltaOutcome::Applied => true,
            DeltaOutcome::Duplicate | DeltaOutcome::Discarded => false,
            DeltaOutcome::Stale(reason) => {
                went_stale(b, c, pending, recv_ns);
                if reason == StaleReason::MalformedDiff {
                    return Err(DecodeError::new(MsgKind::OrderBook, "malformed level"));
                }
                false
            }
        }
    };
    if applied {
        let q = MarketPayload::Quote(b.sync.book().top(u.seq));
        emit(c, sink, u.symbol, recv_ns, u.exch_ms, q);
    }
    Ok(())
}

fn on_ticker<S: EventSink>(
    tickers: &mut Vec<TickerSlot>,
    c: &mut FeedCounters,
    recv_ns: u64,
    t: &TickerUpdate,
    sink: &mut S,
) {
    let i = match tickers.iter().position(|s| s.symbol == t.symbol) {
        Some(i) => i,
        None => {
            // Cold: first frame for a new symbol.
            tickers.push(TickerSlot {
                symbol: t.symbol,
                ticker: Ticker::default(),
                have_snapshot: false,
                last_mark: None,
            });
            tickers.len() - 1
        }
    };
    let s = &mut tickers[i];
    if !t.snapshot && !s.have_snapshot {
        c.orphan_ticker_deltas += 1;
        return;
    }
    s.have_snapshot = true;
    s.ticker
        .apply(t.snapshot, &t.fields, t.cross_seq, t.exch_ms);
    if let Some(m) = s.ticker.mark_price() {
        if s.last_mark != Some(m) {
            s.last_mark = Some(m);
            emit(
                c,
                sink,
                t.symbol,
                recv_ns,
                t.exch_ms,
                MarketPayload::MarkPrice(m),
            );
        }
    }
}

fn on_control(c: &mut FeedCounters, ctl: Control, frame: &[u8]) {
    c.control_frames += 1;
    if ctl.op == ControlOp::Pong {
        c.pongs += 1;
    }
    if ctl.is_failed_subscription() {
        c.failed_subscriptions += 1;
        if c.failed_subscriptions == 1 {
            log_failed_subscription(frame);
        }
    }
}

#[cold]
fn log_failed_subscription(frame: &[u8]) {
    let shown = &frame[..frame.len().min(200)];
    tracing::warn!(
        venue = "bybit",
        reply = %String::from_utf8_lossy(shown),
        "subscription refused (counted; further refusals are counted silently)"
    );
}
