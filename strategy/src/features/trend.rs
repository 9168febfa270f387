//! Trend indicators with TA-Lib's definitions, seeding and first valid bar (unstable period 0,
//! moving-average type SMA where TA-Lib takes one):
//!
//! | struct | columns | first value (0-based bar) |
//! |---|---|---|
//! | [`Sma`] | `sma_{n}` | `n-1` |
//! | [`Ema`] | `ema_{n}` | `n-1` |
//! | [`Macd`] | `macd`, `macd_signal`, `macd_hist` | `slow-1+signal-1` (33 for 12/26/9) |
//! | [`Bbands`] | `bb_upper`, `bb_middle`, `bb_lower` | `n-1` |
//! | [`Adx`] | `adx_{n}`, `plus_di_{n}`, `minus_di_{n}` | ADX `2n-1`, ±DI `n` |
//! | [`Cci`] | `cci_{n}` | `n-1` |
//! | [`Aroon`] | `aroon_up_{n}`, `aroon_down_{n}` | `n` |
//!
//! The arithmetic follows TA-Lib's C code operation for operation (same summation order, same
//! `(x - ema) * k + ema` form, same 1e-8 zero tests), so over a series fed from its first bar the
//! numbers agree with TA-Lib's to the last bit or nearly so. The exception is the Bollinger deviation,
//! computed in two passes over the window, which is what TA-Lib 0.6's values agree with (to ~1e-11).
//!
//! Constructors panic on a period below TA-Lib's minimum (2; 1 for the MACD signal).
//!
//! Hot path: `update`/`write` allocate nothing and are O(1), except O(n) passes over a small fixed
//! window per bar — the CCI's mean and mean absolute deviation (TA-Lib recomputes both over the window
//! every bar; there is no O(1) running form of a mean absolute deviation), the Bollinger deviation
//! (see [`Bbands`]) and the Aroon's extremes over `n+1` bars. With the standard `n` (20, 15 bars) that is a few dozen additions. Windows are rings
//! allocated once in `new`.
//!
//! Running sums (SMA, Bollinger middle) drift: every add/subtract rounds. TA-Lib never corrects; here the
//! sums are recomputed from the ring every [`RESYNC_BARS`] bars, which bounds the drift for a process
//! that runs for months while leaving the first 65 536 bars bit-identical to TA-Lib's running sums.

pub use super::range::{Aroon, Cci};
use super::Indicator;
use crate::bars::Bar;

/// Bars between exact recomputations of the SMA/Bollinger window sums from the ring (O(n) once per
/// this many bars). Long enough that a comparison file is bit-identical to TA-Lib's running sums;
/// short enough that the accumulated rounding stays within a few hundred ulps of the window sum.
pub const RESYNC_BARS: u32 = 1 << 16;

/// TA-Lib's `TA_IS_ZERO`.
fn is_zero(v: f64) -> bool {
    -1e-8 < v && v < 1e-8
}

pub(super) fn check_period(what: &str, n: usize, min: usize) {
    assert!(
        n >= min,
        "{what}: period {n} is below TA-Lib's minimum {min}"
    );
}

/// The last `cap` values, oldest overwritten first. `head` is the slot the next value goes to, so
/// value number `i` (0-based, since the start) sits in slot `i % cap` — the slot order TA-Lib's CCI
/// sums in.
#[derive(Clone, Debug)]
pub(super) struct Ring {
    pub(super) buf: Vec<f64>,
    pub(super) head: usize,
    len: usize,
}

impl Ring {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            buf: vec![0.0; cap],
            head: 0,
            len: 0,
        }
    }

    pub(super) fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// Stores `x`; returns the value it evicted once the ring is full.
    pub(super) fn push(&mut self, x: f64) -> Option<f64> {
        let old = self.is_full().then(|| self.buf[self.head]);
        self.buf[self.head] = x;
        self.head += 1;
        if self.head == self.buf.len() {
            self.head = 0;
        }
        if self.len < self.buf.len() {
            self.len += 1;
        }
        old
    }

    /// Values oldest first (only meaningful once full).
    pub(super) fn chronological(&self) -> impl Iterator<Item = f64> + '_ {
        let (newer, older) = self.buf.split_at(self.head);
        older.iter().chain(newer).copied()
    }
}

/// Sum over the last `n` values, updated as TA-Lib does (subtract the value
/// leaving, then add the one arriving) and recomputed from the ring every [`RESYNC_BARS`] bars.
#[derive(Clone, Debug)]
struct WindowSums {
    ring: Ring,
    sum: f64,
    since_resync: u32,
}

impl WindowSums {
    fn new(n: usize) -> Self {
        Self {
            ring: Ring::new(n),
            sum: 0.0,
            since_resync: 0,
        }
    }

    fn push(&mut self, x: f64) {
        if let Some(old) = self.ring.push(x) {
            self.sum -= old;
        }
        self.sum += x;
        self.since_resync += 1;
        if self.since_resync >= RESYNC_BARS && self.ring.is_full() {
            // Same order as TA-Lib's seeding: oldest to newest from zero.
            self.sum = self.ring.chronological().fold(0.0, |s, v| s + v);
            self.since_resync = 0;
        }
    }

    fn is_full(&self) -> bool {
        self.ring.is_full()
    }

    fn n(&self) -> f64 {
        self.ring.buf.len() as f64
    }
}

/// Simple moving average of the close (TA-Lib `SMA`). Column `sma_{n}`.
#[derive(Clone, Debug)]
pub struct Sma {
    sums: WindowSums,
}

impl Sma {
    pub fn new(n: usize) -> Self {
        check_period("SMA", n, 2);
        Self {
            sums: WindowSums::new(n),
        }
    }

    fn value(&self) -> f64 {
        if self.sums.is_full() {
            self.sums.sum / self.sums.n()
        } else {
            f64::NAN
        }
    }
}

impl Indicator for Sma {
    fn names(&self) -> Vec<String> {
        vec![format!("sma_{}", self.sums.ring.buf.len())]
    }

    fn update(&mut self, b: &Bar) {
        self.sums.push(b.close);
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value();
    }
}

/// TA-Lib's EMA recursion: `k = 2/(n+1)`, seeded with the plain mean of its first `n` inputs after
/// skipping `skip` (the MACD's fast EMA is seeded late, see [`Macd`]).
#[derive(Clone, Debug)]
struct SeededEma {
    n: usize,
    k: f64,
    skip: usize,
    seen: usize,
    seed_sum: f64,
    value: f64,
}

impl SeededEma {
    fn new(n: usize, skip: usize) -> Self {
        Self {
            n,
            k: 2.0 / (n + 1) as f64,
            skip,
            seen: 0,
            seed_sum: 0.0,
            value: f64::NAN,
        }
    }

    /// Feeds one value; returns the EMA, `NaN` until seeded.
    fn update(&mut self, x: f64) -> f64 {
        if self.seen < self.skip + self.n {
            if self.seen >= self.skip {
                self.seed_sum += x;
            }
            self.seen += 1;
            if self.seen == self.skip + self.n {
                self.value = self.seed_sum / self.n as f64;
            }
        } else {
            self.value = (x - self.value) * self.k + self.value;
        }
        self.value
    }
}

/// Exponential moving average of the close (TA-Lib `EMA`): `k = 2/(n+1)`, seeded with the SMA of the
/// first `n` closes, first value at bar `n-1`. Column `ema_{n}`.
#[derive(Clone, Debug)]
pub struct Ema {
    ema: SeededEma,
}

impl Ema {
    pub fn new(n: usize) -> Self {
        check_period("EMA", n, 2);
        Self {
            ema: SeededEma::new(n, 0),
        }
    }
}

impl Indicator for Ema {
    fn names(&self) -> Vec<String> {
        vec![format!("ema_{}", self.ema.n)]
    }

    fn update(&mut self, b: &Bar) {
        self.ema.update(b.close);
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.ema.value;
    }
}

/// MACD of the close (TA-Lib `MACD`). Columns `macd`, `macd_signal`, `macd_hist` (the names carry no
/// periods: one MACD per feature set).
///
/// TA-Lib seeds both EMAs at the slow EMA's first bar (`slow-1`): the slow one with the mean of the
/// first `slow` closes, the fast one with the mean of the `fast` closes ending there (not of the first
/// `fast` closes). The signal is TA-Lib's EMA of the MACD line from that bar, and TA-Lib reports all
/// three columns only from the signal's first bar, `slow-1+signal-1`. If `fast > slow` the two are
/// swapped, as TA-Lib does.
#[derive(Clone, Debug)]
pub struct Macd {
    fast: SeededEma,
    slow: SeededEma,
    signal: SeededEma,
    out: [f64; 3],
}

impl Macd {
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        check_period("MACD fast", fast, 2);
        check_period("MACD slow", slow, 2);
        check_period("MACD signal", signal, 1);
        let (fast, slow) = if slow < fast {
            (slow, fast)
        } else {
            (fast, slow)
        };
        Self {
            fast: SeededEma::new(fast, slow - fast),
            slow: SeededEma::new(slow, 0),
            signal: SeededEma::new(signal, 0),
            out: [f64::NAN; 3],
        }
    }
}

impl Indicator for Macd {
    fn names(&self) -> Vec<String> {
        ["macd", "macd_signal", "macd_hist"]
            .map(String::from)
            .into()
    }

    fn update(&mut self, b: &Bar) {
        let slow = self.slow.update(b.close);
        let fast = self.fast.update(b.close);
        if slow.is_nan() {
            return; // both EMAs are seeded on the same bar
        }
        let line = fast - slow;
        let signal = self.signal.update(line);
        if !signal.is_nan() {
            self.out = [line, signal, line - signal];
        }
    }

    fn write(&self, out: &mut [f64]) {
        out.copy_from_slice(&self.out);
    }
}

/// Bollinger bands of the close (TA-Lib `BBANDS`, SMA middle, population standard deviation, the same
/// multiplier up and down). Columns `bb_upper`, `bb_middle`, `bb_lower`.
///
/// The middle is the running-sum SMA, bit-identical to [`Sma`] with the same `n`; the deviation is
/// `sqrt(Σ(x - sma)²/n)` in one O(n) pass over the window, and 0 where the variance is below 1e-8
/// (TA-Lib's `TA_IS_ZERO_OR_NEG`).
#[derive(Clone, Debug)]
pub struct Bbands {
    sums: WindowSums,
    k: f64,
}

impl Bbands {
    pub fn new(n: usize, k: f64) -> Self {
        check_period("BBANDS", n, 2);
        Self {
            sums: WindowSums::new(n),
            k,
        }
    }
}

impl Indicator for Bbands {
    fn names(&self) -> Vec<String> {
        ["bb_upper", "bb_middle", "bb_lower"]
            .map(String::from)
            .into()
    }

    fn update(&mut self, b: &Bar) {
        self.sums.push(b.close);
    }

    fn write(&self, out: &mut [f64]) {
        if !self.sums.is_full() {
            out.fill(f64::NAN);
            return;
        }
        let n = self.sums.n();
        let mid = self.sums.sum / n;
        // Two passes over the window (O(n)), not `mean(x²) - mean²`: at BTC prices that difference
        // cancels ~10 digits, and TA-Lib 0.6's deviation agrees with the two-pass value, not with it.
        let var = self
            .sums
            .ring
            .buf
            .iter()
            .map(|x| (x - mid) * (x - mid))
            .sum::<f64>()
            / n;
        let dev = if var < 1e-8 { 0.0 } else { var.sqrt() } * self.k;
        out.copy_from_slice(&[mid + dev, mid, mid - dev]);
    }
}

/// Wilder's directional movement (TA-Lib `ADX`, `PLUS_DI`, `MINUS_DI`). Columns `adx_{n}`,
/// `plus_di_{n}`, `minus_di_{n}`.
///
/// As in TA-Lib: the +DM/−DM/TR sums start as plain sums over bars `1..n-1`, then from bar `n` are
/// Wilder-smoothed (`s - s/n + x`) and the ±DI are written (0 when the smoothed TR is within 1e-8 of
/// zero); the ADX starts at bar `2n-1` as the mean of the DX of bars `n..2n-1` and is then
/// `(adx·(n-1) + dx)/n`. A bar whose DX is undefined (TR or +DI + −DI within 1e-8 of zero) adds
/// nothing during seeding and leaves the ADX unchanged afterwards.
#[derive(Clone, Debug)]
pub struct Adx {
    n: usize,
    bars: usize,
    prev: Bar,
    plus_dm: f64,
    minus_dm: f64,
    tr: f64,
    sum_dx: f64,
    adx: f64,
    plus_di: f64,
    minus_di: f64,
}

impl Adx {
    pub fn new(n: usize) -> Self {
        check_period("ADX", n, 2);
        Self {
            n,
            bars: 0,
            prev: Bar::default(),
            plus_dm: 0.0,
            minus_dm: 0.0,
            tr: 0.0,
            sum_dx: 0.0,
            adx: f64::NAN,
            plus_di: f64::NAN,
            minus_di: f64::NAN,
        }
    }
}

impl Indicator for Adx {
    fn names(&self) -> Vec<String> {
        let n = self.n;
        vec![
            format!("adx_{n}"),
            format!("plus_di_{n}"),
            format!("minus_di_{n}"),
        ]
    }

    fn update(&mut self, b: &Bar) {
        let i = self.bars;
        self.bars = self.bars.saturating_add(1);
        let prev = std::mem::replace(&mut self.prev, *b);
        if i == 0 {
            return;
        }
        let up = b.high - prev.high;
        let down = prev.low - b.low;
        let (plus, minus) = if down > 0.0 && up < down {
            (0.0, down)
        } else if up > 0.0 && up > down {
            (up, 0.0)
        } else {
            (0.0, 0.0)
        };
        let tr = (b.high - b.low)
            .max((b.high - prev.close).abs())
            .max((b.low - prev.close).abs());
        let n = self.n as f64;
        if i < self.n {
            self.plus_dm += plus;
            self.minus_dm += minus;
            self.tr += tr;
            return;
        }
        self.plus_dm = self.plus_dm - self.plus_dm / n + plus;
        self.minus_dm = self.minus_dm - self.minus_dm / n + minus;
        self.tr = self.tr - self.tr / n + tr;
        let mut dx = None;
        if is_zero(self.tr) {
            self.plus_di = 0.0;
            self.minus_di = 0.0;
        } else {
            self.plus_di = 100.0 * (self.plus_dm / self.tr);
            self.minus_di = 100.0 * (self.minus_dm / self.tr);
            let sum = self.minus_di + self.plus_di;
            if !is_zero(sum) {
                dx = Some(100.0 * ((self.minus_di - self.plus_di).abs() / sum));
            }
        }
        if i < 2 * self.n {
            self.sum_dx += dx.unwrap_or(0.0);
            if i == 2 * self.n - 1 {
                self.adx = self.sum_dx / n;
            }
        } else if let Some(dx) = dx {
            self.adx = (self.adx * (n - 1.0) + dx) / n;
        }
    }

    fn write(&self, out: &mut [f64]) {
        out.copy_from_slice(&[self.adx, self.plus_di, self.minus_di]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(o: f64, h: f64, l: f64, c: f64) -> Bar {
        Bar {
            open: o,
            high: h,
            low: l,
            close: c,
            volume: 1.0,
            ..Bar::default()
        }
    }

    /// Each bar's row of `ind`'s values.
    fn run(ind: &mut dyn Indicator, bars: &[Bar]) -> Vec<Vec<f64>> {
        let w = ind.names().len();
        bars.iter()
            .map(|b| {
                ind.update(b);
                let mut row = vec![0.0; w];
                ind.write(&mut row);
                row
            })
            .collect()
    }

    fn constant(n: usize) -> Vec<Bar> {
        vec![bar(100.0, 100.0, 100.0, 100.0); n]
    }

    /// Close `i`, high `i+0.5`, low `i-0.5`.
    fn ramp(n: usize) -> Vec<Bar> {
        (0..n)
            .map(|i| {
                let x = i as f64;
                bar(x, x + 0.5, x - 0.5, x)
            })
            .collect()
    }

    fn nan_count(rows: &[Vec<f64>], col: usize) -> usize {
        let first = rows.iter().position(|r| !r[col].is_nan());
        let first = first.expect("column never becomes valid");
        assert!(rows[first..].iter().all(|r| !r[col].is_nan()));
        first
    }

    #[track_caller]
    fn near(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}");
    }

    #[track_caller]
    fn near_all(got: &[f64], want: &[f64]) {
        got.iter().zip(want).for_each(|(&a, &b)| near(a, b));
    }

    fn all_indicators() -> Vec<Box<dyn Indicator>> {
        vec![
            Box::new(Sma::new(20)),
            Box::new(Ema::new(20)),
            Box::new(Macd::new(12, 26, 9)),
            Box::new(Bbands::new(20, 2.0)),
            Box::new(Adx::new(14)),
            Box::new(Cci::new(20)),
            Box::new(Aroon::new(14)),
        ]
    }

    #[test]
    fn names_and_warm_up_lengths_match_talib() {
        let bars = ramp(100);
        let expect: [(&[&str], &[usize]); 7] = [
            (&["sma_20"], &[19]),
            (&["ema_20"], &[19]),
            (&["macd", "macd_signal", "macd_hist"], &[33, 33, 33]),
            (&["bb_upper", "bb_middle", "bb_lower"], &[19, 19, 19]),
            (&["adx_14", "plus_di_14", "minus_di_14"], &[27, 14, 14]),
            (&["cci_20"], &[19]),
            (&["aroon_up_14", "aroon_down_14"], &[14, 14]),
        ];
        for (mut ind, (names, nans)) in all_indicators().into_iter().zip(expect) {
            assert_eq!(ind.names(), names);
            let rows = run(ind.as_mut(), &bars);
            for (col, &want) in nans.iter().enumerate() {
                assert_eq!(nan_count(&rows, col), want, "{}", names[col]);
            }
        }
    }

    #[test]
    fn constant_series() {
        let bars = constant(60);
        let last = |ind: &mut dyn Indicator| run(ind, &bars).pop().unwrap();
        assert_eq!(last(&mut Sma::new(20)), [100.0]);
        assert_eq!(last(&mut Ema::new(20)), [100.0]);
        assert_eq!(last(&mut Macd::new(12, 26, 9)), [0.0, 0.0, 0.0]);
        assert_eq!(last(&mut Bbands::new(20, 2.0)), [100.0, 100.0, 100.0]);
        // No range, no movement: ±DI 0 (TA-Lib's zero-TR rule), DX never defined, ADX 0.
        assert_eq!(last(&mut Adx::new(14)), [0.0, 0.0, 0.0]);
        assert_eq!(last(&mut Cci::new(20)), [0.0]);
        // Every bar ties; the most recent one (this bar) counts.
        assert_eq!(last(&mut Aroon::new(14)), [100.0, 100.0]);
    }

    #[test]
    fn linear_ramp() {
        let bars = ramp(80);
        let t = 79.0;
        let last = |ind: &mut dyn Indicator| run(ind, &bars).pop().unwrap();
        near(last(&mut Sma::new(20))[0], t - 9.5);
        // A ramp seeded with its SMA stays exactly (n-1)/2 behind: e + k·((n+1)/2) = e + 1.
        near(last(&mut Ema::new(20))[0], t - 9.5);
        let m = last(&mut Macd::new(12, 26, 9));
        near_all(&m, &[7.0, 7.0, 0.0]);
        // Population deviation of 20 consecutive integers: sqrt((20² - 1)/12).
        let bb = last(&mut Bbands::new(20, 2.0));
        let dev = 2.0 * (399.0f64 / 12.0).sqrt();
        near_all(&bb, &[t - 9.5 + dev, t - 9.5, t - 9.5 - dev]);
        // +DM 1 and TR 1.5 every bar, −DM 0: +DI 2/3, DX 100.
        let a = last(&mut Adx::new(14));
        near_all(&a, &[100.0, 200.0 / 3.0, 0.0]);
        // Typical price t, mean t − 9.5, mean |deviation| 5.
        near(last(&mut Cci::new(20))[0], 9.5 / (0.015 * 5.0));
        assert_eq!(last(&mut Aroon::new(14)), [100.0, 0.0]);
    }

    #[test]
    fn macd_fast_ema_is_seeded_on_the_slow_emas_first_bar() {
        // Different levels before and inside the last `fast` closes of the slow seed window: a fast
        // EMA seeded on the first 12 closes would not see the step.
        let closes: Vec<f64> = (0..34).map(|i| if i < 14 { 10.0 } else { 20.0 }).collect();
        let bars: Vec<Bar> = closes.iter().map(|&c| bar(c, c, c, c)).collect();
        let mut m = Macd::new(12, 26, 9);
        let row = run(&mut m, &bars).pop().unwrap();
        // At bar 25: fast = 20, slow = (14·10 + 12·20)/26; after that both converge on 20.
        let mut fast = 20.0;
        let mut slow = (14.0 * 10.0 + 12.0 * 20.0) / 26.0;
        let mut lines = vec![fast - slow];
        for _ in 26..34 {
            fast += (20.0 - fast) * (2.0 / 13.0);
            slow += (20.0 - slow) * (2.0 / 27.0);
            lines.push(fast - slow);
        }
        let signal = lines.iter().sum::<f64>() / 9.0;
        near(row[0], fast - slow);
        near(row[1], signal);
    }

    #[test]
    fn window_sums_resync_to_the_exact_window() {
        // A drifting, wide-ranging series well past one resync: the SMA stays on the exact mean.
        let n = 20;
        let closes: Vec<f64> = (0..RESYNC_BARS as usize + 5000)
            .map(|i| 70_000.0 + 5_000.0 * ((i as f64) * 0.013).sin() + (i % 7) as f64 * 0.01)
            .collect();
        let mut sma = Sma::new(n);
        for (i, &c) in closes.iter().enumerate() {
            sma.update(&bar(c, c, c, c));
            if i + 1 >= n && (i % 997 == 0 || i + 1 == closes.len()) {
                let exact = closes[i + 1 - n..=i].iter().sum::<f64>() / n as f64;
                assert!((sma.value() - exact).abs() < 1e-9 * exact, "bar {i}");
            }
        }
    }
}
