//! Parameter sweeps: `--sweep strategy.fast=5,10,20 --sweep strategy.slow=30,60` runs every point of
//! the grid (in parallel, rayon) on the same bars and ranks them.
//!
//! Ranking: Sharpe (higher first; undefined last), ties by total return. Points the strategy refuses
//! (e.g. `fast >= slow`) are listed as errors, not dropped silently. The table carries an explicit
//! warning: the best row of an in-sample sweep is the one that fitted this data's noise best — it
//! must be validated on data it was not chosen on.

use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::Serialize;

use super::cmd::{run_strategy, setup, BacktestArgs, SymbolBars};
use super::metrics::{self, Metrics};

/// The warning printed with (and stored in) every sweep.
pub const OVERFIT_WARNING: &str = "WARNING: in-sample sweep. The top row is the parameter set that fitted \
this data best, noise included; expect it to do worse out of sample. Validate it on a period it was \
not chosen on (--from/--to) before trusting any of these numbers.";

/// One `--sweep KEY=V1,V2,...`.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

/// Parses `KEY=V1,V2,...`.
pub fn parse_axis(s: &str) -> Result<Axis, String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("--sweep {s:?}: expected KEY=V1,V2,..."))?;
    let values: Vec<String> = v
        .split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect();
    if k.trim().is_empty() || values.is_empty() {
        return Err(format!("--sweep {s:?}: expected KEY=V1,V2,..."));
    }
    Ok(Axis {
        key: k.trim().to_string(),
        values,
    })
}

/// Every combination, as `key=value` assignments (first axis slowest).
pub fn grid(axes: &[Axis]) -> Vec<Vec<String>> {
    let mut points = vec![Vec::new()];
    for a in axes {
        points = points
            .into_iter()
            .flat_map(|p| {
                a.values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push(format!("{}={v}", a.key));
                    q
                })
            })
            .collect();
    }
    points
}

/// One grid point's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub sets: Vec<String>,
    pub metrics: Option<Metrics>,
    pub error: Option<String>,
}

/// Runs every grid point on `data` and returns them ranked.
pub fn run(base: &BacktestArgs, axes: &[Axis], data: &[SymbolBars]) -> Result<Vec<Point>> {
    let points = grid(axes);
    if points.len() > 10_000 {
        bail!("the sweep has {} points; at most 10000", points.len());
    }
    let mut out: Vec<Point> = points
        .into_par_iter()
        .map(|sets| {
            let mut a = base.clone();
            a.sets.extend(sets.iter().cloned());
            let result = setup(&a).and_then(|s| {
                let o = run_strategy(&s, data)?;
                let acc = &o.account;
                Ok(metrics::compute(
                    &acc.curve,
                    &acc.trades,
                    &acc.totals,
                    s.period_ms,
                ))
            });
            match result {
                Ok(m) => Point {
                    sets,
                    metrics: Some(m),
                    error: None,
                },
                Err(e) => Point {
                    sets,
                    metrics: None,
                    error: Some(format!("{e:#}")),
                },
            }
        })
        .collect();
    out.sort_by(|a, b| {
        rank_key(b)
            .partial_cmp(&rank_key(a))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(out)
}

/// (has metrics, has a Sharpe, Sharpe, total return): larger ranks higher.
fn rank_key(p: &Point) -> (bool, bool, f64, f64) {
    match &p.metrics {
        None => (false, false, 0.0, 0.0),
        Some(m) => (
            true,
            m.sharpe.is_some(),
            m.sharpe.unwrap_or(0.0),
            m.total_return,
        ),
    }
}

/// The ranked table with the warning.
pub fn table(points: &[Point]) -> String {
    let mut s = format!("{OVERFIT_WARNING}\n\n");
    s.push_str(&format!(
        "{:>4}  {:<40} {:>10} {:>10} {:>9} {:>7} {:>14}\n",
        "rank", "params", "Sharpe", "return", "max DD", "trades", "PnL"
    ));
    for (i, p) in points.iter().enumerate() {
        let params = p.sets.join(" ");
        match &p.metrics {
            Some(m) => s.push_str(&format!(
                "{:>4}  {:<40} {:>10} {:>9.3}% {:>8.3}% {:>7} {:>14}\n",
                i + 1,
                params,
                m.sharpe.map_or("—".into(), |x| format!("{x:.3}")),
                m.total_return * 100.0,
                m.max_drawdown * 100.0,
                m.trades,
                m.pnl
            )),
            None => s.push_str(&format!(
                "{:>4}  {:<40} error: {}\n",
                i + 1,
                params,
                p.error.as_deref().unwrap_or("?")
            )),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_and_grid() {
        let a = parse_axis("strategy.fast=5, 10,20").unwrap();
        assert_eq!(a.values, ["5", "10", "20"]);
        assert!(parse_axis("strategy.fast").is_err());
        assert!(parse_axis("strategy.fast=").is_err());
        let b = parse_axis("strategy.slow=30,60").unwrap();
        let g = grid(&[a, b]);
        assert_eq!(g.len(), 6);
        assert_eq!(g[0], ["strategy.fast=5", "strategy.slow=30"]);
        assert_eq!(g[5], ["strategy.fast=20", "strategy.slow=60"]);
    }
}
