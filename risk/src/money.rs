//! Exact money: quote-currency amounts as `i128` counts of 10⁻¹⁶ (a price × quantity product of two
//! 10⁻⁸ fixed-point values is exact at that scale; sums never round).

use qalpha_engine::{Price, Qty, FIXED_SCALE};

/// A quote-currency amount in 10⁻¹⁶ units.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq))]
pub struct Money(pub i128);

impl Money {
    pub const ZERO: Money = Money(0);

    /// `price × qty`, exact.
    pub fn notional(px: Price, qty: Qty) -> Money {
        Money(px.raw() as i128 * qty.raw() as i128)
    }

    /// A quote amount given in 10⁻⁸ units (fees, config limits).
    pub fn from_qty(q: Qty) -> Money {
        Money(q.raw() as i128 * FIXED_SCALE as i128)
    }

    /// Truncated (toward zero) to 10⁻⁸ units.
    pub fn to_qty(self) -> Qty {
        Qty((self.0 / FIXED_SCALE as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }

    pub fn raw(self) -> i128 {
        self.0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// For features and logs only (never for accounting).
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / 1e16
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, o: Money) -> Money {
        Money(self.0 + o.0)
    }
}

impl std::ops::Sub for Money {
    type Output = Money;
    fn sub(self, o: Money) -> Money {
        Money(self.0 - o.0)
    }
}

impl std::ops::Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

impl std::ops::AddAssign for Money {
    fn add_assign(&mut self, o: Money) {
        self.0 += o.0;
    }
}

impl std::ops::SubAssign for Money {
    fn sub_assign(&mut self, o: Money) {
        self.0 -= o.0;
    }
}

impl std::fmt::Display for Money {
    /// The exact decimal, trailing zeros trimmed (`-1.5`, `0`, `12.0000000000000001`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const UNIT: u128 = 10u128.pow(16);
        let a = self.0.unsigned_abs();
        let (whole, frac) = (a / UNIT, a % UNIT);
        let sign = if self.0 < 0 { "-" } else { "" };
        if frac == 0 {
            return write!(f, "{sign}{whole}");
        }
        let s = format!("{frac:016}");
        write!(f, "{sign}{whole}.{}", s.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_products_and_formatting() {
        let n = Money::notional(
            Price::parse("60000.1").unwrap(),
            Qty::parse("0.003").unwrap(),
        );
        assert_eq!(n.to_string(), "180.0003");
        assert_eq!((-n).to_string(), "-180.0003");
        assert_eq!(
            Money::from_qty(Qty::parse("0.00000001").unwrap()).to_string(),
            "0.00000001"
        );
        assert_eq!(Money(1).to_string(), "0.0000000000000001");
        assert_eq!(n.to_qty(), Qty::parse("180.0003").unwrap());
    }
}
