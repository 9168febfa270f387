//! The exact L2 order book: price levels as integers, best prices at the end of each side.
//!
//! Each side is a sorted `Vec` of levels with the best price *last* (bids ascending, asks
//! descending), so the frequent changes near the touch move only a few elements, and reading the
//! top is one load. Lookups are binary searches over 16-byte levels. Capacity is reserved up front,
//! so after warm-up applying an update allocates nothing. Quantities are absolute; zero deletes.
//! Owned by the feed thread (single writer); other threads see it only through events.

use qalpha_engine::book_view::{BookLevel, BookView};
use qalpha_engine::event::TopOfBook;
use qalpha_engine::{Price, Qty, Side};

/// One price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    pub px: Price,
    pub qty: Qty,
}

/// Book side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookSide {
    Bid,
    Ask,
}

/// An exact L2 book.
#[derive(Clone, Debug)]
pub struct OrderBook {
    /// Ascending by price; best bid last.
    bids: Vec<Level>,
    /// Descending by price; best ask last.
    asks: Vec<Level>,
}

impl OrderBook {
    /// A book with room for `levels_per_side` before it needs to grow.
    pub fn with_capacity(levels_per_side: usize) -> Self {
        Self {
            bids: Vec::with_capacity(levels_per_side),
            asks: Vec::with_capacity(levels_per_side),
        }
    }

    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Sets the absolute quantity at a price; zero removes the level (removing an absent level is
    /// normal: venues send deletes for levels outside the depth a client holds).
    #[inline]
    pub fn set(&mut self, side: BookSide, px: Price, qty: Qty) {
        let (levels, pos) = match side {
            BookSide::Bid => {
                let pos = self.bids.binary_search_by(|l| l.px.cmp(&px));
                (&mut self.bids, pos)
            }
            BookSide::Ask => {
                let pos = self.asks.binary_search_by(|l| px.cmp(&l.px));
                (&mut self.asks, pos)
            }
        };
        match pos {
            Ok(i) if qty.is_zero() => {
                levels.remove(i);
            }
            Ok(i) => levels[i].qty = qty,
            Err(_) if qty.is_zero() => {}
            Err(i) => levels.insert(i, Level { px, qty }),
        }
    }

    /// Best bid (highest), if any.
    #[inline]
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.last().copied()
    }

    /// Best ask (lowest), if any.
    #[inline]
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.last().copied()
    }

    /// Top of book at `update_id`; an empty side reads as price 0, qty 0.
    #[inline]
    pub fn top(&self, update_id: u64) -> TopOfBook {
        let b = self.best_bid();
        let a = self.best_ask();
        TopOfBook {
            update_id,
            bid_px: b.map_or(Price::ZERO, |l| l.px),
            bid_qty: b.map_or(Qty::ZERO, |l| l.qty),
            ask_px: a.map_or(Price::ZERO, |l| l.px),
            ask_qty: a.map_or(Qty::ZERO, |l| l.qty),
        }
    }

    /// True when both sides exist and the best bid is at or above the best ask.
    pub fn is_crossed(&self) -> bool {
        matches!((self.best_bid(), self.best_ask()), (Some(b), Some(a)) if b.px >= a.px)
    }

    /// Bids from best to worst.
    pub fn bids(&self) -> impl Iterator<Item = Level> + '_ {
        self.bids.iter().rev().copied()
    }

    /// Asks from best to worst.
    pub fn asks(&self) -> impl Iterator<Item = Level> + '_ {
        self.asks.iter().rev().copied()
    }

    pub fn bid_levels(&self) -> usize {
        self.bids.len()
    }

    pub fn ask_levels(&self) -> usize {
        self.asks.len()
    }
}

impl Default for OrderBook {
    fn default() -> Self {
        Self::with_capacity(4096)
    }
}

/// The fill model (in `qalpha-venues`) reads books through [`BookView`]; this lets paper trading
/// run it on the feed's exact book. Every method is a load or a binary search — no allocation.
impl BookView for OrderBook {
    #[inline]
    fn best(&self, side: Side) -> Option<BookLevel> {
        let l = match side {
            Side::Buy => self.best_bid(),
            Side::Sell => self.best_ask(),
        };
        l.map(|l| BookLevel {
            px: l.px,
            qty: l.qty,
        })
    }

    #[inline]
    fn qty_at(&self, side: Side, px: Price) -> Qty {
        // Same orderings as `set`: bids ascending, asks descending.
        let (levels, pos) = match side {
            Side::Buy => (&self.bids, self.bids.binary_search_by(|l| l.px.cmp(&px))),
            Side::Sell => (&self.asks, self.asks.binary_search_by(|l| px.cmp(&l.px))),
        };
        pos.map_or(Qty::ZERO, |i| levels[i].qty)
    }

    #[inline]
    fn levels(&self, side: Side) -> impl Iterator<Item = BookLevel> + '_ {
        let levels = match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        };
        levels.iter().rev().map(|l| BookLevel {
            px: l.px,
            qty: l.qty,
        })
    }
}

#[cfg(test)]
mod book_view_tests {
    use super::*;

    #[test]
    fn book_view_reads_the_exact_book() {
        let p = |s: &str| Price::parse(s).unwrap();
        let q = |s: &str| Qty::parse(s).unwrap();
        let mut b = OrderBook::with_capacity(8);
        b.set(BookSide::Bid, p("100"), q("1"));
        b.set(BookSide::Bid, p("99.5"), q("2"));
        b.set(BookSide::Ask, p("100.5"), q("3"));
        b.set(BookSide::Ask, p("101"), q("4"));
        assert_eq!(
            BookView::best(&b, Side::Buy),
            Some(BookLevel {
                px: p("100"),
                qty: q("1")
            })
        );
        assert_eq!(b.best_ask_level().map(|l| l.px), Some(p("100.5")));
        assert_eq!(BookView::qty_at(&b, Side::Buy, p("99.5")), q("2"));
        assert_eq!(BookView::qty_at(&b, Side::Sell, p("101")), q("4"));
        assert_eq!(BookView::qty_at(&b, Side::Sell, p("100")), Qty::ZERO);
        let bids: Vec<_> = BookView::levels(&b, Side::Buy).map(|l| l.px).collect();
        assert_eq!(bids, vec![p("100"), p("99.5")]);
        let asks: Vec<_> = BookView::levels(&b, Side::Sell).map(|l| l.qty).collect();
        assert_eq!(asks, vec![q("3"), q("4")]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Price {
        Price::parse(s).unwrap()
    }
    fn q(s: &str) -> Qty {
        Qty::parse(s).unwrap()
    }

    #[test]
    fn maintains_sorted_sides_and_best_prices() {
        let mut b = OrderBook::with_capacity(8);
        b.set(BookSide::Bid, p("100.0"), q("1"));
        b.set(BookSide::Bid, p("101.5"), q("2"));
        b.set(BookSide::Bid, p("99.9"), q("3"));
        b.set(BookSide::Ask, p("102"), q("4"));
        b.set(BookSide::Ask, p("101.6"), q("5"));
        b.set(BookSide::Ask, p("150"), q("6"));
        assert_eq!(
            b.best_bid(),
            Some(Level {
                px: p("101.5"),
                qty: q("2")
            })
        );
        assert_eq!(
            b.best_ask(),
            Some(Level {
                px: p("101.6"),
                qty: q("5")
            })
        );
        let bids: Vec<_> = b.bids().map(|l| l.px).collect();
        assert_eq!(bids, vec![p("101.5"), p("100"), p("99.9")]);
        let asks: Vec<_> = b.asks().map(|l| l.px).collect();
        assert_eq!(asks, vec![p("101.6"), p("102"), p("150")]);
        assert!(!b.is_crossed());
    }

    #[test]
    fn absolute_quantities_and_deletes() {
        let mut b = OrderBook::with_capacity(8);
        b.set(BookSide::Ask, p("10"), q("1"));
        b.set(BookSide::Ask, p("10"), q("0.5"));
        assert_eq!(b.best_ask().unwrap().qty, q("0.5"));
        b.set(BookSide::Ask, p("10"), q("0.000"));
        assert_eq!(b.best_ask(), None);
        // Deleting a level that is not held is a no-op.
        b.set(BookSide::Bid, p("9"), Qty::ZERO);
        assert_eq!(b.bid_levels(), 0);
        let t = b.top(7);
        assert_eq!(
            (t.update_id, t.bid_px, t.ask_qty),
            (7, Price::ZERO, Qty::ZERO)
        );
    }

    #[test]
    fn crossed_detection() {
        let mut b = OrderBook::with_capacity(4);
        b.set(BookSide::Bid, p("10"), q("1"));
        b.set(BookSide::Ask, p("10"), q("1"));
        assert!(b.is_crossed());
    }
}
