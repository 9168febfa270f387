//! Backtest metrics from an equity curve and the closed trades, with the conventions stated.
//!
//! Money stays exact ([`Money`]: PnL, fees, funding, turnover); ratios are floats.
//!
//! | metric | definition |
//! |---|---|
//! | `total_return` | `final / initial − 1` |
//! | `cagr` | `(final / initial)^(1 / years) − 1`, years = span / 365.25 days (`null` when the span is under a day: an annualized hour says nothing) |
//! | `sharpe` | `mean(r) / stdev(r) × √(periods per year)`, `r` the simple returns of the equity resampled every `period_ms` (last value per period), sample stdev (n − 1), risk-free 0 |
//! | `sortino` | `mean(r) / √(mean(min(r, 0)²)) × √(periods per year)` (downside deviation over all periods, target 0) |
//! | `max_drawdown` | largest `1 − equity / running peak`, a fraction ≥ 0 |
//! | `max_drawdown_duration_ms` | longest time from a peak to the first sample back at or above it (or to the end) |
//! | `calmar` | `cagr / max_drawdown` (`null` without both) |
//! | `win_rate` | trades with `pnl > 0` / trades |
//! | `profit_factor` | Σ winning pnl / Σ |losing pnl| (`null` without a loss) |
//! | `trades_per_day`, `avg_holding_ms` | closed trades per day of span; mean exit − entry |
//! | `turnover` | Σ traded notional / initial equity |
//! | `monthly` | per calendar month (UTC): equity at its first and last sample, return and PnL |
//!
//! Periodicity: the caller picks `period_ms` (the report states it); a backtest on 5m bars uses one
//! day by default, so the ratio is the familiar daily Sharpe annualized by √365 (crypto trades every
//! day).

use qalpha_engine::{Price, Qty, Side, Symbol};
use qalpha_risk::Money;
use serde::Serialize;

/// Milliseconds in a day.
pub const DAY_MS: u64 = 86_400_000;
const YEAR_MS: f64 = 365.25 * DAY_MS as f64;

/// One equity sample: account value (cash + marked positions − fees + funding) at `t_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EquityPoint {
    pub t_ms: u64,
    pub equity: Money,
}

/// One round trip: a position opened and closed (or cut by a flip).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ClosedTrade {
    #[serde(serialize_with = "symbol_name")]
    pub symbol: Symbol,
    #[serde(serialize_with = "side_name")]
    pub side: Side,
    pub entry_time: u64,
    #[serde(serialize_with = "as_decimal_price")]
    pub entry_price: Price,
    pub exit_time: u64,
    #[serde(serialize_with = "as_decimal_price")]
    pub exit_price: Price,
    #[serde(serialize_with = "as_decimal_qty")]
    pub qty: Qty,
    /// Net of the fees of both legs, exact.
    #[serde(serialize_with = "as_decimal_money")]
    pub pnl: Money,
    #[serde(serialize_with = "as_decimal_money")]
    pub fees: Money,
}

/// Everything the metrics need besides the curve.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub fees: Money,
    /// Funding received (+) or paid (−).
    pub funding: Money,
    /// Σ |price × qty| of every fill.
    pub traded_notional: Money,
}

/// One calendar month.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Month {
    /// `YYYY-MM` (UTC).
    pub month: String,
    pub start_equity: String,
    pub end_equity: String,
    pub r#return: f64,
    pub pnl: String,
}

/// The metrics. Ratios are `None` (JSON `null`) where undefined.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metrics {
    pub initial_equity: String,
    pub final_equity: String,
    pub pnl: String,
    pub total_return: f64,
    pub cagr: Option<f64>,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    /// How the Sharpe/Sortino returns were sampled and annualized.
    pub periodicity: Periodicity,
    pub max_drawdown: f64,
    pub max_drawdown_duration_ms: u64,
    pub calmar: Option<f64>,
    pub trades: usize,
    pub win_rate: Option<f64>,
    pub profit_factor: Option<f64>,
    pub trades_per_day: Option<f64>,
    pub avg_holding_ms: Option<f64>,
    pub turnover: f64,
    pub fees: String,
    pub funding: String,
    pub span_ms: u64,
    pub monthly: Vec<Month>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Periodicity {
    pub period_ms: u64,
    pub periods_per_year: f64,
    /// Returns that went into the ratios.
    pub samples: usize,
}

/// Several accounts that each started with `initial` as one: at every time any of them sampled,
/// `initial + Σ (equity_i − initial)`, each account at its latest sample then (`initial` before its
/// first). Exact (integer money).
pub fn combine_curves(curves: &[&[EquityPoint]], initial: Money) -> Vec<EquityPoint> {
    if let [one] = curves {
        return one.to_vec();
    }
    let mut times: Vec<u64> = curves
        .iter()
        .flat_map(|c| c.iter().map(|p| p.t_ms))
        .collect();
    times.sort_unstable();
    times.dedup();
    let mut at = vec![0usize; curves.len()];
    let mut last = vec![initial; curves.len()];
    times
        .into_iter()
        .map(|t| {
            let mut equity = initial;
            for (i, c) in curves.iter().enumerate() {
                while let Some(p) = c.get(at[i]).filter(|p| p.t_ms <= t) {
                    last[i] = p.equity;
                    at[i] += 1;
                }
                equity += last[i] - initial;
            }
            EquityPoint { t_ms: t, equity }
        })
        .collect()
}

/// Computes the metrics. `curve` is in time order (at least the start and the end);
/// `period_ms` the Sharpe/Sortino sampling period.
pub fn compute(
    curve: &[EquityPoint],
    trades: &[ClosedTrade],
    totals: &Totals,
    period_ms: u64,
) -> Metrics {
    let period_ms = period_ms.max(1);
    let (first, last) = match (curve.first(), curve.last()) {
        (Some(f), Some(l)) => (*f, *l),
        _ => (
            EquityPoint {
                t_ms: 0,
                equity: Money::ZERO,
            },
            EquityPoint {
                t_ms: 0,
                equity: Money::ZERO,
            },
        ),
    };
    let initial = first.equity.raw() as f64;
    let fin = last.equity.raw() as f64;
    let span_ms = last.t_ms.saturating_sub(first.t_ms);
    let total_return = if initial > 0.0 {
        fin / initial - 1.0
    } else {
        0.0
    };
    let years = span_ms as f64 / YEAR_MS;
    let cagr = (span_ms >= DAY_MS && initial > 0.0 && fin > 0.0)
        .then(|| (fin / initial).powf(1.0 / years) - 1.0);

    let returns = period_returns(curve, period_ms);
    let periods_per_year = YEAR_MS / period_ms as f64;
    let (sharpe, sortino) = ratios(&returns, periods_per_year);
    let (max_drawdown, max_drawdown_duration_ms) = drawdown(curve);
    let calmar = match cagr {
        Some(c) if max_drawdown > 0.0 => Some(c / max_drawdown),
        _ => None,
    };

    let n = trades.len();
    let wins = trades.iter().filter(|t| t.pnl.raw() > 0).count();
    let gross_win: i128 = trades.iter().map(|t| t.pnl.raw().max(0)).sum();
    let gross_loss: i128 = trades.iter().map(|t| (-t.pnl.raw()).max(0)).sum();
    let days = span_ms as f64 / DAY_MS as f64;
    let held: f64 = trades
        .iter()
        .map(|t| t.exit_time.saturating_sub(t.entry_time) as f64)
        .sum();
    Metrics {
        initial_equity: money(first.equity),
        final_equity: money(last.equity),
        pnl: money(Money(last.equity.raw() - first.equity.raw())),
        total_return,
        cagr,
        sharpe,
        sortino,
        periodicity: Periodicity {
            period_ms,
            periods_per_year,
            samples: returns.len(),
        },
        max_drawdown,
        max_drawdown_duration_ms,
        calmar,
        trades: n,
        win_rate: (n > 0).then(|| wins as f64 / n as f64),
        profit_factor: (gross_loss > 0).then(|| gross_win as f64 / gross_loss as f64),
        trades_per_day: (days > 0.0).then(|| n as f64 / days),
        avg_holding_ms: (n > 0).then(|| held / n as f64),
        turnover: if initial > 0.0 {
            totals.traded_notional.raw() as f64 / initial
        } else {
            0.0
        },
        fees: money(totals.fees),
        funding: money(totals.funding),
        span_ms,
        monthly: monthly(curve),
    }
}

/// Simple returns of consecutive periods anchored at the first sample: period `k` is
/// `(t0 + k·period, t0 + (k+1)·period]` and closes at its last sample; the first sample is the
/// opening value. Empty periods carry the equity forward (a flat period is a zero return).
pub fn period_returns(curve: &[EquityPoint], period_ms: u64) -> Vec<f64> {
    let [first, rest @ ..] = curve else {
        return Vec::new();
    };
    if rest.is_empty() {
        return Vec::new();
    }
    let period_ms = period_ms.max(1);
    let mut closes: Vec<f64> = vec![first.equity.raw() as f64];
    let mut period = 0u64;
    let mut current = first.equity.raw() as f64;
    for p in rest {
        let k = p.t_ms.saturating_sub(first.t_ms).saturating_sub(1) / period_ms;
        while period < k {
            closes.push(current);
            period += 1;
        }
        current = p.equity.raw() as f64;
    }
    closes.push(current);
    closes
        .windows(2)
        .filter(|w| w[0] > 0.0)
        .map(|w| w[1] / w[0] - 1.0)
        .collect()
}

fn ratios(r: &[f64], periods_per_year: f64) -> (Option<f64>, Option<f64>) {
    if r.len() < 2 {
        return (None, None);
    }
    let n = r.len() as f64;
    let mean = r.iter().sum::<f64>() / n;
    let var = r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let down = (r.iter().map(|x| x.min(0.0).powi(2)).sum::<f64>() / n).sqrt();
    let ann = periods_per_year.sqrt();
    let sd = var.sqrt();
    (
        (sd > 0.0).then(|| mean / sd * ann),
        (down > 0.0).then(|| mean / down * ann),
    )
}

/// (largest drawdown fraction, longest underwater duration in ms).
pub fn drawdown(curve: &[EquityPoint]) -> (f64, u64) {
    let mut peak: Option<EquityPoint> = None;
    let (mut max_dd, mut max_dur, mut underwater) = (0.0f64, 0u64, false);
    for p in curve {
        match peak {
            Some(pk) if p.equity < pk.equity => {
                if pk.equity.raw() > 0 {
                    let dd = 1.0 - p.equity.raw() as f64 / pk.equity.raw() as f64;
                    max_dd = max_dd.max(dd);
                }
                max_dur = max_dur.max(p.t_ms.saturating_sub(pk.t_ms));
                underwater = true;
            }
            Some(pk) => {
                if underwater {
                    max_dur = max_dur.max(p.t_ms.saturating_sub(pk.t_ms));
                    underwater = false;
                }
                peak = Some(*p);
            }
            None => peak = Some(*p),
        }
    }
    (max_dd, max_dur)
}

fn monthly(curve: &[EquityPoint]) -> Vec<Month> {
    let mut out: Vec<Month> = Vec::new();
    let mut i = 0;
    while i < curve.len() {
        let key = month_of(curve[i].t_ms);
        let mut j = i;
        while j + 1 < curve.len() && month_of(curve[j + 1].t_ms) == key {
            j += 1;
        }
        // A month starts where the previous one ended (its last sample), so months chain.
        let start = if i > 0 { curve[i - 1] } else { curve[i] };
        let end = curve[j];
        let (s, e) = (start.equity.raw(), end.equity.raw());
        out.push(Month {
            month: format!("{:04}-{:02}", key.0, key.1),
            start_equity: money(start.equity),
            end_equity: money(end.equity),
            r#return: if s > 0 {
                e as f64 / s as f64 - 1.0
            } else {
                0.0
            },
            pnl: money(Money(e - s)),
        });
        i = j + 1;
    }
    out
}

/// (year, month) of a UTC epoch-ms time (civil-from-days, proleptic Gregorian).
pub fn month_of(t_ms: u64) -> (i64, u32) {
    let days = (t_ms / DAY_MS) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m)
}

/// An exact decimal string of a money amount (10⁻¹⁶ units), trailing zeros trimmed.
pub fn money(m: Money) -> String {
    m.to_string()
}

fn symbol_name<S: serde::Serializer>(s: &Symbol, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

fn side_name<S: serde::Serializer>(s: &Side, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(match s {
        Side::Buy => "long",
        Side::Sell => "short",
    })
}

fn as_decimal_price<S: serde::Serializer>(p: &Price, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&p.to_string())
}

fn as_decimal_qty<S: serde::Serializer>(q: &Qty, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&q.to_string())
}

fn as_decimal_money<S: serde::Serializer>(m: &Money, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&money(*m))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: i128 = 10_000_000_000_000_000; // 1 quote unit in 10⁻¹⁶

    fn pt(day: f64, equity: i128) -> EquityPoint {
        EquityPoint {
            t_ms: (day * DAY_MS as f64) as u64,
            equity: Money(equity * UNIT),
        }
    }

    fn trade(pnl: i128, entry: u64, exit: u64) -> ClosedTrade {
        ClosedTrade {
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            side: Side::Buy,
            entry_time: entry,
            entry_price: Price(100 * 100_000_000),
            exit_time: exit,
            exit_price: Price(101 * 100_000_000),
            qty: Qty(100_000_000),
            pnl: Money(pnl * UNIT),
            fees: Money::ZERO,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn combined_curves_add_each_accounts_pnl() {
        let a = [pt(0.0, 100), pt(1.0, 110), pt(3.0, 90)];
        let b = [pt(0.5, 100), pt(1.0, 95), pt(2.0, 120)];
        let c = combine_curves(&[&a, &b], Money(100 * UNIT));
        let got: Vec<(u64, i128)> = c.iter().map(|p| (p.t_ms, p.equity.raw() / UNIT)).collect();
        let d = DAY_MS;
        assert_eq!(
            got,
            [(0, 100), (d / 2, 100), (d, 105), (2 * d, 130), (3 * d, 110)]
        );
        assert_eq!(combine_curves(&[&a], Money(100 * UNIT)), a);
    }

    #[test]
    fn hand_computed_curve() {
        // Daily closes 100, 110, 99, 121 over 3 days.
        let curve = [pt(0.0, 100), pt(1.0, 110), pt(2.0, 99), pt(3.0, 121)];
        let trades = [
            trade(15, 0, 3_600_000),
            trade(-5, 0, 7_200_000),
            trade(11, 0, 0),
        ];
        let totals = Totals {
            fees: Money(3 * UNIT / 2),
            funding: Money(-UNIT / 4),
            traded_notional: Money(250 * UNIT),
        };
        let m = compute(&curve, &trades, &totals, DAY_MS);
        assert_eq!(m.pnl, "21");
        assert!(close(m.total_return, 0.21));
        // Returns: +10 %, −10 %, +22.2…%.
        let r = [0.1, -0.1, 121.0 / 99.0 - 1.0];
        let mean = r.iter().sum::<f64>() / 3.0;
        let sd = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        let ann = (365.25f64).sqrt();
        assert!(close(m.sharpe.unwrap(), mean / sd * ann), "{:?}", m.sharpe);
        let down = (0.01f64 / 3.0).sqrt();
        assert!(close(m.sortino.unwrap(), mean / down * ann));
        assert_eq!(m.periodicity.samples, 3);
        // Peak 110 → 99: 10 % drawdown, underwater from day 1 to day 3 (2 days).
        assert!(close(m.max_drawdown, 0.1));
        assert_eq!(m.max_drawdown_duration_ms, 2 * DAY_MS);
        let cagr = 1.21f64.powf(365.25 / 3.0) - 1.0;
        assert!(close(m.cagr.unwrap(), cagr));
        assert!(close(m.calmar.unwrap(), cagr / 0.1));
        assert!(close(m.win_rate.unwrap(), 2.0 / 3.0));
        assert!(close(m.profit_factor.unwrap(), 26.0 / 5.0));
        assert!(close(m.trades_per_day.unwrap(), 1.0));
        assert!(close(m.avg_holding_ms.unwrap(), 3_600_000.0));
        assert!(close(m.turnover, 2.5));
        assert_eq!((m.fees.as_str(), m.funding.as_str()), ("1.5", "-0.25"));
    }

    #[test]
    fn undefined_ratios_are_null_not_nan() {
        let flat = [pt(0.0, 100), pt(0.5, 100)];
        let m = compute(&flat, &[], &Totals::default(), DAY_MS);
        assert_eq!(
            (m.cagr, m.sharpe, m.sortino, m.calmar),
            (None, None, None, None)
        );
        assert_eq!(
            (m.win_rate, m.profit_factor, m.avg_holding_ms),
            (None, None, None)
        );
        assert_eq!(m.max_drawdown, 0.0);
        let json = serde_json::to_string(&m).unwrap();
        assert!(
            !json.contains("NaN") && json.contains("\"sharpe\":null"),
            "{json}"
        );
        let m = compute(&[], &[], &Totals::default(), DAY_MS);
        assert_eq!(m.trades, 0);
    }

    #[test]
    fn empty_periods_carry_the_equity_and_drawdown_runs_to_the_end() {
        // Hourly periods; nothing between hour 0 and hour 3.
        let h = 3_600_000u64;
        let p = |t: u64, e: i128| EquityPoint {
            t_ms: t,
            equity: Money(e * UNIT),
        };
        let curve = [p(0, 100), p(h / 2, 102), p(3 * h + 1, 51)];
        let r = period_returns(&curve, h);
        assert_eq!(r.len(), 4, "{r:?}");
        assert!(close(r[0], 0.02) && r[1] == 0.0 && r[2] == 0.0 && close(r[3], -0.5));
        let (dd, dur) = drawdown(&curve);
        assert!(close(dd, 0.5));
        assert_eq!(dur, 3 * h + 1 - h / 2);
    }

    #[test]
    fn months_chain_and_dates_are_utc() {
        assert_eq!(month_of(0), (1970, 1));
        assert_eq!(month_of(951_782_400_000), (2000, 2)); // 2000-02-29
        assert_eq!(month_of(1_704_067_199_999), (2023, 12));
        assert_eq!(month_of(1_704_067_200_000), (2024, 1));
        let jan = 1_704_067_200_000u64;
        let feb = 1_706_745_600_000u64;
        let curve = [
            EquityPoint {
                t_ms: jan,
                equity: Money(100 * UNIT),
            },
            EquityPoint {
                t_ms: jan + DAY_MS,
                equity: Money(120 * UNIT),
            },
            EquityPoint {
                t_ms: feb,
                equity: Money(90 * UNIT),
            },
        ];
        let m = monthly(&curve);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].month.as_str(), m[0].pnl.as_str()), ("2024-01", "20"));
        assert_eq!((m[1].month.as_str(), m[1].pnl.as_str()), ("2024-02", "-30"));
        assert!(close(m[1].r#return, -0.25));
    }
}
