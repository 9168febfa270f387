//! The range-based trend indicators of [`super::trend`] (re-exported there): CCI and Aroon, each an
//! O(n) pass over a small fixed window per bar, with TA-Lib's definitions (see the table in
//! [`super::trend`]).

use super::trend::{check_period, Ring};
use super::Indicator;
use crate::bars::Bar;

/// Commodity channel index (TA-Lib `CCI`): typical price `(h+l+c)/3`, its SMA and mean absolute
/// deviation over `n` bars, `(tp - sma) / (0.015·mad)`, 0 when either is exactly 0. Column `cci_{n}`.
///
/// O(n) per bar over the fixed window (two passes, in TA-Lib's slot order).
#[derive(Clone, Debug)]
pub struct Cci {
    ring: Ring,
    value: f64,
}

impl Cci {
    pub fn new(n: usize) -> Self {
        check_period("CCI", n, 2);
        Self {
            ring: Ring::new(n),
            value: f64::NAN,
        }
    }
}

impl Indicator for Cci {
    fn names(&self) -> Vec<String> {
        vec![format!("cci_{}", self.ring.buf.len())]
    }

    fn update(&mut self, b: &Bar) {
        let tp = (b.high + b.low + b.close) / 3.0;
        self.ring.push(tp);
        if !self.ring.is_full() {
            return;
        }
        let n = self.ring.buf.len() as f64;
        let mean = self.ring.buf.iter().sum::<f64>() / n;
        let mad_sum: f64 = self.ring.buf.iter().map(|v| (v - mean).abs()).sum();
        let dev = tp - mean;
        self.value = if dev != 0.0 && mad_sum != 0.0 {
            dev / (0.015 * (mad_sum / n))
        } else {
            0.0
        };
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

/// Aroon (TA-Lib `AROON`) over the last `n+1` bars: `100·(n - bars since the highest high)/n` up,
/// the same with the lowest low down; on ties the most recent extreme counts, as in TA-Lib. Columns
/// `aroon_up_{n}`, `aroon_down_{n}`.
///
/// O(n) per bar: one pass over the fixed `n+1`-bar window.
#[derive(Clone, Debug)]
pub struct Aroon {
    n: usize,
    highs: Ring,
    lows: Ring,
    out: [f64; 2],
}

impl Aroon {
    pub fn new(n: usize) -> Self {
        check_period("AROON", n, 2);
        Self {
            n,
            highs: Ring::new(n + 1),
            lows: Ring::new(n + 1),
            out: [f64::NAN; 2],
        }
    }
}

impl Indicator for Aroon {
    fn names(&self) -> Vec<String> {
        vec![
            format!("aroon_up_{}", self.n),
            format!("aroon_down_{}", self.n),
        ]
    }

    fn update(&mut self, b: &Bar) {
        self.highs.push(b.high);
        self.lows.push(b.low);
        if !self.highs.is_full() {
            return;
        }
        // Position (0 = oldest, n = this bar) of the latest highest high / lowest low.
        let (mut hi_at, mut hi) = (0, f64::NEG_INFINITY);
        for (k, h) in self.highs.chronological().enumerate() {
            if h >= hi {
                (hi_at, hi) = (k, h);
            }
        }
        let (mut lo_at, mut lo) = (0, f64::INFINITY);
        for (k, l) in self.lows.chronological().enumerate() {
            if l <= lo {
                (lo_at, lo) = (k, l);
            }
        }
        // TA-Lib: factor · (n − age) with age = n − position.
        let factor = 100.0 / self.n as f64;
        self.out = [factor * hi_at as f64, factor * lo_at as f64];
    }

    fn write(&self, out: &mut [f64]) {
        out.copy_from_slice(&self.out);
    }
}
