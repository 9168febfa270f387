//! Order-flow features for one (venue, symbol), updated per market event: trade imbalance and signed
//! volume over time windows, book imbalance at 1/5/10 levels, microprice offset, spread, depth slope,
//! funding and basis.
//!
//! Hot path: [`OrderFlow::on_event`], [`OrderFlow::on_book`] and [`OrderFlow::write`] are O(1)
//! (amortized, for trade-window eviction; `on_book` reads at most ten levels a side), allocate
//! nothing and take no lock. Every ring is sized once in [`OrderFlow::new`].
//!
//! # Columns
//!
//! For each window `w` (named in seconds, `{w}s`, or in milliseconds, `{w}ms`, when not whole):
//!
//! - `trade_imbalance_{w}` — `(buy − sell) / (buy + sell)` of taker base quantity over the trades in
//!   the last `w`; `NaN` when no trade is in the window. Insurance-fund and ADL trades are not order
//!   flow (no taker chose them) and are ignored.
//! - `signed_volume_{w}` — `buy − sell` taker base quantity over the same trades (0 when none).
//!
//! - `book_imbalance_1`, `_5`, `_10` — `(Σ bid qty − Σ ask qty) / (Σ bid qty + Σ ask qty)` over the
//!   top `k` levels of each side (fewer when the side is shallower). Level 1 comes from the latest
//!   `BookTop`, `Quote` or [`OrderFlow::on_book`]; 5 and 10 only from `on_book`.
//! - `microprice_offset_bps` — `(micro − mid) / mid × 10⁴` with
//!   `micro = (bid·ask_qty + ask·bid_qty) / (bid_qty + ask_qty)` and `mid = (bid + ask) / 2`.
//! - `spread_bps` — `(ask − bid) / mid × 10⁴`.
//! - `depth_slope` — for each side, the least-squares slope of cumulative displayed quantity (base
//!   units, through level `i`) against that level's distance from mid in bps
//!   (`|px − mid| / mid × 10⁴`), over the top ten levels; the column is the mean of the bid and ask
//!   slopes (base qty per bp). Steeper means more liquidity close to the touch. `NaN` unless both
//!   sides have at least two levels.
//! - `funding_rate` — the latest `MarkPrice` funding rate, as a fraction (`0.0001` = 1 bp).
//! - `basis_bps` — `(mark − index) / index × 10⁴` from the latest `MarkPrice`; `NaN` when the venue
//!   sent no index.
//!
//! Undefined values (no data yet, a zero denominator) are `NaN`. A `BookStale` event clears the
//! depth-only columns until the next `on_book`; the touch keeps the latest `BookTop`/`Quote`.
//!
//! # Time
//!
//! One clock: the exchange event time `exch_ms` of every event. The clock only moves forward (an
//! event stamped earlier than one already seen — streams interleave — counts at the latest time),
//! every event advances it and evicts trades that left the windows, and a trade is stamped with the
//! clock after its own event. A window of `w` holds the trades stamped in `(now − w, now]`.
//!
//! # Capacity
//!
//! Each window keeps a ring of entries `(ms, buy, sell)` with exact integer sums (`10⁻⁸` units).
//! Trades at the same millisecond share one entry. While the ring holds fewer than `exact` entries
//! (default `max(w / 10 ms, 64)`: one distinct millisecond per 10 ms on average), each
//! millisecond is its own entry and eviction is exact. Beyond that, a trade joins the newest entry
//! when both fall in the same 100 ms bucket (`ms / 100`), so the entry is evicted when its first
//! trade leaves the window: later trades in it leave up to 99 ms early. The ring never needs more
//! than `exact + w / 100 + 2` entries, which is its fixed capacity.
//! [`OrderFlow::bucketed_trades`] counts the trades that were merged that way.

use qalpha_engine::book_view::BookView;
use qalpha_engine::event::{MarkPrice, MarketEvent, MarketPayload, TopOfBook, Trade, TradeKind};
use qalpha_engine::{Price, Side};

/// Bucket width once a window's ring is past its exact part, ms.
pub const BUCKET_MS: u64 = 100;
/// Depth levels read by [`OrderFlow::on_book`] (the deepest imbalance and the depth slope).
pub const DEPTH_LEVELS: usize = 10;

/// The columns after the per-window ones, in [`OrderFlow::write`] order.
const BOOK_AND_MARK_COLUMNS: [&str; 8] = [
    "book_imbalance_1",
    "book_imbalance_5",
    "book_imbalance_10",
    "microprice_offset_bps",
    "spread_bps",
    "depth_slope",
    "funding_rate",
    "basis_bps",
];

/// One ring entry: the trades stamped at `ms` (or in its 100 ms bucket, see the module doc).
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    ms: u64,
    buy: i64,
    sell: i64,
}

/// The trades of one time window, with running sums.
#[derive(Debug)]
struct TradeWindow {
    window_ms: u64,
    /// Entries beyond which same-bucket trades are merged.
    exact: usize,
    ring: Vec<Entry>,
    /// Index of the oldest entry.
    head: usize,
    len: usize,
    /// Running sums over the ring, `10⁻⁸` base units. `i128`: no overflow however busy the window.
    buy: i128,
    sell: i128,
    bucketed: u64,
}

impl TradeWindow {
    fn new(window_ms: u64, exact: usize) -> Self {
        let exact = exact.max(1);
        let cap = exact + (window_ms / BUCKET_MS) as usize + 2;
        Self {
            window_ms,
            exact,
            ring: vec![Entry::default(); cap],
            head: 0,
            len: 0,
            buy: 0,
            sell: 0,
            bucketed: 0,
        }
    }

    #[inline]
    fn slot(&self, i: usize) -> usize {
        (self.head + i) % self.ring.len()
    }

    /// Drops the entries that are no longer in `(now − w, now]`.
    #[inline]
    fn evict(&mut self, now: u64) {
        while self.len > 0 {
            let e = self.ring[self.head];
            if now.saturating_sub(e.ms) < self.window_ms {
                break;
            }
            self.buy -= e.buy as i128;
            self.sell -= e.sell as i128;
            self.head = self.slot(1);
            self.len -= 1;
        }
    }

    /// Adds a trade stamped `ms` (never earlier than the newest entry: the caller's clock is
    /// monotone). Call [`TradeWindow::evict`] with the same `ms` first.
    #[inline]
    fn push(&mut self, ms: u64, buy: i64, sell: i64) {
        self.buy += buy as i128;
        self.sell += sell as i128;
        if self.len > 0 {
            let last = self.slot(self.len - 1);
            let e = &mut self.ring[last];
            let same_ms = e.ms == ms;
            if same_ms || (self.len >= self.exact && e.ms / BUCKET_MS == ms / BUCKET_MS) {
                e.buy += buy;
                e.sell += sell;
                self.bucketed += u64::from(!same_ms);
                return;
            }
        }
        // Capacity argument (module doc): entries created past `exact` each start a distinct
        // 100 ms bucket inside the window, so the ring cannot be full here.
        debug_assert!(self.len < self.ring.len(), "trade window ring overflow");
        let at = self.slot(self.len);
        self.ring[at] = Entry { ms, buy, sell };
        self.len += 1;
    }

    fn imbalance(&self) -> f64 {
        ratio((self.buy - self.sell) as f64, (self.buy + self.sell) as f64)
    }

    fn signed_volume(&self) -> f64 {
        (self.buy - self.sell) as f64 / qalpha_engine::FIXED_SCALE as f64
    }
}

/// Best bid and ask as floats (features only).
#[derive(Clone, Copy, Debug)]
struct Touch {
    bid_px: f64,
    bid_qty: f64,
    ask_px: f64,
    ask_qty: f64,
}

impl Touch {
    const NONE: Self = Self {
        bid_px: f64::NAN,
        bid_qty: f64::NAN,
        ask_px: f64::NAN,
        ask_qty: f64::NAN,
    };

    fn from_top(t: &TopOfBook) -> Self {
        // A venue sends a zero price for an empty side.
        let px = |p: Price| if p.raw() > 0 { p.to_f64() } else { f64::NAN };
        Self {
            bid_px: px(t.bid_px),
            bid_qty: t.bid_qty.to_f64(),
            ask_px: px(t.ask_px),
            ask_qty: t.ask_qty.to_f64(),
        }
    }

    fn mid(&self) -> f64 {
        (self.bid_px + self.ask_px) / 2.0
    }

    fn imbalance(&self) -> f64 {
        ratio(self.bid_qty - self.ask_qty, self.bid_qty + self.ask_qty)
    }

    fn spread_bps(&self) -> f64 {
        (self.ask_px - self.bid_px) / self.mid() * 1e4
    }

    fn microprice_offset_bps(&self) -> f64 {
        let qty = self.bid_qty + self.ask_qty;
        if qty.is_nan() || qty <= 0.0 {
            return f64::NAN;
        }
        let micro = (self.bid_px * self.ask_qty + self.ask_px * self.bid_qty) / qty;
        let mid = self.mid();
        (micro - mid) / mid * 1e4
    }
}

/// `num / den`, `NaN` when `den` is not positive.
#[inline]
fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        num / den
    } else {
        f64::NAN
    }
}

/// Least-squares sums for a side's depth slope: `n, Σx, Σy, Σx², Σxy`.
#[derive(Default)]
struct SlopeFit([f64; 5]);

impl SlopeFit {
    fn add(&mut self, x: f64, y: f64) {
        for (s, v) in self.0.iter_mut().zip([1.0, x, y, x * x, x * y]) {
            *s += v;
        }
    }

    fn slope(&self) -> f64 {
        let [n, sx, sy, sxx, sxy] = self.0;
        let den = n * sxx - sx * sx;
        // All levels at one distance (or fewer than two): no slope. Relative test, since `den` is a
        // difference of two nearly equal sums then.
        if n < 2.0 || den <= 1e-9 * n * sxx {
            f64::NAN
        } else {
            (n * sxy - sx * sy) / den
        }
    }
}

/// Order-flow features of one (venue, symbol). The caller routes only that instrument's events here.
#[derive(Debug)]
pub struct OrderFlow {
    windows: Vec<TradeWindow>,
    /// Event-time clock, ms (0 before the first event).
    now_ms: u64,
    touch: Touch,
    /// `book_imbalance_{5,10}` and `depth_slope` from the latest `on_book`.
    depth_imbalance: [f64; 2],
    depth_slope: f64,
    funding_rate: f64,
    basis_bps: f64,
    ignored_trades: u64,
}

impl OrderFlow {
    /// Features over the given trade windows (ms), with the default exact-entry count per window.
    ///
    /// # Panics
    /// On a zero or repeated window: a configuration error, caught once at start.
    pub fn new(windows_ms: &[u64]) -> Self {
        Self::with_exact_entries(windows_ms, |w| (w / 10).max(64) as usize)
    }

    /// As [`OrderFlow::new`], with the exact part of each window's ring (see the module doc) chosen
    /// by `exact(window_ms)`.
    pub fn with_exact_entries(windows_ms: &[u64], exact: impl Fn(u64) -> usize) -> Self {
        for (i, &w) in windows_ms.iter().enumerate() {
            let repeated = windows_ms[..i].contains(&w);
            assert!(
                w > 0 && !repeated,
                "order-flow window {i} ({w} ms) is zero or repeated: give distinct positive lengths"
            );
        }
        Self {
            windows: windows_ms
                .iter()
                .map(|&w| TradeWindow::new(w, exact(w)))
                .collect(),
            now_ms: 0,
            touch: Touch::NONE,
            depth_imbalance: [f64::NAN; 2],
            depth_slope: f64::NAN,
            funding_rate: f64::NAN,
            basis_bps: f64::NAN,
            ignored_trades: 0,
        }
    }

    /// Column names, in [`OrderFlow::write`] order.
    pub fn names(&self) -> Vec<String> {
        let windows = |prefix: &'static str| {
            let label = move |w: &TradeWindow| format!("{prefix}_{}", window_label(w.window_ms));
            self.windows.iter().map(label)
        };
        let tail = BOOK_AND_MARK_COLUMNS.iter().map(|n| n.to_string());
        windows("trade_imbalance")
            .chain(windows("signed_volume"))
            .chain(tail)
            .collect()
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        2 * self.windows.len() + BOOK_AND_MARK_COLUMNS.len()
    }

    /// Always false: the book and funding columns exist even without windows.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The event-time clock, ms.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Trades merged into another millisecond's entry because a ring was past its exact part, summed
    /// over windows (0 means every window evicted exactly).
    pub fn bucketed_trades(&self) -> u64 {
        self.windows.iter().map(|w| w.bucketed).sum()
    }

    /// Insurance-fund and ADL trades skipped.
    pub fn ignored_trades(&self) -> u64 {
        self.ignored_trades
    }

    /// One market event of this instrument.
    #[inline]
    pub fn on_event(&mut self, ev: &MarketEvent) {
        self.advance(ev.exch_ms);
        match &ev.payload {
            MarketPayload::BookTop(t) | MarketPayload::Quote(t) => {
                self.touch = Touch::from_top(t);
            }
            MarketPayload::Trade(t) => self.on_trade(t),
            MarketPayload::MarkPrice(m) => self.on_mark(m),
            MarketPayload::BookStale { .. } => {
                self.depth_imbalance = [f64::NAN; 2];
                self.depth_slope = f64::NAN;
            }
            // Klines and liquidations are not order flow here; a resync is seen through `on_book`.
            _ => {}
        }
    }

    /// The rebuilt book after an update (call it after the `BookTop` that update produced). Reads
    /// the top [`DEPTH_LEVELS`] levels of each side; an empty side leaves the book columns `NaN`.
    pub fn on_book(&mut self, book: &impl BookView) {
        self.depth_imbalance = [f64::NAN; 2];
        self.depth_slope = f64::NAN;
        let (Some(bid), Some(ask)) = (book.best(Side::Buy), book.best(Side::Sell)) else {
            self.touch = Touch::NONE;
            return;
        };
        self.touch = Touch::from_top(&TopOfBook {
            update_id: 0,
            bid_px: bid.px,
            bid_qty: bid.qty,
            ask_px: ask.px,
            ask_qty: ask.qty,
        });
        let mid = self.touch.mid();
        // Cumulative quantity through 5 and 10 levels, per side (index 0: bids, 1: asks).
        let mut depth = [[0.0f64; 2]; 2];
        let mut slope = [f64::NAN; 2];
        for (s, side) in [Side::Buy, Side::Sell].into_iter().enumerate() {
            let mut fit = SlopeFit::default();
            let mut cum = 0.0;
            for (i, l) in book.levels(side).take(DEPTH_LEVELS).enumerate() {
                cum += l.qty.to_f64();
                if i < 5 {
                    depth[0][s] = cum;
                }
                depth[1][s] = cum;
                fit.add((l.px.to_f64() - mid).abs() / mid * 1e4, cum);
            }
            slope[s] = fit.slope();
        }
        for (k, d) in depth.iter().enumerate() {
            self.depth_imbalance[k] = ratio(d[0] - d[1], d[0] + d[1]);
        }
        self.depth_slope = (slope[0] + slope[1]) / 2.0;
    }

    /// Writes the current row (`out.len() == self.len()`).
    pub fn write(&self, out: &mut [f64]) {
        assert_eq!(out.len(), self.len(), "order-flow row has the wrong width");
        let n = self.windows.len();
        for (i, w) in self.windows.iter().enumerate() {
            out[i] = w.imbalance();
            out[n + i] = w.signed_volume();
        }
        let rest = &mut out[2 * n..];
        rest[0] = self.touch.imbalance();
        rest[1] = self.depth_imbalance[0];
        rest[2] = self.depth_imbalance[1];
        rest[3] = self.touch.microprice_offset_bps();
        rest[4] = self.touch.spread_bps();
        rest[5] = self.depth_slope;
        rest[6] = self.funding_rate;
        rest[7] = self.basis_bps;
    }

    #[inline]
    fn advance(&mut self, exch_ms: u64) {
        if exch_ms > self.now_ms {
            self.now_ms = exch_ms;
            for w in &mut self.windows {
                w.evict(exch_ms);
            }
        }
    }

    #[inline]
    fn on_trade(&mut self, t: &Trade) {
        if matches!(t.kind, TradeKind::InsuranceFund | TradeKind::Adl) {
            self.ignored_trades += 1;
            return;
        }
        let q = t.qty.raw();
        let (buy, sell) = match t.aggressor {
            Side::Buy => (q, 0),
            Side::Sell => (0, q),
        };
        for w in &mut self.windows {
            w.push(self.now_ms, buy, sell);
        }
    }

    fn on_mark(&mut self, m: &MarkPrice) {
        self.funding_rate = m.funding_rate.to_f64();
        self.basis_bps = if m.index_px.raw() > 0 {
            (m.mark_px.raw() - m.index_px.raw()) as f64 / m.index_px.raw() as f64 * 1e4
        } else {
            f64::NAN
        };
    }
}

/// `1000` → `1s`, `1500` → `1500ms`.
fn window_label(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qalpha_engine::book_view::BookLevel;
    use qalpha_engine::event::{StaleReason, Venue};
    use qalpha_engine::{Qty, Symbol};

    fn ev(exch_ms: u64, payload: MarketPayload) -> MarketEvent {
        MarketEvent {
            venue: Venue::BinanceUsdm,
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            recv_ns: exch_ms * 1_000_000,
            decoded_ns: exch_ms * 1_000_000,
            exch_ms,
            payload,
        }
    }

    fn trade(exch_ms: u64, qty: &str, aggressor: Side, kind: TradeKind) -> MarketEvent {
        let t = Trade {
            trade_id: exch_ms,
            last_trade_id: exch_ms,
            px: Price::from_units(28_000),
            qty: Qty::parse(qty).unwrap(),
            aggressor,
            kind,
            trade_time_ms: exch_ms,
        };
        ev(exch_ms, MarketPayload::Trade(t))
    }

    fn quote(exch_ms: u64, bid: i64, bid_qty: i64, ask: i64, ask_qty: i64) -> MarketEvent {
        let t = TopOfBook {
            update_id: 1,
            bid_px: Price::from_units(bid),
            bid_qty: Qty::from_units(bid_qty),
            ask_px: Price::from_units(ask),
            ask_qty: Qty::from_units(ask_qty),
        };
        ev(exch_ms, MarketPayload::Quote(t))
    }

    fn col(of: &OrderFlow, name: &str) -> f64 {
        let mut out = vec![0.0; of.len()];
        of.write(&mut out);
        out[of.names().iter().position(|n| n == name).unwrap()]
    }

    #[test]
    fn names_follow_the_windows_and_start_undefined() {
        let result = std::panic::catch_unwind(|| OrderFlow::new(&[1_000, 1_000]));
        assert!(result.is_err(), "a repeated window is refused");
        let of = OrderFlow::new(&[1_000, 1_500]);
        let want = "trade_imbalance_1s trade_imbalance_1500ms signed_volume_1s \
                    signed_volume_1500ms book_imbalance_1 book_imbalance_5 book_imbalance_10 \
                    microprice_offset_bps spread_bps depth_slope funding_rate basis_bps";
        assert_eq!(of.names(), want.split_whitespace().collect::<Vec<_>>());
        let mut r = vec![0.0; of.len()];
        of.write(&mut r);
        assert!(r[0].is_nan() && r[2] == 0.0 && r[4..].iter().all(|v| v.is_nan()));
    }

    #[test]
    fn trade_imbalance_signs_and_ignored_kinds() {
        let mut of = OrderFlow::new(&[1_000]);
        of.on_event(&trade(10_000, "3", Side::Buy, TradeKind::Market));
        of.on_event(&trade(10_001, "1", Side::Sell, TradeKind::Market));
        let flow = |of: &OrderFlow| (col(of, "trade_imbalance_1s"), col(of, "signed_volume_1s"));
        assert_eq!(flow(&of), (0.5, 2.0));
        of.on_event(&trade(10_002, "6", Side::Sell, TradeKind::Aggregated));
        assert_eq!(flow(&of), (-0.4, -4.0));
        of.on_event(&trade(10_003, "5", Side::Buy, TradeKind::InsuranceFund));
        of.on_event(&trade(10_004, "5", Side::Buy, TradeKind::Adl));
        assert_eq!((flow(&of), of.ignored_trades()), ((-0.4, -4.0), 2));
    }

    #[test]
    fn windows_evict_by_event_time() {
        let mut of = OrderFlow::new(&[1_000, 10_000]);
        of.on_event(&trade(100_000, "2", Side::Buy, TradeKind::Market));
        of.on_event(&trade(100_500, "1", Side::Sell, TradeKind::Market));
        // Any event moves the clock: at +999 ms the first trade is still in the 1 s window…
        of.on_event(&quote(100_999, 1, 1, 2, 1));
        assert_eq!(col(&of, "signed_volume_1s"), 1.0);
        // …at +1000 ms it has left (a window of w holds (now − w, now]).
        of.on_event(&quote(101_000, 1, 1, 2, 1));
        assert_eq!(col(&of, "signed_volume_1s"), -1.0);
        assert_eq!(col(&of, "trade_imbalance_1s"), -1.0);
        assert_eq!(col(&of, "signed_volume_10s"), 1.0);
        of.on_event(&quote(101_500, 1, 1, 2, 1));
        assert_eq!(col(&of, "signed_volume_1s"), 0.0);
        assert!(col(&of, "trade_imbalance_1s").is_nan());
        // A late-stamped event does not move the clock back; its trade counts at the clock.
        of.on_event(&trade(90_000, "4", Side::Buy, TradeKind::Market));
        assert_eq!((col(&of, "signed_volume_1s"), of.now_ms()), (4.0, 101_500));
        for (ms, want) in [(110_499, 3.0), (110_500, 4.0)] {
            of.on_event(&quote(ms, 1, 1, 2, 1));
            assert_eq!(col(&of, "signed_volume_10s"), want, "at {ms}");
        }
        assert_eq!(of.bucketed_trades(), 0);
    }

    #[test]
    fn a_crowded_window_buckets_by_100ms_and_stays_bounded() {
        // Four exact entries, then 100 ms buckets: capacity 4 + 10 + 2 = 16 entries.
        let mut of = OrderFlow::with_exact_entries(&[1_000], |_| 4);
        assert_eq!(of.windows[0].ring.len(), 16);
        let mut seen = Vec::new(); // (ms, signed qty): the independent count
        for i in 0..5_000u64 {
            let ms = 1_000_000 + i * 3; // a trade every 3 ms
            let side = if i % 3 == 0 { Side::Sell } else { Side::Buy };
            of.on_event(&trade(ms, "1", side, TradeKind::Market));
            seen.push((ms, if side == Side::Buy { 1.0 } else { -1.0 }));
            let aged = |lo| {
                seen.iter()
                    .filter(move |(t, _)| (lo..1_000).contains(&(ms - t)))
            };
            let exact: f64 = aged(0).map(|(_, q)| q).sum();
            // Entries leave at most 99 ms early: only trades 900..1000 ms old may be missing.
            let slack: f64 = aged(900).map(|(_, q)| q.abs()).sum();
            let got = col(&of, "signed_volume_1s");
            assert!((got - exact).abs() <= slack, "at {ms}: {got} vs {exact}");
        }
        assert!(of.bucketed_trades() > 0);
        // Trades at one millisecond always share an entry, even in the exact part.
        let mut of = OrderFlow::with_exact_entries(&[1_000], |_| 1);
        (0..1_000).for_each(|_| of.on_event(&trade(5_000, "1", Side::Buy, TradeKind::Market)));
        assert_eq!((of.windows[0].len, of.bucketed_trades()), (1, 0));
        assert_eq!(col(&of, "signed_volume_1s"), 1_000.0);
    }

    #[test]
    fn microprice_with_equal_sizes_is_mid() {
        let mut of = OrderFlow::new(&[1_000]);
        of.on_event(&quote(1, 100, 2, 101, 2));
        let micro = |of: &OrderFlow| col(of, "microprice_offset_bps");
        assert_eq!((micro(&of), col(&of, "book_imbalance_1")), (0.0, 0.0));
        assert!((col(&of, "spread_bps") - 1.0 / 100.5 * 1e4).abs() < 1e-9);
        // More bid size pulls the microprice toward the ask.
        of.on_event(&quote(2, 100, 3, 101, 1));
        assert_eq!(col(&of, "book_imbalance_1"), 0.5);
        let want = (100.0 * 0.25 + 101.0 * 0.75 - 100.5) / 100.5 * 1e4;
        assert!(want > 0.0 && (micro(&of) - want).abs() < 1e-9);
        assert!(col(&of, "book_imbalance_5").is_nan(), "depth needs on_book");
    }

    #[test]
    fn basis_sign_and_funding() {
        let mut of = OrderFlow::new(&[1_000]);
        let mark = |ms, mark: i64, index: i64| {
            let m = MarkPrice {
                mark_px: Price::from_units(mark),
                index_px: Price::from_units(index),
                funding_rate: Qty::parse("0.0001").unwrap(),
                next_funding_ms: 0,
            };
            ev(ms, MarketPayload::MarkPrice(m))
        };
        of.on_event(&mark(1, 28_010, 28_000));
        let b = col(&of, "basis_bps");
        assert!(b > 0.0 && (b - 10.0 / 28_000.0 * 1e4).abs() < 1e-9);
        assert_eq!(col(&of, "funding_rate"), 0.0001);
        of.on_event(&mark(2, 27_990, 28_000));
        assert!(col(&of, "basis_bps") < 0.0);
        of.on_event(&mark(3, 27_990, 0));
        assert!(col(&of, "basis_bps").is_nan());
    }

    /// A book as best-first vectors.
    struct Levels(Vec<BookLevel>, Vec<BookLevel>);

    impl BookView for Levels {
        fn best(&self, side: Side) -> Option<BookLevel> {
            self.levels(side).next()
        }
        fn qty_at(&self, side: Side, px: Price) -> Qty {
            let mut l = self.levels(side);
            l.find(|l| l.px == px).map_or(Qty::ZERO, |l| l.qty)
        }
        fn levels(&self, side: Side) -> impl Iterator<Item = BookLevel> + '_ {
            match side {
                Side::Buy => self.0.iter().copied(),
                Side::Sell => self.1.iter().copied(),
            }
        }
    }

    fn lvl(px: i64, qty: i64) -> BookLevel {
        let (px, qty) = (Price::from_units(px), Qty::from_units(qty));
        BookLevel { px, qty }
    }

    #[test]
    fn book_imbalance_and_depth_slope_from_levels() {
        // Bids 999, 998, … with 1 each; asks 1001, 1002, … with 3 each; twelve levels a side.
        let bids = (0..12).map(|i| lvl(999 - i, 1)).collect();
        let asks = (0..12).map(|i| lvl(1001 + i, 3)).collect();
        let mut of = OrderFlow::new(&[1_000]);
        of.on_book(&Levels(bids, asks));
        for k in ["1", "5", "10"] {
            assert_eq!(col(&of, &format!("book_imbalance_{k}")), -0.5);
        }
        assert_eq!(col(&of, "microprice_offset_bps"), -0.5 / 1000.0 * 1e4);
        // Level i (1-based) is 10·i bps from mid with cumulative qty i (bids) or 3·i (asks):
        // slopes 0.1 and 0.3 per bp, mean 0.2.
        assert!((col(&of, "depth_slope") - 0.2).abs() < 1e-9);

        // Deeper imbalance differs from the touch when sizes change with depth.
        let bids = vec![lvl(99, 1), lvl(98, 10), lvl(97, 10)];
        of.on_book(&Levels(bids, vec![lvl(101, 1), lvl(102, 1)]));
        assert_eq!(col(&of, "book_imbalance_1"), 0.0);
        assert_eq!(col(&of, "book_imbalance_5"), 19.0 / 23.0);
        assert_eq!(col(&of, "book_imbalance_10"), 19.0 / 23.0);
        assert!(col(&of, "depth_slope").is_finite());
        of.on_book(&Levels(vec![lvl(99, 1)], vec![lvl(101, 1), lvl(102, 1)]));
        assert!(
            col(&of, "depth_slope").is_nan(),
            "one bid level has no slope"
        );

        // A stale book clears the depth columns but not the touch.
        let stale = MarketPayload::BookStale {
            reason: StaleReason::SequenceGap,
            last_update_id: 1,
        };
        of.on_event(&ev(1, stale));
        assert!(col(&of, "book_imbalance_5").is_nan());
        assert_eq!(col(&of, "book_imbalance_1"), 0.0);
        // An empty side leaves every book column undefined.
        of.on_book(&Levels(vec![], vec![lvl(101, 1)]));
        let mut r = vec![0.0; of.len()];
        of.write(&mut r);
        assert!(r[2..8].iter().all(|v| v.is_nan()), "{r:?}");
    }
}
