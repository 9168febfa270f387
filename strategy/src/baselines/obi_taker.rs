//! `obi-taker`: takes the side the top of the book leans to.
//!
//! On each top of book (`BookTop` from the rebuilt book, or the venue's `Quote`) the imbalance at the
//! touch is `(bid_qty − ask_qty) / (bid_qty + ask_qty)`, in `[−1, 1]`:
//! - above `+threshold` → `Target +qty`, IOC limited at the ask (buy what is offered, no deeper);
//! - below `−threshold` → `Target −qty`, IOC limited at the bid;
//! - otherwise, once in a position for at least `hold_ms` → `Target 0` at market (a time stop must
//!   get out even when the touch has moved).
//!
//! A signal that agrees with the current target is silent (targets are idempotent), and it does not
//! extend the hold: the clock runs from entry (or from the last flip), and the exit waits for a
//! neutral book. Time is the event's `recv_ns` — when the strategy could first have acted, the same
//! in live trading and in a replay of a capture.
//!
//! Stale books are ignored: after `BookStale` nothing is decided until `BookSynced` (the venue's
//! `Quote` included, so one instance never mixes a trusted and an untrusted view). Books with no size,
//! no price or a crossed touch are skipped. One instance trades one instrument: the caller routes
//! only that instrument's events to it.

use qalpha_engine::event::{MarketEvent, MarketPayload, TopOfBook};
use qalpha_engine::Qty;

use super::{Intent, Style, TickStrategy};

/// The top-of-book imbalance taker. See the module docs.
#[derive(Clone, Debug)]
pub struct ObiTaker {
    threshold: f64,
    qty: Qty,
    hold_ns: u64,
    stale: bool,
    /// The position the last intent asked for (+1, −1, 0), in units of `qty`.
    target: i8,
    /// `recv_ns` of the event that set the current non-zero target.
    entered_ns: u64,
}

impl ObiTaker {
    /// Panics unless `0 < threshold < 1` and `qty > 0` (the registry checks these and returns errors).
    pub fn new(threshold: f64, qty: Qty, hold_ms: u64) -> Self {
        assert!(
            threshold > 0.0 && threshold < 1.0,
            "obi-taker: threshold must be in (0, 1), got {threshold}"
        );
        assert!(qty.raw() > 0, "obi-taker: qty must be positive, got {qty}");
        Self {
            threshold,
            qty,
            hold_ns: hold_ms.saturating_mul(1_000_000),
            stale: false,
            target: 0,
            entered_ns: 0,
        }
    }

    fn decide(&mut self, t: &TopOfBook, now_ns: u64) -> Option<Intent> {
        let (b, a) = (t.bid_qty.raw(), t.ask_qty.raw());
        if b < 0 || a < 0 || b + a <= 0 || t.bid_px.raw() <= 0 || t.ask_px <= t.bid_px {
            return None;
        }
        let imbalance = (b - a) as f64 / (b + a) as f64;
        let (want, style) = if imbalance > self.threshold {
            (1, Style::Ioc { limit: t.ask_px })
        } else if imbalance < -self.threshold {
            (-1, Style::Ioc { limit: t.bid_px })
        } else if self.target != 0 && now_ns.saturating_sub(self.entered_ns) >= self.hold_ns {
            (0, Style::Market)
        } else {
            return None;
        };
        if want == self.target {
            return None;
        }
        self.target = want;
        self.entered_ns = now_ns;
        Some(Intent::Target {
            qty: Qty(self.qty.raw() * want as i64),
            style,
        })
    }
}

impl TickStrategy for ObiTaker {
    fn name(&self) -> &'static str {
        "obi-taker"
    }

    fn on_event(&mut self, ev: &MarketEvent) -> Option<Intent> {
        match &ev.payload {
            MarketPayload::BookStale { .. } => {
                self.stale = true;
                None
            }
            MarketPayload::BookSynced { .. } => {
                self.stale = false;
                None
            }
            MarketPayload::BookTop(t) | MarketPayload::Quote(t) if !self.stale => {
                self.decide(t, ev.recv_ns)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use qalpha_engine::event::StaleReason;
    use qalpha_engine::{Price, Symbol, Venue};

    pub(in crate::baselines) fn event(ms: u64, payload: MarketPayload) -> MarketEvent {
        MarketEvent {
            venue: Venue::BinanceUsdm,
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            recv_ns: ms * 1_000_000,
            decoded_ns: ms * 1_000_000,
            exch_ms: ms,
            payload,
        }
    }

    /// A top of book `bid_qty @ bid / ask @ ask_qty`.
    pub(in crate::baselines) fn top(
        bid: &str,
        bid_qty: &str,
        ask: &str,
        ask_qty: &str,
    ) -> TopOfBook {
        TopOfBook {
            update_id: 1,
            bid_px: Price::parse(bid).unwrap(),
            bid_qty: Qty::parse(bid_qty).unwrap(),
            ask_px: Price::parse(ask).unwrap(),
            ask_qty: Qty::parse(ask_qty).unwrap(),
        }
    }

    pub(in crate::baselines) fn stale(ms: u64) -> MarketEvent {
        event(
            ms,
            MarketPayload::BookStale {
                reason: StaleReason::SequenceGap,
                last_update_id: 1,
            },
        )
    }

    pub(in crate::baselines) fn synced(ms: u64) -> MarketEvent {
        event(ms, MarketPayload::BookSynced { update_id: 2 })
    }

    fn target(qty: &str, style: Style) -> Option<Intent> {
        Some(Intent::Target {
            qty: Qty::parse(qty).unwrap(),
            style,
        })
    }

    fn ioc(px: &str) -> Style {
        Style::Ioc {
            limit: Price::parse(px).unwrap(),
        }
    }

    #[test]
    fn table() {
        use MarketPayload::{BookTop, Quote};
        // threshold 0.5, qty 0.01, hold 100 ms. Imbalance 8 vs 1 = 7/9 ≈ 0.78; 1 vs 8 = −0.78;
        // 3 vs 1 = 0.5 (not above); 1 vs 1 = 0.
        let steps: Vec<(&str, MarketEvent, Option<Intent>)> = vec![
            (
                "balanced: nothing",
                event(0, BookTop(top("100", "1", "101", "1"))),
                None,
            ),
            (
                "exactly at the threshold: nothing",
                event(1, BookTop(top("100", "3", "101", "1"))),
                None,
            ),
            (
                "bid-heavy: buy at the ask",
                event(10, BookTop(top("100", "8", "101", "1"))),
                target("0.01", ioc("101")),
            ),
            (
                "still bid-heavy: silent",
                event(20, Quote(top("100.5", "9", "101.5", "1"))),
                None,
            ),
            (
                "neutral before hold_ms: keep",
                event(109, BookTop(top("100", "1", "101", "1"))),
                None,
            ),
            (
                "neutral at hold_ms: flat at market",
                event(110, BookTop(top("100", "1", "101", "1"))),
                target("0", Style::Market),
            ),
            (
                "neutral while flat: nothing",
                event(500, BookTop(top("100", "1", "101", "1"))),
                None,
            ),
            (
                "ask-heavy: sell at the bid",
                event(600, Quote(top("99", "1", "99.5", "8"))),
                target("-0.01", ioc("99")),
            ),
            (
                "flip to bid-heavy: buy at the ask",
                event(650, BookTop(top("99", "8", "99.5", "1"))),
                target("0.01", ioc("99.5")),
            ),
            (
                "neutral 110 ms after entry but 60 after the flip: keep",
                event(710, BookTop(top("99", "1", "99.5", "1"))),
                None,
            ),
            (
                "neutral 100 ms after the flip: flat",
                event(750, BookTop(top("99", "1", "99.5", "1"))),
                target("0", Style::Market),
            ),
            (
                "crossed book: skipped",
                event(800, BookTop(top("101", "9", "100", "1"))),
                None,
            ),
            (
                "empty book: skipped",
                event(801, BookTop(top("100", "0", "101", "0"))),
                None,
            ),
            (
                "one-sided size: full imbalance",
                event(802, BookTop(top("100", "0", "101", "2"))),
                target("-0.01", ioc("100")),
            ),
        ];
        let mut s = ObiTaker::new(0.5, Qty::parse("0.01").unwrap(), 100);
        for (what, ev, want) in steps {
            assert_eq!(s.on_event(&ev), want, "{what}");
        }
    }

    #[test]
    fn stale_books_are_ignored_until_synced() {
        let mut s = ObiTaker::new(0.5, Qty::parse("1").unwrap(), 0);
        assert_eq!(s.on_event(&stale(0)), None);
        let heavy = MarketPayload::BookTop(top("100", "8", "101", "1"));
        assert_eq!(s.on_event(&event(1, heavy)), None, "stale BookTop");
        let heavy_quote = MarketPayload::Quote(top("100", "8", "101", "1"));
        assert_eq!(s.on_event(&event(2, heavy_quote)), None, "stale Quote");
        assert_eq!(s.on_event(&synced(3)), None);
        assert_eq!(s.on_event(&event(4, heavy)), target("1", ioc("101")));
        // While stale even the time stop waits for a trusted book.
        assert_eq!(s.on_event(&stale(5)), None);
        let neutral = MarketPayload::BookTop(top("100", "1", "101", "1"));
        assert_eq!(s.on_event(&event(6, neutral)), None);
        assert_eq!(s.on_event(&synced(7)), None);
        assert_eq!(s.on_event(&event(8, neutral)), target("0", Style::Market));
        assert_eq!(s.name(), "obi-taker");
    }
}
