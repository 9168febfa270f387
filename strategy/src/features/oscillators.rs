//! Momentum oscillators and volatility: RSI, STOCH, WILLR, ROC, MOM, ULTOSC, ATR/NATR — TA-Lib's
//! definitions, seeding and first-valid bar (default unstable period 0).
//!
//! | struct | columns | first valid bar (0-based) |
//! |---|---|---|
//! | [`Rsi::new(n)`](Rsi) | `rsi_{n}` | `n` |
//! | [`Stoch::new(k, sk, sd)`](Stoch) | `stoch_k`, `stoch_d` | `(k−1)+(sk−1)+(sd−1)` (17 for 14/3/3) |
//! | [`WillR::new(n)`](WillR) | `willr_{n}` | `n−1` |
//! | [`Roc::new(n)`](Roc) | `roc_{n}` | `n` |
//! | [`Mom::new(n)`](Mom) | `mom_{n}` | `n` |
//! | [`UltOsc::new(a, b, c)`](UltOsc) | `ultosc` | `max(a, b, c)` |
//! | [`Atr::new(n)`](Atr) | `atr_{n}`, `natr_{n}` | `n` |
//!
//! Hot path: `update` is O(1) and allocation-free; every ring is allocated in `new`. The rolling
//! high/low of [`Stoch`] and [`WillR`] scans its fixed window (n bars, 14 by default) on each bar —
//! cheaper than a monotonic deque at these sizes and still constant per bar.
//!
//! Floating point: where TA-Lib keeps a running total (the SMA inside STOCH, ULTOSC's three sums,
//! Wilder's averages) we perform the same operations in the same order, so the outputs are the
//! ones TA-Lib computes, not merely close to them. TA-Lib's own rounding drift is therefore
//! reproduced rather than corrected; it stays bounded because the summed terms are bounded
//! (%K in 0..=100, true ranges), and a model trained on TA-Lib columns must see the same numbers.
//! TA-Lib's `TA_IS_ZERO` (|x| < 1e-8) guards are reproduced where TA-Lib uses them.

use crate::bars::Bar;
use crate::features::Indicator;

/// TA-Lib's `TA_IS_ZERO`.
fn ta_is_zero(v: f64) -> bool {
    -0.00000001 < v && v < 0.00000001
}

/// TA-Lib's true range (`TA_TRANGE`): the greatest of high−low, |prev close−high|, |prev close−low|.
fn true_range(b: &Bar, prev_close: f64) -> f64 {
    let mut greatest = b.high - b.low;
    let v2 = (prev_close - b.high).abs();
    if v2 > greatest {
        greatest = v2;
    }
    let v3 = (prev_close - b.low).abs();
    if v3 > greatest {
        greatest = v3;
    }
    greatest
}

/// TA-Lib's running SMA (`TA_INT_SMA`): add the new value, emit total/n, then drop the oldest.
#[derive(Clone, Debug)]
struct RunningSma {
    ring: Vec<f64>,
    next: usize,
    seen: usize,
    total: f64,
}

impl RunningSma {
    fn new(n: usize) -> Self {
        Self {
            ring: vec![0.0; n],
            next: 0,
            seen: 0,
            total: 0.0,
        }
    }

    /// Adds `x`; the SMA once `n` values have been seen.
    fn push(&mut self, x: f64) -> Option<f64> {
        let n = self.ring.len();
        self.ring[self.next] = x;
        self.next = (self.next + 1) % n;
        self.seen += 1;
        self.total += x;
        if self.seen < n {
            return None;
        }
        let out = self.total / n as f64;
        // `next` is now the slot of the oldest value in the window.
        self.total -= self.ring[self.next];
        Some(out)
    }
}

/// Highest high and lowest low over the last `ring.len()` bars (a fixed-size scan).
#[derive(Clone, Debug)]
struct HighLowWindow {
    highs: Vec<f64>,
    lows: Vec<f64>,
    next: usize,
    seen: usize,
}

impl HighLowWindow {
    fn new(n: usize) -> Self {
        Self {
            highs: vec![0.0; n],
            lows: vec![0.0; n],
            next: 0,
            seen: 0,
        }
    }

    /// Adds a bar; `(highest, lowest)` once the window is full.
    fn push(&mut self, b: &Bar) -> Option<(f64, f64)> {
        let n = self.highs.len();
        self.highs[self.next] = b.high;
        self.lows[self.next] = b.low;
        self.next = (self.next + 1) % n;
        self.seen += 1;
        if self.seen < n {
            return None;
        }
        let hh = self.highs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let ll = self.lows.iter().copied().fold(f64::INFINITY, f64::min);
        Some((hh, ll))
    }
}

/// TA-Lib RSI: Wilder-smoothed average gain and loss, seeded with their simple means over the first
/// `n` changes; `100·gain/(gain+loss)`, 0 when gain+loss is (TA-Lib-)zero. First value at bar `n`.
#[derive(Clone, Debug)]
pub struct Rsi {
    n: usize,
    seen: usize,
    prev_close: f64,
    gain: f64,
    loss: f64,
    value: f64,
}

impl Rsi {
    pub fn new(n: usize) -> Self {
        assert!(n >= 2, "RSI period must be at least 2, got {n}");
        Self {
            n,
            seen: 0,
            prev_close: 0.0,
            gain: 0.0,
            loss: 0.0,
            value: f64::NAN,
        }
    }
}

impl Indicator for Rsi {
    fn names(&self) -> Vec<String> {
        vec![format!("rsi_{}", self.n)]
    }

    fn update(&mut self, b: &Bar) {
        let n = self.n as f64;
        self.seen += 1;
        if self.seen == 1 {
            self.prev_close = b.close;
            return;
        }
        let diff = b.close - self.prev_close;
        self.prev_close = b.close;
        if self.seen <= self.n {
            // Seeding: plain sums of the first n changes.
            if diff < 0.0 {
                self.loss -= diff;
            } else {
                self.gain += diff;
            }
            return;
        }
        if self.seen == self.n + 1 {
            if diff < 0.0 {
                self.loss -= diff;
            } else {
                self.gain += diff;
            }
            self.loss /= n;
            self.gain /= n;
        } else {
            self.loss *= n - 1.0;
            self.gain *= n - 1.0;
            if diff < 0.0 {
                self.loss -= diff;
            } else {
                self.gain += diff;
            }
            self.loss /= n;
            self.gain /= n;
        }
        let total = self.gain + self.loss;
        self.value = if ta_is_zero(total) {
            0.0
        } else {
            100.0 * (self.gain / total)
        };
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

/// TA-Lib STOCH with SMA slow-%K and SMA slow-%D: fast %K = (close−LL)/(HH−LL)·100 over `fast_k`
/// bars (0 when HH == LL), slow %K = SMA(fast %K, `slow_k`), slow %D = SMA(slow %K, `slow_d`).
/// Both columns start together, at bar `(fast_k−1)+(slow_k−1)+(slow_d−1)`.
#[derive(Clone, Debug)]
pub struct Stoch {
    window: HighLowWindow,
    slow_k: RunningSma,
    slow_d: RunningSma,
    k: f64,
    d: f64,
}

impl Stoch {
    pub fn new(fast_k: usize, slow_k: usize, slow_d: usize) -> Self {
        assert!(
            fast_k >= 1 && slow_k >= 1 && slow_d >= 1,
            "STOCH periods must be at least 1, got {fast_k}/{slow_k}/{slow_d}"
        );
        Self {
            window: HighLowWindow::new(fast_k),
            slow_k: RunningSma::new(slow_k),
            slow_d: RunningSma::new(slow_d),
            k: f64::NAN,
            d: f64::NAN,
        }
    }
}

impl Indicator for Stoch {
    fn names(&self) -> Vec<String> {
        vec!["stoch_k".into(), "stoch_d".into()]
    }

    fn update(&mut self, b: &Bar) {
        let Some((hh, ll)) = self.window.push(b) else {
            return;
        };
        // TA-Lib 0.6's operation order, ((c−LL)/(HH−LL))·100: (c−LL)/((HH−LL)/100) differs in the
        // last bits, which its running SMA then carries.
        let range = hh - ll;
        let fast_k = if range != 0.0 {
            ((b.close - ll) / range) * 100.0
        } else {
            0.0
        };
        let Some(k) = self.slow_k.push(fast_k) else {
            return;
        };
        if let Some(d) = self.slow_d.push(k) {
            self.k = k;
            self.d = d;
        }
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.k;
        out[1] = self.d;
    }
}

/// TA-Lib WILLR: (HH−close)/(HH−LL)·(−100) over `n` bars; 0 when
/// HH == LL. First value at bar `n−1`.
#[derive(Clone, Debug)]
pub struct WillR {
    n: usize,
    window: HighLowWindow,
    value: f64,
}

impl WillR {
    pub fn new(n: usize) -> Self {
        assert!(n >= 2, "WILLR period must be at least 2, got {n}");
        Self {
            n,
            window: HighLowWindow::new(n),
            value: f64::NAN,
        }
    }
}

impl Indicator for WillR {
    fn names(&self) -> Vec<String> {
        vec![format!("willr_{}", self.n)]
    }

    fn update(&mut self, b: &Bar) {
        if let Some((hh, ll)) = self.window.push(b) {
            let range = hh - ll;
            self.value = if range != 0.0 {
                ((hh - b.close) / range) * -100.0
            } else {
                0.0
            };
        }
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

/// The close `n` bars ago, from a ring of the last `n` closes.
#[derive(Clone, Debug)]
struct LaggedClose {
    ring: Vec<f64>,
    next: usize,
    seen: usize,
}

impl LaggedClose {
    fn new(n: usize) -> Self {
        Self {
            ring: vec![0.0; n],
            next: 0,
            seen: 0,
        }
    }

    /// Stores `close`; returns the close `n` bars before it, if there is one.
    fn push(&mut self, close: f64) -> Option<f64> {
        let old = self.ring[self.next];
        self.ring[self.next] = close;
        self.next = (self.next + 1) % self.ring.len();
        self.seen += 1;
        (self.seen > self.ring.len()).then_some(old)
    }
}

/// TA-Lib ROC: `(close/close[t−n] − 1)·100`, 0 when the old close is 0. First value at bar `n`.
#[derive(Clone, Debug)]
pub struct Roc {
    n: usize,
    lag: LaggedClose,
    value: f64,
}

impl Roc {
    pub fn new(n: usize) -> Self {
        assert!(n >= 1, "ROC period must be at least 1");
        Self {
            n,
            lag: LaggedClose::new(n),
            value: f64::NAN,
        }
    }
}

impl Indicator for Roc {
    fn names(&self) -> Vec<String> {
        vec![format!("roc_{}", self.n)]
    }

    fn update(&mut self, b: &Bar) {
        if let Some(old) = self.lag.push(b.close) {
            self.value = if old != 0.0 {
                ((b.close / old) - 1.0) * 100.0
            } else {
                0.0
            };
        }
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

/// TA-Lib MOM: `close − close[t−n]`. First value at bar `n`.
#[derive(Clone, Debug)]
pub struct Mom {
    n: usize,
    lag: LaggedClose,
    value: f64,
}

impl Mom {
    pub fn new(n: usize) -> Self {
        assert!(n >= 1, "MOM period must be at least 1");
        Self {
            n,
            lag: LaggedClose::new(n),
            value: f64::NAN,
        }
    }
}

impl Indicator for Mom {
    fn names(&self) -> Vec<String> {
        vec![format!("mom_{}", self.n)]
    }

    fn update(&mut self, b: &Bar) {
        if let Some(old) = self.lag.push(b.close) {
            self.value = b.close - old;
        }
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

/// TA-Lib ULTOSC: with buying pressure `bp = close − min(low, prev close)` and the true range `tr`,
/// `100·(4·Σbp/Σtr [shortest] + 2·Σbp/Σtr [middle] + Σbp/Σtr [longest]) / 7`; a term whose Σtr is
/// (TA-Lib-)zero contributes 0. Periods are sorted, as TA-Lib does. First value at bar `max(period)`.
#[derive(Clone, Debug)]
pub struct UltOsc {
    /// Sorted ascending.
    periods: [usize; 3],
    /// `bp` and `tr` of the last `periods[2]` bars, by bar index modulo the longest period.
    bp: Vec<f64>,
    tr: Vec<f64>,
    a: [f64; 3],
    b: [f64; 3],
    /// Bars seen (bar index of the next bar).
    seen: usize,
    prev_close: f64,
    value: f64,
}

impl UltOsc {
    pub fn new(p1: usize, p2: usize, p3: usize) -> Self {
        let mut periods = [p1, p2, p3];
        periods.sort_unstable();
        assert!(periods[0] >= 1, "ULTOSC periods must be at least 1");
        Self {
            periods,
            bp: vec![0.0; periods[2]],
            tr: vec![0.0; periods[2]],
            a: [0.0; 3],
            b: [0.0; 3],
            seen: 0,
            prev_close: 0.0,
            value: f64::NAN,
        }
    }
}

impl Indicator for UltOsc {
    fn names(&self) -> Vec<String> {
        vec!["ultosc".into()]
    }

    fn update(&mut self, bar: &Bar) {
        let t = self.seen;
        self.seen += 1;
        let prev_close = self.prev_close;
        self.prev_close = bar.close;
        if t == 0 {
            return;
        }
        let longest = self.periods[2];
        let bp = bar.close - bar.low.min(prev_close);
        let tr = true_range(bar, prev_close);
        self.bp[t % longest] = bp;
        self.tr[t % longest] = tr;
        // Bar t belongs to window k from bar `longest + 1 − period_k` on: the bars TA-Lib primes
        // each total with before its first output at bar `longest`.
        for k in 0..3 {
            if t + self.periods[k] > longest {
                self.a[k] += bp;
                self.b[k] += tr;
            }
        }
        if t < longest {
            return;
        }
        let mut output = 0.0;
        for (k, weight) in [4.0, 2.0, 1.0].into_iter().enumerate() {
            if !ta_is_zero(self.b[k]) {
                output += weight * (self.a[k] / self.b[k]);
            }
        }
        self.value = 100.0 * (output / 7.0);
        // Drop the bar that leaves each window before the next one.
        for k in 0..3 {
            let old = (t + 1 - self.periods[k]) % longest;
            self.a[k] -= self.bp[old];
            self.b[k] -= self.tr[old];
        }
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

/// TA-Lib ATR and NATR: Wilder's average of the true range, seeded with the simple mean of the
/// first `n` true ranges (bars 1..=n); NATR = ATR/close·100 (0 when the close is TA-Lib-zero).
/// First value at bar `n`.
#[derive(Clone, Debug)]
pub struct Atr {
    n: usize,
    seen: usize,
    prev_close: f64,
    /// Sum of true ranges while seeding, then the ATR.
    atr: f64,
    natr: f64,
}

impl Atr {
    pub fn new(n: usize) -> Self {
        assert!(n >= 1, "ATR period must be at least 1");
        Self {
            n,
            seen: 0,
            prev_close: 0.0,
            atr: 0.0,
            natr: f64::NAN,
        }
    }
}

impl Indicator for Atr {
    fn names(&self) -> Vec<String> {
        vec![format!("atr_{}", self.n), format!("natr_{}", self.n)]
    }

    fn update(&mut self, b: &Bar) {
        self.seen += 1;
        let prev_close = self.prev_close;
        self.prev_close = b.close;
        if self.seen == 1 {
            return;
        }
        let tr = true_range(b, prev_close);
        let n = self.n as f64;
        if self.seen <= self.n + 1 {
            self.atr += tr;
            if self.seen <= self.n {
                return;
            }
            self.atr /= n;
        } else {
            self.atr *= n - 1.0;
            self.atr += tr;
            self.atr /= n;
        }
        self.natr = if ta_is_zero(b.close) {
            0.0
        } else {
            (self.atr / b.close) * 100.0
        };
    }

    fn write(&self, out: &mut [f64]) {
        if self.seen > self.n {
            out[0] = self.atr;
            out[1] = self.natr;
        } else {
            out[0] = f64::NAN;
            out[1] = f64::NAN;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(o: f64, h: f64, l: f64, c: f64, v: f64) -> Bar {
        Bar {
            open: o,
            high: h,
            low: l,
            close: c,
            volume: v,
            ..Bar::default()
        }
    }

    /// Runs `ind` over `bars`, one row per bar.
    fn run(mut ind: impl Indicator, bars: &[Bar]) -> Vec<Vec<f64>> {
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

    fn first_valid(rows: &[Vec<f64>]) -> usize {
        rows.iter()
            .position(|r| r.iter().all(|v| !v.is_nan()))
            .unwrap()
    }

    fn ramp(n: usize) -> Vec<Bar> {
        (0..n)
            .map(|i| {
                let c = 100.0 + i as f64;
                bar(c - 0.5, c + 1.0, c - 1.0, c, 10.0)
            })
            .collect()
    }

    #[test]
    fn names_and_warm_up_match_talib_lookbacks() {
        let bars = ramp(60);
        assert_eq!(Rsi::new(14).names(), ["rsi_14"]);
        assert_eq!(Stoch::new(14, 3, 3).names(), ["stoch_k", "stoch_d"]);
        assert_eq!(Atr::new(14).names(), ["atr_14", "natr_14"]);
        assert_eq!(first_valid(&run(Rsi::new(14), &bars)), 14);
        assert_eq!(first_valid(&run(Stoch::new(14, 3, 3), &bars)), 17);
        assert_eq!(first_valid(&run(WillR::new(14), &bars)), 13);
        assert_eq!(first_valid(&run(Roc::new(10), &bars)), 10);
        assert_eq!(first_valid(&run(Mom::new(10), &bars)), 10);
        assert_eq!(first_valid(&run(UltOsc::new(7, 14, 28), &bars)), 28);
        assert_eq!(first_valid(&run(UltOsc::new(28, 7, 14), &bars)), 28);
        assert_eq!(first_valid(&run(Atr::new(14), &bars)), 14);
    }

    #[test]
    fn constant_series() {
        let bars = vec![bar(50.0, 50.0, 50.0, 50.0, 1.0); 40];
        let last = |rows: Vec<Vec<f64>>| rows.last().unwrap().clone();
        // No gains, no losses, no range: TA-Lib's zero guards give 0.
        assert_eq!(last(run(Rsi::new(14), &bars)), [0.0]);
        assert_eq!(last(run(Stoch::new(14, 3, 3), &bars)), [0.0, 0.0]);
        assert_eq!(last(run(WillR::new(14), &bars)), [0.0]);
        assert_eq!(last(run(Roc::new(10), &bars)), [0.0]);
        assert_eq!(last(run(Mom::new(10), &bars)), [0.0]);
        assert_eq!(last(run(UltOsc::new(7, 14, 28), &bars)), [0.0]);
        assert_eq!(last(run(Atr::new(14), &bars)), [0.0, 0.0]);
    }

    #[test]
    fn rising_ramp() {
        // Close +1 per bar, high/low ±1 around it: every change a gain, true range 2, the close
        // always 1 below the 14-bar high.
        let bars = ramp(60);
        let last = |rows: Vec<Vec<f64>>| rows.last().unwrap().clone();
        assert_eq!(last(run(Rsi::new(14), &bars)), [100.0]);
        assert_eq!(last(run(Mom::new(10), &bars)), [10.0]);
        let roc = last(run(Roc::new(10), &bars))[0];
        assert!((roc - (159.0 / 149.0 - 1.0) * 100.0).abs() < 1e-12);
        // HH = c+1, LL = c−13−1: %K = 14/15·100, %R = −1/15·100.
        let k = last(run(Stoch::new(14, 3, 3), &bars));
        assert!((k[0] - 1400.0 / 15.0).abs() < 1e-9 && (k[1] - 1400.0 / 15.0).abs() < 1e-9);
        let r = last(run(WillR::new(14), &bars))[0];
        assert!((r + 100.0 / 15.0).abs() < 1e-12, "{r}");
        let atr = last(run(Atr::new(14), &bars));
        assert!((atr[0] - 2.0).abs() < 1e-12 && (atr[1] - 200.0 / 159.0).abs() < 1e-12);
        // Buying pressure 1 of a true range 2 in every window.
        assert!((last(run(UltOsc::new(7, 14, 28), &bars))[0] - 50.0).abs() < 1e-12);
    }

    #[test]
    fn rsi_seeds_with_the_mean_change_then_smooths_wilder_style() {
        // Changes +2, −1 alternating over a 2-bar RSI: seed gain 1 loss 0.5 → 66.67 at bar 2;
        // bar 3 (+2): gain (1+2)/2 = 1.5, loss 0.25 → 85.71.
        let closes = [10.0, 12.0, 11.0, 13.0];
        let bars: Vec<Bar> = closes.iter().map(|&c| bar(c, c, c, c, 1.0)).collect();
        let rows = run(Rsi::new(2), &bars);
        assert!(rows[1][0].is_nan());
        assert!((rows[2][0] - 100.0 * 1.0 / 1.5).abs() < 1e-12);
        assert!((rows[3][0] - 100.0 * 1.5 / 1.75).abs() < 1e-12);
    }

    #[test]
    fn real_btc_values_stay_in_range() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/klines/binance-spot-btcusdt-1m.csv");
        if !path.exists() {
            eprintln!("skipped: {} not found", path.display());
            return;
        }
        let bars = crate::bars::read_klines(&path).unwrap();
        // TA-Lib's running sums may overshoot a bound by an ulp.
        let within = |rows: &[Vec<f64>], lo: f64, hi: f64| {
            rows.iter()
                .flatten()
                .filter(|v| !v.is_nan())
                .all(|&v| (lo - 1e-9..=hi + 1e-9).contains(&v))
        };
        assert!(within(&run(Rsi::new(14), &bars), 0.0, 100.0));
        assert!(within(&run(Stoch::new(14, 3, 3), &bars), 0.0, 100.0));
        assert!(within(&run(WillR::new(14), &bars), -100.0, 0.0));
        assert!(within(&run(UltOsc::new(7, 14, 28), &bars), 0.0, 100.0));
        // NATR is ATR/close·100 bar by bar; MOM and ROC agree on the sign.
        let atr = run(Atr::new(14), &bars);
        for (row, b) in atr.iter().zip(&bars).skip(14) {
            assert!(row[0] > 0.0 && (row[1] - row[0] / b.close * 100.0).abs() <= 1e-12 * row[1]);
        }
        let (mom, roc) = (run(Mom::new(10), &bars), run(Roc::new(10), &bars));
        assert!(mom
            .iter()
            .zip(&roc)
            .all(|(m, r)| (m[0] > 0.0) == (r[0] > 0.0)));
        // Stoch's %D is the 3-bar mean of its %K.
        let st = run(Stoch::new(14, 3, 3), &bars);
        for i in 19..st.len() {
            let mean = (st[i][0] + st[i - 1][0] + st[i - 2][0]) / 3.0;
            assert!((st[i][1] - mean).abs() < 1e-9);
        }
    }
}
