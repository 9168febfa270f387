//! A read-only view of an L2 order book, so code that only *reads* a book — the fill model shared
//! by paper trading, backtests and the mock exchange — works on any book without depending on the
//! crate that owns it (`qalpha-feeds`' exact `OrderBook`, the mock exchange's `ExchangeBook`, a
//! test's own).
//!
//! Sides are named by [`Side`]: `Side::Buy` is the bid side (where resting buy orders sit),
//! `Side::Sell` the ask side. Reusing the order side rather than a separate bid/ask enum keeps
//! "which side of the book does this order rest on / take from" a plain comparison in the fill
//! code.
//!
//! Implementations must not allocate in these methods: paper trading calls them on the hot path.
//! For the same reason the trait is used generically (`&impl BookView`), not as `dyn`: `levels`
//! returns each book's own iterator type, so walking a side needs no boxing.

use crate::{Price, Qty, Side};

/// A price level as a book view reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookLevel {
    pub px: Price,
    pub qty: Qty,
}

/// Read access to an L2 book: the touch, the size at a price, and a side's levels best first.
///
/// Quantities are the displayed (venue-reported) sizes; a price with no level reads as zero.
pub trait BookView {
    /// Best level of a side (`Buy` = highest bid, `Sell` = lowest ask), if the side has any.
    fn best(&self, side: Side) -> Option<BookLevel>;

    /// Displayed quantity at exactly `px` on `side` (zero when there is no level there).
    fn qty_at(&self, side: Side, px: Price) -> Qty;

    /// The side's levels from best to worst (bids descending, asks ascending).
    fn levels(&self, side: Side) -> impl Iterator<Item = BookLevel> + '_;

    /// Best bid.
    fn best_bid_level(&self) -> Option<BookLevel> {
        self.best(Side::Buy)
    }

    /// Best ask.
    fn best_ask_level(&self) -> Option<BookLevel> {
        self.best(Side::Sell)
    }
}

/// Whether `px` is at least as good as `than` for a resting order of `side` (higher for bids,
/// lower for asks). Shared by every caller that walks a side best-first.
#[inline]
pub fn at_least_as_good(side: Side, px: Price, than: Price) -> bool {
    match side {
        Side::Buy => px >= than,
        Side::Sell => px <= than,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest possible implementation: each side as a best-first slice. It shows the trait
    /// needs nothing beyond sorted levels, and exercises the provided methods.
    struct Slices<'a> {
        bids: &'a [BookLevel],
        asks: &'a [BookLevel],
    }

    impl BookView for Slices<'_> {
        fn best(&self, side: Side) -> Option<BookLevel> {
            self.levels(side).next()
        }
        fn qty_at(&self, side: Side, px: Price) -> Qty {
            self.levels(side)
                .find(|l| l.px == px)
                .map_or(Qty::ZERO, |l| l.qty)
        }
        fn levels(&self, side: Side) -> impl Iterator<Item = BookLevel> + '_ {
            match side {
                Side::Buy => self.bids.iter().copied(),
                Side::Sell => self.asks.iter().copied(),
            }
        }
    }

    fn lvl(px: i64, qty: i64) -> BookLevel {
        BookLevel {
            px: Price::from_units(px),
            qty: Qty::from_units(qty),
        }
    }

    #[test]
    fn provided_methods_read_the_touch() {
        let bids = [lvl(100, 1), lvl(99, 2)];
        let asks = [lvl(101, 3)];
        let b = Slices {
            bids: &bids,
            asks: &asks,
        };
        assert_eq!(b.best_bid_level(), Some(lvl(100, 1)));
        assert_eq!(b.best_ask_level(), Some(lvl(101, 3)));
        assert_eq!(
            b.qty_at(Side::Buy, Price::from_units(99)),
            Qty::from_units(2)
        );
        assert_eq!(b.qty_at(Side::Sell, Price::from_units(99)), Qty::ZERO);
        let empty = Slices {
            bids: &[],
            asks: &[],
        };
        assert_eq!(empty.best_bid_level(), None);
    }

    #[test]
    fn better_or_equal_depends_on_the_side() {
        let (a, b) = (Price::from_units(100), Price::from_units(101));
        assert!(at_least_as_good(Side::Buy, b, a));
        assert!(!at_least_as_good(Side::Buy, a, b));
        assert!(at_least_as_good(Side::Sell, a, b));
        assert!(at_least_as_good(Side::Sell, a, a));
    }
}
