//! `maker`: the simplest market maker — one post-only level a side, at the touch.
//!
//! On each top of book (`BookTop` or the venue's `Quote`) it wants `qty` bid at the best bid and `qty`
//! offered at the best ask. A side whose fill would take the position past `max_position` (long for
//! the bid, short for the ask) is left out, so the quotes skew back towards flat once inventory builds
//! up. The position is the strategy's own, counted only from [`TickStrategy::on_fill`] — never
//! inferred from quotes, which may or may not fill.
//!
//! A quote equal to the one last asked for is silent. On `BookStale` it pulls both sides (`Quote {
//! bid: None, ask: None }`, once) — quotes resting on a book nobody can see are the maker's main
//! risk — and then quotes nothing until `BookSynced` and the next top. Books with no price or a
//! crossed touch are skipped. One instance trades one instrument.

use qalpha_engine::event::{MarketEvent, MarketPayload, TopOfBook};
use qalpha_engine::{Qty, Side};

use super::{Intent, TickStrategy};

/// The touch-quoting maker. See the module docs.
#[derive(Clone, Debug)]
pub struct Maker {
    qty: Qty,
    max_position: Qty,
    /// Signed position from fills, raw `10^-8` units.
    position: i64,
    stale: bool,
    /// The last quote asked for (`None` before the first).
    last: Option<Intent>,
}

const PULLED: Intent = Intent::Quote {
    bid: None,
    ask: None,
};

impl Maker {
    /// Panics unless `0 < qty <= max_position` (the registry checks these and returns errors).
    pub fn new(qty: Qty, max_position: Qty) -> Self {
        assert!(qty.raw() > 0, "maker: qty must be positive, got {qty}");
        assert!(
            max_position >= qty,
            "maker: max_position ({max_position}) must be at least qty ({qty})"
        );
        Self {
            qty,
            max_position,
            position: 0,
            stale: false,
            last: None,
        }
    }

    /// The signed position counted from fills.
    pub fn position(&self) -> Qty {
        Qty(self.position)
    }

    fn emit(&mut self, quote: Intent) -> Option<Intent> {
        if self.last == Some(quote) {
            return None;
        }
        self.last = Some(quote);
        Some(quote)
    }

    fn quote(&mut self, t: &TopOfBook) -> Option<Intent> {
        if t.bid_px.raw() <= 0 || t.ask_px <= t.bid_px {
            return None;
        }
        let (q, max) = (self.qty.raw(), self.max_position.raw());
        let bid = (self.position.saturating_add(q) <= max).then_some((t.bid_px, self.qty));
        let ask = (self.position.saturating_sub(q) >= -max).then_some((t.ask_px, self.qty));
        self.emit(Intent::Quote { bid, ask })
    }
}

impl TickStrategy for Maker {
    fn name(&self) -> &'static str {
        "maker"
    }

    fn on_event(&mut self, ev: &MarketEvent) -> Option<Intent> {
        match &ev.payload {
            MarketPayload::BookStale { .. } => {
                self.stale = true;
                // Nothing was ever quoted: nothing to pull.
                self.last?;
                self.emit(PULLED)
            }
            MarketPayload::BookSynced { .. } => {
                self.stale = false;
                None
            }
            MarketPayload::BookTop(t) | MarketPayload::Quote(t) if !self.stale => self.quote(t),
            _ => None,
        }
    }

    fn on_fill(&mut self, side: Side, qty: Qty) {
        let q = qty.raw().abs();
        self.position = match side {
            Side::Buy => self.position.saturating_add(q),
            Side::Sell => self.position.saturating_sub(q),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::super::obi_taker::tests::{event, stale, synced, top};
    use super::*;
    use qalpha_engine::Price;

    fn side(px: &str, qty: &str) -> Option<(Price, Qty)> {
        Some((Price::parse(px).unwrap(), Qty::parse(qty).unwrap()))
    }

    fn quote(bid: Option<(Price, Qty)>, ask: Option<(Price, Qty)>) -> Option<Intent> {
        Some(Intent::Quote { bid, ask })
    }

    /// (what, fills before the event, the event, the intent wanted)
    type Step = (
        &'static str,
        &'static [(Side, &'static str)],
        MarketEvent,
        Option<Intent>,
    );

    #[test]
    fn quotes_the_touch_and_skews_off_the_full_side() {
        use MarketPayload::{BookTop, Quote};
        let book = |ms| event(ms, BookTop(top("100", "5", "100.5", "7")));
        let mut m = Maker::new(Qty::parse("1").unwrap(), Qty::parse("2").unwrap());
        let steps: Vec<Step> = vec![
            (
                "both sides at the touch",
                &[],
                book(0),
                quote(side("100", "1"), side("100.5", "1")),
            ),
            ("same touch: silent", &[], book(1), None),
            (
                "touch moves: requote",
                &[],
                event(2, Quote(top("101", "1", "101.5", "1"))),
                quote(side("101", "1"), side("101.5", "1")),
            ),
            (
                "long 1: both sides still fit",
                &[(Side::Buy, "1")],
                book(3),
                quote(side("100", "1"), side("100.5", "1")),
            ),
            (
                "long 2 = max: bid pulled",
                &[(Side::Buy, "1")],
                book(4),
                quote(None, side("100.5", "1")),
            ),
            (
                "partial fills add up: long 1.5, bid would reach 2.5",
                &[(Side::Sell, "0.25"), (Side::Sell, "0.25")],
                book(5),
                None,
            ),
            (
                "long 1: bid back",
                &[(Side::Sell, "0.5")],
                book(6),
                quote(side("100", "1"), side("100.5", "1")),
            ),
            (
                "short 2 = -max: ask pulled",
                &[(Side::Sell, "3")],
                book(7),
                quote(side("100", "1"), None),
            ),
            (
                "crossed book: skipped",
                &[],
                event(8, BookTop(top("101", "1", "100", "1"))),
                None,
            ),
        ];
        for (what, fills, ev, want) in steps {
            for &(s, q) in fills {
                m.on_fill(s, Qty::parse(q).unwrap());
            }
            assert_eq!(m.on_event(&ev), want, "{what}");
        }
        assert_eq!(m.position(), Qty::parse("-2").unwrap());
        assert_eq!(m.name(), "maker");
    }

    #[test]
    fn pulls_quotes_when_stale_and_waits_for_sync() {
        let book = |ms| event(ms, MarketPayload::BookTop(top("100", "5", "100.5", "7")));
        let mut m = Maker::new(Qty::parse("1").unwrap(), Qty::parse("2").unwrap());
        assert_eq!(
            m.on_event(&stale(0)),
            None,
            "nothing quoted yet: nothing to pull"
        );
        assert_eq!(m.on_event(&book(1)), None, "stale: no quotes");
        assert_eq!(m.on_event(&synced(2)), None);
        let both = quote(side("100", "1"), side("100.5", "1"));
        assert_eq!(m.on_event(&book(3)), both);
        assert_eq!(m.on_event(&stale(4)), Some(PULLED));
        assert_eq!(m.on_event(&stale(5)), None, "pulled once");
        assert_eq!(m.on_event(&book(6)), None, "stale: no quotes");
        assert_eq!(m.on_event(&synced(7)), None, "quotes wait for the next top");
        assert_eq!(m.on_event(&book(8)), both);
    }
}
