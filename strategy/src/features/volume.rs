//! Volume features: TA-Lib's MFI, OBV and AD (Chaikin A/D line), and three non-TA-Lib columns —
//! the distance to a rolling VWAP, a volume z-score and the taker-buy share.
//!
//! | struct | columns | first valid bar (0-based) |
//! |---|---|---|
//! | [`Mfi::new(n)`](Mfi) | `mfi_{n}` | `n` |
//! | [`Obv::new()`](Obv) | `obv` | 0 |
//! | [`Ad::new()`](Ad) | `ad` | 0 |
//! | [`VwapDistance::new(n)`](VwapDistance) | `vwap_dist_{n}` | `n−1` |
//! | [`VolumeZ::new(n)`](VolumeZ) | `volume_z_{n}` | `n−1` |
//! | [`TakerBuyRatio::new()`](TakerBuyRatio) | `taker_buy_ratio` | 0 (NaN without taker data) |
//!
//! Hot path: `update` is O(1) and allocation-free; rings are allocated in `new`.
//!
//! Floating point: MFI, OBV and AD perform TA-Lib's operations in TA-Lib's order (MFI's running
//! positive/negative sums included), so they equal TA-Lib's outputs rather than approximating them.
//! The non-TA-Lib windows use [`RollingStats`], which recomputes its sums exactly from the ring at a
//! fixed interval so rounding cannot accumulate over a long session.

use crate::bars::Bar;
use crate::features::extra::RollingStats;
use crate::features::Indicator;

/// TA-Lib MFI: with typical price `tp = (high+low+close)/3` and raw flow `tp·volume`, a bar's flow
/// is positive when tp rose from the previous bar, negative when it fell, neither when unchanged;
/// `100·Σpos/(Σpos+Σneg)` over the last `n` bars, 0 when Σpos+Σneg < 1 (TA-Lib's guard).
/// First value at bar `n`.
#[derive(Clone, Debug)]
pub struct Mfi {
    n: usize,
    pos: Vec<f64>,
    neg: Vec<f64>,
    next: usize,
    seen: usize,
    prev_tp: f64,
    pos_sum: f64,
    neg_sum: f64,
    value: f64,
}

impl Mfi {
    pub fn new(n: usize) -> Self {
        assert!(n >= 2, "MFI period must be at least 2, got {n}");
        Self {
            n,
            pos: vec![0.0; n],
            neg: vec![0.0; n],
            next: 0,
            seen: 0,
            prev_tp: 0.0,
            pos_sum: 0.0,
            neg_sum: 0.0,
            value: f64::NAN,
        }
    }
}

/// Typical-price changes this small count as flat (see [`Mfi`]).
const MFI_FLAT: f64 = 1e-14;

impl Indicator for Mfi {
    fn names(&self) -> Vec<String> {
        vec![format!("mfi_{}", self.n)]
    }

    fn update(&mut self, b: &Bar) {
        self.seen += 1;
        let tp = (b.high + b.low + b.close) / 3.0;
        if self.seen == 1 {
            self.prev_tp = tp;
            return;
        }
        if self.seen > self.n + 1 {
            // TA-Lib drops the leaving bar before adding today's.
            self.pos_sum -= self.pos[self.next];
            self.neg_sum -= self.neg[self.next];
        }
        let change = tp - self.prev_tp;
        self.prev_tp = tp;
        let flow = tp * b.volume;
        // A change within ±1e-14 is no change: TA-Lib's reference results treat the 1-ulp wobble
        // of a recomputed typical price as flat (measured on real XRP 5m klines).
        let (pos, neg) = if change < -MFI_FLAT {
            self.neg_sum += flow;
            (0.0, flow)
        } else if change > MFI_FLAT {
            self.pos_sum += flow;
            (flow, 0.0)
        } else {
            (0.0, 0.0)
        };
        self.pos[self.next] = pos;
        self.neg[self.next] = neg;
        self.next = (self.next + 1) % self.n;
        if self.seen > self.n {
            let total = self.pos_sum + self.neg_sum;
            self.value = if total < 1.0 {
                0.0
            } else {
                100.0 * (self.pos_sum / total)
            };
        }
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

/// TA-Lib OBV: starts at the first bar's volume; then adds the volume when the close rose, subtracts
/// it when the close fell, keeps it when unchanged.
#[derive(Clone, Debug)]
pub struct Obv {
    started: bool,
    prev_close: f64,
    value: f64,
}

impl Default for Obv {
    fn default() -> Self {
        Self::new()
    }
}

impl Obv {
    pub fn new() -> Self {
        Self {
            started: false,
            prev_close: 0.0,
            value: f64::NAN,
        }
    }
}

impl Indicator for Obv {
    fn names(&self) -> Vec<String> {
        vec!["obv".into()]
    }

    fn update(&mut self, b: &Bar) {
        if !self.started {
            self.started = true;
            self.value = b.volume;
        } else if b.close > self.prev_close {
            self.value += b.volume;
        } else if b.close < self.prev_close {
            self.value -= b.volume;
        }
        self.prev_close = b.close;
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

/// TA-Lib AD (Chaikin accumulation/distribution line): the running sum of
/// `((close−low)−(high−close))/(high−low)·volume`, a bar with high == low adding nothing.
#[derive(Clone, Debug)]
pub struct Ad {
    value: f64,
    started: bool,
}

impl Default for Ad {
    fn default() -> Self {
        Self::new()
    }
}

impl Ad {
    pub fn new() -> Self {
        Self {
            value: 0.0,
            started: false,
        }
    }
}

impl Indicator for Ad {
    fn names(&self) -> Vec<String> {
        vec!["ad".into()]
    }

    fn update(&mut self, b: &Bar) {
        self.started = true;
        let range = b.high - b.low;
        if range > 0.0 {
            self.value += (((b.close - b.low) - (b.high - b.close)) / range) * b.volume;
        }
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = if self.started { self.value } else { f64::NAN };
    }
}

/// `close / VWAP − 1`, the VWAP over the last `n` bars (this one included) weighting the typical
/// price `(high+low+close)/3` by volume. NaN until `n` bars, and while the window's volume is 0.
#[derive(Clone, Debug)]
pub struct VwapDistance {
    n: usize,
    /// tp·volume and volume: the ratio of their means is the ratio of their sums.
    pv: RollingStats,
    vol: RollingStats,
    value: f64,
}

impl VwapDistance {
    pub fn new(n: usize) -> Self {
        assert!(n >= 1, "VWAP window must be at least 1 bar");
        Self {
            n,
            pv: RollingStats::new(n),
            vol: RollingStats::new(n),
            value: f64::NAN,
        }
    }
}

impl Indicator for VwapDistance {
    fn names(&self) -> Vec<String> {
        vec![format!("vwap_dist_{}", self.n)]
    }

    fn update(&mut self, b: &Bar) {
        let tp = (b.high + b.low + b.close) / 3.0;
        self.pv.push(tp * b.volume);
        self.vol.push(b.volume);
        self.value = if !self.vol.is_full() || self.vol.is_all_zero() {
            f64::NAN
        } else {
            b.close / (self.pv.mean() / self.vol.mean()) - 1.0
        };
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

/// `(volume − mean) / stdev` over the last `n` volumes (this one included), population stdev.
/// NaN until `n` bars, and when every volume in the window is the same (stdev 0).
#[derive(Clone, Debug)]
pub struct VolumeZ {
    n: usize,
    vol: RollingStats,
    value: f64,
}

impl VolumeZ {
    pub fn new(n: usize) -> Self {
        assert!(
            n >= 2,
            "volume z-score window must be at least 2 bars, got {n}"
        );
        Self {
            n,
            vol: RollingStats::new(n),
            value: f64::NAN,
        }
    }
}

impl Indicator for VolumeZ {
    fn names(&self) -> Vec<String> {
        vec![format!("volume_z_{}", self.n)]
    }

    fn update(&mut self, b: &Bar) {
        self.vol.push(b.volume);
        let var = self.vol.var_population();
        self.value = if !self.vol.is_full() || var <= 0.0 {
            f64::NAN
        } else {
            (b.volume - self.vol.mean()) / var.sqrt()
        };
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

/// `taker_buy_volume / volume` of the bar: the share of volume bought by takers. NaN when either is
/// 0 — the kline inputs without taker data carry 0 there, which cannot be told apart from "none".
#[derive(Clone, Debug)]
pub struct TakerBuyRatio {
    value: f64,
}

impl Default for TakerBuyRatio {
    fn default() -> Self {
        Self::new()
    }
}

impl TakerBuyRatio {
    pub fn new() -> Self {
        Self { value: f64::NAN }
    }
}

impl Indicator for TakerBuyRatio {
    fn names(&self) -> Vec<String> {
        vec!["taker_buy_ratio".into()]
    }

    fn update(&mut self, b: &Bar) {
        self.value = if b.volume > 0.0 && b.taker_buy_volume > 0.0 {
            b.taker_buy_volume / b.volume
        } else {
            f64::NAN
        };
    }

    fn write(&self, out: &mut [f64]) {
        out[0] = self.value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(h: f64, l: f64, c: f64, v: f64, taker: f64) -> Bar {
        Bar {
            open: c,
            high: h,
            low: l,
            close: c,
            volume: v,
            taker_buy_volume: taker,
            ..Bar::default()
        }
    }

    fn run(mut ind: impl Indicator, bars: &[Bar]) -> Vec<f64> {
        let mut out = [f64::NAN];
        bars.iter()
            .map(|b| {
                ind.update(b);
                ind.write(&mut out);
                out[0]
            })
            .collect()
    }

    fn nan_count(v: &[f64]) -> usize {
        v.iter().take_while(|x| x.is_nan()).count()
    }

    #[test]
    fn warm_up_and_hand_checked_values() {
        // Typical price rising by 1 per bar: all flow positive → MFI 100.
        let up: Vec<Bar> = (0..30)
            .map(|i| {
                bar(
                    101.0 + i as f64,
                    99.0 + i as f64,
                    100.0 + i as f64,
                    2.0,
                    1.5,
                )
            })
            .collect();
        let mfi = run(Mfi::new(14), &up);
        assert_eq!((nan_count(&mfi), mfi[29]), (14, 100.0));
        // OBV starts at the first volume and adds 2 per rising bar.
        assert_eq!(run(Obv::new(), &up)[3], 8.0);
        // Close mid-range: no accumulation.
        assert_eq!(run(Ad::new(), &up)[29], 0.0);
        assert_eq!(run(TakerBuyRatio::new(), &up)[0], 0.75);
        let vwap = run(VwapDistance::new(20), &up);
        assert_eq!(nan_count(&vwap), 19);
        // Equal volumes: VWAP is the mean typical price, 109.5 over bars 10..=29.
        assert!((vwap[29] - (129.0 / 119.5 - 1.0)).abs() < 1e-12);
        assert_eq!(
            nan_count(&run(VolumeZ::new(20), &up)),
            30,
            "constant volume: stdev 0"
        );
        // Close at the high adds the whole volume to AD; a lower close subtracts from OBV.
        let two = [
            bar(11.0, 9.0, 11.0, 3.0, 0.0),
            bar(11.0, 9.0, 10.0, 5.0, 0.0),
        ];
        assert_eq!(run(Ad::new(), &two), [3.0, 3.0]);
        assert_eq!(run(Obv::new(), &two), [3.0, -2.0]);
        assert!(run(TakerBuyRatio::new(), &two)[0].is_nan());
    }

    #[test]
    fn zero_volume() {
        let flat: Vec<Bar> = (0..30)
            .map(|i| bar(10.0 + i as f64, 9.0 + i as f64, 9.5 + i as f64, 0.0, 0.0))
            .collect();
        assert_eq!(
            run(Mfi::new(14), &flat)[29],
            0.0,
            "TA-Lib: 0 below a total flow of 1"
        );
        assert!(run(VwapDistance::new(20), &flat).iter().all(|v| v.is_nan()));
        assert!(run(VolumeZ::new(20), &flat).iter().all(|v| v.is_nan()));
        assert!(run(TakerBuyRatio::new(), &flat).iter().all(|v| v.is_nan()));
        // One traded bar in the window: the VWAP is that bar's typical price.
        let mut one = flat.clone();
        one[25].volume = 4.0;
        let d = run(VwapDistance::new(20), &one);
        assert!((d[29] - (38.5 / 34.5 - 1.0)).abs() < 1e-12);
        let z = run(VolumeZ::new(20), &one);
        // Window of 19 zeros and one 4: mean 0.2, σ = √(0.76), the zero bar sits at −0.2/σ.
        assert!((z[29] + 0.2 / 0.76f64.sqrt()).abs() < 1e-12);
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
        let mfi = run(Mfi::new(14), &bars);
        assert!(mfi[14..].iter().all(|v| (0.0..=100.0 + 1e-9).contains(v)));
        // OBV's steps are ± the bar volume (or 0 on an unchanged close).
        let obv = run(Obv::new(), &bars);
        for i in 1..bars.len() {
            let step = obv[i] - obv[i - 1];
            let want = bars[i].volume * (bars[i].close - bars[i - 1].close).signum();
            let want = if bars[i].close == bars[i - 1].close {
                0.0
            } else {
                want
            };
            assert!(
                (step - want).abs() <= 1e-9 * obv[i].abs().max(1.0),
                "bar {i}"
            );
        }
        let vwap = run(VwapDistance::new(20), &bars);
        assert!(vwap[19..].iter().all(|v| v.abs() < 0.05));
        let z = run(VolumeZ::new(20), &bars);
        // |z| ≤ √(n−1) for a population z-score.
        assert!(z[19..].iter().all(|v| v.abs() <= 19f64.sqrt() + 1e-9));
    }
}
