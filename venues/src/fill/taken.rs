//! What our orders took from the displayed book, per level, until the venue shows that level again.
//!
//! The fill model never changes the book it reads (the market never saw our orders), so without a
//! memory two of our orders in the same instant would both take the same displayed size. Each take
//! is remembered against its level and subtracted from what that level offers, until the venue
//! reports the level again ([`TakenLiquidity::forget_level`], from a diff) or it shows a different
//! size ([`TakenLiquidity::sync`], for drivers that only see the book). The venue's figure is then
//! taken at face value: which resting orders would have remained without us cannot be known from L2
//! data. A handful of entries at most (levels we took from since their last update), kept in a
//! pre-allocated `Vec` and scanned linearly.

use qalpha_engine::book_view::{BookLevel, BookView};
use qalpha_engine::{Price, Qty, Side};

#[derive(Clone, Copy, Debug)]
struct Take {
    side: Side,
    px: Price,
    qty: Qty,
    /// The displayed size when we first took from the level.
    displayed: Qty,
}

/// Liquidity taken by our orders, per book level.
#[derive(Clone, Debug)]
pub struct TakenLiquidity {
    takes: Vec<Take>,
}

impl Default for TakenLiquidity {
    fn default() -> Self {
        Self {
            takes: Vec::with_capacity(64),
        }
    }
}

impl TakenLiquidity {
    /// What a level displaying `displayed` still offers us.
    pub fn available(&self, side: Side, px: Price, displayed: Qty) -> Qty {
        let taken = self
            .takes
            .iter()
            .find(|t| t.side == side && t.px == px)
            .map_or(0, |t| t.qty.raw());
        Qty(displayed.raw().saturating_sub(taken).max(0))
    }

    /// We took `qty` from `level` on `side`.
    pub fn record(&mut self, side: Side, level: BookLevel, qty: Qty) {
        let px = level.px;
        match self.takes.iter_mut().find(|t| t.side == side && t.px == px) {
            Some(t) => t.qty = Qty(t.qty.raw().saturating_add(qty.raw())),
            None => self.takes.push(Take {
                side,
                px,
                qty,
                displayed: level.qty,
            }),
        }
    }

    /// The venue reported this level again.
    pub fn forget_level(&mut self, side: Side, px: Price) {
        if !self.takes.is_empty() {
            self.takes.retain(|t| !(t.side == side && t.px == px));
        }
    }

    /// Forgets every take whose level now shows another size than when we took from it.
    pub fn sync(&mut self, book: &impl BookView) {
        if !self.takes.is_empty() {
            self.takes
                .retain(|t| book.qty_at(t.side, t.px) == t.displayed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::book::ExchangeBook;

    #[test]
    fn takes_hide_liquidity_until_the_level_is_reported_or_changes() {
        let (px, q) = (Price::from_units(101), Qty::from_units);
        let mut t = TakenLiquidity::default();
        t.record(Side::Sell, BookLevel { px, qty: q(3) }, q(1));
        t.record(Side::Sell, BookLevel { px, qty: q(3) }, q(1));
        assert_eq!(t.available(Side::Sell, px, q(3)), q(1));
        assert_eq!(
            t.available(Side::Buy, px, q(3)),
            q(3),
            "other side untouched"
        );
        assert_eq!(
            t.available(Side::Sell, px, q(1)),
            Qty::ZERO,
            "never negative"
        );
        let mut book = ExchangeBook::default();
        book.set(false, px, q(3));
        t.sync(&book);
        assert_eq!(
            t.available(Side::Sell, px, q(3)),
            q(1),
            "unchanged level: kept"
        );
        book.set(false, px, q(2));
        t.sync(&book);
        assert_eq!(t.available(Side::Sell, px, q(2)), q(2));
        t.record(Side::Sell, BookLevel { px, qty: q(2) }, q(2));
        t.forget_level(Side::Sell, px);
        assert_eq!(t.available(Side::Sell, px, q(2)), q(2));
    }
}
