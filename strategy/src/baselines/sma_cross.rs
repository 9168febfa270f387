//! `sma-cross`: the moving-average crossover, the simplest bar baseline.
//!
//! Rules, on each closed bar with enough history (SMA(slow) exists, i.e. from bar `slow - 1`):
//! - signal = long if SMA(fast) > SMA(slow), short if SMA(fast) < SMA(slow), and unchanged if they
//!   are equal (an equality before any signal leaves the strategy without one, so it stays flat);
//! - when the signal differs from the position, at the **next bar's open** close the position and
//!   open `qty` in the signal's direction: `on_bar` returns `Target { ±qty, Market }` for bar `t`'s
//!   close, and the executor fills it at bar `t + 1`'s open;
//! - at the end of data, close at the last bar's close: `on_end` returns `Target { 0, Market }`
//!   when a position is held.
//!
//! The SMAs are the feature library's [`Sma`] (TA-Lib's `SMA`), so the baseline sees exactly the
//! numbers the feature columns `sma_{fast}`/`sma_{slow}` carry.

use qalpha_engine::Qty;

use super::{BarStrategy, Intent, Style};
use crate::bars::Bar;
use crate::features::trend::Sma;
use crate::features::Indicator;

/// The SMA crossover. See the module docs for the rules.
#[derive(Clone, Debug)]
pub struct SmaCross {
    fast: Sma,
    slow: Sma,
    qty: Qty,
    /// +1 long, −1 short, 0 no signal yet.
    signal: i8,
    /// The position the last intent asked for (+1, −1, 0), in units of `qty`.
    position: i8,
}

impl SmaCross {
    /// Panics unless `2 <= fast < slow` and `qty > 0` (the registry checks these and returns errors).
    pub fn new(fast: usize, slow: usize, qty: Qty) -> Self {
        assert!(
            2 <= fast && fast < slow,
            "sma-cross: need 2 <= fast < slow, got {fast}/{slow}"
        );
        assert!(qty.raw() > 0, "sma-cross: qty must be positive, got {qty}");
        Self {
            fast: Sma::new(fast),
            slow: Sma::new(slow),
            qty,
            signal: 0,
            position: 0,
        }
    }

    fn target(&self, position: i8) -> Intent {
        Intent::Target {
            qty: Qty(self.qty.raw() * position as i64),
            style: Style::Market,
        }
    }
}

impl BarStrategy for SmaCross {
    fn name(&self) -> &'static str {
        "sma-cross"
    }

    fn on_bar(&mut self, bar: &Bar) -> Option<Intent> {
        self.fast.update(bar);
        self.slow.update(bar);
        let (mut fast, mut slow) = ([f64::NAN], [f64::NAN]);
        self.fast.write(&mut fast);
        self.slow.write(&mut slow);
        // NaN until SMA(slow) exists: both comparisons are false and the signal stays unset.
        if fast[0] > slow[0] {
            self.signal = 1;
        } else if fast[0] < slow[0] {
            self.signal = -1;
        }
        if self.signal != 0 && self.signal != self.position {
            self.position = self.signal;
            return Some(self.target(self.position));
        }
        None
    }

    fn on_end(&mut self) -> Option<Intent> {
        if self.position == 0 {
            return None;
        }
        self.position = 0;
        Some(self.target(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(close: f64) -> Bar {
        Bar {
            open: close,
            high: close,
            low: close,
            close,
            ..Bar::default()
        }
    }

    /// Runs the strategy over closes; returns `(bar index, target in units of qty)` per intent, with
    /// `on_end`'s intent at index `closes.len()`.
    fn run(fast: usize, slow: usize, closes: &[f64]) -> Vec<(usize, i64)> {
        let qty = Qty::parse("0.5").unwrap();
        let mut s = SmaCross::new(fast, slow, qty);
        let unit = |i: Intent| match i {
            Intent::Target {
                qty: q,
                style: Style::Market,
            } => {
                assert_eq!(q.raw() % qty.raw(), 0);
                q.raw() / qty.raw()
            }
            other => panic!("unexpected intent {other:?}"),
        };
        let mut out: Vec<(usize, i64)> = closes
            .iter()
            .enumerate()
            .filter_map(|(t, &c)| s.on_bar(&bar(c)).map(|i| (t, unit(i))))
            .collect();
        out.extend(s.on_end().map(|i| (closes.len(), unit(i))));
        assert_eq!(s.on_end(), None, "on_end twice closes once");
        out
    }

    #[test]
    fn table() {
        // SMA(2) vs SMA(3). Columns below are (bar, fast, slow) worked by hand.
        struct Case {
            what: &'static str,
            closes: &'static [f64],
            want: &'static [(usize, i64)],
        }
        let cases = [
            Case {
                what: "too short for SMA(slow): nothing, not even on_end",
                closes: &[1.0, 2.0],
                want: &[],
            },
            Case {
                // bar 2: fast 2.5 > slow 2 → long; end closes it.
                what: "first signal once SMA(slow) exists, end close",
                closes: &[1.0, 2.0, 3.0],
                want: &[(2, 1), (3, 0)],
            },
            Case {
                // bar 2: 2.5>2 long; 3: 3.5>3 —; 4: 2.5<3 short; 5: 1.5<2.33 —; 6: 2.5>2 long.
                what: "crossing down then up",
                closes: &[1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0],
                want: &[(2, 1), (4, -1), (6, 1), (7, 0)],
            },
            Case {
                // bar 2: 2.5<3 short; 3: 1.5<2.33 —; 4: 3.5>3 long.
                what: "crossing up from a short",
                closes: &[4.0, 3.0, 2.0, 1.0, 6.0],
                want: &[(2, -1), (4, 1), (5, 0)],
            },
            Case {
                // bar 2: 2.5>2 long; 3: fast 2 == slow 2 keeps long; 4: fast 3 == slow 3 keeps
                // long; 5: 3>2.33 —; 6: 0.5<2 short.
                what: "equal SMAs keep the signal",
                closes: &[1.0, 2.0, 3.0, 1.0, 5.0, 1.0, 0.0],
                want: &[(2, 1), (6, -1), (7, 0)],
            },
            Case {
                // bar 2: fast 2 == slow 2, no signal yet; 3: 2.5>2.33 long.
                what: "equal before any signal stays flat",
                closes: &[2.0, 2.0, 2.0, 3.0],
                want: &[(3, 1), (4, 0)],
            },
            Case {
                what: "flat series never signals",
                closes: &[5.0; 8],
                want: &[],
            },
        ];
        for c in cases {
            assert_eq!(run(2, 3, c.closes), c.want, "{}", c.what);
        }
    }

    #[test]
    fn targets_are_signed_qty_at_market() {
        let mut s = SmaCross::new(2, 3, Qty::parse("0.001").unwrap());
        let mut got = Vec::new();
        for c in [3.0, 2.0, 1.0, 4.0] {
            got.extend(s.on_bar(&bar(c)));
        }
        got.extend(s.on_end());
        let t = |q: &str| Intent::Target {
            qty: Qty::parse(q).unwrap(),
            style: Style::Market,
        };
        assert_eq!(got, vec![t("-0.001"), t("0.001"), t("0")]);
        assert_eq!(s.name(), "sma-cross");
    }

    #[test]
    #[should_panic(expected = "fast < slow")]
    fn rejects_fast_not_below_slow() {
        SmaCross::new(5, 5, Qty::from_units(1));
    }
}
