//! The report's charts as PNG bytes: the equity of the strategy and its baselines, and the
//! strategy's drawdown in % below its running peak.
//!
//! plotters draws into an RGB buffer (its bitmap backend without the `image` encoder) and `png`
//! encodes it. Text uses a bundled DejaVu Sans subset through plotters' `ab_glyph` feature:
//! plotters' default `ttf` feature looks fonts up through fontconfig/freetype, system libraries a
//! fresh machine may lack, and without any font feature plotters panics on the first label.

use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::super::metrics::EquityPoint;
use super::{civil, DAY_MS};

/// DejaVu Sans cut to Latin-1 and a few symbols; see `LICENSE-DejaVu.txt` beside it.
const FONT: &[u8] = include_bytes!("DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";

/// Width and height of `equity.png` in pixels.
pub const EQUITY_SIZE: (u32, u32) = (1200, 520);
/// Width and height of `drawdown.png` in pixels.
pub const DRAWDOWN_SIZE: (u32, u32) = (1200, 340);

/// The strategy first, then the baselines.
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(127, 127, 127),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];
const DRAWDOWN_COLOR: RGBColor = RGBColor(214, 39, 40);
const GRID: RGBColor = RGBColor(232, 232, 232);

/// Registers the bundled font once per process.
fn font() -> Result<()> {
    static OK: OnceLock<bool> = OnceLock::new();
    if *OK.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok()) {
        Ok(())
    } else {
        Err(anyhow!(
            "the bundled chart font does not parse (DejaVuSans-subset.ttf)"
        ))
    }
}

fn plot_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing a chart: {e}")
}

/// A money amount in quote units as a float, for drawing only.
fn units(p: &EquityPoint) -> f64 {
    p.equity.0 as f64 / 1e16
}

/// The equity chart: one line per curve, the first (the strategy) drawn thicker.
pub fn equity_png(title: &str, curves: &[(&str, &[EquityPoint])]) -> Result<Vec<u8>> {
    font()?;
    let (w, h) = EQUITY_SIZE;
    let series: Vec<(&str, Vec<(u64, f64)>)> = curves
        .iter()
        .map(|(name, c)| {
            let pts: Vec<(u64, f64)> = c.iter().map(|p| (p.t_ms, units(p))).collect();
            (*name, thin(&pts, w as usize))
        })
        .collect();
    let all = || series.iter().flat_map(|s| s.1.iter());
    let x = time_range(all().map(|p| p.0));
    let y = value_range(all().map(|p| p.1), 0.05);
    let mut buf = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (ticks, unit) = time_ticks(&x, 9);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FAMILY, 22))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(96)
            .build_cartesian_2d(x.with_key_points(ticks), y.clone())
            .map_err(plot_err)?;
        let digits = decimals(&y, 8);
        chart
            .configure_mesh()
            .light_line_style(GRID)
            .y_labels(8)
            .x_label_formatter(&|t| unit.label(*t))
            .y_label_formatter(&|v| format!("{v:.digits$}"))
            .x_desc("time (UTC)")
            .y_desc("equity")
            .label_style((FAMILY, 14))
            .draw()
            .map_err(plot_err)?;
        for (i, (name, pts)) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let width = if i == 0 { 2 } else { 1 };
            chart
                .draw_series(LineSeries::new(
                    pts.iter().copied(),
                    color.stroke_width(width),
                ))
                .map_err(plot_err)?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
        }
        // The strategy again, over the baselines; the legend keeps the curves' order.
        if let (Some((_, pts)), true) = (series.first(), series.len() > 1) {
            chart
                .draw_series(LineSeries::new(
                    pts.iter().copied(),
                    COLORS[0].stroke_width(2),
                ))
                .map_err(plot_err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FAMILY, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    encode_png(&buf, w, h)
}

/// The drawdown chart of one curve: `equity / running peak − 1`, in %, filled down from zero.
pub fn drawdown_png(title: &str, curve: &[EquityPoint]) -> Result<Vec<u8>> {
    font()?;
    let (w, h) = DRAWDOWN_SIZE;
    let pts = thin(&drawdown_pct(curve), w as usize);
    let x = time_range(pts.iter().map(|p| p.0));
    let low = pts.iter().map(|p| p.1).fold(0.0f64, f64::min);
    let y = if low < 0.0 {
        low * 1.08..-low * 0.02
    } else {
        -1.0..0.05
    };
    let mut buf = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (ticks, unit) = time_ticks(&x, 9);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FAMILY, 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(96)
            .build_cartesian_2d(x.with_key_points(ticks), y.clone())
            .map_err(plot_err)?;
        let digits = decimals(&y, 6);
        chart
            .configure_mesh()
            .light_line_style(GRID)
            .y_labels(6)
            .x_label_formatter(&|t| unit.label(*t))
            .y_label_formatter(&|v| format!("{v:.digits$}%"))
            .x_desc("time (UTC)")
            .y_desc("drawdown")
            .label_style((FAMILY, 14))
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(
                AreaSeries::new(pts.iter().copied(), 0.0, DRAWDOWN_COLOR.mix(0.25))
                    .border_style(DRAWDOWN_COLOR.stroke_width(1)),
            )
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    encode_png(&buf, w, h)
}

/// (time, % below the running peak ≤ 0) of a curve.
fn drawdown_pct(curve: &[EquityPoint]) -> Vec<(u64, f64)> {
    let mut peak = f64::MIN;
    curve
        .iter()
        .map(|p| {
            let e = units(p);
            peak = peak.max(e);
            let dd = if peak > 0.0 {
                (e / peak - 1.0) * 100.0
            } else {
                0.0
            };
            (p.t_ms, dd)
        })
        .collect()
}

/// At most about four points per pixel column: each column's first, lowest, highest and last
/// point in time order, so a long 1m curve keeps its spikes at a fraction of the drawing work.
fn thin(pts: &[(u64, f64)], columns: usize) -> Vec<(u64, f64)> {
    let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
        return Vec::new();
    };
    if pts.len() <= columns * 4 {
        return pts.to_vec();
    }
    let span = u128::from(last.0.saturating_sub(first.0).max(1));
    let column = |t: u64| u128::from(t.saturating_sub(first.0)) * columns as u128 / span;
    let mut out = Vec::with_capacity(columns * 4);
    let mut i = 0;
    while i < pts.len() {
        let c = column(pts[i].0);
        let mut j = i;
        while j + 1 < pts.len() && column(pts[j + 1].0) == c {
            j += 1;
        }
        let (mut lo, mut hi) = (i, i);
        for k in i..=j {
            if pts[k].1 < pts[lo].1 {
                lo = k;
            }
            if pts[k].1 > pts[hi].1 {
                hi = k;
            }
        }
        let mut keep = [i, lo, hi, j];
        keep.sort_unstable();
        let mut prev = None;
        for k in keep {
            if prev != Some(k) {
                out.push(pts[k]);
                prev = Some(k);
            }
        }
        i = j + 1;
    }
    out
}

/// The time axis: the data's span, or one day from its only point.
fn time_range(ts: impl Iterator<Item = u64>) -> std::ops::Range<u64> {
    let (lo, hi) = ts.fold((u64::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)));
    match (lo, hi) {
        (u64::MAX, _) => 0..DAY_MS,
        (lo, hi) if hi <= lo => lo..lo + DAY_MS,
        (lo, hi) => lo..hi,
    }
}

/// The value axis: the data's range padded by `pad` of it on each side (a flat curve gets ±1 %
/// of its level, or ±1 at zero).
fn value_range(vs: impl Iterator<Item = f64>, pad: f64) -> std::ops::Range<f64> {
    let (lo, hi) = vs
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return 0.0..1.0;
    }
    let d = if hi > lo {
        (hi - lo) * pad
    } else if lo != 0.0 {
        lo.abs() * 0.01
    } else {
        1.0
    };
    lo - d..hi + d
}

/// Decimals that show the value-axis labels plotters picks for `range` (at most `n`) exactly and
/// no more: its steps are 1, 2 or 5 × 10ᵏ.
fn decimals(range: &std::ops::Range<f64>, n: usize) -> usize {
    let points = RangedCoordf64::from(range.clone()).key_points(n);
    let step = points
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(f64::INFINITY, f64::min);
    if !(step.is_finite() && step > 0.0) {
        return 2;
    }
    // The factor keeps a step of 0.99999… (float noise) from counting as 0.1.
    (-(step * 1.000_001).log10().floor()).clamp(0.0, 8.0) as usize
}

/// Time-axis steps below a month: 1m … 14d.
const STEPS_MS: [u64; 13] = [
    60_000,
    300_000,
    900_000,
    1_800_000,
    3_600_000,
    7_200_000,
    10_800_000,
    21_600_000,
    43_200_000,
    DAY_MS,
    2 * DAY_MS,
    7 * DAY_MS,
    14 * DAY_MS,
];

/// What the time-axis ticks fall on, which decides their labels.
#[derive(Clone, Copy, Debug, PartialEq)]
enum TickUnit {
    /// `MM-DD HH:MM`
    Minutes,
    /// `YYYY-MM-DD`
    Days,
    /// `YYYY-MM`
    Months,
}

impl TickUnit {
    fn label(self, t_ms: u64) -> String {
        let (y, m, d) = civil(t_ms / DAY_MS);
        let s = t_ms % DAY_MS / 1000;
        match self {
            Self::Minutes => format!("{m:02}-{d:02} {:02}:{:02}", s / 3600, s % 3600 / 60),
            Self::Days => format!("{y:04}-{m:02}-{d:02}"),
            Self::Months => format!("{y:04}-{m:02}"),
        }
    }
}

/// At most `max` tick times in `r` on round UTC times (whole minutes, hours, days, or the first
/// of a month), so the labels read like a calendar rather than like the data's first bar.
fn time_ticks(r: &std::ops::Range<u64>, max: u64) -> (Vec<u64>, TickUnit) {
    let span = r.end.saturating_sub(r.start);
    if let Some(&step) = STEPS_MS.iter().find(|&&s| span / s < max) {
        let first = r.start.div_ceil(step) * step;
        let ticks = (0..)
            .map(|k| first + k * step)
            .take_while(|t| *t <= r.end)
            .collect();
        let unit = if step < DAY_MS {
            TickUnit::Minutes
        } else {
            TickUnit::Days
        };
        return (ticks, unit);
    }
    let month = |t: u64| {
        let (y, m, _) = civil(t / DAY_MS);
        y * 12 + i64::from(m) - 1
    };
    let (m0, m1) = (month(r.start), month(r.end));
    let n = (m1 - m0 + 1) as u64;
    let step = [1, 2, 3, 6, 12]
        .into_iter()
        .find(|s| n / s < max)
        .unwrap_or(12 * (n / 12 / max + 1)) as i64;
    let ticks = (m0.div_euclid(step)..=m1.div_euclid(step) + 1)
        .map(|k| month_start_ms(k * step))
        .filter(|t| r.contains(t))
        .collect();
    (ticks, TickUnit::Months)
}

/// Epoch ms of the first of month `y × 12 + (m − 1)` (days-from-civil, proleptic Gregorian).
fn month_start_ms(index: i64) -> u64 {
    let (y, m) = (index.div_euclid(12), index.rem_euclid(12) + 1);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468).max(0) as u64 * DAY_MS
}

/// 8-bit RGB rows → PNG.
fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use qalpha_risk::Money;

    fn pt(t_ms: u64, equity: f64) -> EquityPoint {
        EquityPoint {
            t_ms,
            equity: Money((equity * 1e16) as i128),
        }
    }

    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut r = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        (info.width, info.height, buf)
    }

    #[test]
    fn thinning_keeps_the_extremes_in_time_order() {
        let pts: Vec<(u64, f64)> = (0..10_000u64)
            .map(|i| (i, if i == 4321 { -50.0 } else { (i % 7) as f64 }))
            .collect();
        let t = thin(&pts, 100);
        assert!(t.len() <= 400 && t.len() >= 200, "{}", t.len());
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(t.contains(&(4321, -50.0)));
        assert_eq!((t[0], t[t.len() - 1]), (pts[0], pts[9_999]));
        assert_eq!(thin(&pts[..10], 100), pts[..10].to_vec());
    }

    #[test]
    fn drawdown_is_below_the_running_peak() {
        let c = [pt(0, 100.0), pt(1, 110.0), pt(2, 99.0), pt(3, 121.0)];
        let dd = drawdown_pct(&c);
        assert_eq!(dd[0].1, 0.0);
        assert!((dd[2].1 + 10.0).abs() < 1e-9 && dd[3].1 == 0.0, "{dd:?}");
    }

    #[test]
    fn axis_labels() {
        assert_eq!(TickUnit::Minutes.label(1_776_606_960_000), "04-19 13:56");
        assert_eq!(TickUnit::Days.label(1_776_606_960_000), "2026-04-19");
        assert_eq!(decimals(&(9994.2..10001.3), 8), 0);
        assert_eq!(decimals(&(9999.2..10000.3), 8), 1);
        assert_eq!(decimals(&(-0.058..0.001), 6), 2);
        assert_eq!(decimals(&(0.0..80_000.0), 8), 0);
        assert_eq!(value_range([5.0].into_iter(), 0.05), 4.95..5.05);
        assert_eq!(time_range(std::iter::empty()), 0..DAY_MS);
    }

    #[test]
    fn time_ticks_fall_on_round_utc_times() {
        // 2026-04-19 13:56 for 50 hours: every 6 hours from 18:00.
        let start = 1_776_606_960_000;
        let (t, unit) = time_ticks(&(start..start + 50 * 3_600_000), 9);
        assert_eq!(unit, TickUnit::Minutes);
        let labels: Vec<_> = t.iter().map(|t| unit.label(*t)).collect();
        assert_eq!(labels[..2], ["04-19 18:00", "04-20 00:00"]);
        assert_eq!(labels.len(), 8);
        // 2020-01-01 .. 2024-03-10: every 6 months from 2020-01.
        let (t, unit) = time_ticks(&(1_577_836_800_000..1_710_028_800_000), 9);
        assert_eq!(unit, TickUnit::Months);
        let labels: Vec<_> = t.iter().map(|t| unit.label(*t)).collect();
        assert_eq!(labels[..3], ["2020-01", "2020-07", "2021-01"]);
        assert_eq!(labels.last().map(String::as_str), Some("2024-01"));
        assert_eq!(month_start_ms(2024 * 12 + 1), 1_706_745_600_000); // 2024-02-01
    }

    #[test]
    fn charts_render_lines_and_text_for_odd_inputs() {
        let c = [pt(0, 100.0), pt(3_600_000, 101.0), pt(7_200_000, 99.5)];
        let flat = [pt(0, 100.0), pt(7_200_000, 100.0)];
        let png = equity_png("t", &[("a", &c), ("flat", &flat)]).unwrap();
        let (w, h, px) = decode(&png);
        assert_eq!((w, h), EQUITY_SIZE);
        let blue = COLORS[0];
        assert!(px.chunks(3).any(|p| p == [blue.0, blue.1, blue.2]));
        // Text is drawn: dark anti-aliased pixels that are neither grid nor series colors.
        assert!(
            px.chunks(3)
                .filter(|p| p[0] < 80 && p == &[p[0]; 3])
                .count()
                > 500
        );
        for curve in [&c[..], &flat[..], &[][..], &c[..1]] {
            let (w, h, _) = decode(&drawdown_png("dd", curve).unwrap());
            assert_eq!((w, h), DRAWDOWN_SIZE);
            assert!(equity_png("e", &[("x", curve)]).is_ok());
        }
        assert!(equity_png("none", &[]).is_ok());
    }
}
