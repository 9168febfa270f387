//! The mock exchange's position per symbol (one-way mode): net size, average entry price, mark
//! price and unrealised PnL, as `GET /fapi/v2/positionRisk` and `GET /v5/position/list` report
//! them (PROTOCOLS.md B.3, C.6).
//!
//! The size is the fill model's (`FillModel::position`); the entry price is kept here because the
//! model tracks only the size. It is the venues' average-cost rule: fills that open or add to the
//! position add `price × qty` to its cost, fills that reduce it leave the entry price unchanged (the
//! cost shrinks in proportion), and a fill that flips it starts a new position at the fill's price.
//! All sums are exact `i128` in `10^-16` quote units; a reduction's proportional cost is truncated
//! below `10^-16` and each reported figure is truncated to `10^-8` once, at output.
//!
//! The mark price is the mid of the book the mock serves (the mock has no index or premium), or
//! the entry price when the book is empty. Margin, leverage and liquidation are not modelled.

use qalpha_engine::{Price, Qty, Side};

use super::book::ExchangeBook;

/// One symbol's position, moved by every fill of our orders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Net size in raw `10^-8` base units (+ long, − short).
    size: i64,
    /// Σ price × qty of the open position at its entry prices, raw `10^-16` quote units (≥ 0).
    cost: i128,
    /// Venue time of the last fill (ms; 0 = never traded).
    pub updated_ms: u64,
}

impl Position {
    /// Applies one fill of `qty` at `px` on `side`.
    pub fn on_fill(&mut self, side: Side, px: Price, qty: Qty, ms: u64) {
        let q = i128::from(qty.raw());
        if q <= 0 {
            return;
        }
        let signed = match side {
            Side::Buy => q,
            Side::Sell => -q,
        };
        let size = i128::from(self.size);
        let held = size.abs();
        if size == 0 || (size > 0) == (signed > 0) {
            self.cost += i128::from(px.raw()) * q;
        } else if q <= held {
            // Reducing keeps the entry price: remove the closed share of the cost.
            self.cost -= self.cost * q / held;
            if q == held {
                self.cost = 0;
            }
        } else {
            // Flipped: what is left over opens a new position at this fill's price.
            self.cost = i128::from(px.raw()) * (q - held);
        }
        self.size = (size + signed).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        self.updated_ms = ms;
    }

    /// Net size (+ long, − short).
    pub fn size(&self) -> Qty {
        Qty(self.size)
    }

    /// Average entry price (0 when flat), truncated to `10^-8`.
    pub fn entry_price(&self) -> Price {
        if self.size == 0 {
            return Price::ZERO;
        }
        Price(to_i64(self.cost / i128::from(self.size).abs()))
    }

    /// Cost of the open position at entry (Bybit `positionValue`), truncated to `10^-8`.
    pub fn entry_value(&self) -> Qty {
        Qty(to_i64(self.cost / 100_000_000))
    }

    /// The mid of `book`'s touch (one side if the other is empty), or the entry price.
    pub fn mark_price(&self, book: &ExchangeBook) -> Price {
        match (book.best_bid(), book.best_ask()) {
            (Some((b, _)), Some((a, _))) => Price((b.raw() + a.raw()) / 2),
            (Some((p, _)), None) | (None, Some((p, _))) => p,
            (None, None) => self.entry_price(),
        }
    }

    /// Signed value at `mark` (Binance `notional`), truncated toward zero to `10^-8`.
    pub fn notional(&self, mark: Price) -> Qty {
        Qty(to_i64(
            i128::from(mark.raw()) * i128::from(self.size) / 100_000_000,
        ))
    }

    /// Unrealised PnL at `mark`: (mark − entry) × size, exact before truncation toward zero.
    pub fn unrealised(&self, mark: Price) -> Qty {
        let signed_cost = if self.size < 0 { -self.cost } else { self.cost };
        let raw = i128::from(mark.raw()) * i128::from(self.size) - signed_cost;
        Qty(to_i64(raw / 100_000_000))
    }
}

fn to_i64(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
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
    fn average_cost_through_add_reduce_and_flip() {
        let mut pos = Position::default();
        pos.on_fill(Side::Buy, p("100"), q("1"), 1);
        pos.on_fill(Side::Buy, p("101.5"), q("2"), 2);
        // (100 + 203) / 3 = 101, exactly.
        assert_eq!((pos.size(), pos.entry_price()), (q("3"), p("101")));
        assert_eq!(pos.unrealised(p("102")), q("3"));
        // Reducing keeps the entry price.
        pos.on_fill(Side::Sell, p("105"), q("1"), 3);
        assert_eq!((pos.size(), pos.entry_price()), (q("2"), p("101")));
        // Flip: sell 3 with 2 held → short 1 from 99.
        pos.on_fill(Side::Sell, p("99"), q("3"), 4);
        assert_eq!((pos.size(), pos.entry_price()), (q("-1"), p("99")));
        assert_eq!(pos.unrealised(p("98.5")), q("0.5"));
        assert_eq!(pos.notional(p("98.5")), q("-98.5"));
        assert_eq!(pos.entry_value(), q("99"));
        pos.on_fill(Side::Buy, p("97"), q("1"), 5);
        assert_eq!((pos.size(), pos.entry_price()), (Qty::ZERO, Price::ZERO));
        assert_eq!(pos.entry_value(), Qty::ZERO);
        assert_eq!(pos.updated_ms, 5);
    }

    #[test]
    fn entry_price_truncates_once() {
        let mut pos = Position::default();
        pos.on_fill(Side::Sell, p("100"), q("1"), 1);
        pos.on_fill(Side::Sell, p("101"), q("2"), 1);
        // 302 / 3 = 100.666666666…
        assert_eq!(pos.entry_price(), p("100.66666666"));
        assert_eq!(pos.unrealised(p("100")), q("2"));
    }

    #[test]
    fn mark_is_the_mid() {
        let mut b = ExchangeBook::default();
        let pos = Position::default();
        assert_eq!(pos.mark_price(&b), Price::ZERO);
        b.set(true, p("100"), q("1"));
        assert_eq!(pos.mark_price(&b), p("100"));
        b.set(false, p("100.1"), q("1"));
        assert_eq!(pos.mark_price(&b), p("100.05"));
    }
}
