//! Maker/taker fees, exact.
//!
//! Both venues charge `fee = fill notional (price × quantity) × rate` (PROTOCOLS.md §D), in the
//! quote asset (USDT). Rates are carried as integer parts per million — every published USD-M /
//! linear tier is a whole number of ppm (Binance regular 200 / 500, Bybit VIP0 200 / 550,
//! BNB-discounted 180 / 450) — so the whole computation is integer and a backtest's fee total is
//! reproducible to the unit.
//!
//! **Rounding: against us.** The exact fee is `px × qty × ppm / 10^14` in `10^-8` quote units, not
//! always a whole number of units (BTCUSDT's 0.1 tick × 0.001 step at 200 / 500 ppm happens to give
//! whole units; other rates and finer ticks do not). It is rounded *up* (towards +∞): a positive
//! fee (we pay) never reads smaller than the true value, and a negative fee (a maker rebate, we
//! receive) never reads larger in magnitude, so a simulation can only be pessimistic about fees,
//! never flatter a strategy. The venues report fees to 8 decimals too; whatever their own rounding,
//! the difference is at most one `10^-8` unit per fill.

use qalpha_engine::{Price, Qty};

/// Exact quotient `10^8` (price scale) × `10^6` (ppm) between `px_raw × qty_raw × ppm` and the fee
/// in `10^-8` quote units.
const FEE_DENOMINATOR: i128 = 100_000_000 * 1_000_000;

/// A maker/taker fee schedule in parts per million of notional. A negative rate is a rebate.
///
/// `i32` ppm spans ±2,147 × notional — far beyond any venue — and keeps every intermediate product
/// inside `i128` for any `Price` × `Qty`, so [`FeeSchedule::fee`] cannot overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FeeSchedule {
    /// Rate for fills of orders that rested on the book (added liquidity).
    pub maker_ppm: i32,
    /// Rate for fills that took liquidity.
    pub taker_ppm: i32,
}

impl FeeSchedule {
    /// Binance USDⓈ-M regular tier: maker 0.0200 %, taker 0.0500 % (PROTOCOLS.md §D).
    pub const BINANCE_USDM_REGULAR: Self = Self {
        maker_ppm: 200,
        taker_ppm: 500,
    };
    /// Bybit perpetuals VIP0: maker 0.0200 %, taker 0.0550 % (PROTOCOLS.md §D).
    pub const BYBIT_LINEAR_VIP0: Self = Self {
        maker_ppm: 200,
        taker_ppm: 550,
    };
    /// No fees (isolating fill behaviour in tests and studies).
    pub const ZERO: Self = Self {
        maker_ppm: 0,
        taker_ppm: 0,
    };

    /// The rate that applies to a fill.
    #[inline]
    pub fn rate_ppm(&self, is_maker: bool) -> i32 {
        if is_maker {
            self.maker_ppm
        } else {
            self.taker_ppm
        }
    }

    /// Fee of one fill in `10^-8` quote units (positive = we pay), rounded up (see module doc).
    #[inline]
    pub fn fee(&self, px: Price, qty: Qty, is_maker: bool) -> Qty {
        fee_ppm(px, qty, self.rate_ppm(is_maker))
    }
}

/// `ceil(px × qty × ppm / 10^14)` without overflow for any inputs, clamped to the `Qty` range.
///
/// `px × qty` fits `i128` (|both| < 2^63), but times a ppm it might not; splitting the notional
/// into whole and fractional fee units first keeps both partial products small.
#[inline]
pub fn fee_ppm(px: Price, qty: Qty, ppm: i32) -> Qty {
    let n = px.raw() as i128 * qty.raw() as i128;
    let whole = n.div_euclid(FEE_DENOMINATOR);
    let frac = n.rem_euclid(FEE_DENOMINATOR); // 0 ≤ frac < 10^14
    let ppm = ppm as i128;
    // ceil(frac × ppm / D) for a numerator of either sign.
    let frac_part = -((-(frac * ppm)).div_euclid(FEE_DENOMINATOR));
    let fee = whole * ppm + frac_part;
    Qty(fee.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
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
    fn exact_fees_on_real_prices() {
        let f = FeeSchedule::BINANCE_USDM_REGULAR;
        // 28145.10 × 0.002 = 56.2902 USDT; × 0.05 % = 0.0281451 exactly.
        assert_eq!(f.fee(p("28145.10"), q("0.002"), false), q("0.0281451"));
        // × 0.02 % = 0.01125804 exactly.
        assert_eq!(f.fee(p("28145.10"), q("0.002"), true), q("0.01125804"));
        let b = FeeSchedule::BYBIT_LINEAR_VIP0;
        // 30000 × 1.5 × 0.055 % = 24.75
        assert_eq!(b.fee(p("30000"), q("1.5"), false), q("24.75"));
    }

    #[test]
    fn rounding_is_against_us_for_fees_and_rebates() {
        // 1.00000001 × 1 × 500 ppm = 0.000500000005 → 0.00050001 (up).
        assert_eq!(fee_ppm(p("1.00000001"), q("1"), 500), q("0.00050001"));
        // A rebate of −100 ppm on the same notional = −0.000100000001 → −0.0001 (smaller rebate).
        assert_eq!(fee_ppm(p("1.00000001"), q("1"), -100), q("-0.0001"));
        // Exact values are not moved.
        assert_eq!(fee_ppm(p("2"), q("3"), -100), q("-0.0006"));
        assert_eq!(fee_ppm(p("2"), q("3"), 0), Qty::ZERO);
        // One unit of 10^-8 of anything at a positive rate still costs one unit.
        assert_eq!(fee_ppm(Price(1), Qty(1), 1), Qty(1));
        assert_eq!(fee_ppm(Price(1), Qty(1), -1), Qty::ZERO);
    }

    #[test]
    fn extreme_inputs_never_overflow() {
        let big = fee_ppm(Price(i64::MAX), Qty(i64::MAX), i32::MAX);
        assert_eq!(big, Qty(i64::MAX), "clamped, not wrapped");
        let neg = fee_ppm(Price(i64::MAX), Qty(i64::MAX), i32::MIN);
        assert_eq!(neg, Qty(i64::MIN));
        let mixed = fee_ppm(Price(i64::MIN), Qty(i64::MAX), 500);
        assert_eq!(mixed, Qty(i64::MIN));
    }
}
