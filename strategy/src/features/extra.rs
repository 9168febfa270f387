//! Non-TA-Lib bar features: returns, realized volatility, bar shape, and price relative to its
//! averages and Bollinger bands. Definitions (bar `t`, `c` the close, 0-based first valid bar):
//!
//! | struct | column | value | first valid |
//! |---|---|---|---|
//! | [`Returns::new(&[k…])`](Returns) | `ret_{k}` | `c[t]/c[t−k] − 1` (NaN if `c[t−k]` is 0) | `k` |
//! | [`LogReturn::new()`](LogReturn) | `log_ret_1` | `ln(c[t]/c[t−1])` (NaN unless both > 0) | 1 |
//! | [`RealizedVol::new(n)`](RealizedVol) | `rvol_{n}` | sample stdev (n−1) of the last `n` 1-bar log returns | `n` |
//! | [`RangeBps::new()`](RangeBps) | `hl_range_bps` | `(high−low)/c·1e4` (NaN if `c` is 0) | 0 |
//! | [`CloseLocation::new()`](CloseLocation) | `close_location` | `(c−low)/(high−low)`, 0.5 when high == low | 0 |
//! | [`EmaRatio::new(f, s)`](EmaRatio) | `ema_ratio_{f}_{s}` | `EMA_f/EMA_s − 1`, TA-Lib EMA seeding | `max(f, s)−1` |
//! | [`SmaDistance::new(n)`](SmaDistance) | `sma_dist_{n}` | `c/SMA_n − 1` | `n−1` |
//! | [`BbWidth::new(n, k)`](BbWidth) | `bb_width_{n}`, `bb_pctb_{n}` | `(up−lo)/mid`, `(c−lo)/(up−lo)`; 0.5 when up == lo | `n−1` |
//!
//! Bollinger bands have TA-Lib's BBANDS shape: `mid = SMA_n(c)`, `up/lo = mid ± k·σ`, σ the population
//! stdev of the same closes. The EMA is TA-Lib's: the SMA of the first `n` closes at bar `n−1`, then
//! `ema += (c − ema)·2/(n+1)`.
//!
//! Hot path: `update` is O(1) (amortised, see [`RollingStats`]) and allocation-free; rings are
//! allocated in `new`.

use crate::bars::Bar;
use crate::features::Indicator;

/// How many pushes [`RollingStats`] makes between exact recomputes.
const EXACT_EVERY: usize = 1024;

/// A Neumaier-compensated running sum: `sum + comp` carries each addition's rounding error, so
/// adding and later removing the same terms leaves no residue beyond the last ulp.
#[derive(Clone, Copy, Debug, Default)]
struct CompensatedSum {
    sum: f64,
    comp: f64,
}

impl CompensatedSum {
    fn add(&mut self, v: f64) {
        let t = self.sum + v;
        if self.sum.abs() >= v.abs() {
            self.comp += (self.sum - t) + v;
        } else {
            self.comp += (v - t) + self.sum;
        }
        self.sum = t;
    }

    fn value(&self) -> f64 {
        self.sum + self.comp
    }
}

/// Mean and variance of the last `n` values (fewer while filling), O(1) per push.
///
/// Sums are kept of `x − shift` and `(x − shift)²`, `shift` being the window mean at the last exact
/// recompute: near the mean the squares do not cancel the way Σx²−(Σx)²/n does at BTC's ~7e4 price
/// level. Both sums are compensated (Neumaier), and every [`EXACT_EVERY`] pushes they are rebuilt
/// from the ring around a fresh shift (O(n) once per 1024 bars: amortised O(1)), so rounding cannot
/// accumulate over a long session. Whether the window is constant is tracked exactly (the length of
/// the run of equal values), so "stdev is 0" and "volume is 0" never depend on rounding.
#[derive(Clone, Debug)]
pub(crate) struct RollingStats {
    ring: Vec<f64>,
    next: usize,
    len: usize,
    shift: f64,
    s1: CompensatedSum,
    s2: CompensatedSum,
    /// Trailing values equal to the newest, capped at the window size.
    run: usize,
    since_exact: usize,
}

impl RollingStats {
    pub(crate) fn new(n: usize) -> Self {
        assert!(n >= 1, "a rolling window needs at least 1 value");
        Self {
            ring: vec![0.0; n],
            next: 0,
            len: 0,
            shift: 0.0,
            s1: CompensatedSum::default(),
            s2: CompensatedSum::default(),
            run: 0,
            since_exact: 0,
        }
    }

    fn newest(&self) -> f64 {
        let n = self.ring.len();
        self.ring[(self.next + n - 1) % n]
    }

    pub(crate) fn push(&mut self, x: f64) {
        let n = self.ring.len();
        self.run = if self.len > 0 && x == self.newest() {
            (self.run + 1).min(n)
        } else {
            1
        };
        if self.len == 0 {
            self.shift = x;
        }
        if self.len == n {
            // The same shift as when it was added: the removed terms are bit-identical.
            let d = self.ring[self.next] - self.shift;
            self.s1.add(-d);
            self.s2.add(-(d * d));
        } else {
            self.len += 1;
        }
        let d = x - self.shift;
        self.s1.add(d);
        self.s2.add(d * d);
        self.ring[self.next] = x;
        self.next = (self.next + 1) % n;
        self.since_exact += 1;
        if self.since_exact >= EXACT_EVERY {
            self.recompute();
        }
    }

    /// Rebuilds both sums from the ring around the current mean.
    fn recompute(&mut self) {
        self.shift = self.mean();
        self.s1 = CompensatedSum::default();
        self.s2 = CompensatedSum::default();
        // Slots 0..len hold the values, filling or full.
        for &v in &self.ring[..self.len] {
            let d = v - self.shift;
            self.s1.add(d);
            self.s2.add(d * d);
        }
        self.since_exact = 0;
    }

    /// `n` values seen.
    pub(crate) fn is_full(&self) -> bool {
        self.len == self.ring.len()
    }

    /// Every value in the window is the same.
    pub(crate) fn is_constant(&self) -> bool {
        self.len > 0 && self.run >= self.len
    }

    /// Every value in the window is 0.
    pub(crate) fn is_all_zero(&self) -> bool {
        self.is_constant() && self.newest() == 0.0
    }

    pub(crate) fn mean(&self) -> f64 {
        if self.is_constant() {
            self.newest()
        } else {
            self.shift + self.s1.value() / self.len as f64
        }
    }

    /// Σ(x − mean)².
    fn m2(&self) -> f64 {
        let s1 = self.s1.value();
        (self.s2.value() - s1 * (s1 / self.len as f64)).max(0.0)
    }

    /// Population variance (÷len); exactly 0 for a constant window.
    pub(crate) fn var_population(&self) -> f64 {
        if self.is_constant() {
            0.0
        } else {
            self.m2() / self.len as f64
        }
    }

    /// Sample variance (÷(len−1)); exactly 0 for a constant window, NaN below 2 values.
    pub(crate) fn var_sample(&self) -> f64 {
        if self.len < 2 {
            f64::NAN
        } else if self.is_constant() {
            0.0
        } else {
            self.m2() / (self.len - 1) as f64
        }
    }
}

/// Simple returns over several horizons: `ret_{k} = c[t]/c[t−k] − 1`.
#[derive(Clone, Debug)]
pub struct Returns {
    lags: Vec<usize>,
    /// The last `max(lags)+1` closes, by bar index modulo the ring length.
    closes: Vec<f64>,
    seen: usize,
}

impl Returns {
    pub fn new(lags: &[usize]) -> Self {
        assert!(
            !lags.is_empty() && lags.iter().all(|&k| k >= 1),
            "return horizons must be at least 1 bar, got {lags:?}"
        );
        let longest = lags.iter().copied().max().unwrap_or(1);
        Self {
            lags: lags.to_vec(),
            closes: vec![0.0; longest + 1],
            seen: 0,
        }
    }
}

impl Indicator for Returns {
    fn names(&self) -> Vec<String> {
        self.lags.iter().map(|k| format!("ret_{k}")).collect()
    }

    fn update(&mut self, b: &Bar) {
        let slot = self.seen % self.closes.len();
        self.closes[slot] = b.close;
        self.seen += 1;
    }

    fn write(&self, out: &mut [f64]) {
        let len = self.closes.len();
        for (o, &k) in out.iter_mut().zip(&self.lags) {
            *o = if self.seen > k {
                let t = self.seen - 1;
                let old = self.closes[(t - k) % len];
                if old != 0.0 {
                    self.closes[t % len] / old - 1.0
                } else {
                    f64::NAN
                }
            } else {
                f64::NAN
            };
        }
    }
}

/// `ln(c[t]/c[t−1])`, NaN unless both closes are positive.
fn log_return(close: f64, prev: f64) -> f64 {
    if close > 0.0 && prev > 0.0 {
        (close / prev).ln()
    } else {
        f64::NAN
    }
}

/// The 1-bar log return `ln(c[t]/c[t−1])`.
#[derive(Clone, Debug)]
pub struct LogReturn {
    prev: Option<f64>,
    value: f64,
}

impl Default for LogReturn {
    fn default() -> Self {
        Self::new()
    }
}

impl LogReturn {
    pub fn new() -> Self {
        Self {
            prev: None,
            value: f64::NAN,
        }
    }
}

impl Indicator for LogReturn {
    fn names(&self) -> Vec<String> {
        vec!["log_ret_1".into()]
    }

    fn update(&mut self, b: &Bar) {
        if let Some(prev) = self.prev {
            self.value = log_return(b.close, prev);
        }
        self.prev = Some(b.close);
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

/// Realized volatility: the sample standard deviation (÷(n−1)) of the last `n` 1-bar log returns,
/// per bar (not annualised). Needs `n+1` closes, so the first value is at bar `n`.
#[derive(Clone, Debug)]
pub struct RealizedVol {
    n: usize,
    prev: Option<f64>,
    returns: RollingStats,
    value: f64,
}

impl RealizedVol {
    pub fn new(n: usize) -> Self {
        assert!(
            n >= 2,
            "realized volatility needs at least 2 returns, got {n}"
        );
        Self {
            n,
            prev: None,
            returns: RollingStats::new(n),
            value: f64::NAN,
        }
    }
}

impl Indicator for RealizedVol {
    fn names(&self) -> Vec<String> {
        vec![format!("rvol_{}", self.n)]
    }

    fn update(&mut self, b: &Bar) {
        if let Some(prev) = self.prev {
            self.returns.push(log_return(b.close, prev));
            if self.returns.is_full() {
                self.value = self.returns.var_sample().sqrt();
            }
        }
        self.prev = Some(b.close);
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

/// The bar's high−low range in basis points of its close.
#[derive(Clone, Debug)]
pub struct RangeBps {
    value: f64,
}

impl Default for RangeBps {
    fn default() -> Self {
        Self::new()
    }
}

impl RangeBps {
    pub fn new() -> Self {
        Self { value: f64::NAN }
    }
}

impl Indicator for RangeBps {
    fn names(&self) -> Vec<String> {
        vec!["hl_range_bps".into()]
    }

    fn update(&mut self, b: &Bar) {
        self.value = if b.close != 0.0 {
            (b.high - b.low) / b.close * 1e4
        } else {
            f64::NAN
        };
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

/// Where the close sits in the bar's range: 0 at the low, 1 at the high, 0.5 for a flat bar.
#[derive(Clone, Debug)]
pub struct CloseLocation {
    value: f64,
}

impl Default for CloseLocation {
    fn default() -> Self {
        Self::new()
    }
}

impl CloseLocation {
    pub fn new() -> Self {
        Self { value: f64::NAN }
    }
}

impl Indicator for CloseLocation {
    fn names(&self) -> Vec<String> {
        vec!["close_location".into()]
    }

    fn update(&mut self, b: &Bar) {
        let range = b.high - b.low;
        self.value = if range > 0.0 {
            (b.close - b.low) / range
        } else {
            0.5
        };
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

/// TA-Lib's EMA (default compatibility): the SMA of the first `n` values at value `n−1`, then
/// `ema = (x − ema)·k + ema` with `k = 2/(n+1)`. Kept private: the public `Ema` lives in `trend`.
#[derive(Clone, Debug)]
struct TalibEma {
    n: usize,
    k: f64,
    seen: usize,
    /// The seed sum while warming up, then the EMA.
    value: f64,
}

impl TalibEma {
    fn new(n: usize) -> Self {
        Self {
            n,
            k: 2.0 / (n + 1) as f64,
            seen: 0,
            value: 0.0,
        }
    }

    /// Adds `x`; the EMA once `n` values have been seen.
    fn push(&mut self, x: f64) -> Option<f64> {
        self.seen += 1;
        if self.seen < self.n {
            self.value += x;
            return None;
        }
        if self.seen == self.n {
            self.value += x;
            self.value /= self.n as f64;
        } else {
            self.value += (x - self.value) * self.k;
        }
        Some(self.value)
    }
}

/// `EMA_fast / EMA_slow − 1` on closes, both TA-Lib EMAs started at the first bar.
#[derive(Clone, Debug)]
pub struct EmaRatio {
    fast: TalibEma,
    slow: TalibEma,
    value: f64,
}

impl EmaRatio {
    pub fn new(fast: usize, slow: usize) -> Self {
        assert!(
            fast >= 1 && slow >= 1,
            "EMA periods must be at least 1, got {fast}/{slow}"
        );
        Self {
            fast: TalibEma::new(fast),
            slow: TalibEma::new(slow),
            value: f64::NAN,
        }
    }
}

impl Indicator for EmaRatio {
    fn names(&self) -> Vec<String> {
        vec![format!("ema_ratio_{}_{}", self.fast.n, self.slow.n)]
    }

    fn update(&mut self, b: &Bar) {
        let fast = self.fast.push(b.close);
        let slow = self.slow.push(b.close);
        if let (Some(f), Some(s)) = (fast, slow) {
            self.value = if s != 0.0 { f / s - 1.0 } else { f64::NAN };
        }
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

/// `close / SMA_n(close) − 1`.
#[derive(Clone, Debug)]
pub struct SmaDistance {
    n: usize,
    closes: RollingStats,
    value: f64,
}

impl SmaDistance {
    pub fn new(n: usize) -> Self {
        Self {
            n,
            closes: RollingStats::new(n),
            value: f64::NAN,
        }
    }
}

impl Indicator for SmaDistance {
    fn names(&self) -> Vec<String> {
        vec![format!("sma_dist_{}", self.n)]
    }

    fn update(&mut self, b: &Bar) {
        self.closes.push(b.close);
        if self.closes.is_full() {
            let sma = self.closes.mean();
            self.value = if sma != 0.0 {
                b.close / sma - 1.0
            } else {
                f64::NAN
            };
        }
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

/// Bollinger band width `(up−lo)/mid` and %B `(c−lo)/(up−lo)`, bands `mid ± k·σ` over `n` closes
/// (σ population). %B is 0.5 for a flat window (the close is then the middle); width is NaN if the
/// middle is 0.
#[derive(Clone, Debug)]
pub struct BbWidth {
    n: usize,
    k: f64,
    closes: RollingStats,
    width: f64,
    pctb: f64,
}

impl BbWidth {
    pub fn new(n: usize, k: f64) -> Self {
        assert!(
            n >= 2 && k > 0.0,
            "Bollinger bands need n ≥ 2 and k > 0, got {n}, {k}"
        );
        Self {
            n,
            k,
            closes: RollingStats::new(n),
            width: f64::NAN,
            pctb: f64::NAN,
        }
    }
}

impl Indicator for BbWidth {
    fn names(&self) -> Vec<String> {
        vec![
            format!("bb_width_{}", self.n),
            format!("bb_pctb_{}", self.n),
        ]
    }

    fn update(&mut self, b: &Bar) {
        self.closes.push(b.close);
        if !self.closes.is_full() {
            return;
        }
        let mid = self.closes.mean();
        let band = self.k * self.closes.var_population().sqrt();
        let (upper, lower) = (mid + band, mid - band);
        self.width = if mid != 0.0 {
            (upper - lower) / mid
        } else {
            f64::NAN
        };
        self.pctb = if upper > lower {
            (b.close - lower) / (upper - lower)
        } else {
            0.5
        };
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.width;
        out[1] = self.pctb;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(h: f64, l: f64, c: f64) -> Bar {
        Bar {
            open: c,
            high: h,
            low: l,
            close: c,
            volume: 1.0,
            ..Bar::default()
        }
    }

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

    fn first_valid(rows: &[Vec<f64>], col: usize) -> usize {
        rows.iter().position(|r| !r[col].is_nan()).unwrap()
    }

    #[test]
    fn names_and_warm_up() {
        let bars: Vec<Bar> = (0..100)
            .map(|i| bar(101.0 + i as f64, 99.0 + i as f64, 100.0 + i as f64))
            .collect();
        let r = run(Returns::new(&[1, 5, 15, 60]), &bars);
        assert_eq!(
            Returns::new(&[1, 5, 15, 60]).names(),
            ["ret_1", "ret_5", "ret_15", "ret_60"]
        );
        assert_eq!([0, 1, 2, 3].map(|c| first_valid(&r, c)), [1, 5, 15, 60]);
        assert_eq!(r[99][3], 199.0 / 139.0 - 1.0);
        assert_eq!(first_valid(&run(LogReturn::new(), &bars), 0), 1);
        assert_eq!(first_valid(&run(RealizedVol::new(60), &bars), 0), 60);
        assert_eq!(first_valid(&run(EmaRatio::new(12, 26), &bars), 0), 25);
        assert_eq!(EmaRatio::new(12, 26).names(), ["ema_ratio_12_26"]);
        assert_eq!(first_valid(&run(SmaDistance::new(50), &bars), 0), 49);
        assert_eq!(BbWidth::new(20, 2.0).names(), ["bb_width_20", "bb_pctb_20"]);
        assert_eq!(first_valid(&run(BbWidth::new(20, 2.0), &bars), 1), 19);
        // A linear ramp: SMA_50 is the close 24.5 bars back.
        let d = run(SmaDistance::new(50), &bars)[99][0];
        assert!((d - (199.0 / 174.5 - 1.0)).abs() < 1e-12);
        assert!((run(RangeBps::new(), &bars)[1][0] - 2.0 / 101.0 * 1e4).abs() < 1e-12);
    }

    #[test]
    fn constant_series() {
        let bars = vec![bar(50.0, 50.0, 50.0); 80];
        let last = |rows: Vec<Vec<f64>>| rows.last().unwrap().clone();
        assert_eq!(last(run(Returns::new(&[1, 60]), &bars)), [0.0, 0.0]);
        assert_eq!(last(run(LogReturn::new(), &bars)), [0.0]);
        assert_eq!(last(run(RealizedVol::new(60), &bars)), [0.0]);
        assert_eq!(last(run(CloseLocation::new(), &bars)), [0.5]);
        assert_eq!(last(run(EmaRatio::new(12, 26), &bars)), [0.0]);
        assert_eq!(last(run(SmaDistance::new(50), &bars)), [0.0]);
        assert_eq!(last(run(BbWidth::new(20, 2.0), &bars)), [0.0, 0.5]);
    }

    #[test]
    fn realized_vol_and_bands_by_hand() {
        // Closes alternating 100, 110: log returns ±ln 1.1, sample stdev over 2 = √2·ln 1.1.
        let bars = [100.0, 110.0, 100.0].map(|c| bar(c, c, c));
        let v = run(RealizedVol::new(2), &bars)[2][0];
        assert!((v - 2f64.sqrt() * 1.1f64.ln()).abs() < 1e-12);
        // Bands over 100, 110: mid 105, σ 5, ±2σ → width 20/105, the close 110 at %B 0.75.
        let bb = run(BbWidth::new(2, 2.0), &bars[..2])[1].clone();
        assert!((bb[0] - 20.0 / 105.0).abs() < 1e-12 && (bb[1] - 0.75).abs() < 1e-12);
    }

    #[test]
    fn rolling_stats_stay_exact_over_long_runs() {
        // Price-level values, past several exact recomputes, against a two-pass computation.
        let mut s = RollingStats::new(20);
        let xs: Vec<f64> = (0..5000).map(|i| 75e3 + (i * 79 % 113) as f64).collect();
        for (i, &x) in xs.iter().enumerate() {
            s.push(x);
            if i >= 19 {
                let w = &xs[i - 19..=i];
                let mean = w.iter().sum::<f64>() / 20.0;
                let var = w.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 20.0;
                assert!((s.mean() - mean).abs() <= 1e-12 * mean, "bar {i}");
                assert!((s.var_population() - var).abs() <= 1e-9 * var, "bar {i}");
            }
        }
    }

    #[test]
    fn real_btc_consistency() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/klines/binance-spot-btcusdt-1m.csv");
        if !path.exists() {
            eprintln!("skipped: {} not found", path.display());
            return;
        }
        let bars = crate::bars::read_klines(&path).unwrap();
        // ret_1 and log_ret_1 describe the same move.
        let (ret, log) = (run(Returns::new(&[1]), &bars), run(LogReturn::new(), &bars));
        let same = |(r, l): (&Vec<f64>, &Vec<f64>)| (r[0].ln_1p() - l[0]).abs() < 1e-12;
        assert!(ret.iter().zip(&log).skip(1).all(same));
        let loc = run(CloseLocation::new(), &bars);
        assert!(loc.iter().all(|v| (0.0..=1.0).contains(&v[0])));
        let rv = run(RealizedVol::new(60), &bars);
        assert!(rv[60..].iter().all(|v| v[0] > 0.0 && v[0] < 0.05));
    }
}
