//! The strategy thread's own money: position, cash flow and fees from the fill reports, all exact
//! integers, the position marked at the mid of the rebuilt book.

use qalpha_engine::order::ExecReport;
use qalpha_engine::{Side, FIXED_SCALE};

/// Position and money, all exact.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ledger {
    /// Base quantity, 10⁻⁸ units (+ long).
    pub position: i64,
    /// Σ base quantity bought / sold, 10⁻⁸ units (`position == bought − sold`).
    pub bought: i64,
    pub sold: i64,
    /// Σ (sell px×qty − buy px×qty), 10⁻¹⁶ quote units.
    pub cash: i128,
    /// Σ fees paid (negative = rebates), 10⁻⁸ quote units.
    pub fees: i64,
    /// Σ (bid + ask) of the last in-sync book, 10⁻⁸ units (twice the mid, so it stays exact).
    pub mid2: i64,
}

impl Ledger {
    /// One fill (a report the order state machine took as new).
    pub fn on_fill(&mut self, r: &ExecReport) {
        let notional = r.last_px.raw() as i128 * r.last_qty.raw() as i128;
        match r.side {
            Side::Buy => {
                self.position += r.last_qty.raw();
                self.bought += r.last_qty.raw();
                self.cash -= notional;
            }
            Side::Sell => {
                self.position -= r.last_qty.raw();
                self.sold += r.last_qty.raw();
                self.cash += notional;
            }
        }
        self.fees += r.fee.raw();
    }

    /// PnL before fees, 10⁻¹⁶ quote units: cash flow plus the position marked at mid.
    /// Exact: `position × (bid + ask) / 2` is divided only when even (any multiple of 10⁻⁸ lots).
    pub fn gross(&self) -> i128 {
        let marked2 = self.position as i128 * self.mid2 as i128;
        self.cash + marked2.div_euclid(2)
    }

    /// PnL after fees, 10⁻¹⁶ quote units.
    pub fn net(&self) -> i128 {
        self.gross() - self.fees as i128 * FIXED_SCALE as i128
    }
}

/// Formats a fixed-point integer with `scale` decimals, exactly (trailing zeros trimmed).
pub fn decimal(v: i128, scale: u32) -> String {
    let unit = 10i128.pow(scale);
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let (whole, frac) = (a / unit as u128, a % unit as u128);
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let f = format!("{frac:0width$}", width = scale as usize);
    format!("{sign}{whole}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal(0, 16), "0");
        assert_eq!(decimal(-12_345_000_000_000_000_000, 16), "-1234.5");
        assert_eq!(decimal(1, 8), "0.00000001");
    }

    #[test]
    fn ledger_marks_at_mid() {
        let l = Ledger {
            position: 100_000, // 0.001
            bought: 100_000,
            sold: 0,
            cash: -2_800_010_000_000 * 100_000,
            fees: 560_002, // 0.00560002
            mid2: 2 * 2_800_020_000_000,
        };
        // Bought 0.001 at 28000.1, mid 28000.2: +0.0001 gross.
        assert_eq!(decimal(l.gross(), 16), "0.0001");
        assert_eq!(decimal(l.net(), 16), "-0.00550002");
    }
}
